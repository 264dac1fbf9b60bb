//! Seating rules: seat attributes, price categories, and the "no stranded single seat" rule.
//!
//! Organisers describe a venue's seats by ranges (rows × seats of a reserved section)
//! rather than one by one: "row 20, seats 1–4: wheelchair spaces", "rows 1–3: Premium".
//! The ranges are the API's compact form (a 50,000-seat stadium needs a few dozen); every
//! service expands them once per venue into one attribute byte and one category index per
//! seat (see `layout::VenueLayout::with_seating`).
//!
//! The stranding rule lives here, not in the consumer, because the consumer (named seats,
//! best available) and the property tests all need exactly the same definition:
//! - a **block** is a run of seats of one row with no aisle between them; an aisle lies
//!   between two neighbouring seats that are both marked `aisle`;
//! - a free seat is **alone** when neither of its block neighbours is free (row ends and
//!   aisles count as taken);
//! - a hold **strands** a seat when it leaves a seat alone that was not alone before.
//!   Seats already alone (a released seat, a one-seat block) are not the buyer's doing.
//!
//! Accessible and companion seats are never counted as stranded: they are sold in their
//! own groups, and a lone wheelchair space is the normal case, not a gap.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::layout::VenueLayout;

/// What an organiser can say about a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatAttribute {
    /// A wheelchair space.
    Accessible,
    /// A seat for someone accompanying a wheelchair user.
    Companion,
    RestrictedView,
    /// Next to an aisle; two neighbouring aisle seats have the aisle between them.
    Aisle,
}

impl SeatAttribute {
    pub const ALL: [SeatAttribute; 4] = [
        SeatAttribute::Accessible,
        SeatAttribute::Companion,
        SeatAttribute::RestrictedView,
        SeatAttribute::Aisle,
    ];

    pub fn as_db(self) -> &'static str {
        match self {
            SeatAttribute::Accessible => "accessible",
            SeatAttribute::Companion => "companion",
            SeatAttribute::RestrictedView => "restricted_view",
            SeatAttribute::Aisle => "aisle",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_db() == s)
    }

    /// What the seat map's legend says.
    pub fn label(self) -> &'static str {
        match self {
            SeatAttribute::Accessible => "Wheelchair space",
            SeatAttribute::Companion => "Companion seat",
            SeatAttribute::RestrictedView => "Restricted view",
            SeatAttribute::Aisle => "Aisle seat",
        }
    }

    fn bit(self) -> u8 {
        match self {
            SeatAttribute::Accessible => 1,
            SeatAttribute::Companion => 2,
            SeatAttribute::RestrictedView => 4,
            SeatAttribute::Aisle => 8,
        }
    }
}

/// A seat's attributes as one byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeatAttributes(u8);

impl SeatAttributes {
    pub fn has(self, attribute: SeatAttribute) -> bool {
        self.0 & attribute.bit() != 0
    }

    pub fn with(self, attribute: SeatAttribute) -> Self {
        Self(self.0 | attribute.bit())
    }

    /// Accessible and companion seats are kept for buyers who need an accessible space
    /// until the event's `accessible_release_at`.
    pub fn kept_for_access(self) -> bool {
        self.has(SeatAttribute::Accessible) || self.has(SeatAttribute::Companion)
    }
}

/// Rows × seats of one reserved section (1-based, inclusive), with attributes and/or a
/// price category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatRange {
    /// `[from, to]`, 1-based, inclusive.
    pub rows: [i32; 2],
    /// `[from, to]`, 1-based, inclusive.
    pub seats: [i32; 2],
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 4)]
    pub attributes: Vec<SeatAttribute>,
    /// Code of one of the venue's price categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_]{1,16}$")]
    pub price_category: Option<String>,
}

impl SeatRange {
    pub fn covers(&self, row: i32, seat: i32) -> bool {
        (self.rows[0]..=self.rows[1]).contains(&row)
            && (self.seats[0]..=self.seats[1]).contains(&seat)
    }
}

/// A price that seat ranges can name instead of their section's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceCategory {
    /// 1 to 16 letters, digits or `_`, distinct within the venue.
    #[schema(pattern = "^[A-Za-z0-9_]{1,16}$")]
    pub code: String,
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,100}$")]
    pub name: String,
    #[schema(minimum = 0, maximum = 100000000)]
    pub price_cents: i64,
}

/// The seats `taking` would leave alone that were not alone before, sorted. `free` says
/// which seats are free before the hold; only seats next to `taking` can change.
pub fn stranded_by(
    layout: &VenueLayout,
    free: impl Fn(i32) -> bool,
    taking: &BTreeSet<i32>,
) -> Vec<i32> {
    let free_after = |s: i32| !taking.contains(&s) && free(s);
    let alone = |s: i32, is_free: &dyn Fn(i32) -> bool| {
        is_free(s)
            && layout.block_left(s).is_none_or(|n| !is_free(n))
            && layout.block_right(s).is_none_or(|n| !is_free(n))
    };
    let mut out: Vec<i32> = taking
        .iter()
        .flat_map(|&t| [layout.block_left(t), layout.block_right(t)])
        .flatten()
        .filter(|s| !taking.contains(s) && !layout.attributes(*s).kept_for_access())
        .filter(|&s| alone(s, &free_after) && !alone(s, &free))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// [`stranded_by`] for a block of free seats `first..=last` of one block: only the seats
/// just outside it can be left alone (they had a free neighbour in the block before).
/// Best available tries many blocks per request, so this one allocates nothing.
pub fn block_strands(
    layout: &VenueLayout,
    free: impl Fn(i32) -> bool,
    first: i32,
    last: i32,
) -> bool {
    let left_alone = layout.block_left(first).is_some_and(|l| {
        free(l)
            && !layout.attributes(l).kept_for_access()
            && layout.block_left(l).is_none_or(|n| !free(n))
    });
    left_alone
        || layout.block_right(last).is_some_and(|r| {
            free(r)
                && !layout.attributes(r).kept_for_access()
                && layout.block_right(r).is_none_or(|n| !free(n))
        })
}

/// Are `seats` side by side: one row, consecutive, no aisle between them?
pub fn together(layout: &VenueLayout, seats: &BTreeSet<i32>) -> bool {
    let mut it = seats.iter();
    let Some(&first) = it.next() else {
        return false;
    };
    let mut prev = first;
    for &s in it {
        if layout.block_right(prev) != Some(s) {
            return false;
        }
        prev = s;
    }
    true
}

/// Why a buyer who said they need an accessible space cannot have these seats together:
/// none of them is a wheelchair space, or they are not side by side.
pub fn accessible_selection_problem(
    layout: &VenueLayout,
    seats: &BTreeSet<i32>,
) -> Option<&'static str> {
    if !seats
        .iter()
        .any(|s| layout.attributes(*s).has(SeatAttribute::Accessible))
    {
        return Some("accessible_space_required");
    }
    (!together(layout, seats)).then_some("companions_not_together")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SectionId;
    use crate::layout::{SectionKind, SectionLayout};

    /// One section, one row of `n` seats (seat_no 0..n), with `ranges`.
    fn row(n: i32, ranges: Vec<SeatRange>) -> VenueLayout {
        let id = SectionId::new();
        VenueLayout::new(vec![SectionLayout {
            id,
            code: "A".into(),
            name: "A".into(),
            kind: SectionKind::Reserved,
            rows: 1,
            seats_per_row: n,
            first_seat_no: 0,
            capacity: n,
            price_cents: 100,
        }])
        .with_seating(Vec::new(), vec![(id, ranges)])
    }

    fn range(seats: [i32; 2], attributes: Vec<SeatAttribute>) -> SeatRange {
        SeatRange {
            rows: [1, 1],
            seats,
            attributes,
            price_category: None,
        }
    }

    fn set(s: &[i32]) -> BTreeSet<i32> {
        s.iter().copied().collect()
    }

    #[test]
    fn a_gap_of_one_is_stranded_and_row_ends_count_as_taken() {
        let l = row(6, Vec::new());
        let all = |_| true;
        // Taking seats 1,2 (0-based) leaves seat 0 alone against the row end.
        assert_eq!(stranded_by(&l, all, &set(&[1, 2])), vec![0]);
        assert_eq!(stranded_by(&l, all, &set(&[0, 1])), Vec::<i32>::new());
        assert_eq!(stranded_by(&l, all, &set(&[2, 3])), Vec::<i32>::new());
        // Seat 3 taken already: taking 1 leaves 2 between 1 and 3, and 0 at the end.
        let free = |s| s != 3;
        assert_eq!(stranded_by(&l, free, &set(&[1])), vec![0, 2]);
    }

    #[test]
    fn block_strands_agrees_with_stranded_by() {
        // Every block of every free pattern of an 8-seat row with an aisle after seat 4.
        let l = row(8, vec![range([4, 5], vec![SeatAttribute::Aisle])]);
        for pattern in 0u32..256 {
            let free = |s: i32| (0..8).contains(&s) && pattern & (1 << s) != 0;
            for first in 0..8 {
                let mut last = first;
                while free(last) {
                    let block: BTreeSet<i32> = (first..=last).collect();
                    if together(&l, &block) {
                        assert_eq!(
                            block_strands(&l, free, first, last),
                            !stranded_by(&l, free, &block).is_empty(),
                            "pattern {pattern:08b} block {first}..={last}"
                        );
                    }
                    last += 1;
                }
            }
        }
    }

    #[test]
    fn a_seat_already_alone_is_not_the_buyers_doing() {
        let l = row(5, Vec::new());
        let free = |s| s != 1 && s != 3; // seat 2 alone already
        assert_eq!(stranded_by(&l, free, &set(&[4])), Vec::<i32>::new());
    }

    #[test]
    fn an_aisle_splits_a_row_and_access_seats_are_exempt() {
        // An aisle between seats 2 and 3 (both marked), seat 5 a wheelchair space.
        let l = row(
            6,
            vec![
                range([3, 4], vec![SeatAttribute::Aisle]),
                range([6, 6], vec![SeatAttribute::Accessible]),
            ],
        );
        let all = |_| true;
        assert_eq!(l.block_right(2), None);
        assert_eq!(l.block_left(3), None);
        // Taking 0,1 leaves 2 alone against the aisle.
        assert_eq!(stranded_by(&l, all, &set(&[0, 1])), vec![2]);
        // Taking 3,4 leaves the wheelchair space 5 alone: exempt.
        assert_eq!(stranded_by(&l, all, &set(&[3, 4])), Vec::<i32>::new());
        assert!(!together(&l, &set(&[2, 3])));
        assert!(together(&l, &set(&[3, 4, 5])));
        assert_eq!(
            accessible_selection_problem(&l, &set(&[3, 4])),
            Some("accessible_space_required")
        );
        assert_eq!(
            accessible_selection_problem(&l, &set(&[3, 5])),
            Some("companions_not_together")
        );
        assert_eq!(accessible_selection_problem(&l, &set(&[4, 5])), None);
    }
}
