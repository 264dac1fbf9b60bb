//! The flash-sale workload: a 50,000-seat stadium and a seeded list of hold attempts.
//!
//! Every design is measured on exactly the same attempts, so the list is generated once,
//! up front, from a seed (ChaCha8 is portable across platforms and `rand` versions of the
//! same major line, unlike `StdRng`). Generating up front also keeps the random number
//! generator out of the timed loop.
//!
//! The shape is what an on-sale looks like: most people go for the best seats (the
//! central lower sections, front rows first), most ask for one named seat, some for a
//! few adjacent seats, some for "best available in section X".

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One section of the stadium: `rows` x `seats_per_row`, numbered from `first_seat_no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub index: i32,
    pub rows: i32,
    pub seats_per_row: i32,
    pub first_seat_no: i32,
}

impl Section {
    pub fn capacity(&self) -> i32 {
        self.rows * self.seats_per_row
    }

    /// One past the last seat number of the section.
    pub fn end_seat_no(&self) -> i32 {
        self.first_seat_no + self.capacity()
    }

    /// Seat number of (row, seat), both 0-based.
    pub fn seat_no(&self, row: i32, seat: i32) -> i32 {
        self.first_seat_no + row * self.seats_per_row + seat
    }

    /// The section code of the demo stadium (`gateway/src/demo.rs`): lower sections
    /// L101..L120, upper sections U201..U220.
    pub fn code(&self) -> String {
        if self.index < LOWER_SECTIONS {
            format!("L{}", 101 + self.index)
        } else {
            format!("U{}", 201 + self.index - LOWER_SECTIONS)
        }
    }

    /// The readable seat id the API uses, `"{code}-{row}-{seat}"` (1-based), of a seat
    /// of this section.
    pub fn label(&self, seat_no: i32) -> String {
        let offset = seat_no - self.first_seat_no;
        format!(
            "{}-{}-{}",
            self.code(),
            offset / self.seats_per_row + 1,
            offset % self.seats_per_row + 1
        )
    }
}

/// Lower sections: 20 x (25 rows x 60 seats) = 30,000 seats.
const LOWER_SECTIONS: i32 = 20;
const LOWER_ROWS: i32 = 25;
const LOWER_SEATS_PER_ROW: i32 = 60;
/// Upper sections: 20 x (20 rows x 50 seats) = 20,000 seats.
const UPPER_SECTIONS: i32 = 20;
const UPPER_ROWS: i32 = 20;
const UPPER_SEATS_PER_ROW: i32 = 50;
/// The "best" sections: the six central lower sections (9,000 seats).
const HOT_SECTIONS: std::ops::Range<i32> = 7..13;
/// Share of attempts aimed at the hot sections.
const HOT_SHARE: f64 = 0.80;
/// Request mix: explicit single seat, explicit adjacent block, best available.
const SINGLE_SHARE: f64 = 0.80;
const BLOCK_SHARE: f64 = 0.10;

/// One line for the result files.
pub const DESCRIPTION: &str = "50,000 reserved seats: 20 lower sections of 25 rows x 60 seats, \
then 20 upper sections of 20 rows x 50; 80% of attempts aim at the 6 central lower sections \
(front rows more likely), 20% at any section; 80% one named seat, 10% 2-4 adjacent named \
seats in one row, 10% best available 1-4 in a section; users uniform";

/// The reserved-seat layout of the stadium.
#[derive(Debug, Clone)]
pub struct Stadium {
    pub sections: Vec<Section>,
}

impl Stadium {
    pub fn new() -> Self {
        let mut sections = Vec::new();
        let mut next = 0;
        let shapes =
            std::iter::repeat_n((LOWER_ROWS, LOWER_SEATS_PER_ROW), LOWER_SECTIONS as usize).chain(
                std::iter::repeat_n((UPPER_ROWS, UPPER_SEATS_PER_ROW), UPPER_SECTIONS as usize),
            );
        for (index, (rows, seats_per_row)) in shapes.enumerate() {
            let section = Section {
                index: index as i32,
                rows,
                seats_per_row,
                first_seat_no: next,
            };
            next = section.end_seat_no();
            sections.push(section);
        }
        Self { sections }
    }

    /// The section holding `seat_no`.
    pub fn section_of(&self, seat_no: i32) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| (s.first_seat_no..s.end_seat_no()).contains(&seat_no))
    }

    pub fn seat_count(&self) -> i32 {
        self.sections.last().map_or(0, Section::end_seat_no)
    }

    /// (seat_no, section, row) for every seat, in seat order: the rows to seed a table with.
    pub fn seats(&self) -> impl Iterator<Item = (i32, i32, i32)> + '_ {
        self.sections.iter().flat_map(|s| {
            (0..s.rows).flat_map(move |row| {
                (0..s.seats_per_row).map(move |seat| (s.seat_no(row, seat), s.index, row))
            })
        })
    }
}

impl Default for Stadium {
    fn default() -> Self {
        Self::new()
    }
}

/// What one attempt asks for. All requests are all-or-nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// These exact seats (one, or 2-4 adjacent in one row), ascending.
    Seats(Vec<i32>),
    /// Any `quantity` available seats of a section (lowest seat numbers first).
    BestAvailable { section: Section, quantity: i32 },
}

impl Request {
    pub fn quantity(&self) -> usize {
        match self {
            Request::Seats(seats) => seats.len(),
            Request::BestAvailable { quantity, .. } => *quantity as usize,
        }
    }
}

/// One user's hold attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub user: u32,
    pub request: Request,
}

impl Attempt {
    pub fn holder(&self) -> String {
        holder(self.user)
    }
}

/// The holder id every design stores for a user.
pub fn holder(user: u32) -> String {
    format!("u{user}")
}

/// The user of a holder id made by [`holder`].
pub fn user_of(holder: &str) -> Option<u32> {
    holder.strip_prefix('u')?.parse().ok()
}

/// Generate `attempts` attempts from `users` users, deterministically from `seed`.
pub fn generate(stadium: &Stadium, attempts: usize, users: u32, seed: u64) -> Vec<Attempt> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hot: Vec<&Section> = stadium
        .sections
        .iter()
        .filter(|s| HOT_SECTIONS.contains(&s.index))
        .collect();
    let users = users.max(1);
    (0..attempts)
        .map(|_| {
            let section = if rng.gen_bool(HOT_SHARE) {
                *hot[rng.gen_range(0..hot.len())]
            } else {
                stadium.sections[rng.gen_range(0..stadium.sections.len())]
            };
            let user = rng.gen_range(0..users);
            let mix: f64 = rng.gen();
            let request = if mix < SINGLE_SHARE + BLOCK_SHARE {
                let quantity = if mix < SINGLE_SHARE {
                    1
                } else {
                    rng.gen_range(2..=4)
                };
                // Front rows are wanted more: squaring a uniform draw skews towards 0.
                let u: f64 = rng.gen();
                let row = ((u * u) * f64::from(section.rows)) as i32;
                let first = rng.gen_range(0..=section.seats_per_row - quantity);
                Request::Seats(
                    (first..first + quantity)
                        .map(|seat| section.seat_no(row, seat))
                        .collect(),
                )
            } else {
                Request::BestAvailable {
                    section,
                    quantity: rng.gen_range(1..=4),
                }
            };
            Attempt { user, request }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stadium_has_fifty_thousand_consecutive_seats() {
        let stadium = Stadium::new();
        assert_eq!(stadium.sections.len(), 40);
        assert_eq!(stadium.seat_count(), 50_000);
        assert_eq!(stadium.sections[20].first_seat_no, 30_000);
        let numbers: Vec<i32> = stadium.seats().map(|(n, _, _)| n).collect();
        assert_eq!(numbers, (0..50_000).collect::<Vec<_>>());
        assert_eq!(stadium.seats().nth(1_500), Some((1_500, 1, 0)));
        assert_eq!(stadium.seats().nth(30_050), Some((30_050, 20, 1)));
    }

    #[test]
    fn labels_follow_the_demo_stadium() {
        let stadium = Stadium::new();
        let label = |n: i32| stadium.section_of(n).map(|s| s.label(n));
        assert_eq!(label(0).as_deref(), Some("L101-1-1"));
        assert_eq!(label(61).as_deref(), Some("L101-2-2"));
        assert_eq!(label(1_500).as_deref(), Some("L102-1-1"));
        assert_eq!(label(30_000).as_deref(), Some("U201-1-1"));
        assert_eq!(label(49_999).as_deref(), Some("U220-20-50"));
        assert_eq!(label(50_000), None);
    }

    #[test]
    fn same_seed_same_attempts_other_seed_other_attempts() {
        let stadium = Stadium::new();
        let a = generate(&stadium, 2_000, 500, 7);
        assert_eq!(a, generate(&stadium, 2_000, 500, 7));
        assert_ne!(a, generate(&stadium, 2_000, 500, 8));
    }

    #[test]
    fn requests_are_valid_and_the_mix_is_as_designed() {
        let stadium = Stadium::new();
        let attempts = generate(&stadium, 20_000, 5_000, 1);
        let (mut single, mut block, mut best, mut hot) = (0, 0, 0, 0);
        for attempt in &attempts {
            assert!(attempt.user < 5_000);
            let section = match &attempt.request {
                Request::Seats(seats) => {
                    if seats.len() == 1 {
                        single += 1;
                    } else {
                        block += 1;
                    }
                    assert!((1..=4).contains(&seats.len()));
                    assert!(seats.windows(2).all(|w| w[1] == w[0] + 1), "adjacent");
                    let s = *stadium.section_of(seats[0]).expect("seat in a section");
                    let row = |n: i32| (n - s.first_seat_no) / s.seats_per_row;
                    assert_eq!(row(seats[0]), row(*seats.last().expect("non-empty")));
                    s
                }
                Request::BestAvailable { section, quantity } => {
                    best += 1;
                    assert!((1..=4).contains(quantity));
                    *section
                }
            };
            if HOT_SECTIONS.contains(&section.index) {
                hot += 1;
            }
        }
        let share = |n: i32| f64::from(n) / attempts.len() as f64;
        assert!((share(single) - 0.80).abs() < 0.02);
        assert!((share(block) - 0.10).abs() < 0.02);
        assert!((share(best) - 0.10).abs() < 0.02);
        // 80% aimed at hot sections, plus the hot sections' share of the uniform 20%.
        assert!((share(hot) - (0.80 + 0.20 * 6.0 / 40.0)).abs() < 0.02);
    }
}
