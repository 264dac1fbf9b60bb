//! Ticket codes: what a QR code on a ticket carries and what the door scanner checks.
//!
//! A code is `SQ1.` + URL-safe base64 (no padding) of the ticket id (16 bytes), the
//! ticket's version (4 bytes, big endian) and the first 16 bytes of an HMAC-SHA256 of those
//! 20 bytes. The MAC makes codes impossible to guess or forge without the secret, so the
//! scanner can reject junk before touching the database; the version lets a reissued
//! ticket (e.g. after a transfer) invalidate the code printed on the old one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use uuid::Uuid;

use crate::signing::HmacSha256;

const PREFIX: &str = "SQ1.";
const PAYLOAD_LEN: usize = 16 + 4;
/// 128 bits of MAC: unforgeable in practice while keeping the QR code small.
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketCodeError {
    #[error("not a seatq ticket code")]
    Malformed,
    #[error("ticket code signature is not valid")]
    BadSignature,
}

impl TicketCodeError {
    /// Stable machine-readable code for problem+json answers.
    pub fn code(&self) -> &'static str {
        match self {
            TicketCodeError::Malformed => "ticket_code_malformed",
            TicketCodeError::BadSignature => "ticket_code_invalid",
        }
    }
}

fn mac(secret: &[u8], payload: &[u8]) -> HmacSha256 {
    crate::signing::keyed(secret, &[payload])
}

/// The code for version `version` of ticket `ticket_id`.
pub fn encode(secret: &[u8], ticket_id: Uuid, version: i32) -> String {
    let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
    bytes.extend_from_slice(ticket_id.as_bytes());
    bytes.extend_from_slice(&version.to_be_bytes());
    let tag = mac(secret, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The ticket id and version a code names, if it was signed with `secret`.
pub fn decode(secret: &[u8], code: &str) -> Result<(Uuid, i32), TicketCodeError> {
    let encoded = code
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(TicketCodeError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TicketCodeError::Malformed)?;
    if bytes.len() != PAYLOAD_LEN + TAG_LEN {
        return Err(TicketCodeError::Malformed);
    }
    let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
    // Constant time, so response timing tells an attacker nothing about the tag.
    mac(secret, payload)
        .verify_truncated_left(tag)
        .map_err(|_| TicketCodeError::BadSignature)?;
    let (id, version) = payload.split_at(16);
    let id = Uuid::from_slice(id).map_err(|_| TicketCodeError::Malformed)?;
    let version: [u8; 4] = version.try_into().map_err(|_| TicketCodeError::Malformed)?;
    Ok((id, i32::from_be_bytes(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"ticket secret";

    #[test]
    fn round_trip() {
        let id = Uuid::new_v4();
        for version in [0, 1, 7, i32::MAX] {
            let code = encode(SECRET, id, version);
            assert!(code.starts_with("SQ1."));
            assert!(code[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(decode(SECRET, &code), Ok((id, version)));
        }
    }

    #[test]
    fn versions_and_tickets_get_different_codes() {
        let id = Uuid::new_v4();
        assert_ne!(encode(SECRET, id, 1), encode(SECRET, id, 2));
        assert_ne!(encode(SECRET, id, 1), encode(SECRET, Uuid::new_v4(), 1));
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        let code = encode(SECRET, Uuid::new_v4(), 3);
        let mut bytes = URL_SAFE_NO_PAD.decode(&code[4..]).expect("base64");
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let forged = format!("SQ1.{}", URL_SAFE_NO_PAD.encode(&bytes));
            let err = decode(SECRET, &forged).unwrap_err();
            assert_eq!(err, TicketCodeError::BadSignature, "byte {i}");
            assert_eq!(err.code(), "ticket_code_invalid");
            bytes[i] ^= 0x01;
        }
    }

    #[test]
    fn another_secret_is_refused() {
        let code = encode(b"someone else's secret", Uuid::new_v4(), 1);
        assert_eq!(decode(SECRET, &code), Err(TicketCodeError::BadSignature));
    }

    #[test]
    fn malformed_codes() {
        let good = encode(SECRET, Uuid::new_v4(), 1);
        for code in [
            "".to_owned(),
            "SQ1.".to_owned(),
            good.replacen("SQ1.", "SQ2.", 1),
            good[4..].to_owned(),
            format!("{good}AA"),
            good[..good.len() - 2].to_owned(),
            format!("{good}="),
            "SQ1.!!!!".to_owned(),
        ] {
            let err = decode(SECRET, &code).unwrap_err();
            assert_eq!(err, TicketCodeError::Malformed, "{code:?}");
            assert_eq!(err.code(), "ticket_code_malformed");
        }
    }
}
