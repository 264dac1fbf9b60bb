//! Loading and writing the lifecycle state of a batch (holds being ended, waitlists,
//! payments in progress, bookings, tickets, refunds), inside the batch transaction.
//!
//! Rows a command will change are locked (`FOR UPDATE`) in one fixed order — bookings,
//! holds, then (in `store::inventory`) seats and counters, then waitlist entries — so two
//! transactions can never wait on each other in a cycle.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use seatq_common::command::{Command, CommandEnvelope, SaleState};
use seatq_common::ids::{BookingId, EventId, HoldId, PaymentId, SectionId, TicketId, UserId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::ledger::{BookingSlot, HoldSlot, HoldStatus, Ledger, Position, TicketSlot, WaitEntry};

const LOCK_BOOKINGS: &str = "SELECT id, event_id, hold_id, user_id, payment_id, amount_cents, \
       status = 'cancelled', refund_cents, created_at \
     FROM bookings WHERE id = ANY($1) ORDER BY id FOR UPDATE";
// The tickets of bookings being cancelled: which are still the buyer's to give back. A
// transfer or check-in (the gateway updates one ticket row) waits for this lock and then
// finds the ticket void, or this batch sees it moved or used.
const LOCK_TICKETS: &str = "SELECT id, booking_id, seat_no, holder_user_id, status = 'valid', \
       checked_in_at IS NOT NULL \
     FROM tickets WHERE booking_id = ANY($1) ORDER BY id FOR UPDATE";
// Users a waiting room let in, among those a batch's waitlist commands are about.
const ADMITTED: &str = "SELECT q.event_id, q.user_id FROM queue_tickets q \
     JOIN unnest($1::uuid[], $2::text[]) AS k(event_id, user_id) \
       ON q.event_id = k.event_id AND q.user_id = k.user_id \
     WHERE q.status = 'admitted'";
// The sale state of events the batch's requests to buy (or sale changes) are about. The
// consumer is the events' only writer of it, so no lock is needed.
const SALE_STATES: &str = "SELECT id, sale_state FROM events WHERE id = ANY($1)";
const SET_SALE_STATES: &str =
    "UPDATE events e SET sale_state = u.state, sale_state_changed_at = $3 \
     FROM unnest($1::uuid[], $2::text[]) AS u(id, state) WHERE e.id = u.id";
const LOCK_HOLDS: &str =
    "SELECT id, event_id, user_id, request_id, status, seat_nos, ga_section_id, \
       quantity, created_at, expires_at, ended_at, extended, offered_from \
     FROM holds WHERE id = ANY($1) ORDER BY id FOR UPDATE";
// Who holds the seats people ask to wait for (you cannot wait for your own seat). A
// holder never changes, so these are read without locking.
const SEAT_HOLDERS: &str = "SELECT h.id, h.user_id FROM seats s \
     JOIN unnest($1::uuid[], $2::int[]) AS k(event_id, seat_no) \
       ON s.event_id = k.event_id AND s.seat_no = k.seat_no \
     JOIN holds h ON h.id = s.hold_id";
const PAYING_HOLDS: &str = "SELECT hold_id, id FROM payments \
     WHERE hold_id = ANY($1) AND status IN ('pending', 'processing', 'paid')";
const LOCK_WAITLISTS: &str =
    "SELECT w.id, w.event_id, w.seat_no, w.user_id FROM waitlist_entries w \
     JOIN unnest($1::uuid[], $2::int[]) AS k(event_id, seat_no) \
       ON w.event_id = k.event_id AND w.seat_no = k.seat_no \
     WHERE w.status = 'waiting' ORDER BY w.id FOR UPDATE OF w";
const WAITING_PER_USER: &str = "SELECT w.event_id, w.user_id, count(*) FROM waitlist_entries w \
     JOIN unnest($1::uuid[], $2::text[]) AS k(event_id, user_id) \
       ON w.event_id = k.event_id AND w.user_id = k.user_id \
     WHERE w.status = 'waiting' GROUP BY w.event_id, w.user_id";
const RESERVE_WAITLIST_IDS: &str =
    "SELECT nextval(pg_get_serial_sequence('waitlist_entries', 'id')) FROM generate_series(1, $1)";

const INSERT_HOLDS: &str = "INSERT INTO holds (id, event_id, user_id, request_id, status, seat_nos, \
       ga_section_id, quantity, created_at, expires_at, ended_at, extended, offered_from) \
     SELECT id, event_id, user_id, request_id, status, seat_nos::int[], ga_section_id, quantity, \
       created_at, expires_at, ended_at, extended, offered_from \
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::uuid[], \
       $8::int[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::bool[], $13::uuid[]) \
       AS u(id, event_id, user_id, request_id, status, seat_nos, ga_section_id, quantity, created_at, \
            expires_at, ended_at, extended, offered_from)";
const UPDATE_HOLDS: &str = "UPDATE holds h SET status = u.status, ended_at = u.ended_at, \
       expires_at = u.expires_at, extended = u.extended, seat_nos = u.seat_nos::int[], \
       quantity = u.quantity \
     FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bool[], \
                 $6::text[], $7::int[]) \
       AS u(id, status, ended_at, expires_at, extended, seat_nos, quantity) WHERE h.id = u.id";
// New entries go in as they are at the end of the batch (one joined and offered or
// skipped in the same batch is not `waiting`), after the ended ones were updated: a user
// who left a seat's line and joined it again in one batch has one `waiting` entry at a
// time (the unique index `waitlist_once_per_user`).
const INSERT_WAITLIST: &str =
    "INSERT INTO waitlist_entries (id, event_id, seat_no, user_id, request_id, \
       status, offered_hold_id, joined_at, ended_at) \
     SELECT id, event_id, seat_no, user_id, request_id, status, hold_id, joined_at, \
       CASE WHEN status = 'waiting' THEN NULL ELSE $9 END \
     FROM unnest($1::bigint[], $2::uuid[], $3::int[], $4::text[], $5::uuid[], $6::timestamptz[], \
                 $7::text[], $8::uuid[]) \
       AS u(id, event_id, seat_no, user_id, request_id, joined_at, status, hold_id)";
const END_WAITLIST: &str = "UPDATE waitlist_entries w SET status = u.status, \
       offered_hold_id = u.hold_id, ended_at = $4 \
     FROM unnest($1::bigint[], $2::text[], $3::uuid[]) AS u(id, status, hold_id) WHERE w.id = u.id";
const INSERT_BOOKINGS: &str = "INSERT INTO bookings (id, hold_id, event_id, user_id, payment_id, \
       amount_cents, status, created_at) \
     SELECT id, hold_id, event_id, user_id, payment_id, amount_cents, 'confirmed', $7 \
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[]) \
       AS u(id, hold_id, event_id, user_id, payment_id, amount_cents)";
const CANCEL_BOOKINGS: &str = "UPDATE bookings b SET status = u.status, \
       cancelled_at = CASE WHEN u.status = 'cancelled' THEN $4 END, refund_cents = u.refund_cents \
     FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS u(id, status, refund_cents) \
     WHERE b.id = u.id";
const VOID_TICKETS: &str = "UPDATE tickets SET status = 'void' WHERE id = ANY($1)";
const INSERT_TICKETS: &str = "INSERT INTO tickets (id, booking_id, event_id, seat_no, section_id, \
       holder_user_id, status, created_at) \
     SELECT id, booking_id, event_id, seat_no, section_id, holder, 'valid', $7 \
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::uuid[], $6::text[]) \
       AS u(id, booking_id, event_id, seat_no, section_id, holder)";
// At most one whole refund per payment, one per cancellation (see migration 0013).
const INSERT_REFUNDS: &str =
    "INSERT INTO refunds (id, payment_id, event_id, user_id, amount_cents, \
       reason, status, request_id) \
     SELECT id, payment_id, event_id, user_id, amount_cents, reason, 'pending', request_id \
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[], \
                 $7::uuid[]) \
       AS u(id, payment_id, event_id, user_id, amount_cents, reason, request_id) \
     ON CONFLICT DO NOTHING";

type HoldRow = (
    HoldId,
    EventId,
    UserId,
    seatq_common::ids::RequestId,
    String,
    Vec<i32>,
    Option<SectionId>,
    i32,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    bool,
    Option<HoldId>,
);

type TicketRow = (TicketId, BookingId, Option<i32>, UserId, bool, bool);

type BookingRow = (
    BookingId,
    EventId,
    HoldId,
    UserId,
    PaymentId,
    i64,
    bool,
    Option<i64>,
    DateTime<Utc>,
);

/// What the lifecycle commands of a batch need locked besides their holds.
#[derive(Default)]
pub struct LifeKeys {
    /// Reserved seats of the holds (and the seats of waitlist commands).
    pub seats: BTreeSet<(Uuid, i32)>,
    pub ga: BTreeSet<(Uuid, Uuid)>,
    pub users: BTreeSet<(Uuid, String)>,
}

/// Lock the bookings and holds the batch's lifecycle commands are about, and note which
/// of those holds have a payment in progress.
pub async fn load_holds(
    tx: &mut Transaction<'static, Postgres>,
    commands: &[(Position, CommandEnvelope)],
    ledger: &mut Ledger,
) -> Result<LifeKeys, sqlx::Error> {
    let mut keys = LifeKeys::default();
    let mut hold_ids: BTreeSet<Uuid> = BTreeSet::new();
    let mut booking_ids: BTreeSet<Uuid> = BTreeSet::new();
    let mut expiring: Vec<Uuid> = Vec::new();
    let mut joined: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (_, c) in commands {
        match &c.command {
            Command::CancelBooking(b) => {
                booking_ids.insert(b.booking_id.0);
            }
            Command::JoinWaitlist(w) | Command::LeaveWaitlist(w) => {
                keys.seats.insert((c.event_id.0, w.seat_no));
                keys.users.insert((c.event_id.0, c.user_id.0.clone()));
                if matches!(c.command, Command::JoinWaitlist(_)) {
                    joined.insert((c.event_id.0, w.seat_no));
                }
            }
            Command::BlockSeats(b) => {
                keys.seats
                    .extend(b.seat_nos.iter().map(|n| (c.event_id.0, *n)));
            }
            Command::ExpireHold(e) => {
                hold_ids.insert(e.hold_id.0);
                expiring.push(e.hold_id.0);
            }
            other => {
                if let Some(h) = other.hold_id() {
                    hold_ids.insert(h.0);
                }
            }
        }
    }
    if !booking_ids.is_empty() {
        let ids: Vec<Uuid> = booking_ids.into_iter().collect();
        let rows: Vec<BookingRow> = sqlx::query_as(LOCK_BOOKINGS)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
        for (
            id,
            event_id,
            hold_id,
            user_id,
            payment_id,
            amount_cents,
            cancelled,
            refund_cents,
            created_at,
        ) in rows
        {
            hold_ids.insert(hold_id.0);
            ledger.life.bookings.insert(
                id,
                BookingSlot {
                    event_id,
                    hold_id,
                    user_id,
                    payment_id,
                    amount_cents,
                    cancelled,
                    refund_cents,
                    created_at,
                    tickets: Vec::new(),
                },
            );
        }
    }
    if !joined.is_empty() {
        let (events, seats): (Vec<Uuid>, Vec<i32>) = joined.into_iter().unzip();
        let holders: Vec<(HoldId, UserId)> = sqlx::query_as(SEAT_HOLDERS)
            .bind(&events)
            .bind(&seats)
            .fetch_all(&mut **tx)
            .await?;
        ledger.life.holders.extend(holders);
    }
    if hold_ids.is_empty() {
        return Ok(keys);
    }
    let ids: Vec<Uuid> = hold_ids.into_iter().collect();
    let rows: Vec<HoldRow> = sqlx::query_as(LOCK_HOLDS)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
    for row in rows {
        let (id, event_id, user_id, request_id, status, seat_nos, ga_section, quantity) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
        keys.seats.extend(seat_nos.iter().map(|s| (event_id.0, *s)));
        if let Some(section) = ga_section {
            keys.ga.insert((event_id.0, section.0));
        }
        keys.users.insert((event_id.0, user_id.0.clone()));
        ledger.holds.insert(
            id,
            HoldSlot {
                id,
                event_id,
                user_id,
                request_id,
                status: HoldStatus::from_db(&status),
                seat_nos,
                ga_section,
                quantity,
                created_at: row.8,
                expires_at: row.9,
                ended_at: row.10,
                extended: row.11,
                offered_from: row.12,
            },
        );
    }
    if !expiring.is_empty() {
        let paying: Vec<(HoldId, PaymentId)> = sqlx::query_as(PAYING_HOLDS)
            .bind(&expiring)
            .fetch_all(&mut **tx)
            .await?;
        for (hold, payment) in paying {
            ledger.life.paying.entry(hold).or_default().insert(payment);
        }
    }
    let bookings: Vec<Uuid> = ledger.life.bookings.keys().map(|b| b.0).collect();
    if !bookings.is_empty() {
        let rows: Vec<TicketRow> = sqlx::query_as(LOCK_TICKETS)
            .bind(&bookings)
            .fetch_all(&mut **tx)
            .await?;
        for (id, booking, seat_no, holder, valid, checked_in) in rows {
            if let Some(b) = ledger.life.bookings.get_mut(&booking) {
                b.tickets.push(TicketSlot {
                    id,
                    seat_no,
                    holder,
                    valid,
                    checked_in,
                });
            }
        }
    }
    Ok(keys)
}

/// The sale state of the events whose commands depend on it.
pub async fn load_sale_states(
    tx: &mut Transaction<'static, Postgres>,
    commands: &[(Position, CommandEnvelope)],
    ledger: &mut Ledger,
) -> Result<(), sqlx::Error> {
    let events: BTreeSet<Uuid> = commands
        .iter()
        .filter(|(_, c)| {
            matches!(
                c.command,
                Command::HoldSeats(_) | Command::JoinWaitlist(_) | Command::SetSaleState(_)
            )
        })
        .map(|(_, c)| c.event_id.0)
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let events: Vec<Uuid> = events.into_iter().collect();
    let rows: Vec<(EventId, SaleState)> = sqlx::query_as(SALE_STATES)
        .bind(&events)
        .fetch_all(&mut **tx)
        .await?;
    ledger.sales.extend(rows);
    Ok(())
}

/// Note which of `users` (event, user) the events' waiting rooms let in.
pub async fn load_admitted(
    tx: &mut Transaction<'static, Postgres>,
    users: &BTreeSet<(Uuid, String)>,
    ledger: &mut Ledger,
) -> Result<(), sqlx::Error> {
    if users.is_empty() {
        return Ok(());
    }
    let (events, ids): (Vec<Uuid>, Vec<String>) = users.iter().cloned().unzip();
    let rows: Vec<(EventId, UserId)> = sqlx::query_as(ADMITTED)
        .bind(&events)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
    ledger.life.admitted.extend(rows);
    Ok(())
}

/// Lock the `waiting` entries of `seats` (after the seats themselves), reserve ids for the
/// batch's joins, and return the users on those waitlists (their seat counts are needed
/// to skip anyone at the per-user limit).
pub async fn load_waitlists(
    tx: &mut Transaction<'static, Postgres>,
    seats: &BTreeSet<(Uuid, i32)>,
    joins: i64,
    join_users: &BTreeSet<(Uuid, String)>,
    ledger: &mut Ledger,
) -> Result<BTreeSet<(Uuid, String)>, sqlx::Error> {
    let mut users = BTreeSet::new();
    if !seats.is_empty() {
        let (events, nos): (Vec<Uuid>, Vec<i32>) = seats.iter().copied().unzip();
        let rows: Vec<(i64, EventId, i32, UserId)> = sqlx::query_as(LOCK_WAITLISTS)
            .bind(&events)
            .bind(&nos)
            .fetch_all(&mut **tx)
            .await?;
        for (id, event_id, seat_no, user_id) in rows {
            users.insert((event_id.0, user_id.0.clone()));
            ledger
                .life
                .waitlists
                .entry((event_id, seat_no))
                .or_default()
                .push_back(WaitEntry { id, user_id });
        }
    }
    let counted: BTreeSet<(Uuid, String)> = users.union(join_users).cloned().collect();
    if !counted.is_empty() {
        let (events, ids): (Vec<Uuid>, Vec<String>) = counted.into_iter().unzip();
        let rows: Vec<(EventId, UserId, i64)> = sqlx::query_as(WAITING_PER_USER)
            .bind(&events)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
        for (event_id, user_id, n) in rows {
            ledger.life.waiting_per_user.insert((event_id, user_id), n);
        }
    }
    if joins > 0 {
        let mut ids: Vec<i64> = sqlx::query_scalar(RESERVE_WAITLIST_IDS)
            .bind(joins)
            .fetch_all(&mut **tx)
            .await?;
        ids.sort_unstable();
        ledger.life.spare_waitlist_ids = ids.into();
    }
    Ok(users)
}

/// Write every hold the batch created (in its final state) or changed.
pub async fn write_holds(
    tx: &mut Transaction<'static, Postgres>,
    ledger: &Ledger,
) -> Result<(), sqlx::Error> {
    let created: Vec<&HoldSlot> = ledger
        .new_holds
        .iter()
        .filter_map(|id| ledger.holds.get(id))
        .collect();
    if !created.is_empty() {
        let seat_lists: Vec<String> = created.iter().map(|h| pg_int_array(&h.seat_nos)).collect();
        sqlx::query(INSERT_HOLDS)
            .bind(created.iter().map(|h| h.id.0).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.event_id.0).collect::<Vec<_>>())
            .bind(
                created
                    .iter()
                    .map(|h| h.user_id.0.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(created.iter().map(|h| h.request_id.0).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.status.as_db()).collect::<Vec<_>>())
            .bind(&seat_lists)
            .bind(
                created
                    .iter()
                    .map(|h| h.ga_section.map(|s| s.0))
                    .collect::<Vec<_>>(),
            )
            .bind(created.iter().map(|h| h.quantity).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.created_at).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.expires_at).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.ended_at).collect::<Vec<_>>())
            .bind(created.iter().map(|h| h.extended).collect::<Vec<_>>())
            .bind(
                created
                    .iter()
                    .map(|h| h.offered_from.map(|o| o.0))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await?;
    }
    let created_ids: HashSet<HoldId> = ledger.new_holds.iter().copied().collect();
    let changed: Vec<&HoldSlot> = ledger
        .changed_holds
        .iter()
        .filter(|id| !created_ids.contains(id))
        .filter_map(|id| ledger.holds.get(id))
        .collect();
    if !changed.is_empty() {
        sqlx::query(UPDATE_HOLDS)
            .bind(changed.iter().map(|h| h.id.0).collect::<Vec<_>>())
            .bind(changed.iter().map(|h| h.status.as_db()).collect::<Vec<_>>())
            .bind(changed.iter().map(|h| h.ended_at).collect::<Vec<_>>())
            .bind(changed.iter().map(|h| h.expires_at).collect::<Vec<_>>())
            .bind(changed.iter().map(|h| h.extended).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|h| pg_int_array(&h.seat_nos))
                    .collect::<Vec<_>>(),
            )
            .bind(changed.iter().map(|h| h.quantity).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Write waitlist, booking, ticket and refund changes (after holds: they refer to them).
pub async fn write_rest(
    tx: &mut Transaction<'static, Postgres>,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !ledger.sales_changed.is_empty() {
        let (ids, states): (Vec<Uuid>, Vec<&str>) = ledger
            .sales_changed
            .iter()
            .map(|e| (e.0, ledger.sale_state(*e).as_str()))
            .unzip();
        sqlx::query(SET_SALE_STATES)
            .bind(&ids)
            .bind(&states)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    let life = &ledger.life;
    if !life.waitlist_ended.is_empty() {
        let e = &life.waitlist_ended;
        sqlx::query(END_WAITLIST)
            .bind(e.iter().map(|w| w.0).collect::<Vec<_>>())
            .bind(e.iter().map(|w| w.1).collect::<Vec<_>>())
            .bind(e.iter().map(|w| w.2.map(|h| h.0)).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    if !life.waitlist_new.is_empty() {
        let n = &life.waitlist_new;
        let end = |id: i64| life.waitlist_ended.iter().rev().find(|e| e.0 == id);
        sqlx::query(INSERT_WAITLIST)
            .bind(n.iter().map(|w| w.id).collect::<Vec<_>>())
            .bind(n.iter().map(|w| w.event_id.0).collect::<Vec<_>>())
            .bind(n.iter().map(|w| w.seat_no).collect::<Vec<_>>())
            .bind(n.iter().map(|w| w.user_id.0.clone()).collect::<Vec<_>>())
            .bind(n.iter().map(|w| w.request_id.0).collect::<Vec<_>>())
            .bind(n.iter().map(|w| w.joined_at).collect::<Vec<_>>())
            .bind(
                n.iter()
                    .map(|w| end(w.id).map_or("waiting", |e| e.1))
                    .collect::<Vec<_>>(),
            )
            .bind(
                n.iter()
                    .map(|w| end(w.id).and_then(|e| e.2).map(|h| h.0))
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    let created: Vec<(&BookingId, &BookingSlot)> = life
        .new_bookings
        .iter()
        .filter_map(|id| life.bookings.get_key_value(id))
        .collect();
    if !created.is_empty() {
        sqlx::query(INSERT_BOOKINGS)
            .bind(created.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
            .bind(created.iter().map(|(_, b)| b.hold_id.0).collect::<Vec<_>>())
            .bind(
                created
                    .iter()
                    .map(|(_, b)| b.event_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(
                created
                    .iter()
                    .map(|(_, b)| b.user_id.0.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                created
                    .iter()
                    .map(|(_, b)| b.payment_id.0)
                    .collect::<Vec<_>>(),
            )
            .bind(
                created
                    .iter()
                    .map(|(_, b)| b.amount_cents)
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    if !life.tickets.is_empty() {
        let t = &life.tickets;
        sqlx::query(INSERT_TICKETS)
            .bind(t.iter().map(|x| x.id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|x| x.booking_id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|x| x.event_id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|x| x.seat_no).collect::<Vec<_>>())
            .bind(t.iter().map(|x| x.section_id.0).collect::<Vec<_>>())
            .bind(t.iter().map(|x| x.holder.0.clone()).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    if !life.changed_bookings.is_empty() {
        let changed: Vec<(&BookingId, &BookingSlot)> = life
            .changed_bookings
            .iter()
            .filter_map(|id| life.bookings.get_key_value(id))
            .collect();
        sqlx::query(CANCEL_BOOKINGS)
            .bind(changed.iter().map(|(id, _)| id.0).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|(_, b)| {
                        if b.cancelled {
                            "cancelled"
                        } else {
                            "confirmed"
                        }
                    })
                    .collect::<Vec<_>>(),
            )
            .bind(
                changed
                    .iter()
                    .map(|(_, b)| b.refund_cents)
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    if !life.voided_tickets.is_empty() {
        let ids: Vec<Uuid> = life.voided_tickets.iter().map(|t| t.0).collect();
        sqlx::query(VOID_TICKETS)
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
    }
    if !life.refunds.is_empty() {
        let r = &life.refunds;
        sqlx::query(INSERT_REFUNDS)
            .bind(r.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.payment_id.0).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.event_id.0).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.user_id.0.clone()).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.amount_cents).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.reason).collect::<Vec<_>>())
            .bind(r.iter().map(|x| x.request_id.0).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `{1,2,3}`: a Postgres array literal, so jagged seat lists can go through `unnest`.
pub fn pg_int_array(values: &[i32]) -> String {
    let inner: Vec<String> = values.iter().map(i32::to_string).collect();
    format!("{{{}}}", inner.join(","))
}
