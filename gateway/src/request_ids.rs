//! Self-authenticating hold request ids.
//!
//! Between the broker's acknowledgement and the consumer's decision a request is known to
//! the gateway only by its Redis entry (`request_registry`). Redis can lose it (flushed,
//! failed over, or the write after producing failed), and without it the status route
//! could not tell an accepted request from one it never saw, so it answered 404 to a
//! request it had accepted. Instead, the id itself carries the proof: the gateway mints it
//! as a UUIDv7 whose last [`MAC_BITS`] random bits are a MAC, keyed with a key derived from
//! the login secret, over the user it is issued to and the rest of the id. When neither
//! PostgreSQL nor Redis knows an id, a MAC that verifies for the caller proves the gateway
//! issued this id to this caller, so the request is `pending` (its queue position is
//! unknown); for anybody else the id stays as unknown as a made-up one (404).
//!
//! The layout: 48 bits of Unix milliseconds, version 7, 12 random bits (`rand_a`), the
//! variant, then 62 bits of which the first 44 are random and the last 18 are the MAC:
//! 56 random bits, so ids stay unique at tens of thousands per millisecond, and still
//! sort by time. 18 bits make a forged id pass for a given user once in 262,144 tries, and
//! all it would get is `pending` for a request that does not exist, on the forger's own
//! account. Rotating the login secret makes the older ids unverifiable: those already
//! decided are still answered from PostgreSQL.

use hmac::Mac;
use seatq_common::ids::{RequestId, UserId};
use seatq_common::signing::keyed;
use uuid::Uuid;

/// Bits of the id that are the MAC (the low bits of its last three bytes).
pub const MAC_BITS: u32 = 18;

const MAC_MASK: u32 = (1 << MAC_BITS) - 1;

/// Mints and checks hold request ids (see the module docs).
#[derive(Clone)]
pub struct RequestIdKeys {
    key: [u8; 32],
}

impl RequestIdKeys {
    /// Keys derived from `secret` (the login secret), for this purpose only.
    pub fn new(secret: &str) -> Self {
        let derive = keyed(secret.as_bytes(), &[b"seatq request ids v1"]);
        Self {
            key: derive.finalize().into_bytes().into(),
        }
    }

    /// A fresh request id for `user`: time-ordered, random, with the MAC.
    pub fn mint(&self, user: &UserId) -> RequestId {
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        // 122 random bits from the system's generator; 56 of them are kept.
        let random = *Uuid::new_v4().as_bytes();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&now.to_be_bytes()[2..]);
        bytes[6..].copy_from_slice(&random[6..]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        let mac = self.mac(user, &bytes);
        set_mac(&mut bytes, mac);
        RequestId(Uuid::from_bytes(bytes))
    }

    /// Whether the gateway minted `id` for `user`.
    pub fn issued_to(&self, id: RequestId, user: &UserId) -> bool {
        let bytes = *id.0.as_bytes();
        if id.0.get_version_num() != 7 || bytes[8] & 0xc0 != 0x80 {
            return false;
        }
        let carried = get_mac(&bytes);
        // Not constant time: the MAC is 18 bits, found faster by trying than by timing.
        carried == self.mac(user, &bytes)
    }

    /// The MAC of `id` (its MAC bits ignored) issued to `user`.
    fn mac(&self, user: &UserId, id: &[u8; 16]) -> u32 {
        let mut unsigned = *id;
        set_mac(&mut unsigned, 0);
        // The user's length first, so (user, id) pairs cannot run into each other.
        let len = (user.0.len() as u64).to_be_bytes();
        let out = keyed(&self.key, &[&len, user.0.as_bytes(), &unsigned])
            .finalize()
            .into_bytes();
        u32::from_be_bytes([0, out[0], out[1], out[2]]) & MAC_MASK
    }
}

fn set_mac(bytes: &mut [u8; 16], mac: u32) {
    let low = u32::from_be_bytes([0, bytes[13], bytes[14], bytes[15]]) & !MAC_MASK;
    let [_, a, b, c] = (low | (mac & MAC_MASK)).to_be_bytes();
    bytes[13] = a;
    bytes[14] = b;
    bytes[15] = c;
}

fn get_mac(bytes: &[u8; 16]) -> u32 {
    u32::from_be_bytes([0, bytes[13], bytes[14], bytes[15]]) & MAC_MASK
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn user(name: &str) -> UserId {
        UserId(name.into())
    }

    #[test]
    fn minted_ids_verify_for_their_user_only() {
        let keys = RequestIdKeys::new("a login secret of thirty-two bytes!");
        let alice = user("alice");
        for _ in 0..1000 {
            let id = keys.mint(&alice);
            assert_eq!(id.0.get_version_num(), 7);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
            assert!(keys.issued_to(id, &alice), "{id}");
            assert!(!keys.issued_to(id, &user("bob")), "{id}");
            assert!(!keys.issued_to(id, &user("alicE")), "{id}");
        }
        // Another secret, another key.
        let id = keys.mint(&alice);
        assert!(!RequestIdKeys::new("another secret").issued_to(id, &alice));
    }

    #[test]
    fn made_up_and_altered_ids_do_not_verify() {
        let keys = RequestIdKeys::new("secret");
        let alice = user("alice");
        let forged = (0..10_000)
            .filter(|_| keys.issued_to(RequestId(Uuid::now_v7()), &alice))
            .count();
        // 10,000 tries at 2^-18 each: expect none (0.04 on average).
        assert!(forged <= 2, "{forged} random v7 ids verified");
        let id = keys.mint(&alice);
        // Any bit flipped outside the version and variant breaks it.
        for bit in 0..128 {
            if (48..52).contains(&bit) || (64..66).contains(&bit) {
                continue;
            }
            let mut bytes = *id.0.as_bytes();
            bytes[bit / 8] ^= 0x80 >> (bit % 8);
            assert!(
                !keys.issued_to(RequestId(Uuid::from_bytes(bytes)), &alice),
                "bit {bit}"
            );
        }
        assert!(!keys.issued_to(RequestId(Uuid::new_v4()), &alice));
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let keys = RequestIdKeys::new("secret");
        let alice = user("alice");
        let ids: Vec<RequestId> = (0..100_000).map(|_| keys.mint(&alice)).collect();
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let millis = |id: &RequestId| {
            let b = id.0.as_bytes();
            u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
        };
        assert!(ids.windows(2).all(|w| millis(&w[0]) <= millis(&w[1])));
        let now = chrono::Utc::now().timestamp_millis() as u64;
        assert!(now - millis(&ids[0]) < 60_000);
    }
}
