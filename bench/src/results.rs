//! The numbers recorded for each design, as they appear in `results/*.json`.
//!
//! Kept apart from the scenarios so every design reports the same timing fields the same
//! way, and the report code needs nothing from the scenarios but these plain structs.

use serde::Serialize;

use crate::runner::RunOutcome;

/// Throughput and latency of one run (latency includes retries and errors: the user
/// waited for them too).
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub decisions_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub wall_s: f64,
    /// Attempts answered "held".
    pub held_attempts: u64,
    /// Attempts answered "not available".
    pub rejected: u64,
    /// Attempts that failed (database or Redis error after retries).
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// A duration in milliseconds, to the microsecond.
pub fn millis(d: std::time::Duration) -> f64 {
    round(d.as_secs_f64() * 1_000.0, 3)
}

impl From<&RunOutcome> for Timing {
    fn from(o: &RunOutcome) -> Self {
        Self {
            decisions_per_s: round(o.decisions_per_s(), 1),
            p50_ms: round(o.quantile_ms(0.50), 3),
            p95_ms: round(o.quantile_ms(0.95), 3),
            p99_ms: round(o.quantile_ms(0.99), 3),
            max_ms: round(o.latency_us.max() as f64 / 1_000.0, 3),
            wall_s: round(o.wall.as_secs_f64(), 3),
            held_attempts: o.held_attempts,
            rejected: o.rejected,
            errors: o.errors,
            first_error: o.first_error.clone(),
        }
    }
}

/// A design whose table of record is the `seats` table: (a) and (b).
#[derive(Debug, Clone, Serialize)]
pub struct SeatsTableResult {
    #[serde(flatten)]
    pub timing: Timing,
    /// Seats with status 'held' at the end.
    pub held: u64,
    /// Seats promised twice, promised but not held by that user, or in two hold rows.
    pub oversold: u64,
    /// Seats held in the table that no client was told about (errors after commit).
    pub held_unpromised: u64,
    /// Seats listed in `holds` rows (design (b) only writes them).
    pub hold_row_seats: u64,
}

/// A Redis crash in the middle of the run.
#[derive(Debug, Clone, Serialize)]
pub struct RedisRestart {
    /// Attempts answered when Redis was killed.
    pub after_attempts: u64,
    /// From SIGKILL until the new, empty server accepted connections.
    pub outage_ms: f64,
}

/// Design (c): Redis decides, PostgreSQL is written behind.
#[derive(Debug, Clone, Serialize)]
pub struct RedisFirstResult {
    #[serde(flatten)]
    pub timing: Timing,
    /// Seats the script confirmed to users.
    pub held: u64,
    /// Confirmed seats that PostgreSQL records for a different user: sold twice.
    pub double_promised_after_redis_restart: u64,
    /// Writer inserts that hit the unique seat (any holder, so >= the line above).
    pub writer_conflicts: u64,
    /// Rows in `seat_claims` at the end.
    pub pg_claims: u64,
    /// Confirmed seats with no row in PostgreSQL at the end (writer lost them).
    pub promises_without_claim: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_restart: Option<RedisRestart>,
    /// Scripts re-sent by clients while Redis was unreachable.
    pub resent_scripts: u64,
    pub writer_batches: u64,
    /// Most promises waiting to be written to PostgreSQL at once.
    pub writer_max_backlog: usize,
    /// From the last attempt answered until PostgreSQL had every promise.
    pub writer_drain_ms: f64,
}
