//! Turning when each stream received what into latencies.
//!
//! A `seat_status_changed` message with id `N` carries every seat change of the commands
//! before offset `N` that the client did not have yet (messages are merged per
//! `coalesce_ms` and sent in order), so once a client has received a message with id `N`
//! its map reflects every command at an offset below `N`. That gives each change one
//! precise moment per client: the receipt of the first message with id `> offset`.
//! A [`Mark`] is such a change (or a published delta, whose `next_offset` is the id that
//! covers it) with the moment it started from; [`attribute`] walks one client's receipts
//! and records, for every mark, receipt − start.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::results::round;

/// Something a client has once it received a message with id `>= covered_by`, which
/// started at `at_us` (microseconds since the Unix epoch); `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub covered_by: i64,
    pub at_us: i64,
    pub count: u64,
}

/// `(covered_by, at_us)` pairs as sorted marks, equal pairs counted together.
pub fn marks(mut items: Vec<(i64, i64)>) -> Vec<Mark> {
    items.sort_unstable();
    let mut out: Vec<Mark> = Vec::new();
    for (covered_by, at_us) in items {
        match out.last_mut() {
            Some(m) if m.covered_by == covered_by && m.at_us == at_us => m.count += 1,
            _ => out.push(Mark {
                covered_by,
                at_us,
                count: 1,
            }),
        }
    }
    out
}

/// What [`attribute`] could not record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unattributed {
    /// Marks (counted) the client never received a covering message for.
    pub missed: u64,
    /// Marks received before they started (clocks disagree): recorded as 0.
    pub negative: u64,
}

/// For one client that started at cursor `start` (its map already had everything below
/// it) and received messages `(id, at_us)` in order: record `receipt − mark.at_us` of
/// every mark past `start` into `hist` (microseconds).
pub fn attribute(
    marks: &[Mark],
    start: i64,
    receipts: impl IntoIterator<Item = (i64, i64)>,
    hist: &mut Histogram<u64>,
) -> Unattributed {
    let mut out = Unattributed::default();
    let first = marks.partition_point(|m| m.covered_by <= start);
    let mut next = first;
    let mut have = start;
    for (id, at_us) in receipts {
        have = have.max(id);
        while next < marks.len() && marks[next].covered_by <= have {
            let m = marks[next];
            let latency = at_us - m.at_us;
            if latency < 0 {
                out.negative += m.count;
            }
            hist.saturating_record_n(latency.max(0) as u64, m.count);
            next += 1;
        }
        if next == marks.len() {
            break;
        }
    }
    out.missed = marks[next..].iter().map(|m| m.count).sum();
    out
}

/// A histogram as `(value, count)` pairs, to send between processes.
pub fn to_pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Add `(value, count)` pairs to `h`.
pub fn add_pairs(h: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        h.saturating_record_n(value, count);
    }
}

/// Count, median, p90, p99 and worst of a latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| round(us as f64 / 1_000.0, 3);
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::new_histogram;

    #[test]
    fn equal_marks_are_counted_together_in_order() {
        let m = marks(vec![(5, 100), (3, 50), (5, 100), (5, 90)]);
        assert_eq!(
            m,
            [
                Mark {
                    covered_by: 3,
                    at_us: 50,
                    count: 1
                },
                Mark {
                    covered_by: 5,
                    at_us: 90,
                    count: 1
                },
                Mark {
                    covered_by: 5,
                    at_us: 100,
                    count: 2
                },
            ]
        );
    }

    #[test]
    fn each_mark_is_timed_by_the_first_message_covering_it() {
        // Commands at offsets 10, 11 (two), 14 => covered by ids 11, 12, 15.
        let m = marks(vec![(11, 1_000), (12, 1_500), (12, 1_500), (15, 2_000)]);
        let mut h = new_histogram();
        // Message 12 at 3,000 covers the first three; 20 at 4,000 the last.
        let u = attribute(&m, 10, [(12, 3_000), (20, 4_000)], &mut h);
        assert_eq!(u, Unattributed::default());
        assert_eq!(h.len(), 4);
        // 3,000 − 1,000 and 4,000 − 2,000; 3,000 − 1,500 twice.
        assert_eq!(h.count_at(2_000), 2);
        assert_eq!(h.count_at(1_500), 2);
        // A client that started at 12 had the first three in its map.
        let mut h = new_histogram();
        let u = attribute(&m, 12, [(20, 4_000)], &mut h);
        assert_eq!((h.len(), u.missed), (1, 0));
        // One that stopped at 12 never got the last one.
        let mut h = new_histogram();
        let u = attribute(&m, 10, [(12, 3_000)], &mut h);
        assert_eq!((h.len(), u.missed), (3, 1));
        // A repeated, older id (a resumed stream's catch-up) changes nothing.
        let mut h = new_histogram();
        let u = attribute(&m, 10, [(12, 3_000), (11, 3_500), (15, 3_600)], &mut h);
        assert_eq!((h.len(), u.missed), (4, 0));
        assert_eq!(h.count_at(1_600), 1, "the last one, by message 15");
    }

    #[test]
    fn a_receipt_before_its_start_counts_as_zero_and_is_reported() {
        let m = marks(vec![(2, 5_000)]);
        let mut h = new_histogram();
        let u = attribute(&m, 0, [(2, 4_000)], &mut h);
        assert_eq!(u.negative, 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn percentiles_survive_the_trip_between_processes() {
        let mut a = new_histogram();
        for v in 1..=1_000u64 {
            a.record(v * 1_000).expect("in range");
        }
        let mut b = new_histogram();
        add_pairs(&mut b, &to_pairs(&a));
        assert_eq!(Percentiles::of(&a), Percentiles::of(&b));
        let p = Percentiles::of(&b);
        assert_eq!(p.count, 1_000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }
}
