//! Proof of work for joining a waiting room: a little friction for bots, none for people.
//!
//! The server hands out a challenge: base64url of (event id, expiry, 16 random bytes) and
//! an HMAC of those bytes, so it needs no state to check one later. The client finds a
//! `nonce` such that SHA-256(`challenge` ":" `nonce`) starts with `difficulty` zero bits —
//! about 2^difficulty hashes, ~1 s in a browser at 18–20 bits, while checking it costs
//! the server one hash and one HMAC. A challenge is single use (the caller records its
//! random part, e.g. in Redis, until it expires) and bound to one event.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::signing::HmacSha256;

const BODY_LEN: usize = 16 + 8 + 16;
const TAG_LEN: usize = 16;
/// The hardest a challenge may be (2^32 hashes is minutes, not seconds).
pub const MAX_DIFFICULTY: u32 = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    #[error("not a challenge this server issued")]
    Malformed,
    #[error("the challenge was not issued by this server")]
    BadSignature,
    #[error("the challenge is for another event")]
    WrongEvent,
    #[error("the challenge has expired")]
    Expired,
    #[error("the nonce does not solve the challenge")]
    Unsolved,
}

impl PowError {
    pub fn code(&self) -> &'static str {
        match self {
            PowError::Malformed | PowError::BadSignature => "challenge_invalid",
            PowError::WrongEvent => "challenge_wrong_event",
            PowError::Expired => "challenge_expired",
            PowError::Unsolved => "challenge_unsolved",
        }
    }
}

/// A checked challenge: what the caller must remember to refuse a second use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    /// The challenge's random part, hex: the single-use key.
    pub id: String,
    pub expires_at: i64,
}

fn tag(secret: &[u8], body: &[u8]) -> HmacSha256 {
    crate::signing::keyed(secret, &[body])
}

/// A new challenge for `event_id`, valid until `expires_at` (unix seconds).
pub fn issue(secret: &[u8], event_id: Uuid, expires_at: i64) -> String {
    let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
    bytes.extend_from_slice(event_id.as_bytes());
    bytes.extend_from_slice(&expires_at.to_be_bytes());
    bytes.extend_from_slice(Uuid::new_v4().as_bytes());
    let mac = tag(secret, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&mac[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Leading zero bits of SHA-256(`challenge` ":" `nonce`).
pub fn work(challenge: &str, nonce: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut bits = 0;
    for byte in digest {
        if byte == 0 {
            bits += 8;
            continue;
        }
        bits += byte.leading_zeros();
        break;
    }
    bits
}

/// Check a solution for `event_id` at time `now` (unix seconds).
pub fn verify(
    secret: &[u8],
    challenge: &str,
    nonce: &str,
    event_id: Uuid,
    difficulty: u32,
    now: i64,
) -> Result<Solved, PowError> {
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(PowError::Unsolved);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge.trim())
        .map_err(|_| PowError::Malformed)?;
    if bytes.len() != BODY_LEN + TAG_LEN {
        return Err(PowError::Malformed);
    }
    let (body, mac) = bytes.split_at(BODY_LEN);
    tag(secret, body)
        .verify_truncated_left(mac)
        .map_err(|_| PowError::BadSignature)?;
    if body[..16] != *event_id.as_bytes() {
        return Err(PowError::WrongEvent);
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&body[16..24]);
    let expires_at = i64::from_be_bytes(expiry);
    if now > expires_at {
        return Err(PowError::Expired);
    }
    if work(challenge.trim(), nonce) < difficulty.min(MAX_DIFFICULTY) {
        return Err(PowError::Unsolved);
    }
    Ok(Solved {
        id: hex::encode(&body[24..]),
        expires_at,
    })
}

/// Find a nonce (what the browser does, here for tests and the bench).
pub fn solve(challenge: &str, difficulty: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| work(challenge, nonce) >= difficulty)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"pow secret";

    #[test]
    fn a_solved_challenge_verifies_once_per_id() {
        let event = Uuid::new_v4();
        let challenge = issue(SECRET, event, 2_000);
        let nonce = solve(&challenge, 12);
        assert!(work(&challenge, &nonce) >= 12);
        let solved = verify(SECRET, &challenge, &nonce, event, 12, 1_000).expect("solved");
        assert_eq!(solved.expires_at, 2_000);
        assert_eq!(solved.id.len(), 32);
        // Another challenge has another id.
        let other = issue(SECRET, event, 2_000);
        let other_nonce = solve(&other, 4);
        let again = verify(SECRET, &other, &other_nonce, event, 4, 1_000).expect("solved");
        assert_ne!(solved.id, again.id);
    }

    #[test]
    fn wrong_event_expired_forged_and_unsolved_are_refused() {
        let event = Uuid::new_v4();
        let challenge = issue(SECRET, event, 2_000);
        let nonce = solve(&challenge, 8);
        assert_eq!(
            verify(SECRET, &challenge, &nonce, Uuid::new_v4(), 8, 1_000),
            Err(PowError::WrongEvent)
        );
        assert_eq!(
            verify(SECRET, &challenge, &nonce, event, 8, 2_001),
            Err(PowError::Expired)
        );
        assert_eq!(
            verify(b"other", &challenge, &nonce, event, 8, 1_000),
            Err(PowError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, "junk", &nonce, event, 8, 1_000),
            Err(PowError::Malformed)
        );
        // A nonce good for 8 bits is very unlikely to be good for 30.
        assert_eq!(
            verify(SECRET, &challenge, &nonce, event, 30, 1_000),
            Err(PowError::Unsolved)
        );
        assert_eq!(
            verify(SECRET, &challenge, "", event, 0, 1_000),
            Err(PowError::Unsolved)
        );
    }

    #[test]
    fn work_counts_leading_zero_bits() {
        // SHA-256("abc:0") etc. are fixed: check the counter against a slow bit-by-bit count.
        for nonce in ["0", "1", "2", "3", "42"] {
            let digest = Sha256::digest(format!("abc:{nonce}").as_bytes());
            let bits: String = digest.iter().map(|b| format!("{b:08b}")).collect();
            let zeros = bits.chars().take_while(|c| *c == '0').count() as u32;
            assert_eq!(work("abc", nonce), zeros);
        }
    }
}
