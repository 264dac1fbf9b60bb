//! Choosing "the best N seats" in a reserved section.
//!
//! What people expect from a box office: seats together in one row, as close to the front
//! as possible and, within that row, as close to the middle as possible. Only when no row
//! has N adjacent seats left does it fall back to the N best single seats (front first,
//! then centre), because a full section should still sell its last seats.

use std::collections::BTreeSet;

use seatq_common::layout::SectionLayout;

/// Pick `quantity` seats from `available` (seat_nos of this section); None if too few.
pub fn choose(
    section: &SectionLayout,
    available: &BTreeSet<i32>,
    quantity: i32,
) -> Option<Vec<i32>> {
    if quantity < 1 || available.len() < quantity as usize {
        return None;
    }
    let per_row = section.seats_per_row;
    // Twice the centre seat index, to stay in integers for even row widths.
    let centre2 = per_row - 1;
    for row in 0..section.rows {
        let row_start = section.first_seat_no + row * per_row;
        let mut best: Option<(i32, i32)> = None; // (distance from centre x2, start)
        let mut run_start: Option<i32> = None;
        let mut prev = i32::MIN;
        let consider = |start: i32, end: i32, best: &mut Option<(i32, i32)>| {
            // Blocks inside the run [start, end] of `quantity` seats, closest to the centre.
            if end - start + 1 < quantity {
                return;
            }
            let ideal2 = centre2 - (quantity - 1); // twice the ideal offset of the block start
            let lo = start - row_start;
            let hi = end - row_start - (quantity - 1);
            let offset = (ideal2 / 2).clamp(lo, hi);
            let distance = (2 * offset - ideal2).abs();
            if best.is_none_or(|(d, _)| distance < d) {
                *best = Some((distance, row_start + offset));
            }
        };
        for &seat in available.range(row_start..row_start + per_row) {
            if seat != prev + 1 {
                if let Some(s) = run_start {
                    consider(s, prev, &mut best);
                }
                run_start = Some(seat);
            }
            prev = seat;
        }
        if let Some(s) = run_start {
            consider(s, prev, &mut best);
        }
        if let Some((_, start)) = best {
            return Some((start..start + quantity).collect());
        }
    }
    // No row has a block: the best single seats, front rows first, centre first.
    let mut seats: Vec<i32> = available.iter().copied().collect();
    seats.sort_by_key(|&s| {
        let offset = s - section.first_seat_no;
        (
            offset / per_row,
            (2 * (offset % per_row) - centre2).abs(),
            s,
        )
    });
    seats.truncate(quantity as usize);
    seats.sort_unstable();
    Some(seats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seatq_common::ids::SectionId;
    use seatq_common::layout::SectionKind;

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

    #[test]
    fn empty_section_gives_front_row_centre() {
        let s = section(3, 10);
        assert_eq!(choose(&s, &all(&s), 2), Some(vec![104, 105]));
        assert_eq!(choose(&s, &all(&s), 3), Some(vec![103, 104, 105]));
        assert_eq!(choose(&s, &all(&s), 10), Some((100..110).collect()));
    }

    #[test]
    fn prefers_a_block_in_a_later_row_over_split_seats() {
        let s = section(2, 4);
        // Row 1: seats 100 and 102 free (not adjacent); row 2 all free.
        let free: BTreeSet<i32> = [100, 102, 104, 105, 106, 107].into();
        assert_eq!(choose(&s, &free, 2), Some(vec![105, 106]));
    }

    #[test]
    fn picks_the_run_nearest_the_centre() {
        let s = section(1, 10);
        let free: BTreeSet<i32> = [100, 101, 106, 107, 108, 109].into();
        assert_eq!(choose(&s, &free, 2), Some(vec![106, 107]));
    }

    #[test]
    fn falls_back_to_single_seats_and_refuses_when_too_few() {
        let s = section(2, 3);
        let free: BTreeSet<i32> = [100, 102, 104].into();
        assert_eq!(choose(&s, &free, 2), Some(vec![100, 102]));
        assert_eq!(choose(&s, &free, 3), Some(vec![100, 102, 104]));
        assert_eq!(choose(&s, &free, 4), None);
        assert_eq!(choose(&s, &BTreeSet::new(), 1), None);
    }
}
