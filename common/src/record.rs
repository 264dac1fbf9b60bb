//! Several messages in one Kafka record.
//!
//! A broker's cost is per record (nisshi, the local broker, writes each record as a
//! PostgreSQL row with its headers; bench/results/README.md has the measured ratio), so seatq packs messages that travel together: hold requests waiting for one commands
//! partition, and the seat events and hold timers one consumer batch produced for one
//! event. A packed record is a JSON array of the messages; a record holding one message is
//! that message alone, so a reader accepts both.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// Pack already encoded JSON messages into one record (a JSON array).
pub fn pack<B: AsRef<[u8]>>(messages: &[B]) -> Vec<u8> {
    let len = messages.iter().map(|m| m.as_ref().len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m.as_ref());
    }
    out.push(b']');
    out
}

/// Is this record a pack (a JSON array) rather than one message?
pub fn is_pack(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The raw messages of a record, in order: the array's elements, or the record itself.
/// Each element can then be decoded on its own, so one bad element spares its neighbours.
pub fn messages(bytes: &[u8]) -> Result<Vec<&[u8]>, serde_json::Error> {
    if !is_pack(bytes) {
        return Ok(vec![bytes]);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(bytes)?;
    Ok(items.into_iter().map(|raw| raw.get().as_bytes()).collect())
}

/// Decode every message of a record as a `T` (all or nothing).
pub fn decode_all<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, serde_json::Error> {
    messages(bytes)?
        .into_iter()
        .map(serde_json::from_slice)
        .collect()
}

/// Split `messages` (in order) into packs of at most `max_bytes` each (a message larger
/// than that travels alone).
pub fn split<B: AsRef<[u8]>>(messages: &[B], max_bytes: usize) -> Vec<&[B]> {
    let mut packs = Vec::new();
    let (mut start, mut bytes) = (0, 2);
    for (i, m) in messages.iter().enumerate() {
        let len = m.as_ref().len() + 1;
        if i > start && bytes + len > max_bytes {
            packs.push(&messages[start..i]);
            (start, bytes) = (i, 2);
        }
        bytes += len;
    }
    if start < messages.len() {
        packs.push(&messages[start..]);
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_round_trips_and_a_lone_message_is_itself() {
        let packed = pack(&[br#"{"a":1}"#.as_slice(), br#"{"a":2}"#.as_slice()]);
        assert_eq!(packed, br#"[{"a":1},{"a":2}]"#);
        let all: Vec<serde_json::Value> = decode_all(&packed).unwrap();
        assert_eq!(
            all,
            vec![serde_json::json!({"a":1}), serde_json::json!({"a":2})]
        );
        let one: Vec<serde_json::Value> = decode_all(br#"{"a":3}"#).unwrap();
        assert_eq!(one, vec![serde_json::json!({"a":3})]);
        assert!(messages(b"[1, 2").is_err());
    }

    #[test]
    fn split_respects_the_size_cap_and_order() {
        let msgs: Vec<Vec<u8>> = (0..10).map(|i| vec![b'0' + i; 10]).collect();
        let packs = split(&msgs, 35);
        assert!(packs.iter().all(|p| pack(p).len() <= 35));
        assert_eq!(packs.concat(), msgs);
        let big = vec![vec![b'x'; 100], vec![b'y'; 1]];
        assert_eq!(
            split(&big, 35).len(),
            2,
            "an oversized message travels alone"
        );
    }
}
