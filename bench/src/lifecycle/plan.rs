//! Who does what in the lifecycle scenario, decided up front from a seed.
//!
//! The venue is cut into adjacent pairs of seats, and each pair is one user's two-seat
//! hold. The event allows two seats per user, so every holder is at the per-user limit.
//! A share of the pairs is paid for; the rest are left to expire, and most of their
//! seats get a waitlist of other users first. Some of those waitlists start with the
//! buyer of a paid pair. That user is at the limit when the seat is released and must be
//! passed over, so "the offer went to the first *eligible* waiting user" is tested, not
//! just "the first one".
//!
//! Deciding everything before the run keeps it reproducible, and lets the result be set
//! against what should have happened (seats offered, users passed over).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::workload::{Section, Stadium};

/// Seats per row of the scenario's venue. The number is even, so a pair never spans two
/// rows.
const SEATS_PER_ROW: i32 = 50;
/// Rows per section (a section of the venue holds at most 1,000 seats).
const ROWS_PER_SECTION: i32 = 20;
/// Every holder holds one pair: the event's `max_seats_per_user`.
pub const SEATS_PER_USER: i32 = 2;

/// The scenario's shape (validated by the command line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanConfig {
    /// Seats of the venue (rounded up to whole rows).
    pub seats: i32,
    /// Share of the pairs paid for.
    pub pay_share: f64,
    /// Share of the expiring seats that get a waitlist.
    pub waitlist_share: f64,
    /// Eligible users per waitlist: 1 to this many.
    pub max_waiters: u32,
    /// Share of the waitlists that start with a buyer at the per-user limit.
    pub at_limit_share: f64,
    pub seed: u64,
}

/// A user waiting for a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub user: u32,
    /// A buyer who already holds the per-user maximum: must be passed over.
    pub at_limit: bool,
}

/// What happens to a pair after it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The holder checks out and pays.
    Pay,
    /// The hold is left to expire. Per seat of the pair, the users joining its waitlist,
    /// in the order they join.
    Expire { waitlists: Vec<Vec<Waiter>> },
}

/// One two-seat hold and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub holder: u32,
    pub seats: Vec<i32>,
    pub fate: Fate,
}

/// The whole scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub venue: Stadium,
    pub pairs: Vec<Pair>,
    /// Users `0..users`: holders first (user = pair index), then the waiting users.
    pub users: u32,
}

/// A venue of about `seats` seats: sections of up to 20 rows x 50 seats, numbered like
/// the bench's stadium (so `Section::label` gives the API's seat ids).
pub fn venue(seats: i32) -> Stadium {
    let mut rows_left = (seats.max(SEATS_PER_USER) + SEATS_PER_ROW - 1) / SEATS_PER_ROW;
    let (mut sections, mut first_seat_no, mut index) = (Vec::new(), 0, 0);
    while rows_left > 0 {
        let rows = rows_left.min(ROWS_PER_SECTION);
        sections.push(Section {
            index,
            rows,
            seats_per_row: SEATS_PER_ROW,
            first_seat_no,
        });
        first_seat_no += rows * SEATS_PER_ROW;
        rows_left -= rows;
        index += 1;
    }
    Stadium { sections }
}

impl Plan {
    pub fn generate(config: &PlanConfig) -> Self {
        let venue = venue(config.seats);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let count = venue.seat_count() / SEATS_PER_USER;
        let pays: Vec<bool> = (0..count).map(|_| rng.gen_bool(config.pay_share)).collect();
        // Each buyer waits for at most one seat (well under the waitlist limit per user).
        let mut buyers = (0..count).filter(|&i| pays[i as usize]).map(|i| i as u32);
        let mut next_user = count as u32;
        let pairs = (0..count)
            .map(|i| {
                let seats: Vec<i32> = (i * SEATS_PER_USER..(i + 1) * SEATS_PER_USER).collect();
                let fate = if pays[i as usize] {
                    Fate::Pay
                } else {
                    let waitlists = seats
                        .iter()
                        .map(|_| {
                            let mut list = Vec::new();
                            if !rng.gen_bool(config.waitlist_share) {
                                return list;
                            }
                            if rng.gen_bool(config.at_limit_share) {
                                if let Some(user) = buyers.next() {
                                    list.push(Waiter {
                                        user,
                                        at_limit: true,
                                    });
                                }
                            }
                            for _ in 0..rng.gen_range(1..=config.max_waiters.max(1)) {
                                list.push(Waiter {
                                    user: next_user,
                                    at_limit: false,
                                });
                                next_user += 1;
                            }
                            list
                        })
                        .collect();
                    Fate::Expire { waitlists }
                };
                Pair {
                    holder: i as u32,
                    seats,
                    fate,
                }
            })
            .collect();
        Self {
            venue,
            pairs,
            users: next_user,
        }
    }

    pub fn paid(&self) -> usize {
        self.pairs.iter().filter(|p| p.fate == Fate::Pay).count()
    }

    pub fn expiring(&self) -> usize {
        self.pairs.len() - self.paid()
    }

    fn waitlists(&self) -> impl Iterator<Item = &Vec<Waiter>> {
        self.pairs.iter().flat_map(|p| {
            let lists: &[Vec<Waiter>] = match &p.fate {
                Fate::Pay => &[],
                Fate::Expire { waitlists } => waitlists,
            };
            lists.iter()
        })
    }

    /// Seats with an eligible user waiting: each must be offered when it is released.
    pub fn offered_seats(&self) -> usize {
        self.waitlists()
            .filter(|w| w.iter().any(|x| !x.at_limit))
            .count()
    }

    /// Waiting users at the limit, each passed over once.
    pub fn at_limit(&self) -> usize {
        self.waitlists().flatten().filter(|x| x.at_limit).count()
    }

    pub fn joins(&self) -> usize {
        self.waitlists().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn config(seats: i32, seed: u64) -> PlanConfig {
        PlanConfig {
            seats,
            pay_share: 0.4,
            waitlist_share: 0.8,
            max_waiters: 3,
            at_limit_share: 0.2,
            seed,
        }
    }

    #[test]
    fn venue_rounds_up_to_rows_and_splits_into_sections() {
        let v = venue(3_000);
        assert_eq!(v.seat_count(), 3_000);
        assert_eq!(v.sections.len(), 3);
        assert_eq!(v.sections[2].first_seat_no, 2_000);
        let small = venue(420);
        assert_eq!(small.seat_count(), 450);
        assert_eq!(small.sections.len(), 1);
        assert_eq!(small.sections[0].rows, 9);
        let label = |n: i32| v.section_of(n).map(|s| s.label(n));
        assert_eq!(label(0).as_deref(), Some("L101-1-1"));
        assert_eq!(label(1_049).as_deref(), Some("L102-1-50"));
    }

    #[test]
    fn pairs_cover_the_venue_each_within_one_row() {
        let plan = Plan::generate(&config(1_000, 1));
        assert_eq!(plan.pairs.len(), 500);
        let seats: Vec<i32> = plan.pairs.iter().flat_map(|p| p.seats.clone()).collect();
        assert_eq!(seats, (0..1_000).collect::<Vec<_>>());
        for pair in &plan.pairs {
            let s = plan.venue.section_of(pair.seats[0]).expect("seat in venue");
            let row = |n: i32| (n - s.first_seat_no) / s.seats_per_row;
            assert_eq!(row(pair.seats[0]), row(pair.seats[1]));
        }
    }

    #[test]
    fn same_seed_same_plan() {
        let a = Plan::generate(&config(600, 9));
        assert_eq!(a.pairs, Plan::generate(&config(600, 9)).pairs);
        assert_ne!(a.pairs, Plan::generate(&config(600, 10)).pairs);
    }

    #[test]
    fn waiting_users_are_as_designed() {
        let plan = Plan::generate(&config(3_000, 42));
        let holders = plan.pairs.len() as u32;
        let buyers: HashSet<u32> = plan
            .pairs
            .iter()
            .filter(|p| p.fate == Fate::Pay)
            .map(|p| p.holder)
            .collect();
        let mut at_limit = HashSet::new();
        let mut eligible = HashSet::new();
        for list in plan.waitlists() {
            // At most one user at the limit, first in line, then at least one eligible.
            assert!(list.iter().skip(1).all(|w| !w.at_limit));
            if !list.is_empty() {
                assert!(list.iter().any(|w| !w.at_limit));
            }
            for w in list {
                if w.at_limit {
                    assert!(buyers.contains(&w.user), "at the limit = a buyer");
                    assert!(at_limit.insert(w.user), "a buyer waits once");
                } else {
                    assert!(w.user >= holders && w.user < plan.users);
                    assert!(eligible.insert(w.user), "one seat per waiting user");
                }
            }
        }
        assert_eq!(plan.at_limit(), at_limit.len());
        assert_eq!(plan.joins(), at_limit.len() + eligible.len());
        assert_eq!(plan.users, holders + eligible.len() as u32);
        // Shares, roughly: 40% paid; 80% of the expiring seats waited for; 20% of those
        // start with a buyer at the limit.
        let paid = plan.paid() as f64 / plan.pairs.len() as f64;
        assert!((paid - 0.4).abs() < 0.05, "paid share {paid}");
        let expiring_seats = (plan.expiring() * 2) as f64;
        let waited = plan.offered_seats() as f64 / expiring_seats;
        assert!((waited - 0.8).abs() < 0.05, "waitlisted share {waited}");
        let limited = plan.at_limit() as f64 / plan.offered_seats() as f64;
        assert!((limited - 0.2).abs() < 0.05, "at-limit share {limited}");
    }

    #[test]
    fn no_waitlists_when_nothing_expires() {
        let plan = Plan::generate(&PlanConfig {
            pay_share: 1.0,
            ..config(200, 3)
        });
        assert_eq!(plan.paid(), 100);
        assert_eq!(
            (plan.joins(), plan.offered_seats(), plan.users),
            (0, 0, 100)
        );
    }
}
