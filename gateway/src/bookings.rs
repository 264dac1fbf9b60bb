//! Bookings and their tickets: what a buyer sees, cancelling, the QR code, transfer and
//! check-in at the door.
//!
//! Bookings, their seats and their refunds are seat state: the consumer creates them when
//! a payment succeeds and cancels them (`cancel_booking` goes through the pipeline like
//! any other seat command). A ticket's holder and its check-in are not seat state — no
//! seat changes hands in the pipeline's sense — so the gateway writes those itself, each
//! with one conditional `UPDATE` that is its own compare-and-set:
//!
//! - check-in succeeds for exactly one scanner however many scan the same code at once
//!   (`checked_in_at IS NULL` in the `WHERE`), and
//! - a transfer moves the holder and bumps `code_version` in the same statement, so the
//!   code printed for the previous holder (signed over the old version) stops checking in
//!   at the moment the ticket changes hands.
//!
//! When such an `UPDATE` matches no row, the ticket is read again only to say *why*.
//! Ticket codes are signed (`seatq_common::ticket_code`); a code with a bad signature is
//! answered like an unknown ticket so forgers learn nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::command::{CancelBooking, Command};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{BookingId, EventId, HoldId, RequestId, TicketId, UserId};
use seatq_common::ticket_code::{self, TicketCodeError};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::commands;
use crate::state::AppState;

/// How long a cancel waits for the consumer's decision before answering 202.
pub const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// `GET /v1/me/bookings`: default and largest page.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A ticket as its holder, the booking's owner or an admin sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub ticket_id: TicketId,
    /// The seat, as on the seat map (`A-3-12`); absent for general admission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<String>,
    /// Section code.
    pub section: String,
    pub status: TicketStatus,
    pub holder_user_id: UserId,
    /// What the QR code carries; only for the current holder (and admins), and only
    /// while the ticket is not void.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The QR code as SVG (holder or admin).
    pub qr_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Valid,
    Void,
    CheckedIn,
}

/// A booking with its tickets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BookingView {
    pub booking_id: BookingId,
    pub event_id: EventId,
    pub event_title: String,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub amount_cents: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub hold_id: HoldId,
    pub tickets: Vec<TicketView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BookingList {
    /// Newest first.
    pub bookings: Vec<BookingView>,
}

/// A booking the consumer cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelledBooking {
    pub booking_id: BookingId,
    /// `cancelled`, or `partially_cancelled` when some of its tickets were transferred or
    /// used: only the tickets still the buyer's are given back.
    pub status: String,
    /// What will be refunded for these tickets (pro rata, by the event's policy; 0 after
    /// the cutoff).
    pub refund_cents: i64,
    /// The tickets this cancellation made void.
    pub cancelled_tickets: Vec<TicketId>,
}

/// A cancellation the broker has but the consumer has not decided yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PendingCancel {
    pub request_id: RequestId,
    /// Always `pending`.
    pub status: String,
}

pub enum CancelOutcome {
    Cancelled(CancelledBooking),
    Pending(PendingCancel),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Who gets the ticket (their user id: 1 to 128 characters, no whitespace or control
    /// characters).
    #[schema(
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]{1,128}$"
    )]
    pub to_user_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinBody {
    /// The code from the ticket's QR code: `SQ1.` and 48 URL-safe base64 characters
    /// (else 400 `ticket_code_malformed`).
    #[schema(pattern = "^SQ1\\.[A-Za-z0-9_-]{48}$")]
    pub code: String,
    /// The event being admitted to: a ticket for another event is refused. Without it,
    /// 422 `event_required`.
    #[schema(value_type = String, format = Uuid, required = true)]
    pub event_id: Option<EventId>,
}

/// A ticket just checked in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckinView {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_id: Option<String>,
    pub section: String,
    pub holder_user_id: UserId,
    pub checked_in_at: DateTime<Utc>,
}

type BookingRow = (
    BookingId,
    EventId,
    String,
    UserId,
    String,
    i64,
    Option<i64>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    HoldId,
);

const SELECT_BOOKING: &str = "SELECT b.id, b.event_id, e.title, b.user_id, b.status, \
       b.amount_cents, b.refund_cents, b.created_at, b.cancelled_at, b.hold_id \
     FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = $1";

const SELECT_USER_BOOKINGS: &str = "SELECT b.id, b.event_id, e.title, b.user_id, b.status, \
       b.amount_cents, b.refund_cents, b.created_at, b.cancelled_at, b.hold_id \
     FROM bookings b JOIN events e ON e.id = b.event_id \
     WHERE b.user_id = $1 ORDER BY b.created_at DESC, b.id DESC LIMIT $2";

/// id, booking, event, seat_no, section code, holder, code_version, status, checked_in_at,
/// and the booking's owner.
type TicketRow = (
    TicketId,
    BookingId,
    EventId,
    Option<i32>,
    String,
    UserId,
    i32,
    String,
    Option<DateTime<Utc>>,
    UserId,
);

const SELECT_TICKETS_OF_BOOKINGS: &str = "SELECT t.id, t.booking_id, t.event_id, t.seat_no, \
       s.code, t.holder_user_id, t.code_version, t.status, t.checked_in_at, b.user_id \
     FROM tickets t JOIN sections s ON s.id = t.section_id JOIN bookings b ON b.id = t.booking_id \
     WHERE t.booking_id = ANY($1) ORDER BY t.booking_id, t.seat_no NULLS LAST, t.id";

const SELECT_TICKET: &str = "SELECT t.id, t.booking_id, t.event_id, t.seat_no, \
       s.code, t.holder_user_id, t.code_version, t.status, t.checked_in_at, b.user_id \
     FROM tickets t JOIN sections s ON s.id = t.section_id JOIN bookings b ON b.id = t.booking_id \
     WHERE t.id = $1";

/// Hand the ticket to `$2` if `$3` holds it and it can still be used; the new version
/// voids every code issued before. (Public: the consumer's rules model runs it as is.)
pub const TRANSFER_TICKET: &str = "WITH moved AS ( \
       UPDATE tickets SET holder_user_id = $2, code_version = code_version + 1 \
       WHERE id = $1 AND holder_user_id = $3 AND holder_user_id <> $2 AND status = 'valid' \
         AND checked_in_at IS NULL \
       RETURNING id, booking_id, event_id, seat_no, section_id, holder_user_id, code_version, \
         status, checked_in_at) \
     SELECT m.id, m.booking_id, m.event_id, m.seat_no, s.code, m.holder_user_id, \
       m.code_version, m.status, m.checked_in_at, b.user_id \
     FROM moved m JOIN sections s ON s.id = m.section_id JOIN bookings b ON b.id = m.booking_id";

/// Check the ticket in if this code version is current, the ticket valid, not used yet
/// and for event `$4`. Exactly one of any concurrent scans matches; a cancellation being
/// decided holds the ticket's row, so a scan waits for it and then finds the ticket void.
pub const CHECK_IN: &str = "WITH admitted AS ( \
       UPDATE tickets SET checked_in_at = now(), checked_in_by = $3 \
       WHERE id = $1 AND code_version = $2 AND status = 'valid' AND checked_in_at IS NULL \
         AND event_id = $4 \
       RETURNING id, event_id, seat_no, section_id, holder_user_id, checked_in_at) \
     SELECT a.id, a.event_id, a.seat_no, s.code, a.holder_user_id, a.checked_in_at \
     FROM admitted a JOIN sections s ON s.id = a.section_id";

type CheckinRow = (
    TicketId,
    EventId,
    Option<i32>,
    String,
    UserId,
    DateTime<Utc>,
);

pub fn booking_not_found(id: BookingId) -> AppError {
    AppError::not_found("booking_not_found", format!("no booking {id}"))
}

pub fn ticket_not_found(id: Option<TicketId>) -> AppError {
    match id {
        Some(id) => AppError::not_found("ticket_not_found", format!("no ticket {id}")),
        None => AppError::not_found("ticket_not_found", "no such ticket"),
    }
}

/// Where a ticket's QR code is served (relative to the API root).
pub fn qr_url(id: TicketId) -> String {
    format!("/v1/tickets/{id}/qr.svg")
}

fn secret(state: &AppState) -> &[u8] {
    state.settings.tickets.code_secret.as_bytes()
}

/// The events of `ids`, from the catalog cache (an event is never deleted, so a missing
/// one only leaves its seat labels out).
async fn entries(
    state: &AppState,
    ids: Vec<EventId>,
) -> AppResult<HashMap<EventId, Arc<EventEntry>>> {
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        if let Some(entry) = state.catalog.event(id).await? {
            out.insert(id, entry);
        }
    }
    Ok(out)
}

fn seat_label(entry: Option<&Arc<EventEntry>>, seat_no: Option<i32>) -> Option<String> {
    seat_no.and_then(|no| entry.and_then(|e| e.layout.seat_label(no)))
}

fn ticket_status(status: &str, checked_in_at: Option<DateTime<Utc>>) -> TicketStatus {
    match (status, checked_in_at) {
        ("void", _) => TicketStatus::Void,
        (_, Some(_)) => TicketStatus::CheckedIn,
        _ => TicketStatus::Valid,
    }
}

/// The view of `row` for `viewer`; `None` as viewer leaves the code out.
fn ticket_view(
    state: &AppState,
    entry: Option<&Arc<EventEntry>>,
    row: &TicketRow,
    viewer: Option<&AuthUser>,
) -> TicketView {
    let (id, _, _, seat_no, section, holder, version, status, checked_in_at, _) = row;
    let status = ticket_status(status, *checked_in_at);
    let shows_code = status != TicketStatus::Void
        && viewer.is_some_and(|v| v.is_admin() || &v.user_id == holder);
    TicketView {
        ticket_id: *id,
        seat_id: seat_label(entry, *seat_no),
        section: section.clone(),
        status,
        holder_user_id: holder.clone(),
        code: shows_code.then(|| ticket_code::encode(secret(state), id.0, *version)),
        qr_url: qr_url(*id),
        checked_in_at: *checked_in_at,
    }
}

async fn tickets_of(state: &AppState, bookings: &[BookingId]) -> AppResult<Vec<TicketRow>> {
    Ok(sqlx::query_as(SELECT_TICKETS_OF_BOOKINGS)
        .bind(bookings.iter().map(|b| b.0).collect::<Vec<_>>())
        .fetch_all(&state.pool)
        .await?)
}

/// Views of `rows` with their tickets, in the order of `rows`.
async fn booking_views(
    state: &AppState,
    user: &AuthUser,
    rows: Vec<BookingRow>,
) -> AppResult<Vec<BookingView>> {
    let ids: Vec<BookingId> = rows.iter().map(|r| r.0).collect();
    let mut tickets: HashMap<BookingId, Vec<TicketRow>> = HashMap::new();
    for t in tickets_of(state, &ids).await? {
        tickets.entry(t.1).or_default().push(t);
    }
    let event_ids: Vec<EventId> = rows.iter().map(|r| r.1).collect();
    let events = entries(state, event_ids).await?;
    Ok(rows
        .into_iter()
        .map(
            |(booking_id, event_id, title, _, status, amount, refund, created, cancelled, hold)| {
                let entry = events.get(&event_id);
                BookingView {
                    booking_id,
                    event_id,
                    event_title: title,
                    status,
                    amount_cents: amount,
                    refund_cents: refund,
                    created_at: created,
                    cancelled_at: cancelled,
                    hold_id: hold,
                    tickets: tickets
                        .remove(&booking_id)
                        .unwrap_or_default()
                        .iter()
                        .map(|t| ticket_view(state, entry, t, Some(user)))
                        .collect(),
                }
            },
        )
        .collect())
}

/// The booking if `user` owns it (or is an admin); otherwise it does not exist for them.
async fn visible_booking(
    state: &AppState,
    user: &AuthUser,
    id: BookingId,
) -> AppResult<BookingRow> {
    let row: Option<BookingRow> = sqlx::query_as(SELECT_BOOKING)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    row.filter(|r| user.may_see(&r.3))
        .ok_or_else(|| booking_not_found(id))
}

pub async fn booking(state: &AppState, user: &AuthUser, id: BookingId) -> AppResult<BookingView> {
    let row = visible_booking(state, user, id).await?;
    booking_views(state, user, vec![row])
        .await?
        .pop()
        .ok_or_else(|| booking_not_found(id))
}

/// The caller's bookings, newest first.
pub async fn my_bookings(
    state: &AppState,
    user: &AuthUser,
    limit: Option<u32>,
) -> AppResult<BookingList> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let rows: Vec<BookingRow> = sqlx::query_as(SELECT_USER_BOOKINGS)
        .bind(&user.user_id)
        .bind(i64::from(limit))
        .fetch_all(&state.pool)
        .await?;
    Ok(BookingList {
        bookings: booking_views(state, user, rows).await?,
    })
}

/// Ask the consumer to cancel the booking and wait a little for its decision.
#[tracing::instrument(skip_all, fields(%booking_id, user_id = %user.user_id))]
pub async fn cancel(
    state: &AppState,
    user: &AuthUser,
    booking_id: BookingId,
) -> AppResult<CancelOutcome> {
    let row = visible_booking(state, user, booking_id).await?;
    if row.4 == "cancelled" {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "booking_cancelled",
            "this booking is already cancelled",
        )
        .with("refund_cents", row.6));
    }
    let entry = state
        .catalog
        .event(row.1)
        .await?
        .ok_or_else(|| booking_not_found(booking_id))?;
    let request_id = RequestId::new();
    let command = Command::CancelBooking(CancelBooking {
        booking_id,
        by_admin: user.is_admin(),
    });
    let decision = commands::send(
        state,
        &entry,
        &user.user_id,
        (request_id, commands::IdOrigin::Fresh),
        command,
        Some(CANCEL_WAIT),
    )
    .await?;
    let Some(decision) = decision else {
        return Ok(CancelOutcome::Pending(PendingCancel {
            request_id,
            status: "pending".into(),
        }));
    };
    if let Some(error) = commands::rejection_error(&decision) {
        return Err(error);
    }
    if decision.status != "applied" {
        return Err(AppError::internal(
            "cancel booking",
            format!("unexpected decision status {:?}", decision.status),
        ));
    }
    let refund_cents = decision
        .detail
        .get("refund_cents")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    let whole = decision.detail["outcome"] == "booking_cancelled";
    let cancelled_tickets: Vec<TicketId> = decision
        .detail
        .get("cancelled_tickets")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    tracing::info!(
        refund_cents,
        whole,
        tickets = cancelled_tickets.len(),
        "booking cancelled"
    );
    Ok(CancelOutcome::Cancelled(CancelledBooking {
        booking_id,
        status: if whole {
            "cancelled"
        } else {
            "partially_cancelled"
        }
        .into(),
        refund_cents,
        cancelled_tickets,
    }))
}

async fn ticket_row(state: &AppState, id: TicketId) -> AppResult<Option<TicketRow>> {
    Ok(sqlx::query_as(SELECT_TICKET)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?)
}

/// A ticket for its holder, the booking's owner or an admin (the code only for the
/// holder and admins).
pub async fn ticket(state: &AppState, user: &AuthUser, id: TicketId) -> AppResult<TicketView> {
    let row = ticket_row(state, id)
        .await?
        .filter(|t| user.may_see(&t.5) || user.may_see(&t.9))
        .ok_or_else(|| ticket_not_found(Some(id)))?;
    let events = entries(state, vec![row.2]).await?;
    Ok(ticket_view(state, events.get(&row.2), &row, Some(user)))
}

/// The ticket's QR code as SVG, for its holder or an admin.
pub async fn qr_svg(state: &AppState, user: &AuthUser, id: TicketId) -> AppResult<String> {
    let (_, _, _, _, _, _, version, status, _, _) = ticket_row(state, id)
        .await?
        .filter(|t| user.may_see(&t.5))
        .ok_or_else(|| ticket_not_found(Some(id)))?;
    if status == "void" {
        return Err(AppError::new(
            StatusCode::GONE,
            "ticket_void",
            "this ticket is void (its booking was cancelled)",
        ));
    }
    let code = ticket_code::encode(secret(state), id.0, version);
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| AppError::internal("qr code", e))?;
    Ok(qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .build())
}

/// Give the caller's ticket to `to`; the caller's code stops working at once.
#[tracing::instrument(skip_all, fields(%id, user_id = %user.user_id))]
pub async fn transfer(
    state: &AppState,
    user: &AuthUser,
    id: TicketId,
    to: &str,
) -> AppResult<TicketView> {
    crate::auth::validate_user_id(to)?;
    let moved: Option<TicketRow> = sqlx::query_as(TRANSFER_TICKET)
        .bind(id)
        .bind(to)
        .bind(&user.user_id)
        .fetch_optional(&state.pool)
        .await?;
    if let Some(row) = moved {
        tracing::info!(to, version = row.6, "ticket transferred");
        let events = entries(state, vec![row.2]).await?;
        // The new code belongs to the recipient: the sender's answer leaves it out.
        return Ok(ticket_view(state, events.get(&row.2), &row, None));
    }
    // Nothing moved: say why, without revealing tickets the caller may not see.
    let row = ticket_row(state, id)
        .await?
        .filter(|t| user.may_see(&t.5))
        .ok_or_else(|| ticket_not_found(Some(id)))?;
    let (_, _, _, _, _, holder, _, status, checked_in_at, _) = row;
    if holder != user.user_id {
        return Err(AppError::forbidden(
            "not_ticket_holder",
            "only the ticket's holder can transfer it",
        ));
    }
    if to == user.user_id.as_str() {
        return Err(AppError::unprocessable(
            "transfer_to_self",
            "the ticket is already yours",
        ));
    }
    if status == "void" {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "ticket_void",
            "this ticket is void (its booking was cancelled)",
        ));
    }
    if let Some(at) = checked_in_at {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "already_checked_in",
            "a ticket that has been used cannot be transferred",
        )
        .with("checked_in_at", at));
    }
    // It changed between the UPDATE and this read (a concurrent transfer or check-in).
    Err(AppError::new(
        StatusCode::CONFLICT,
        "ticket_changed",
        "the ticket changed meanwhile; look at it again",
    ))
}

/// Admit the ticket a scanned code names, once.
#[tracing::instrument(skip_all, fields(admin = %admin.user_id, ticket_id))]
pub async fn check_in(
    state: &AppState,
    admin: &AuthUser,
    code: &str,
    event_id: Option<EventId>,
) -> AppResult<CheckinView> {
    // A scanner is always at one event's door: without it, any valid ticket of any event
    // would get in.
    let event_id = event_id.ok_or_else(|| {
        AppError::unprocessable(
            "event_required",
            "say which event is being admitted to (event_id)",
        )
    })?;
    let (uuid, version) = ticket_code::decode(secret(state), code).map_err(|e| match e {
        TicketCodeError::Malformed => AppError::bad_request(e.code(), "this is not a ticket code"),
        TicketCodeError::BadSignature => {
            tracing::warn!("a ticket code with a bad signature was presented");
            ticket_not_found(None)
        }
    })?;
    let id = TicketId(uuid);
    tracing::Span::current().record("ticket_id", tracing::field::display(id));
    let admitted: Option<CheckinRow> = sqlx::query_as(CHECK_IN)
        .bind(id)
        .bind(version)
        .bind(&admin.user_id)
        .bind(event_id)
        .fetch_optional(&state.pool)
        .await?;
    if let Some((ticket_id, event_id, seat_no, section, holder, at)) = admitted {
        tracing::info!("ticket checked in");
        let events = entries(state, vec![event_id]).await?;
        return Ok(CheckinView {
            ticket_id,
            event_id,
            seat_id: seat_label(events.get(&event_id), seat_no),
            section,
            holder_user_id: holder,
            checked_in_at: at,
        });
    }
    let (_, _, ticket_event, _, _, _, current, status, checked_in_at, _) = ticket_row(state, id)
        .await?
        .ok_or_else(|| ticket_not_found(None))?;
    let conflict = |code, detail: &str| AppError::new(StatusCode::CONFLICT, code, detail);
    if event_id != ticket_event {
        return Err(conflict("wrong_event", "this ticket is for another event")
            .with("ticket_event_id", ticket_event));
    }
    if version < current {
        return Err(conflict(
            "code_superseded",
            "this code was replaced (the ticket was transferred)",
        ));
    }
    if version != current {
        // Signed by us but never issued for this ticket: treat like an unknown code.
        tracing::warn!(
            version,
            current,
            "a ticket code from the future was presented"
        );
        return Err(ticket_not_found(None));
    }
    if status == "void" {
        return Err(conflict(
            "ticket_void",
            "this ticket is void (its booking was cancelled)",
        ));
    }
    if let Some(at) = checked_in_at {
        return Err(
            conflict("already_checked_in", "this ticket has already been used")
                .with("checked_in_at", at),
        );
    }
    // Changed between the UPDATE and this read; a rescan gets a definite answer.
    Err(conflict(
        "ticket_changed",
        "the ticket changed while it was scanned; scan again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn void_wins_over_checked_in() {
        let now = Some(Utc::now());
        assert_eq!(ticket_status("valid", None), TicketStatus::Valid);
        assert_eq!(ticket_status("valid", now), TicketStatus::CheckedIn);
        assert_eq!(ticket_status("void", now), TicketStatus::Void);
        assert_eq!(ticket_status("void", None), TicketStatus::Void);
    }
}
