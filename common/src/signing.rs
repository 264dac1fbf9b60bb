//! Webhook signatures, in the style Stripe uses: `t=<unix seconds>,v1=<hex HMAC-SHA256>`
//! over `"<t>.<body>"`.
//!
//! Signing the timestamp together with the body lets a receiver refuse replays of an old,
//! validly signed delivery; allowing several `v1` entries lets the sender rotate its secret
//! (sign with the old and the new key for a while) without a flag day.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key` over `parts` in order, not yet finalised: the one place
/// seatq keys a MAC (webhooks, ticket codes, proof-of-work challenges, waiting-room
/// lotteries, request ids).
pub fn keyed(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp is outside the tolerance window")]
    Stale,
    #[error("no signature matches the body")]
    Mismatch,
}

impl SignatureError {
    /// Stable machine-readable code for problem+json answers.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    keyed(secret, &[timestamp.to_string().as_bytes(), b".", body])
}

/// The `Payment-Signature` header value for `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Check `header` against `body`; on success, the signed timestamp.
///
/// The timestamp must be within `tolerance_secs` of `now` either way (clocks drift both
/// ways). Any one matching `v1` entry is enough; entries of other schemes are ignored so
/// the sender can add new ones without breaking old receivers.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part
            .split_once('=')
            .ok_or(SignatureError::Malformed("entry without '='"))?;
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                let sig = hex::decode(value.trim())
                    .map_err(|_| SignatureError::Malformed("v1 signature is not hex"))?;
                signatures.push(sig);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no timestamp"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    // Checked before the MAC so a replayed old delivery is told apart from a forgery.
    if now.abs_diff(timestamp) > tolerance_secs.max(0).unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body);
    // `verify_slice` compares in constant time; a clone per candidate keeps it that way.
    if signatures
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;
    const NOW: i64 = 1_700_000_000;

    #[test]
    fn round_trip() {
        let header = signature_header(SECRET, NOW, BODY);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(verify(SECRET, &header, BODY, NOW + 10, 300), Ok(NOW));
        assert_eq!(verify(SECRET, &header, BODY, NOW - 10, 300), Ok(NOW));
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        let header = signature_header(SECRET, NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"payment.failed"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_timestamp_is_a_mismatch() {
        let header =
            signature_header(SECRET, NOW, BODY).replacen(&NOW.to_string(), "1700000001", 1);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let header = signature_header(b"another secret", NOW, BODY);
        let err = verify(SECRET, &header, BODY, NOW, 300).unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
        assert_eq!(err.code(), "signature_mismatch");
    }

    #[test]
    fn stale_either_way() {
        let header = signature_header(SECRET, NOW, BODY);
        let err = verify(SECRET, &header, BODY, NOW + 301, 300).unwrap_err();
        assert_eq!(err, SignatureError::Stale);
        assert_eq!(err.code(), "signature_stale");
        assert_eq!(
            verify(SECRET, &header, BODY, NOW - 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(verify(SECRET, &header, BODY, NOW + 300, 300), Ok(NOW));
    }

    #[test]
    fn malformed_headers() {
        let good = hex::encode([0u8; 32]);
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={good}"),
            format!("t=abc,v1={good}"),
            format!("t={NOW}"),
            format!("t={NOW},v1=not-hex"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW},v0={good}"),
        ] {
            let err = verify(SECRET, &header, BODY, NOW, 300).unwrap_err();
            assert!(
                matches!(err, SignatureError::Malformed(_)),
                "{header:?}: {err:?}"
            );
            assert_eq!(err.code(), "signature_malformed");
        }
    }

    #[test]
    fn spaces_and_unknown_schemes_are_tolerated() {
        let header = signature_header(SECRET, NOW, BODY);
        let (t, v1) = header.split_once(',').expect("two parts");
        let spaced = format!(" {t} , v0=abc, {v1} ,");
        assert_eq!(verify(SECRET, &spaced, BODY, NOW, 300), Ok(NOW));
    }

    #[test]
    fn any_matching_v1_is_enough() {
        let old = signature_header(b"old secret", NOW, BODY);
        let new = signature_header(SECRET, NOW, BODY);
        let old_sig = old.split_once(",v1=").expect("v1").1;
        let new_sig = new.split_once(",v1=").expect("v1").1;
        let header = format!("t={NOW},v1={old_sig},v1={new_sig}");
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(NOW));
        let only_old = format!("t={NOW},v1={old_sig},v1={old_sig}");
        assert_eq!(
            verify(SECRET, &only_old, BODY, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }
}
