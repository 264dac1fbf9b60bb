//! The seating rules as the consumer applies them to a hold request: seats kept for
//! buyers who need an accessible space, an accessible buyer's seats together, and no
//! stranded single seat (definitions in `seatq_common::seating`).
//!
//! They are decided here, in the partition's one writer, against the ledger as it stands
//! at the request's place in the queue, with the seats around the requested ones loaded
//! and locked (`store::inventory`): two requests that would strand a seat between them
//! are decided one after the other, and the second sees the first's seats taken.
//! Waitlist offers, releases and holdbacks do not come through here: nobody chose them.

use std::collections::{BTreeSet, HashMap};

use seatq_common::ids::{EventId, SectionId};
use seatq_common::layout::SectionLayout;
use seatq_common::message::SeatStatus;
use seatq_common::seating::{accessible_selection_problem, stranded_by};
use sqlx::{Postgres, Transaction};

use crate::batch::NamedSeats;
use crate::best_available::{choose, Choice};
use crate::ledger::{Decided, EventRules, HoldRequest, Ledger, Outcome, Rejection};
use crate::store::inventory::{self, NearArrays};

impl Ledger {
    /// May this buyer have exactly these (free) seats?
    pub(crate) fn check_seating(
        &self,
        req: &HoldRequest,
        rules: &EventRules,
        seat_nos: &[i32],
    ) -> Result<(), Rejection> {
        let layout = &rules.layout;
        let accessible = req.hold.accessible();
        if !accessible && rules.info.accessible_reserved(req.issued_at) {
            let kept: Vec<i32> = seat_nos
                .iter()
                .copied()
                .filter(|s| layout.attributes(*s).kept_for_access())
                .collect();
            if !kept.is_empty() {
                return Err(Rejection {
                    unavailable: kept,
                    ..Rejection::new("seats_reserved_for_access")
                });
            }
        }
        let chosen: BTreeSet<i32> = seat_nos.iter().copied().collect();
        if accessible {
            if let Some(problem) = accessible_selection_problem(layout, &chosen) {
                return Err(Rejection::new(problem));
            }
        }
        if rules.info.no_single_seats {
            let stranded = stranded_by(layout, |s| self.is_free(req.event_id, s), &chosen);
            if !stranded.is_empty() {
                return Err(Rejection {
                    stranded,
                    ..Rejection::new("would_strand_seat")
                });
            }
        }
        Ok(())
    }

    /// The best `quantity` free seats of a reserved section for this buyer, under the
    /// event's rules. Refused `would_strand_seat` when there are seats enough but every
    /// choice would leave one alone, else `insufficient_seats`.
    pub(crate) fn best_available(
        &self,
        req: &HoldRequest,
        rules: &EventRules,
        section: &SectionLayout,
        quantity: i32,
    ) -> Result<Vec<i32>, Rejection> {
        let layout = &rules.layout;
        let empty = BTreeSet::new();
        let free = self
            .section_free
            .get(&(req.event_id, section.id))
            .unwrap_or(&empty);
        let kept = !req.hold.accessible() && rules.info.accessible_reserved(req.issued_at);
        let usable = |s: i32| !kept || !layout.attributes(s).kept_for_access();
        let choice = Choice {
            quantity,
            no_single_seats: rules.info.no_single_seats,
            accessible: req.hold.accessible(),
        };
        if let Some(chosen) = choose(layout, section, free, &choice, usable) {
            return Ok(chosen);
        }
        let unruled = Choice {
            no_single_seats: false,
            ..choice
        };
        if choice.no_single_seats && choose(layout, section, free, &unruled, usable).is_some() {
            return Err(Rejection::new("would_strand_seat"));
        }
        Err(Rejection::new("insufficient_seats"))
    }
}

/// A `would_strand_seat` refusal of named seats, to be offered the nearest block instead.
struct Refused<'a> {
    decision: usize,
    rules: &'a EventRules,
    section: &'a SectionLayout,
    anchor: i32,
    choice: Choice,
    kept: bool,
    /// The seat numbers of the rows searched, `[lo, hi)`: two rows either side.
    window: (i32, i32),
}

/// For named-seat requests refused `would_strand_seat`, the nearest block of as many seats
/// that strands none, within two rows of the request, as free after this batch (read
/// without locks: it is only a suggestion; the buyer's next request is decided afresh).
pub(crate) async fn suggest_instead(
    tx: &mut Transaction<'static, Postgres>,
    decided: &mut [Decided],
    ledger: &Ledger,
    rules: &HashMap<EventId, EventRules>,
    requested: &NamedSeats<'_>,
) -> Result<(), sqlx::Error> {
    let mut refused = Vec::new();
    for (i, d) in decided.iter().enumerate() {
        let Outcome::Rejected(rej) = &d.outcome else {
            continue;
        };
        if rej.reason != "would_strand_seat" {
            continue;
        }
        let (Some(&(seat_nos, accessible)), Some(r)) =
            (requested.get(&d.request_id), rules.get(&d.event_id))
        else {
            continue;
        };
        let anchor = seat_nos.iter().copied().min().unwrap_or_default();
        let Some(section) = r.layout.section_of(anchor) else {
            continue;
        };
        let Some((row, _)) = section.position(anchor) else {
            continue;
        };
        let first_row = (row - 2).max(1);
        let last_row = (row + 2).min(section.rows);
        refused.push(Refused {
            decision: i,
            rules: r,
            section,
            anchor,
            choice: Choice {
                quantity: seat_nos.len() as i32,
                no_single_seats: true,
                accessible,
            },
            kept: !accessible && r.info.accessible_reserved(d.issued_at),
            window: (
                section.first_seat_no + (first_row - 1) * section.seats_per_row,
                section.first_seat_no + last_row * section.seats_per_row,
            ),
        });
    }
    if refused.is_empty() {
        return Ok(());
    }
    // Under a storm many refusals look at the same rows: read each row once per batch.
    let mut rows: BTreeSet<(EventId, SectionId, i32)> = BTreeSet::new();
    for w in &refused {
        let per_row = w.section.seats_per_row;
        for start in (w.window.0..w.window.1).step_by(per_row.max(1) as usize) {
            rows.insert((w.rules.info.id, w.section.id, start));
        }
    }
    let mut near = NearArrays::default();
    let mut rows = rows.into_iter().peekable();
    while let Some((event_id, section_id, start)) = rows.next() {
        let Some(per_row) = rules
            .get(&event_id)
            .and_then(|r| r.layout.section_by_id(section_id))
            .map(|s| s.seats_per_row)
        else {
            continue;
        };
        // Consecutive rows of one section become one range of seat numbers.
        let mut end = start + per_row;
        while let Some(&(e, s, next)) = rows.peek() {
            if (e, s, next) != (event_id, section_id, end) {
                break;
            }
            end += per_row;
            rows.next();
        }
        near.events.push(event_id.0);
        near.sections.push(section_id.0);
        near.anchors.push(start);
        near.limits.push(end - start);
        near.lows.push(start);
        near.highs.push(end);
    }
    let mut free: HashMap<(EventId, SectionId), BTreeSet<i32>> = HashMap::new();
    for (event_id, section_id, seat_no) in inventory::free_near(tx, &near).await? {
        free.entry((event_id, section_id))
            .or_default()
            .insert(seat_no);
    }
    // The database is as before this batch: the ledger knows what the batch changed.
    for (&(event_id, seat_no), slot) in &ledger.seats {
        let Some(section) = rules
            .get(&event_id)
            .and_then(|r| r.layout.section_of(seat_no))
        else {
            continue;
        };
        let set = free.entry((event_id, section.id)).or_default();
        if slot.status == SeatStatus::Available {
            set.insert(seat_no);
        } else {
            set.remove(&seat_no);
        }
    }
    for w in refused {
        let layout = &w.rules.layout;
        let Some(set) = free.get(&(w.rules.info.id, w.section.id)) else {
            continue;
        };
        let in_window: BTreeSet<i32> = set.range(w.window.0..w.window.1).copied().collect();
        let usable = |s: i32| !w.kept || !layout.attributes(s).kept_for_access();
        let suggestion = crate::best_available::nearest_block(
            layout, w.section, &in_window, w.anchor, &w.choice, usable,
        );
        if let Outcome::Rejected(rej) = &mut decided[w.decision].outcome {
            rej.suggestion = suggestion;
        }
    }
    Ok(())
}
