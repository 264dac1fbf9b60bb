//! What proof of work costs: the server's check (`seatq_common::pow::verify`, one HMAC
//! and one SHA-256 per join) and, for comparison, solving it natively on one core of
//! this machine (a browser's JavaScript is slower; the web app measures its own).
//!
//! The on-sale run itself uses events without proof of work (difficulty 0): solving is
//! the browser's cost, spread over the browsers, and would only measure the bench's CPU
//! here. Not measured here: the gateway's single-use check of a solved challenge (one
//! Redis `SET NX` per join).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use seatq_common::pow;

use crate::results::round;

/// Verifications timed in one go.
const VERIFIES: u32 = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowSolve {
    pub difficulty: u32,
    pub solves: u32,
    /// Mean hashes tried per solve (2^difficulty expected).
    pub mean_hashes: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    /// Hashes per second of one core, natively.
    pub hashes_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowBench {
    pub verifies: u32,
    /// Mean time of one successful `verify`, µs.
    pub verify_us: f64,
    /// Verifications one core could do per second at that cost.
    pub verifies_per_core_s: f64,
    pub solves: Vec<PowSolve>,
}

/// Solves per difficulty: enough to average at easy ones, one or a few at hard ones.
fn solves_for(difficulty: u32) -> u32 {
    (1u32 << 22u32.saturating_sub(difficulty).min(4)).max(1)
}

pub fn bench(secret: &[u8], difficulties: &[u32]) -> PowBench {
    let event = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let mut solves = Vec::new();
    for &difficulty in difficulties {
        let difficulty = difficulty.min(pow::MAX_DIFFICULTY);
        let n = solves_for(difficulty);
        let (mut total_ms, mut max_ms, mut hashes) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..n {
            let challenge = pow::issue(secret, event, now + 3_600);
            let started = Instant::now();
            let nonce = pow::solve(&challenge, difficulty);
            let ms = started.elapsed().as_secs_f64() * 1_000.0;
            total_ms += ms;
            max_ms = max_ms.max(ms);
            hashes += nonce.parse::<f64>().unwrap_or(0.0) + 1.0;
        }
        solves.push(PowSolve {
            difficulty,
            solves: n,
            mean_hashes: round(hashes / f64::from(n), 0),
            mean_ms: round(total_ms / f64::from(n), 3),
            max_ms: round(max_ms, 3),
            hashes_per_s: round(hashes / (total_ms / 1_000.0).max(1e-9), 0),
        });
    }
    // Verify a real solution (an easy one: the check costs the same at any difficulty).
    let challenge = pow::issue(secret, event, now + 3_600);
    let nonce = pow::solve(&challenge, 8);
    let started = Instant::now();
    let mut ok = 0u32;
    for _ in 0..VERIFIES {
        ok += u32::from(pow::verify(secret, &challenge, &nonce, event, 8, now).is_ok());
    }
    let secs = started.elapsed().as_secs_f64();
    debug_assert_eq!(ok, VERIFIES);
    let verify_us = secs * 1e6 / f64::from(VERIFIES);
    PowBench {
        verifies: ok,
        verify_us: round(verify_us, 3),
        verifies_per_core_s: round(1e6 / verify_us.max(1e-9), 0),
        solves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easy_difficulties_are_averaged_over_more_solves() {
        assert_eq!(solves_for(16), 16);
        assert_eq!(solves_for(20), 4);
        assert_eq!(solves_for(22), 1);
        assert_eq!(solves_for(30), 1);
        let b = bench(b"secret", &[4]);
        assert_eq!(b.verifies, VERIFIES);
        assert_eq!(b.solves.len(), 1);
        assert!(b.verify_us > 0.0);
    }
}
