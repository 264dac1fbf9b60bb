//! Choosing "the best N seats" in a reserved section.
//!
//! What people expect from a box office: seats together in one row, as close to the front
//! as possible and, within that row, as close to the middle as possible. Only when no row
//! has N adjacent seats left does it fall back to the N best single seats (front first,
//! then centre), because a full section should still sell its last seats.

use std::collections::BTreeSet;

use seatq_common::layout::{SectionLayout, VenueLayout};
use seatq_common::seating::{block_strands, SeatAttribute};

/// What a best-available request asks for, and the rules it is chosen under.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    pub quantity: i32,
    /// No seat may be left alone (`seatq_common::seating`).
    pub no_single_seats: bool,
    /// A wheelchair space with `quantity - 1` companions beside it: one block, never split.
    pub accessible: bool,
}

/// Pick seats from `available` (free seat_nos of this section) that `usable` allows this
/// buyer; None if the rules leave too few.
pub fn choose(
    layout: &VenueLayout,
    section: &SectionLayout,
    available: &BTreeSet<i32>,
    choice: &Choice,
    usable: impl Fn(i32) -> bool,
) -> Option<Vec<i32>> {
    let quantity = choice.quantity;
    if quantity < 1 || available.len() < quantity as usize {
        return None;
    }
    let free = |s: i32| available.contains(&s);
    let block_ok = |first: i32, last: i32| {
        (!choice.no_single_seats || !block_strands(layout, free, first, last))
            && (!choice.accessible
                || (first..=last).any(|s| layout.attributes(s).has(SeatAttribute::Accessible)))
    };
    let per_row = section.seats_per_row;
    // Twice the centre seat index, to stay in integers for even row widths.
    let centre2 = per_row - 1;
    // Twice the ideal offset of a block's first seat in its row.
    let ideal2 = centre2 - (quantity - 1);
    for row in 0..section.rows {
        let row_start = section.first_seat_no + row * per_row;
        let mut best: Option<(i32, i32)> = None; // (distance from centre x2, start)
        for (start, end) in runs(layout, available, row_start, per_row, &usable) {
            // Blocks inside the run [start, end] of `quantity` seats, closest to the centre.
            for first in start..=end - (quantity - 1) {
                let distance = (2 * (first - row_start) - ideal2).abs();
                if best.is_none_or(|(d, _)| distance < d) && block_ok(first, first + quantity - 1) {
                    best = Some((distance, first));
                }
            }
        }
        if let Some((_, start)) = best {
            return Some((start..start + quantity).collect());
        }
    }
    if choice.accessible {
        return None;
    }
    // No row has a block: the best single seats, front rows first, centre first; under
    // the rule, a seat is added only if the seats so far still strand none.
    let mut seats: Vec<i32> = available.iter().copied().filter(|s| usable(*s)).collect();
    seats.sort_by_key(|&s| {
        let offset = s - section.first_seat_no;
        (
            offset / per_row,
            (2 * (offset % per_row) - centre2).abs(),
            s,
        )
    });
    let mut chosen = BTreeSet::new();
    for seat in seats {
        if chosen.len() == quantity as usize {
            break;
        }
        chosen.insert(seat);
        if choice.no_single_seats
            && !seatq_common::seating::stranded_by(layout, free, &chosen).is_empty()
        {
            chosen.remove(&seat);
        }
    }
    (chosen.len() == quantity as usize).then(|| chosen.into_iter().collect())
}

/// The runs of usable free seats of one row, `(first, last)`, split at aisles.
fn runs(
    layout: &VenueLayout,
    available: &BTreeSet<i32>,
    row_start: i32,
    per_row: i32,
    usable: &impl Fn(i32) -> bool,
) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &seat in available.range(row_start..row_start + per_row) {
        if !usable(seat) {
            continue;
        }
        match run {
            Some((first, last)) if layout.block_right(last) == Some(seat) => {
                run = Some((first, seat));
            }
            _ => {
                out.extend(run);
                run = Some((seat, seat));
            }
        }
    }
    out.extend(run);
    out
}

/// The block of `count` usable free seats nearest to `anchor` (rows first, then seats)
/// among `free` (whole rows of one section), that the rules allow: what a refused buyer
/// is offered instead.
pub fn nearest_block(
    layout: &VenueLayout,
    section: &SectionLayout,
    free: &BTreeSet<i32>,
    anchor: i32,
    choice: &Choice,
    usable: impl Fn(i32) -> bool,
) -> Vec<i32> {
    let Some((anchor_row, anchor_seat)) = section.position(anchor) else {
        return Vec::new();
    };
    let quantity = choice.quantity;
    let is_free = |s: i32| free.contains(&s);
    let mut best: Option<((i32, i32), i32)> = None;
    for row in 1..=section.rows {
        let row_start = section.first_seat_no + (row - 1) * section.seats_per_row;
        for (start, end) in runs(layout, free, row_start, section.seats_per_row, &usable) {
            for first in start..=end - (quantity - 1) {
                let last = first + quantity - 1;
                let cost = (
                    (row - anchor_row).abs(),
                    (first - row_start + 1 - anchor_seat).abs(),
                );
                if best.is_some_and(|(c, _)| c <= cost)
                    || (choice.no_single_seats && block_strands(layout, is_free, first, last))
                    || (choice.accessible
                        && !(first..=last)
                            .any(|s| layout.attributes(s).has(SeatAttribute::Accessible)))
                {
                    continue;
                }
                best = Some((cost, first));
            }
        }
    }
    best.map(|(_, first)| (first..first + quantity).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use seatq_common::ids::SectionId;
    use seatq_common::layout::SectionKind;
    use seatq_common::seating::SeatRange;

    fn section(rows: i32, per_row: i32) -> SectionLayout {
        SectionLayout {
            id: SectionId::new(),
            code: "A".into(),
            name: "A".into(),
            kind: SectionKind::Reserved,
            rows,
            seats_per_row: per_row,
            first_seat_no: 100,
            capacity: rows * per_row,
            price_cents: 1,
        }
    }

    fn all(s: &SectionLayout) -> BTreeSet<i32> {
        (s.first_seat_no..s.first_seat_no + s.capacity).collect()
    }

    fn venue(s: &SectionLayout, ranges: Vec<SeatRange>) -> VenueLayout {
        VenueLayout::new(vec![s.clone()]).with_seating(Vec::new(), vec![(s.id, ranges)])
    }

    /// Best available without the seating rules.
    fn pick(s: &SectionLayout, free: &BTreeSet<i32>, quantity: i32) -> Option<Vec<i32>> {
        let choice = Choice {
            quantity,
            no_single_seats: false,
            accessible: false,
        };
        choose(&venue(s, Vec::new()), s, free, &choice, |_| true)
    }

    fn ruled(
        l: &VenueLayout,
        s: &SectionLayout,
        free: &BTreeSet<i32>,
        quantity: i32,
    ) -> Option<Vec<i32>> {
        let choice = Choice {
            quantity,
            no_single_seats: true,
            accessible: false,
        };
        choose(l, s, free, &choice, |_| true)
    }

    #[test]
    fn empty_section_gives_front_row_centre() {
        let s = section(3, 10);
        assert_eq!(pick(&s, &all(&s), 2), Some(vec![104, 105]));
        assert_eq!(pick(&s, &all(&s), 3), Some(vec![103, 104, 105]));
        assert_eq!(pick(&s, &all(&s), 10), Some((100..110).collect()));
    }

    #[test]
    fn prefers_a_block_in_a_later_row_over_split_seats() {
        let s = section(2, 4);
        // Row 1: seats 100 and 102 free (not adjacent); row 2 all free.
        let free: BTreeSet<i32> = [100, 102, 104, 105, 106, 107].into();
        assert_eq!(pick(&s, &free, 2), Some(vec![105, 106]));
    }

    #[test]
    fn picks_the_run_nearest_the_centre() {
        let s = section(1, 10);
        let free: BTreeSet<i32> = [100, 101, 106, 107, 108, 109].into();
        assert_eq!(pick(&s, &free, 2), Some(vec![106, 107]));
    }

    #[test]
    fn falls_back_to_single_seats_and_refuses_when_too_few() {
        let s = section(2, 3);
        let free: BTreeSet<i32> = [100, 102, 104].into();
        assert_eq!(pick(&s, &free, 2), Some(vec![100, 102]));
        assert_eq!(pick(&s, &free, 3), Some(vec![100, 102, 104]));
        assert_eq!(pick(&s, &free, 4), None);
        assert_eq!(pick(&s, &BTreeSet::new(), 1), None);
    }

    #[test]
    fn under_the_rule_the_centre_block_moves_rather_than_strand_a_seat() {
        let s = section(1, 10);
        let l = venue(&s, Vec::new());
        // The centred 8 (101..=108) would leave 100 and 109 alone.
        assert_eq!(ruled(&l, &s, &all(&s), 8), Some((100..108).collect()));
        // 9 of 10 always leaves one.
        assert_eq!(ruled(&l, &s, &all(&s), 9), None);
        // Three free at the end: two of them strand the third, wherever they are.
        let free: BTreeSet<i32> = [100, 101, 102].into();
        assert_eq!(ruled(&l, &s, &free, 2), None);
        assert_eq!(ruled(&l, &s, &free, 3), Some(vec![100, 101, 102]));
    }

    #[test]
    fn blocks_stop_at_aisles_and_access_seats_go_to_those_who_need_them() {
        let s = section(1, 8);
        let aisle = SeatRange {
            rows: [1, 1],
            seats: [4, 5],
            attributes: vec![SeatAttribute::Aisle],
            price_category: None,
        };
        let wheelchair = SeatRange {
            rows: [1, 1],
            seats: [8, 8],
            attributes: vec![SeatAttribute::Accessible],
            price_category: None,
        };
        let l = venue(&s, vec![aisle, wheelchair]);
        let free = all(&s);
        // The centred four (102..=105) would cross the aisle: a block on one side instead.
        let four = Choice {
            quantity: 4,
            no_single_seats: false,
            accessible: false,
        };
        assert_eq!(
            choose(&l, &s, &free, &four, |_| true),
            Some((100..104).collect())
        );
        let accessible = Choice {
            quantity: 2,
            no_single_seats: true,
            accessible: true,
        };
        assert_eq!(
            choose(&l, &s, &free, &accessible, |_| true),
            Some(vec![106, 107])
        );
        // Someone without access needs never gets the wheelchair space.
        let kept = |seat: i32| !l.attributes(seat).kept_for_access();
        let four = Choice {
            quantity: 4,
            no_single_seats: true,
            accessible: false,
        };
        assert!(choose(&l, &s, &free, &four, kept).is_some_and(|c| !c.contains(&107)));
    }

    #[test]
    fn the_suggestion_is_the_nearest_block_that_strands_none() {
        let s = section(2, 6);
        let l = venue(&s, Vec::new());
        // Row 1: 100..=105, 103 taken. Asking for 101,102 leaves 100 alone, and 100,101
        // leaves 102 alone: the nearest pair that strands none is 104,105, in the same row.
        let free: BTreeSet<i32> = [100, 101, 102, 104, 105, 106, 107, 108, 109, 110, 111].into();
        let choice = Choice {
            quantity: 2,
            no_single_seats: true,
            accessible: false,
        };
        assert_eq!(
            nearest_block(&l, &s, &free, 101, &choice, |_| true),
            vec![104, 105]
        );
    }
}
