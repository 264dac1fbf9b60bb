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

    /// A cut as `Display` writes it: `partition:offset:index` entries, comma separated,
    /// digits only (an offset may be `-1`), at most [`MAX_CUT_ENTRIES`]: exactly what the
    /// pattern of `Last-Event-ID` in the API document says (`sse`). A partition named twice counts
    /// from the earlier of its positions: never a message lost, at worst one sent again.
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        let mut cut: BTreeMap<i32, Pos> = BTreeMap::new();
        let mut entries = 0;
        for part in text.split(',') {
            entries += 1;
            if entries > MAX_CUT_ENTRIES {
                return Err(BadCursor);
            }
            let mut fields = part.split(':');
            let mut next = || fields.next().ok_or(BadCursor);
            let partition: i32 = digits(next()?, 9)?;
            let offset: i64 = match next()? {
                "-1" => -1,
                offset => digits(offset, 18)?,
            };
            // Up to 10 digits: `u32::MAX` means "all of that record"; more is the same.
            let index = u32::try_from(digits::<u64>(next()?, 10)?).unwrap_or(u32::MAX);
            if fields.next().is_some() {
                return Err(BadCursor);
            }
            let pos = Pos::new(offset, index);
            cut.entry(partition)
                .and_modify(|p| *p = (*p).min(pos))
                .or_insert(pos);
        }
        Ok(Self(cut))
    }
}

/// Most partitions a cut may name (a cursor of that many fits in a request head).
pub const MAX_CUT_ENTRIES: usize = 1024;

/// The largest event-stream cursor (`since`, `Last-Event-ID`): 15 digits, which commands
/// offsets never reach, and a number a JSON document states exactly (below 2^53).
pub const MAX_OFFSET: i64 = 999_999_999_999_999;

/// 1 to `max` ASCII digits, as a number (`max` keeps it within the type).
fn digits<T: std::str::FromStr>(text: &str, max: usize) -> Result<T, BadCursor> {
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadCursor);
    }
    text.parse().map_err(|_| BadCursor)
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

/// An event stream cursor: the commands offset a client's seats reflect (1 to 15 digits,
/// at most [`MAX_OFFSET`]).
pub fn parse_offset(text: &str) -> Result<i64, BadCursor> {
    digits(text, 15)
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
            "-1:0:0",
            "0:-5:0",
            "0:-0:0",
            "0:a:0",
            "+1:0:0",
            "0:1:2,",
            ",0:1:2",
            "0:1:2,,3:4:5",
            " 0:1:2",
            "1234567890:0:0",
        ] {
            assert_eq!(Cut::parse(text), Err(BadCursor), "{text:?}");
        }
        let many = vec!["0:0:0"; MAX_CUT_ENTRIES + 1].join(",");
        assert_eq!(Cut::parse(&many), Err(BadCursor));
        assert!(
            Cut::parse(&many[6..]).is_ok(),
            "{MAX_CUT_ENTRIES} entries are fine"
        );
        assert_eq!(parse_offset("42"), Ok(42));
        assert_eq!(parse_offset("999999999999999"), Ok(MAX_OFFSET));
        for text in ["", "-1", "4x", "+4", " 4", "1234567890123456"] {
            assert_eq!(parse_offset(text), Err(BadCursor), "{text:?}");
        }
    }

    #[test]
    fn an_index_past_a_record_means_all_of_it() {
        let all = Pos::new(7, u32::MAX);
        let cut = Cut(BTreeMap::from([(0, all)]));
        assert_eq!(Cut::parse(&cut.to_string()), Ok(cut.clone()));
        assert_eq!(Cut::parse("0:7:9999999999"), Ok(cut));
    }

    #[test]
    fn a_partition_named_twice_counts_from_its_earlier_position() {
        let cut = Cut::parse("0:3:4,0:1:2,1:-1:0").expect("cut");
        assert_eq!(
            cut,
            Cut(BTreeMap::from([(0, Pos::new(1, 2)), (1, Pos::new(-1, 0))]))
        );
    }
}
