//! Where a message sits in `seatq.seat-events`, and the resume cursors built from it.
//!
//! Stream ids must mean the same thing on every notifier instance, so a browser can
//! reconnect to any of them: they are made of Kafka positions, never of anything local.
//!
//! - An event stream's id is the **commands-topic offset** its seats reflect
//!   (`next_offset` of the last delta sent). The seat map carries the same number
//!   (`position.next_offset`), so `?since=` from a snapshot and `Last-Event-ID` from a
//!   dropped stream are the same kind of cursor.
//! - A user stream's id is a **cut**: for every seat-events partition, the position up
//!   to which everything for this user has been sent. One user's messages come from many
//!   events and so many partitions; a single position could not say what was missed.

use std::collections::BTreeMap;
use std::fmt;

/// A message's place: the record's offset and its index among the messages packed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub offset: i64,
    pub index: u32,
}

impl Pos {
    pub const fn new(offset: i64, index: u32) -> Self {
        Self { offset, index }
    }
}

/// Per partition, the last position covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut(pub BTreeMap<i32, Pos>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stream cursor")]
pub struct BadCursor;

impl Cut {
    /// Whether `pos` of `partition` is covered (already sent) by this cut.
    pub fn covers(&self, partition: i32, pos: Pos) -> bool {
        self.0.get(&partition).is_some_and(|c| pos <= *c)
    }

    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        let mut cut = BTreeMap::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let mut next = || -> Result<&str, BadCursor> { fields.next().ok_or(BadCursor) };
            let partition: i32 = next()?.parse().map_err(|_| BadCursor)?;
            let offset: i64 = next()?.parse().map_err(|_| BadCursor)?;
            let index: u32 = next()?.parse().map_err(|_| BadCursor)?;
            if fields.next().is_some() || partition < 0 || offset < -1 {
                return Err(BadCursor);
            }
            if cut.insert(partition, Pos::new(offset, index)).is_some() {
                return Err(BadCursor);
            }
        }
        if cut.is_empty() || cut.len() > 4096 {
            return Err(BadCursor);
        }
        Ok(Self(cut))
    }
}

impl fmt::Display for Cut {
    /// `partition:offset:index` per partition, comma separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (p, pos)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}:{}:{}", pos.offset, pos.index)?;
        }
        Ok(())
    }
}

/// An event stream cursor: the commands offset a client's seats reflect.
pub fn parse_offset(text: &str) -> Result<i64, BadCursor> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or(BadCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_round_trip_and_cover() {
        let cut = Cut(BTreeMap::from([(0, Pos::new(12, 3)), (5, Pos::new(-1, 0))]));
        let text = cut.to_string();
        assert_eq!(text, "0:12:3,5:-1:0");
        assert_eq!(Cut::parse(&text), Ok(cut.clone()));
        assert!(cut.covers(0, Pos::new(12, 3)));
        assert!(cut.covers(0, Pos::new(11, 9)));
        assert!(!cut.covers(0, Pos::new(12, 4)));
        assert!(
            !cut.covers(1, Pos::new(0, 0)),
            "an unknown partition is not covered"
        );
    }

    #[test]
    fn garbage_cursors_are_refused() {
        for text in [
            "",
            "x",
            "0:1",
            "0:1:2:3",
            "0:1:2,0:3:4",
            "-1:0:0",
            "0:-5:0",
            "0:a:0",
        ] {
            assert_eq!(Cut::parse(text), Err(BadCursor), "{text:?}");
        }
        assert_eq!(parse_offset("42"), Ok(42));
        assert_eq!(parse_offset("-1"), Err(BadCursor));
        assert_eq!(parse_offset("4x"), Err(BadCursor));
    }
}
