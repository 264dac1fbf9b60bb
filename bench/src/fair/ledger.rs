//! Who arrived first and who won: fairness of a run, counted the same way for every
//! design.
//!
//! Each front stamps a request when it is about to be decided (the gateway's `issued_at`,
//! the naive fronts' stamp at the same point of the same handler, both on the machine's
//! wall clock, microseconds; each run checks that clock did not step, `clock`) and the
//! ledger keeps, per request, that stamp, the seats it named and the seats it won. A seat
//! is *contested* when two or more requests named it.
//! A *violation* is a seat won by a request that arrived after another request that named
//! it and was refused although it was entitled to it: every seat that earlier request
//! named was either won by someone who arrived later still, or by nobody. (No seat is
//! released during a run, so first come, first served would have given it that seat.) Its
//! *gap* is how much later the winner arrived than the earliest such request. Requests
//! for the best available seats name none: they can win, not be wronged.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One decided request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The front's stamp, microseconds since the Unix epoch.
    pub arrived_us: i64,
    pub user: u32,
    /// Seats asked for by id (empty for best available).
    pub named: Vec<i32>,
    /// Seats won (empty: refused).
    pub won: Vec<i32>,
}

/// Fairness of one run, or summed over runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    pub contested_seats: u64,
    pub violations: u64,
    /// Largest arrival gap of a violation, ms.
    pub max_gap_ms: f64,
    /// Mean arrival gap of the violations, ms.
    pub mean_gap_ms: f64,
}

impl Fairness {
    /// Add another run's counts (the mean weighted by violations).
    pub fn add(&mut self, other: &Fairness) {
        let n = self.violations + other.violations;
        if n > 0 {
            self.mean_gap_ms = crate::results::round(
                (self.mean_gap_ms * self.violations as f64
                    + other.mean_gap_ms * other.violations as f64)
                    / n as f64,
                3,
            );
        }
        self.contested_seats += other.contested_seats;
        self.violations = n;
        self.max_gap_ms = self.max_gap_ms.max(other.max_gap_ms);
    }
}

/// Fairness of the requests in `entries` (any order).
pub fn fairness(entries: &[Entry]) -> Fairness {
    // The earliest arrival that won each seat (two, if a design oversold it).
    let mut won_at: HashMap<i32, i64> = HashMap::new();
    let mut named: HashMap<i32, u32> = HashMap::new();
    for e in entries {
        for &s in &e.won {
            won_at
                .entry(s)
                .and_modify(|t| *t = (*t).min(e.arrived_us))
                .or_insert(e.arrived_us);
        }
        for &s in &e.named {
            *named.entry(s).or_default() += 1;
        }
    }
    // Per seat, the largest gap between its winner and an entitled earlier refusal.
    let mut gap_us: HashMap<i32, i64> = HashMap::new();
    for e in entries
        .iter()
        .filter(|e| e.won.is_empty() && !e.named.is_empty())
    {
        let entitled = e
            .named
            .iter()
            .all(|s| won_at.get(s).is_none_or(|&t| t > e.arrived_us));
        if !entitled {
            continue;
        }
        for s in &e.named {
            if let Some(&t) = won_at.get(s) {
                let gap = gap_us.entry(*s).or_default();
                *gap = (*gap).max(t - e.arrived_us);
            }
        }
    }
    let violations = gap_us.len() as u64;
    let ms = |us: i64| crate::results::round(us as f64 / 1_000.0, 3);
    Fairness {
        contested_seats: named.values().filter(|&&n| n >= 2).count() as u64,
        violations,
        max_gap_ms: ms(gap_us.values().copied().max().unwrap_or(0)),
        mean_gap_ms: if violations == 0 {
            0.0
        } else {
            ms(gap_us.values().sum::<i64>() / violations as i64)
        },
    }
}

/// Seats won by more than one request.
pub fn oversold(entries: &[Entry]) -> u64 {
    let mut winners: HashMap<i32, u32> = HashMap::new();
    for s in entries.iter().flat_map(|e| &e.won) {
        *winners.entry(*s).or_default() += 1;
    }
    winners.values().filter(|&&n| n > 1).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arrived_us: i64, named: &[i32], won: &[i32]) -> Entry {
        Entry {
            arrived_us,
            user: arrived_us as u32,
            named: named.to_vec(),
            won: won.to_vec(),
        }
    }

    #[test]
    fn the_first_arrival_winning_is_fair() {
        let f = fairness(&[entry(10, &[1], &[1]), entry(20, &[1], &[])]);
        assert_eq!(f.contested_seats, 1);
        assert_eq!(f.violations, 0);
    }

    #[test]
    fn a_later_winner_over_an_entitled_refusal_is_a_violation_with_its_gap() {
        let f = fairness(&[
            entry(1_000, &[1], &[]),
            entry(3_000, &[1], &[]),
            entry(5_500, &[1], &[1]),
        ]);
        assert_eq!(f.violations, 1);
        assert_eq!(f.max_gap_ms, 4.5);
        assert_eq!(f.mean_gap_ms, 4.5);
    }

    #[test]
    fn a_refusal_for_another_seat_taken_earlier_is_no_violation() {
        // Asked for 1 and 2; 2 went to someone earlier, so 1 was never its to have.
        let f = fairness(&[
            entry(5, &[2], &[2]),
            entry(10, &[1, 2], &[]),
            entry(20, &[1], &[1]),
        ]);
        assert_eq!(f.violations, 0);
        assert_eq!(f.contested_seats, 2);
    }

    #[test]
    fn best_available_winners_count_against_earlier_named_refusals() {
        let f = fairness(&[entry(10, &[7], &[]), entry(20, &[], &[7])]);
        assert_eq!(f.violations, 1);
        assert_eq!(f.contested_seats, 0);
    }

    #[test]
    fn seats_won_twice_are_oversold() {
        let e = [
            entry(1, &[1], &[1]),
            entry(2, &[1, 2], &[1, 2]),
            entry(3, &[3], &[3]),
        ];
        assert_eq!(oversold(&e), 1);
    }

    #[test]
    fn sums_add_counts_and_weight_the_mean() {
        let mut a = Fairness {
            contested_seats: 3,
            violations: 1,
            max_gap_ms: 2.0,
            mean_gap_ms: 2.0,
        };
        a.add(&Fairness {
            contested_seats: 2,
            violations: 3,
            max_gap_ms: 5.0,
            mean_gap_ms: 4.0,
        });
        assert_eq!(a.contested_seats, 5);
        assert_eq!(a.violations, 4);
        assert_eq!(a.max_gap_ms, 5.0);
        assert_eq!(a.mean_gap_ms, 3.5);
    }
}
