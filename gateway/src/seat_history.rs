//! Every seat's story, and the buyer's receipt for a seat they lost.
//!
//! The queue decides who gets a seat, so the story of a seat is the commands that named
//! it in queue order — (partition, offset, place in the record), the order the consumer
//! applied them in — with who sent each, when the gateway accepted it, and the decision.
//! Then what followed: the holds the seat was in (waitlist offers included), payments,
//! bookings, tickets (transfers show as a code version above 1, check-ins with door and
//! time) and the seat's waitlist. For a disputed seat it shows that the winner came first.
//!
//! Found through GIN indexes on (event, seats) of `requests` and `holds` (migration
//! 0015), so a seat's story costs a few index lookups, not a scan of a storm's requests.
//! The command list is paginated by queue position; what followed is bounded.
//!
//! A receipt tells the owner of a refused hold request, for each seat it lost, the last
//! request before theirs that got the seat: how many commands of the partition were queued
//! between the two, and how many milliseconds earlier the gateway accepted it (by the
//! gateways' clocks, so never shown below 0) — without saying who.

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{BookingId, EventId, HoldId, PaymentId, RequestId, TicketId};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

// `cardinality(...) > 0` repeats the indexes' predicate so the planner may use them.
const SEAT_COMMANDS: &str =
    "SELECT r.request_id, r.user_id, r.kind, r.status, r.reason, r.hold_id, \
       r.kafka_partition, r.kafka_offset, r.kafka_seq, r.issued_at, r.decided_at \
     FROM requests r \
     WHERE r.event_id = $1 AND r.seat_nos @> ARRAY[$2::int] AND cardinality(r.seat_nos) > 0 \
       AND (r.kafka_offset, r.kafka_seq) > ($3, $4) \
     ORDER BY r.kafka_offset, r.kafka_seq LIMIT $5";
const SEAT_HOLDS: &str =
    "SELECT h.id, h.user_id, h.request_id, h.status, h.created_at, h.expires_at, \
       h.ended_at, h.offered_from \
     FROM holds h \
     WHERE h.event_id = $1 AND h.seat_nos @> ARRAY[$2::int] AND cardinality(h.seat_nos) > 0 \
     ORDER BY h.created_at, h.id LIMIT 100";
const HOLD_PAYMENTS: &str = "SELECT id, hold_id, status, amount_cents, created_at, updated_at \
     FROM payments WHERE hold_id = ANY($1) ORDER BY created_at, id LIMIT 100";
const HOLD_BOOKINGS: &str =
    "SELECT id, hold_id, user_id, status, amount_cents, created_at, cancelled_at \
     FROM bookings WHERE hold_id = ANY($1) ORDER BY created_at, id";
const SEAT_TICKETS: &str =
    "SELECT id, booking_id, holder_user_id, status, code_version, checked_in_at, \
       checked_in_by, created_at \
     FROM tickets WHERE booking_id = ANY($1) AND seat_no = $2 ORDER BY created_at, id";
const SEAT_WAITLIST: &str = "SELECT user_id, status, joined_at, ended_at, offered_hold_id \
     FROM waitlist_entries WHERE event_id = $1 AND seat_no = $2 ORDER BY id LIMIT 100";
const SEAT_STATUS: &str = "SELECT status FROM seats WHERE event_id = $1 AND seat_no = $2";

/// For each seat a refused request named: the last request before it (in queue order)
/// that got the seat, the commands of the partition between them, and the accept times.
const RECEIPT: &str = "WITH me AS ( \
       SELECT event_id, kafka_partition AS p, kafka_offset AS o, kafka_seq AS s, issued_at, seat_nos \
       FROM requests WHERE request_id = $1) \
     SELECT seat.no, w.kafka_offset, w.kafka_seq, \
       (extract(epoch FROM me.issued_at - w.issued_at) * 1000)::bigint, \
       (SELECT count(*) FROM requests x WHERE x.kafka_partition = me.p \
          AND x.kafka_offset BETWEEN w.kafka_offset AND me.o \
          AND (x.kafka_offset, x.kafka_seq) > (w.kafka_offset, w.kafka_seq) \
          AND (x.kafka_offset, x.kafka_seq) < (me.o, me.s)) \
     FROM me CROSS JOIN LATERAL unnest(me.seat_nos) AS seat(no) \
     LEFT JOIN LATERAL ( \
       SELECT r.kafka_offset, r.kafka_seq, r.issued_at FROM requests r \
       WHERE r.event_id = me.event_id AND r.seat_nos @> ARRAY[seat.no] \
         AND cardinality(r.seat_nos) > 0 AND r.hold_id IS NOT NULL \
         AND (r.kafka_offset, r.kafka_seq) < (me.o, me.s) \
       ORDER BY r.kafka_offset DESC, r.kafka_seq DESC LIMIT 1) w ON true \
     WHERE seat.no = ANY($2)";

/// Commands per page: 50 unless asked, at most 200.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// A command's place in queue order.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct QueuePosition {
    pub partition: i32,
    pub offset: i64,
    /// Place within the record (the gateway packs commands arriving together).
    pub seq: i32,
}

/// A command that named the seat.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatCommand {
    pub position: QueuePosition,
    pub request_id: RequestId,
    pub user_id: String,
    /// `hold_seats`, `block_seats`, `join_waitlist`, `leave_waitlist`.
    pub kind: String,
    /// When the gateway accepted it.
    pub issued_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    /// `held`, `applied` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<HoldId>,
    /// This command got the seat (a hold or a holdback on it).
    pub got_seat: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatHold {
    pub hold_id: HoldId,
    pub user_id: String,
    pub request_id: RequestId,
    /// `active`, `sold`, `cancelled` or `expired`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// A waitlist offer: the seat came to this hold from this earlier one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_from: Option<HoldId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatPayment {
    pub payment_id: PaymentId,
    pub hold_id: HoldId,
    pub status: String,
    pub amount_cents: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatBooking {
    pub booking_id: BookingId,
    pub hold_id: HoldId,
    pub user_id: String,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub amount_cents: i64,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatTicket {
    pub ticket_id: TicketId,
    pub booking_id: BookingId,
    pub holder_user_id: String,
    /// `valid` or `void`.
    pub status: String,
    /// 1 for the buyer's code; each transfer issues the next.
    pub code_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_in_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatWaitlistEntry {
    pub user_id: String,
    /// `waiting`, `offered`, `left` or `skipped`.
    pub status: String,
    pub joined_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_hold_id: Option<HoldId>,
}

/// A seat's story.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatHistory {
    pub event_id: EventId,
    pub seat_id: String,
    /// `available`, `held` or `sold` now.
    pub status: String,
    /// The commands that named the seat, in queue order (this page).
    pub commands: Vec<SeatCommand>,
    /// The next page: pass as `after` (absent on the last page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
    /// Holds the seat was in, oldest first (at most 100).
    pub holds: Vec<SeatHold>,
    pub payments: Vec<SeatPayment>,
    pub bookings: Vec<SeatBooking>,
    pub tickets: Vec<SeatTicket>,
    /// Everyone who queued for the seat, first first (at most 100).
    pub waitlist: Vec<SeatWaitlistEntry>,
}

/// A page of the seat's commands: after which position, how many.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: (i64, i32),
    pub limit: u32,
}

impl Page {
    /// `after` as `offset.seq` (from `next_after`), `limit` in 1..=200.
    pub fn parse(after: Option<&str>, limit: Option<u32>) -> AppResult<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(
                AppError::bad_request("invalid_query", format!("limit: 1 to {MAX_LIMIT}"))
                    .with("param", "limit"),
            );
        }
        let after = match after {
            None => (-1, -1),
            Some(text) => parse_position(text).ok_or_else(|| {
                AppError::bad_request("invalid_query", "after: offset.seq, as in next_after")
                    .with("param", "after")
            })?,
        };
        Ok(Self { after, limit })
    }
}

fn parse_position(text: &str) -> Option<(i64, i32)> {
    let (offset, seq) = text.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(offset) || !all_digits(seq) {
        return None;
    }
    Some((offset.parse().ok()?, seq.parse().ok()?))
}

type CommandRow = (
    RequestId,
    String,
    String,
    String,
    Option<String>,
    Option<HoldId>,
    i32,
    i64,
    i32,
    DateTime<Utc>,
    DateTime<Utc>,
);
type HoldRow = (
    HoldId,
    String,
    RequestId,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<HoldId>,
);
type PaymentRow = (PaymentId, HoldId, String, i64, DateTime<Utc>, DateTime<Utc>);
type BookingRow = (
    BookingId,
    HoldId,
    String,
    String,
    i64,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);
type TicketRow = (
    TicketId,
    BookingId,
    String,
    String,
    i32,
    Option<DateTime<Utc>>,
    Option<String>,
    DateTime<Utc>,
);
type WaitlistRow = (
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<HoldId>,
);

/// The story of `seat_id` at the event.
pub async fn seat_history(
    pool: &PgPool,
    entry: &EventEntry,
    seat_id: &str,
    page: Page,
) -> AppResult<SeatHistory> {
    let event_id = entry.info.id;
    let seat_no = entry
        .layout
        .parse_seat_label(seat_id)
        .ok_or_else(|| AppError::not_found("seat_not_found", format!("no seat {seat_id}")))?;
    let mut rows: Vec<CommandRow> = sqlx::query_as(SEAT_COMMANDS)
        .bind(event_id)
        .bind(seat_no)
        .bind(page.after.0)
        .bind(page.after.1)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(pool)
        .await?;
    let more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let next_after = more
        .then(|| rows.last().map(|r| format!("{}.{}", r.7, r.8)))
        .flatten();
    let holds: Vec<HoldRow> = sqlx::query_as(SEAT_HOLDS)
        .bind(event_id)
        .bind(seat_no)
        .fetch_all(pool)
        .await?;
    let hold_ids: Vec<Uuid> = holds.iter().map(|h| h.0 .0).collect();
    let payments: Vec<PaymentRow> = sqlx::query_as(HOLD_PAYMENTS)
        .bind(&hold_ids)
        .fetch_all(pool)
        .await?;
    let bookings: Vec<BookingRow> = sqlx::query_as(HOLD_BOOKINGS)
        .bind(&hold_ids)
        .fetch_all(pool)
        .await?;
    let booking_ids: Vec<Uuid> = bookings.iter().map(|b| b.0 .0).collect();
    let tickets: Vec<TicketRow> = sqlx::query_as(SEAT_TICKETS)
        .bind(&booking_ids)
        .bind(seat_no)
        .fetch_all(pool)
        .await?;
    let waitlist: Vec<WaitlistRow> = sqlx::query_as(SEAT_WAITLIST)
        .bind(event_id)
        .bind(seat_no)
        .fetch_all(pool)
        .await?;
    let status: Option<String> = sqlx::query_scalar(SEAT_STATUS)
        .bind(event_id)
        .bind(seat_no)
        .fetch_optional(pool)
        .await?;
    let seat_holds: std::collections::HashSet<HoldId> = holds.iter().map(|h| h.0).collect();
    Ok(SeatHistory {
        event_id,
        seat_id: entry.layout.seat_label(seat_no).unwrap_or_default(),
        status: status.unwrap_or_else(|| "available".into()),
        commands: rows
            .into_iter()
            .map(|r| SeatCommand {
                position: QueuePosition {
                    partition: r.6,
                    offset: r.7,
                    seq: r.8,
                },
                request_id: r.0,
                user_id: r.1,
                kind: r.2,
                got_seat: r.5.is_some_and(|h| seat_holds.contains(&h)) && r.3 != "rejected",
                status: r.3,
                reason: r.4,
                hold_id: r.5,
                issued_at: r.9,
                decided_at: r.10,
            })
            .collect(),
        next_after,
        holds: holds
            .into_iter()
            .map(|h| SeatHold {
                hold_id: h.0,
                user_id: h.1,
                request_id: h.2,
                status: h.3,
                created_at: h.4,
                expires_at: h.5,
                ended_at: h.6,
                offered_from: h.7,
            })
            .collect(),
        payments: payments
            .into_iter()
            .map(|p| SeatPayment {
                payment_id: p.0,
                hold_id: p.1,
                status: p.2,
                amount_cents: p.3,
                created_at: p.4,
                updated_at: p.5,
            })
            .collect(),
        bookings: bookings
            .into_iter()
            .map(|b| SeatBooking {
                booking_id: b.0,
                hold_id: b.1,
                user_id: b.2,
                status: b.3,
                amount_cents: b.4,
                created_at: b.5,
                cancelled_at: b.6,
            })
            .collect(),
        tickets: tickets
            .into_iter()
            .map(|t| SeatTicket {
                ticket_id: t.0,
                booking_id: t.1,
                holder_user_id: t.2,
                status: t.3,
                code_version: t.4,
                checked_in_at: t.5,
                checked_in_by: t.6,
                created_at: t.7,
            })
            .collect(),
        waitlist: waitlist
            .into_iter()
            .map(|w| SeatWaitlistEntry {
                user_id: w.0,
                status: w.1,
                joined_at: w.2,
                ended_at: w.3,
                offered_hold_id: w.4,
            })
            .collect(),
    })
}

/// One seat a refused request lost, and to how far ahead in the queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LostSeat {
    pub seat_id: String,
    /// Commands of the partition queued between the request that got the seat and yours
    /// (absent when the seat was not taken by a request: held back, or offered from a
    /// waitlist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub places_ahead: Option<i64>,
    /// How much earlier that request was accepted, in milliseconds (gateways' clocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms_ahead: Option<i64>,
}

/// (seat, the winner's offset and seq, milliseconds ahead, commands between).
type ReceiptRow = (i32, Option<i64>, Option<i32>, Option<i64>, Option<i64>);

/// The receipt of a refused request for the seats it lost (`seat_nos`).
pub async fn receipt(
    pool: &PgPool,
    entry: &EventEntry,
    request_id: RequestId,
    seat_nos: &[i32],
) -> AppResult<Vec<LostSeat>> {
    if seat_nos.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ReceiptRow> = sqlx::query_as(RECEIPT)
        .bind(request_id)
        .bind(seat_nos)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(no, offset, _seq, ms, between)| {
            Some(LostSeat {
                seat_id: entry.layout.seat_label(no)?,
                // The winner itself is one place ahead.
                places_ahead: offset.and(between).map(|n| n + 1),
                ms_ahead: offset.and(ms).map(|ms| ms.max(0)),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_starts_after_a_queue_position_and_holds_1_to_200_commands() {
        let first = Page::parse(None, None).expect("defaults");
        assert_eq!((first.after, first.limit), ((-1, -1), DEFAULT_LIMIT));
        let next = Page::parse(Some("1234.7"), Some(200)).expect("a cursor");
        assert_eq!((next.after, next.limit), ((1234, 7), 200));
        for bad in [
            "",
            "12",
            "12.",
            ".3",
            "-1.0",
            "1.2.3",
            "a.b",
            "99999999999999999999.1",
        ] {
            assert!(Page::parse(Some(bad), None).is_err(), "{bad:?}");
        }
        assert!(Page::parse(None, Some(0)).is_err());
        assert!(Page::parse(None, Some(201)).is_err());
    }
}
