//! Seats, general-admission counters and users' seat counts: read into a batch's ledger
//! and written back from it.
//!
//! Rows a command names are locked (`FOR UPDATE`, in key order, after the holds and
//! bookings of `store::lifecycle`), so no two transactions wait on each other in a cycle.
//! The free seats of a best-available section are read without a lock and written back
//! only if still free (see `FREE_IN_SECTIONS` and `SET_SEATS`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use seatq_common::command::{Command, CommandEnvelope, HoldSeats};
use seatq_common::ids::{EventId, HoldId, SectionId, UserId};
use seatq_common::layout::SectionKind;
use seatq_common::message::SeatStatus;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::ledger::{EventRules, GaSlot, Ledger, Position, SeatSlot};

const LOCK_SEATS: &str = "SELECT s.event_id, s.seat_no, s.status, s.hold_id FROM seats s \
     JOIN unnest($1::uuid[], $2::int[]) AS k(event_id, seat_no) \
       ON s.event_id = k.event_id AND s.seat_no = k.seat_no \
     ORDER BY s.event_id, s.seat_no FOR UPDATE OF s";
// Not locked: locking every free seat of a stadium section cost ~6,800 row locks per batch
// (the top statement under load). Only this partition's writer changes an event's seats, and
// SET_SEATS writes a seat read here only if it is still available.
const FREE_IN_SECTIONS: &str = "SELECT s.event_id, s.section_id, s.seat_no FROM seats s \
     JOIN unnest($1::uuid[], $2::uuid[]) AS k(event_id, section_id) \
       ON s.event_id = k.event_id AND s.section_id = k.section_id \
     WHERE s.status = 'available'";

/// The columns of [`FREE_NEAR`]'s parameters.
#[derive(Default)]
pub struct NearArrays {
    pub events: Vec<Uuid>,
    pub sections: Vec<Uuid>,
    pub anchors: Vec<i32>,
    pub limits: Vec<i32>,
    pub lows: Vec<i32>,
    pub highs: Vec<i32>,
}

// Per (event, section, anchor): the `n` free seats just below the anchor and the `n` from
// it up, within the section's seat numbers (sections are contiguous ranges of seat_no, so
// each side is one short walk of the primary key, never the whole section).
const FREE_NEAR: &str = "SELECT k.event_id, k.section_id, f.seat_no \
     FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::int[], $6::int[]) \
       AS k(event_id, section_id, anchor, n, lo, hi) \
     CROSS JOIN LATERAL ( \
       (SELECT s.seat_no FROM seats s WHERE s.event_id = k.event_id AND s.seat_no >= k.lo \
          AND s.seat_no < k.anchor AND s.status = 'available' ORDER BY s.seat_no DESC LIMIT k.n) \
       UNION ALL \
       (SELECT s.seat_no FROM seats s WHERE s.event_id = k.event_id AND s.seat_no >= k.anchor \
          AND s.seat_no < k.hi AND s.status = 'available' ORDER BY s.seat_no LIMIT k.n)) f";
const LOCK_GA: &str =
    "SELECT g.event_id, g.section_id, g.capacity, g.held, g.sold FROM ga_inventory g \
     JOIN unnest($1::uuid[], $2::uuid[]) AS k(event_id, section_id) \
       ON g.event_id = k.event_id AND g.section_id = k.section_id \
     ORDER BY g.event_id, g.section_id FOR UPDATE OF g";
const USER_SEATS: &str = "SELECT h.event_id, h.user_id, sum(h.quantity)::int FROM holds h \
     JOIN unnest($1::uuid[], $2::text[]) AS k(event_id, user_id) \
       ON h.event_id = k.event_id AND h.user_id = k.user_id \
     WHERE h.status IN ('active', 'sold') GROUP BY h.event_id, h.user_id";
// The ledger decided the seats' final state. A seat it read without a lock (`was_free`) is
// written only if still available: a compare-and-set, so a writer the fence did not stop
// makes the row count fall short and the batch roll back, never a seat sold twice.
const SET_SEATS: &str = "UPDATE seats s SET status = u.status, hold_id = u.hold_id \
     FROM unnest($1::uuid[], $2::int[], $3::text[], $4::uuid[], $5::bool[]) \
       AS u(event_id, seat_no, status, hold_id, was_free) \
     WHERE s.event_id = u.event_id AND s.seat_no = u.seat_no \
       AND (NOT u.was_free OR s.status = 'available')";
const CHANGE_GA: &str = "UPDATE ga_inventory g SET held = g.held + u.held, sold = g.sold + u.sold \
     FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[]) AS u(event_id, section_id, held, sold) \
     WHERE g.event_id = u.event_id AND g.section_id = u.section_id";
// ON CONFLICT: the gateway may have recorded a request as never accepted meanwhile (its
// produce timed out); the caller compares the rows inserted with the decisions made.

/// Load what `commands` touch into a new ledger: holds and lifecycle state first, then
/// seats, sections' free seats, counters, waitlists, admissions and users' seat counts.
pub async fn load_ledger(
    tx: &mut Transaction<'static, Postgres>,
    commands: &[(Position, CommandEnvelope)],
    rules: &HashMap<EventId, EventRules>,
) -> Result<Ledger, sqlx::Error> {
    let mut seat_keys: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut section_keys: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    let mut ga_keys: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    let mut user_keys: BTreeSet<(Uuid, String)> = BTreeSet::new();
    let mut ledger = Ledger::default();
    super::lifecycle::load_sale_states(tx, commands, &mut ledger).await?;
    let life = super::lifecycle::load_holds(tx, commands, &mut ledger).await?;
    let joins = commands
        .iter()
        .filter(|(_, c)| matches!(c.command, Command::JoinWaitlist(_)))
        .count() as i64;
    // Waitlists are read for every reserved seat a lifecycle command may free.
    let waitlist_seats = life.seats.clone();
    seat_keys.extend(life.seats.iter().copied());
    ga_keys.extend(life.ga.iter().copied());
    user_keys.extend(life.users.iter().cloned());
    for (_, c) in commands {
        let Some(r) = rules.get(&c.event_id) else {
            continue;
        };
        let Command::HoldSeats(hold) = &c.command else {
            continue;
        };
        user_keys.insert((c.event_id.0, c.user_id.0.clone()));
        match hold {
            HoldSeats::Seats { seat_nos, .. } => {
                seat_keys.extend(seat_nos.iter().map(|s| (c.event_id.0, *s)));
                if r.info.no_single_seats {
                    // The stranding rule looks two seats to each side (a neighbour, and
                    // whether that neighbour has another free neighbour): locked too.
                    for &s in seat_nos {
                        let left = r.layout.block_left(s);
                        let right = r.layout.block_right(s);
                        let around = [
                            left,
                            left.and_then(|l| r.layout.block_left(l)),
                            right,
                            right.and_then(|n| r.layout.block_right(n)),
                        ];
                        seat_keys.extend(around.into_iter().flatten().map(|n| (c.event_id.0, n)));
                    }
                }
            }
            HoldSeats::BestAvailable { section_id, .. } => {
                match r.layout.section_by_id(*section_id).map(|s| s.kind) {
                    Some(SectionKind::Reserved) => {
                        section_keys.insert((c.event_id.0, section_id.0));
                    }
                    Some(SectionKind::GeneralAdmission) => {
                        ga_keys.insert((c.event_id.0, section_id.0));
                    }
                    None => {}
                }
            }
        }
    }
    let (events, seat_nos): (Vec<Uuid>, Vec<i32>) = seat_keys.into_iter().unzip();
    let rows: Vec<(EventId, i32, String, Option<HoldId>)> = sqlx::query_as(LOCK_SEATS)
        .bind(&events)
        .bind(&seat_nos)
        .fetch_all(&mut **tx)
        .await?;
    for (event_id, seat_no, status, hold_id) in rows {
        let status = SeatStatus::from_db(&status).unwrap_or(SeatStatus::Sold);
        ledger
            .seats
            .insert((event_id, seat_no), SeatSlot { status, hold_id });
    }
    let (events, sections): (Vec<Uuid>, Vec<Uuid>) = section_keys.into_iter().unzip();
    if !events.is_empty() {
        for (e, s) in events.iter().zip(&sections) {
            ledger
                .section_free
                .insert((EventId(*e), SectionId(*s)), BTreeSet::new());
        }
        let rows: Vec<(EventId, SectionId, i32)> = sqlx::query_as(FREE_IN_SECTIONS)
            .bind(&events)
            .bind(&sections)
            .fetch_all(&mut **tx)
            .await?;
        for (event_id, section_id, seat_no) in rows {
            // A seat already locked by LOCK_SEATS keeps that (newer) state.
            if let Entry::Vacant(slot) = ledger.seats.entry((event_id, seat_no)) {
                slot.insert(SeatSlot {
                    status: SeatStatus::Available,
                    hold_id: None,
                });
                ledger.unlocked_seats.insert((event_id, seat_no));
            }
            ledger
                .section_free
                .entry((event_id, section_id))
                .or_default()
                .insert(seat_no);
        }
    }
    // Explicitly requested seats that are free also count for best-available in
    // their section (the sets must agree with `seats`).
    let free_explicit: Vec<(EventId, i32)> = ledger
        .seats
        .iter()
        .filter(|(_, slot)| slot.status == SeatStatus::Available)
        .map(|(k, _)| *k)
        .collect();
    for (event_id, seat_no) in free_explicit {
        if let Some(section) = rules
            .get(&event_id)
            .and_then(|r| r.layout.section_of(seat_no))
        {
            if let Some(free) = ledger.section_free.get_mut(&(event_id, section.id)) {
                free.insert(seat_no);
            }
        }
    }
    let (events, sections): (Vec<Uuid>, Vec<Uuid>) = ga_keys.into_iter().unzip();
    if !events.is_empty() {
        let rows: Vec<(EventId, SectionId, i32, i32, i32)> = sqlx::query_as(LOCK_GA)
            .bind(&events)
            .bind(&sections)
            .fetch_all(&mut **tx)
            .await?;
        for (event_id, section_id, capacity, held, sold) in rows {
            ledger.ga.insert(
                (event_id, section_id),
                GaSlot {
                    capacity,
                    held,
                    sold,
                },
            );
        }
    }
    let waitlisted =
        super::lifecycle::load_waitlists(tx, &waitlist_seats, joins, &life.users, &mut ledger)
            .await?;
    // Waiting-room events: who may join a waitlist, or be offered a seat from one.
    let queued: BTreeSet<(Uuid, String)> = waitlisted
        .iter()
        .chain(&life.users)
        .filter(|(event, _)| {
            rules
                .get(&EventId(*event))
                .is_some_and(|r| r.info.waiting_room_enabled)
        })
        .cloned()
        .collect();
    super::lifecycle::load_admitted(tx, &queued, &mut ledger).await?;
    user_keys.extend(waitlisted);
    let (events, users): (Vec<Uuid>, Vec<String>) = user_keys.into_iter().unzip();
    if !events.is_empty() {
        let rows: Vec<(EventId, UserId, i32)> = sqlx::query_as(USER_SEATS)
            .bind(&events)
            .bind(&users)
            .fetch_all(&mut **tx)
            .await?;
        for (event_id, user_id, seats) in rows {
            ledger.user_seats.insert((event_id, user_id), seats);
        }
    }
    Ok(ledger)
}

/// Up to `n` free seats on each side of each anchor, within its section (no locks: these
/// are only suggestions). Rows: (event, section, seat).
pub async fn free_near(
    tx: &mut Transaction<'static, Postgres>,
    near: &NearArrays,
) -> Result<Vec<(EventId, SectionId, i32)>, sqlx::Error> {
    sqlx::query_as(FREE_NEAR)
        .bind(&near.events)
        .bind(&near.sections)
        .bind(&near.anchors)
        .bind(&near.limits)
        .bind(&near.lows)
        .bind(&near.highs)
        .fetch_all(&mut **tx)
        .await
}

/// Write every seat and counter the ledger changed, in their final state.
pub async fn write_seats(
    tx: &mut Transaction<'static, Postgres>,
    ledger: &Ledger,
) -> Result<(), sqlx::Error> {
    let changed: BTreeSet<(EventId, i32)> = ledger.changed_seats.iter().copied().collect();
    if !changed.is_empty() {
        let mut events = Vec::with_capacity(changed.len());
        let mut seats = Vec::with_capacity(changed.len());
        let mut statuses = Vec::with_capacity(changed.len());
        let mut holds: Vec<Option<Uuid>> = Vec::with_capacity(changed.len());
        let mut was_free = Vec::with_capacity(changed.len());
        for key in &changed {
            let Some(slot) = ledger.seats.get(key) else {
                continue;
            };
            events.push(key.0 .0);
            seats.push(key.1);
            statuses.push(slot.status.as_db());
            holds.push(slot.hold_id.map(|h| h.0));
            was_free.push(ledger.unlocked_seats.contains(key));
        }
        let updated = sqlx::query(SET_SEATS)
            .bind(&events)
            .bind(&seats)
            .bind(&statuses)
            .bind(&holds)
            .bind(&was_free)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if updated != seats.len() as u64 {
            // Only if the ledger is wrong or another writer took a seat read unlocked:
            // refuse to commit rather than sell a seat twice (the batch is retried).
            return Err(sqlx::Error::Protocol(format!(
                "updated {updated} of {} seats: ledger out of step with the database",
                seats.len()
            )));
        }
    }
    // (event, section, held delta, sold delta) of every counter that moved.
    let ga: Vec<(Uuid, Uuid, i32, i32)> = ledger
        .ga_changed
        .iter()
        .filter(|(_, d)| **d != (0, 0))
        .map(|((event, section), (held, sold))| (event.0, section.0, *held, *sold))
        .collect();
    if !ga.is_empty() {
        sqlx::query(CHANGE_GA)
            .bind(ga.iter().map(|g| g.0).collect::<Vec<_>>())
            .bind(ga.iter().map(|g| g.1).collect::<Vec<_>>())
            .bind(ga.iter().map(|g| g.2).collect::<Vec<_>>())
            .bind(ga.iter().map(|g| g.3).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
