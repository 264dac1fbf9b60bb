//! Hold requests: validate, enqueue, and answer what became of them.
//!
//! The gateway never touches seat state. It checks a request against the event (cached),
//! turns seat ids into seat numbers, produces a `hold_seats` command to the event's
//! partition and answers 202 only once the broker has acknowledged it: an accepted
//! request is durable. The decision is made by the consumer; it is read back from
//! PostgreSQL (`requests`), or waited for inline with `?wait_ms=`.
//!
//! What a client is told and what happens agree. Request ids are minted per user so that
//! they prove their own origin (`request_ids`): a request that got a 202 is `pending` or
//! decided, never 404, even when Redis lost its entry. A request the broker did not
//! acknowledge is abandoned before the 503 (`commands::abandon`), so it is never applied
//! later; an `Idempotency-Key` repeat of an abandoned request is a fresh attempt.
//!
//! # The seat limit pre-check
//!
//! The consumer is authoritative for `max_seats_per_user`: it decides requests in order
//! with the seat rows locked, so concurrent requests by one user can never get past it.
//! [`check_seat_limit`] only refuses early and clearly (`409 seat_limit_reached` with
//! `held`, `requested` and `limit`) a request that cannot succeed because the user already
//! holds or bought the event's limit, with one query on the `holds_user_live` index. It is
//! never stricter than the consumer for a single request: it counts what the consumer
//! counts (active and sold holds) except active holds already past their expiry (those
//! are about to be released), and nothing for requests still in the queue. A repeat of an
//! accepted request (same `Idempotency-Key`) is let through to get its original answer.
//! If the query fails the request goes on: the consumer decides.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::command::{Command, CommandEnvelope, HoldSeats};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{BookingId, EventId, HoldId, RequestId, SectionId, UserId};
use seatq_common::layout::VenueLayout;
use seatq_common::seating::{accessible_selection_problem, SeatAttribute};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::commands::{self, Abandoned};
use crate::request_registry::{self, AcceptedRequest, Claim};
use crate::state::AppState;

/// `{seat_ids}` for specific seats, or `{section, quantity}` for the best available
/// (general admission: places). At most `gateway.max_seats_per_request` (10 unless
/// configured) and the event's `max_seats_per_user` seats; seats and sections must be the
/// event's (422 otherwise, which no schema can say).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequestBody {
    #[schema(min_items = 1, max_items = 10)]
    pub seat_ids: Option<Vec<String>>,
    pub section: Option<String>,
    #[schema(minimum = 1, maximum = 10)]
    pub quantity: Option<i32>,
    /// "I need a wheelchair space" (self-declared, no proof asked): the buyer may hold
    /// seats kept for access. Named seats must include a wheelchair space with any
    /// companion seats beside it, in one row; with a section, seatq picks a space and
    /// `quantity - 1` companion seats beside it.
    #[serde(default)]
    pub accessible: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Held,
    Rejected,
}

/// What became of a hold request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldRequestView {
    pub request_id: RequestId,
    /// Absent only while pending, when the gateway lost track of where the request is
    /// queued (its queue position, `ahead`, is then absent too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    pub status: RequestState,
    pub status_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<HoldId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_ids: Option<Vec<String>>,
    /// General-admission section of the hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was rejected: `seats_unavailable`, `insufficient_seats`,
    /// `user_limit_exceeded`, `sale_not_open`, `event_not_found`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Requested seats someone else had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_seats: Option<Vec<String>>,
    /// Nearby seats that were available when the request was decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<String>>,
    /// `would_strand_seat`: the seats the hold would have left on their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stranded_seats: Option<Vec<String>>,
    /// `would_strand_seat`: the nearest seats, as many as asked for, that leave no seat
    /// alone (free when the request was decided); absent when none were near.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Vec<String>>,
    /// Held: what the hold costs, each seat at its own price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// While pending: commands ahead of this one in the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<i64>,
    /// Refused for seats someone else had: for each, how far ahead in the queue the
    /// request that got it was (never who).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Vec<crate::seat_history::LostSeat>>,
}

/// A hold as its owner sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldView {
    pub hold_id: HoldId,
    pub event_id: EventId,
    /// `active`, `sold`, `cancelled` or `expired`.
    pub status: String,
    pub seat_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub quantity: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The expiry was pushed back once because a payment was in progress.
    pub extended: bool,
    /// This hold is a waitlist offer: the seat was released and handed to you.
    pub from_waitlist: bool,
    /// The booking this hold became once paid (`status` = `sold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<BookingId>,
    /// What the hold costs: each seat's price (its price category's, else its section's).
    pub total_cents: i64,
}

/// Check a request against the event and turn it into a command body.
pub fn plan_hold(
    entry: &EventEntry,
    body: &HoldRequestBody,
    max_per_request: usize,
) -> AppResult<HoldSeats> {
    let limit = max_per_request.min(entry.info.max_seats_per_user.max(1) as usize);
    let layout = &entry.layout;
    match (&body.seat_ids, &body.section, body.quantity) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(AppError::unprocessable(
            "ambiguous_hold_request",
            "give either seat_ids or section and quantity, not both",
        )),
        (Some(seat_ids), None, None) => {
            let seat_nos = plan_seats(layout, seat_ids, limit)?;
            if body.accessible {
                let chosen: std::collections::BTreeSet<i32> = seat_nos.iter().copied().collect();
                match accessible_selection_problem(layout, &chosen) {
                    Some("accessible_space_required") => {
                        return Err(AppError::unprocessable(
                            "accessible_space_required",
                            "none of these seats is a wheelchair space",
                        ))
                    }
                    Some(code) => {
                        return Err(AppError::unprocessable(
                            code,
                            "a wheelchair space and its companion seats must be side by side in one row",
                        ))
                    }
                    None => {}
                }
            }
            Ok(HoldSeats::Seats {
                seat_nos,
                accessible: body.accessible,
            })
        }
        (None, Some(section), quantity) => {
            let quantity = quantity.ok_or_else(|| {
                AppError::unprocessable("invalid_quantity", "quantity is required with section")
            })?;
            if quantity < 1 {
                return Err(AppError::unprocessable(
                    "invalid_quantity",
                    "quantity must be at least 1",
                ));
            }
            if quantity as usize > limit {
                return Err(too_many(limit));
            }
            let section = layout.section_by_code(section).ok_or_else(|| {
                AppError::unprocessable(
                    "unknown_section",
                    format!("no section {section:?} at this event"),
                )
            })?;
            if body.accessible && !layout.section_has(section, SeatAttribute::Accessible) {
                return Err(AppError::unprocessable(
                    "accessible_space_required",
                    format!("section {} has no wheelchair spaces", section.code),
                ));
            }
            Ok(HoldSeats::BestAvailable {
                section_id: section.id,
                quantity,
                accessible: body.accessible,
            })
        }
        (None, None, _) => Err(AppError::unprocessable(
            "invalid_hold_request",
            "give seat_ids, or section and quantity",
        )),
    }
}

fn too_many(limit: usize) -> AppError {
    AppError::unprocessable(
        "too_many_seats",
        format!("at most {limit} seats per request at this event"),
    )
    .with("max_seats", limit)
}

fn plan_seats(layout: &VenueLayout, seat_ids: &[String], limit: usize) -> AppResult<Vec<i32>> {
    if seat_ids.is_empty() {
        return Err(AppError::unprocessable(
            "empty_seat_list",
            "seat_ids is empty",
        ));
    }
    if seat_ids.len() > limit {
        return Err(too_many(limit));
    }
    let mut seen = HashSet::new();
    let duplicates: Vec<&String> = seat_ids.iter().filter(|s| !seen.insert(*s)).collect();
    if !duplicates.is_empty() {
        return Err(
            AppError::unprocessable("duplicate_seats", "a seat is listed twice")
                .with("duplicate_seats", duplicates),
        );
    }
    let mut seat_nos = Vec::with_capacity(seat_ids.len());
    let mut unknown = Vec::new();
    for id in seat_ids {
        match layout.parse_seat_label(id) {
            Some(no) => seat_nos.push(no),
            None => unknown.push(id.chars().take(64).collect::<String>()),
        }
    }
    if !unknown.is_empty() {
        return Err(
            AppError::unprocessable("unknown_seat", "no such seat at this event")
                .with("unknown_seats", unknown),
        );
    }
    Ok(seat_nos)
}

/// Where the request's status can be polled (relative to the API root).
pub fn status_url(id: RequestId) -> String {
    format!("/v1/hold-requests/{id}")
}

/// What `submit` did: the request id, and the decision if it came within `wait`.
pub struct Submitted {
    pub request_id: RequestId,
    pub decided: Option<HoldRequestView>,
}

/// Enqueue a hold request and, if asked, wait for its decision.
#[tracing::instrument(skip_all, fields(event_id = %entry.info.id, user_id = %user.user_id, request_id))]
pub async fn submit(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    hold: HoldSeats,
    idempotency_key: Option<&str>,
    wait: Option<Duration>,
) -> AppResult<Submitted> {
    let mut request_id = state.request_ids.mint(&user.user_id);
    let mut redis = state.redis.clone();
    if let Some(key) = idempotency_key {
        let fingerprint = serde_json::to_string(&(entry.info.id, &hold))
            .map_err(|e| AppError::internal("fingerprint", e))?;
        match claim_key(state, &mut redis, user, key, request_id, &fingerprint).await? {
            KeyClaim::Send(id) => request_id = id,
            KeyClaim::Answered(id) => {
                // Already accepted (or decided): answer with it, producing nothing new.
                tracing::Span::current().record("request_id", tracing::field::display(id));
                return finish(state, user, id, wait, None).await;
            }
        }
    }
    tracing::Span::current().record("request_id", tracing::field::display(request_id));

    let envelope = CommandEnvelope {
        request_id,
        event_id: entry.info.id,
        user_id: user.user_id.clone(),
        issued_at: Utc::now(),
        command: Command::HoldSeats(hold),
        reply: wait.is_some(),
    };
    let payload = envelope
        .encode()
        .map_err(|e| AppError::internal("encode command", e))?;
    // Subscribe before producing so a fast decision cannot slip past.
    let signal = wait.map(|_| state.decisions.subscribe(request_id));
    let placed = match state
        .commands
        .send_command(entry.info.kafka_partition, request_id, payload)
        .await
    {
        Ok(placed) => placed,
        Err(e) => {
            state.decisions.unsubscribe(request_id);
            tracing::warn!(error = %e, "broker did not acknowledge the command");
            const DETAIL: &str = "hold requests cannot be accepted right now; browsing still works";
            // The broker may have written it all the same: make sure it is never applied
            // before saying so, or answer what the consumer already made of it.
            return match commands::abandon(
                state,
                &envelope,
                entry.info.kafka_partition,
                &e.to_string(),
            )
            .await
            {
                Ok(Abandoned::Recorded) => Err(commands::not_accepted(DETAIL, Some(request_id))),
                Ok(Abandoned::AlreadyDecided) => finish(state, user, request_id, wait, None).await,
                Err(db) => {
                    // Neither recorded nor known: it may still be decided. A repeat with
                    // the same Idempotency-Key sends the same request id again.
                    tracing::warn!(detail = %db.detail, "could not abandon the request");
                    Err(commands::not_accepted(DETAIL, None))
                }
            };
        }
    };
    tracing::debug!(
        partition = placed.partition,
        offset = placed.offset,
        seq = placed.seq,
        "command accepted by the broker"
    );
    let accepted = AcceptedRequest {
        user_id: user.user_id.clone(),
        event_id: entry.info.id,
        partition: placed.partition,
        offset: placed.offset,
        seq: placed.seq,
        record_commands: placed.record_commands,
        accepted_at: envelope.issued_at,
    };
    if let Err(e) = request_registry::record_accepted(&mut redis, request_id, &accepted).await {
        // The command is in the queue and will be decided; until then its status is
        // `pending` without a queue position (the id proves it was issued).
        tracing::warn!(detail = %e.detail, "could not record the accepted request");
    }
    finish(state, user, request_id, wait, signal).await
}

/// What to do with a request that came with an `Idempotency-Key`.
enum KeyClaim {
    /// Produce it under this id: the key's first use, a repeat of an attempt that never
    /// reached the broker (the same id again: the consumer applies it at most once), or a
    /// fresh attempt after an abandoned one.
    Send(RequestId),
    /// The key's request was accepted or decided: answer with it.
    Answered(RequestId),
}

/// Claim `key` for `fresh`, or find what its earlier use became.
async fn claim_key(
    state: &AppState,
    redis: &mut redis::aio::ConnectionManager,
    user: &AuthUser,
    key: &str,
    fresh: RequestId,
    fingerprint: &str,
) -> AppResult<KeyClaim> {
    // A few rounds: a concurrent repeat may replace an abandoned id between our reads.
    for _ in 0..3 {
        let existing = match request_registry::claim_idempotency_key(
            redis,
            &user.user_id,
            key,
            fresh,
            fingerprint,
        )
        .await?
        {
            Claim::Fresh => return Ok(KeyClaim::Send(fresh)),
            Claim::Repeat(existing) => existing,
        };
        if request_registry::find_accepted(redis, existing)
            .await?
            .is_some()
        {
            return Ok(KeyClaim::Answered(existing));
        }
        let Some((_, decided)) = decided_view(state, existing).await? else {
            // The first attempt never reached the broker: send it again, same request id.
            return Ok(KeyClaim::Send(existing));
        };
        if decided.reason.as_deref() != Some(commands::NOT_ACCEPTED) {
            return Ok(KeyClaim::Answered(existing));
        }
        // The first attempt was refused with a 503 and abandoned: it will never be
        // applied, so this one is a new attempt with an id of its own.
        if request_registry::replace_idempotency_claim(
            redis,
            &user.user_id,
            key,
            existing,
            fresh,
            fingerprint,
        )
        .await?
        {
            return Ok(KeyClaim::Send(fresh));
        }
    }
    Err(AppError::new(
        axum::http::StatusCode::CONFLICT,
        "idempotency_key_in_flux",
        "the idempotency key is being replaced; retry",
    ))
}

async fn finish(
    state: &AppState,
    user: &AuthUser,
    request_id: RequestId,
    wait: Option<Duration>,
    signal: Option<tokio::sync::oneshot::Receiver<()>>,
) -> AppResult<Submitted> {
    let Some(wait) = wait else {
        return Ok(Submitted {
            request_id,
            decided: None,
        });
    };
    let signal = signal.unwrap_or_else(|| state.decisions.subscribe(request_id));
    let deadline = tokio::time::Instant::now() + wait;
    let decided = state
        .decisions
        .wait_for(request_id, signal, deadline, || async {
            decided_view(state, request_id).await
        })
        .await?;
    let decided = decided
        .filter(|(owner, _)| user.may_see(owner))
        .map(|(_, v)| v);
    Ok(Submitted {
        request_id,
        decided,
    })
}

type DecidedRow = (
    EventId,
    UserId,
    String,
    Option<String>,
    Option<serde_json::Value>,
    DateTime<Utc>,
    Option<HoldId>,
    Option<Vec<i32>>,
    Option<SectionId>,
    Option<i32>,
    Option<DateTime<Utc>>,
);

const SELECT_DECIDED: &str =
    "SELECT r.event_id, r.user_id, r.status, r.reason, r.detail, r.decided_at, \
       h.id, h.seat_nos, h.ga_section_id, h.quantity, h.expires_at \
     FROM requests r LEFT JOIN holds h ON h.id = r.hold_id WHERE r.request_id = $1";

fn strings(detail: &Option<serde_json::Value>, key: &str) -> Option<Vec<String>> {
    detail
        .as_ref()?
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The decision for `id` with its owner, if the consumer has made it.
pub async fn decided_view(
    state: &AppState,
    id: RequestId,
) -> AppResult<Option<(UserId, HoldRequestView)>> {
    let row: Option<DecidedRow> = sqlx::query_as(SELECT_DECIDED)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    let Some((
        event_id,
        owner,
        status,
        reason,
        detail,
        decided_at,
        hold_id,
        seat_nos,
        ga,
        quantity,
        expires_at,
    )) = row
    else {
        return Ok(None);
    };
    let entry = state.catalog.event(event_id).await?;
    let layout = entry.as_ref().map(|entry| entry.layout.clone());
    let labels = |nos: &[i32]| -> Vec<String> {
        nos.iter()
            .filter_map(|n| layout.as_ref().and_then(|l| l.seat_label(*n)))
            .collect()
    };
    let section = ga.and_then(|id| {
        layout
            .as_ref()
            .and_then(|l| l.section_by_id(id).map(|s| s.code.clone()))
    });
    let unavailable_seats = strings(&detail, "unavailable");
    let receipt = match (&entry, &unavailable_seats) {
        (Some(entry), Some(lost))
            if !lost.is_empty() && reason.as_deref() == Some("seats_unavailable") =>
        {
            let nos: Vec<i32> = lost
                .iter()
                .filter_map(|label| entry.layout.parse_seat_label(label))
                .collect();
            Some(crate::seat_history::receipt(&state.pool, entry, id, &nos).await?)
        }
        _ => None,
    };
    let view = HoldRequestView {
        request_id: id,
        event_id: Some(event_id),
        status: if status == "held" {
            RequestState::Held
        } else {
            RequestState::Rejected
        },
        status_url: status_url(id),
        hold_id,
        seat_ids: seat_nos.as_deref().map(labels),
        section,
        quantity,
        expires_at,
        reason,
        unavailable_seats,
        alternatives: strings(&detail, "alternatives"),
        stranded_seats: strings(&detail, "stranded"),
        suggestion: strings(&detail, "suggestion"),
        total_cents: match (&entry, status.as_str()) {
            (Some(entry), "held") => Some(entry.layout.hold_total(
                seat_nos.as_deref().unwrap_or_default(),
                ga,
                quantity.unwrap_or(0),
            )),
            _ => None,
        },
        decided_at: Some(decided_at),
        ahead: None,
        receipt,
    };
    Ok(Some((owner, view)))
}

/// The request's state for its owner: decided (PostgreSQL), pending with its place in the
/// queue (Redis), or pending without it — when Redis lost the entry (or is down), a request
/// id the gateway minted for the caller was accepted and not decided yet (`request_ids`).
pub async fn request_status(
    state: &AppState,
    user: &AuthUser,
    id: RequestId,
) -> AppResult<HoldRequestView> {
    let not_found = || AppError::not_found("request_not_found", format!("no hold request {id}"));
    if let Some((owner, view)) = decided_view(state, id).await? {
        return if user.may_see(&owner) {
            Ok(view)
        } else {
            Err(not_found())
        };
    }
    let mut redis = state.redis.clone();
    let accepted = match request_registry::find_accepted(&mut redis, id).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(request_id = %id, detail = %e.detail, "no queue position: Redis is unavailable");
            None
        }
    };
    let Some(accepted) = accepted else {
        return if state.request_ids.issued_to(id, &user.user_id) {
            Ok(pending_view(id, None, None))
        } else {
            Err(not_found())
        };
    };
    if !user.may_see(&accepted.user_id) {
        return Err(not_found());
    }
    let next =
        seatq_common::db::next_offset(&state.pool, &state.topics.commands, accepted.partition)
            .await?;
    Ok(pending_view(
        id,
        Some(accepted.event_id),
        Some(commands_ahead(&accepted, next.unwrap_or(0))),
    ))
}

fn pending_view(id: RequestId, event_id: Option<EventId>, ahead: Option<i64>) -> HoldRequestView {
    HoldRequestView {
        request_id: id,
        event_id,
        status: RequestState::Pending,
        status_url: status_url(id),
        hold_id: None,
        seat_ids: None,
        section: None,
        quantity: None,
        expires_at: None,
        reason: None,
        unavailable_seats: None,
        alternatives: None,
        stranded_seats: None,
        suggestion: None,
        total_cents: None,
        decided_at: None,
        ahead,
        receipt: None,
    }
}

/// Commands ahead of an accepted one: whole records ahead, each about as full as the
/// one it went out in (records fill up under load), plus those before it in its record.
fn commands_ahead(accepted: &AcceptedRequest, next_offset: i64) -> i64 {
    if next_offset > accepted.offset {
        return 0;
    }
    (accepted.offset - next_offset) * i64::from(accepted.record_commands.max(1))
        + i64::from(accepted.seq)
}

/// A hold as stored, with its booking once paid.
#[derive(Debug, sqlx::FromRow)]
struct HoldRow {
    event_id: EventId,
    user_id: UserId,
    status: String,
    seat_nos: Vec<i32>,
    ga_section_id: Option<SectionId>,
    quantity: i32,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    extended: bool,
    offered_from: Option<HoldId>,
    booking_id: Option<BookingId>,
}

const SELECT_HOLD: &str = "SELECT h.event_id, h.user_id, h.status, h.seat_nos, h.ga_section_id, \
       h.quantity, h.created_at, h.expires_at, h.ended_at, h.extended, h.offered_from, \
       b.id AS booking_id \
     FROM holds h LEFT JOIN bookings b ON b.hold_id = h.id WHERE h.id = $1";

/// The hold `id` if `user` may see it (its owner or an admin), else 404.
async fn visible_hold(state: &AppState, user: &AuthUser, id: HoldId) -> AppResult<HoldRow> {
    let row: Option<HoldRow> = sqlx::query_as(SELECT_HOLD)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    row.filter(|r| user.may_see(&r.user_id))
        .ok_or_else(|| AppError::not_found("hold_not_found", format!("no hold {id}")))
}

const SELECT_MY_ACTIVE_HOLDS: &str = "SELECT h.id, h.event_id, h.user_id, h.status, h.seat_nos, \
       h.ga_section_id, h.quantity, h.created_at, h.expires_at, h.ended_at, h.extended, \
       h.offered_from, NULL::uuid AS booking_id \
     FROM holds h WHERE h.user_id = $1 AND h.status = 'active' \
     ORDER BY h.created_at DESC LIMIT 100";

pub async fn hold_view(state: &AppState, user: &AuthUser, id: HoldId) -> AppResult<HoldView> {
    let hold = visible_hold(state, user, id).await?;
    let entry = crate::routes::events::event_entry(state, hold.event_id).await?;
    Ok(view_of(id, hold, &entry))
}

/// The caller's active holds (waitlist offers included), newest first.
pub async fn my_active_holds(state: &AppState, user: &AuthUser) -> AppResult<Vec<HoldView>> {
    let rows: Vec<(HoldId, HoldRow)> = sqlx::query_as::<_, ListedHold>(SELECT_MY_ACTIVE_HOLDS)
        .bind(&user.user_id)
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|l| (l.id, l.hold))
        .collect();
    let mut views = Vec::with_capacity(rows.len());
    for (id, hold) in rows {
        let entry = crate::routes::events::event_entry(state, hold.event_id).await?;
        views.push(view_of(id, hold, &entry));
    }
    Ok(views)
}

#[derive(sqlx::FromRow)]
struct ListedHold {
    id: HoldId,
    #[sqlx(flatten)]
    hold: HoldRow,
}

fn view_of(id: HoldId, hold: HoldRow, entry: &EventEntry) -> HoldView {
    HoldView {
        hold_id: id,
        event_id: hold.event_id,
        status: hold.status,
        seat_ids: hold
            .seat_nos
            .iter()
            .filter_map(|n| entry.layout.seat_label(*n))
            .collect(),
        section: hold
            .ga_section_id
            .and_then(|g| entry.layout.section_by_id(g).map(|s| s.code.clone())),
        quantity: hold.quantity,
        created_at: hold.created_at,
        expires_at: hold.expires_at,
        ended_at: hold.ended_at,
        extended: hold.extended,
        from_waitlist: hold.offered_from.is_some(),
        booking_id: hold.booking_id,
        total_cents: entry
            .layout
            .hold_total(&hold.seat_nos, hold.ga_section_id, hold.quantity),
    }
}

/// Cancel a hold: its owner, or an admin. Returns the command's request id and whether
/// it was decided within a few seconds.
pub async fn cancel(state: &AppState, user: &AuthUser, id: HoldId) -> AppResult<(RequestId, bool)> {
    let HoldRow {
        event_id,
        user_id: owner,
        status,
        ..
    } = visible_hold(state, user, id).await?;
    if status != "active" {
        return Err(AppError::conflict(
            "hold_not_active",
            format!("the hold is {status}"),
        ));
    }
    let entry = crate::routes::events::event_entry(state, event_id).await?;
    let request_id = RequestId::new();
    let command = Command::CancelHold(seatq_common::command::CancelHold {
        hold_id: id,
        by_admin: owner != user.user_id,
    });
    let decision = crate::commands::send(
        state,
        &entry,
        &user.user_id,
        (request_id, crate::commands::IdOrigin::Fresh),
        command,
        Some(Duration::from_secs(5)),
    )
    .await?;
    if let Some(err) = decision.as_ref().and_then(crate::commands::rejection_error) {
        return Err(err);
    }
    Ok((request_id, decision.is_some()))
}

/// Seats the user holds (active, not yet past expiry) or bought at the event: what the
/// consumer counts against `max_seats_per_user`, less holds about to be released.
const SEATS_HELD: &str = "SELECT coalesce(sum(quantity), 0)::int FROM holds \
     WHERE event_id = $1 AND user_id = $2 AND status IN ('active', 'sold') \
       AND (status = 'sold' OR expires_at > now())";

/// Refuse early (`409 seat_limit_reached`) a hold request that would take the user past
/// the event's `max_seats_per_user` (see the module docs). `idempotency_key`: the
/// request's, so that a repeat of an accepted request is let through to its answer.
pub async fn check_seat_limit(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    hold: &HoldSeats,
    idempotency_key: Option<&str>,
) -> AppResult<()> {
    if !state.settings.rate_limits.seat_limit_precheck {
        return Ok(());
    }
    let requested = match hold {
        HoldSeats::Seats { seat_nos, .. } => seat_nos.len() as i32,
        HoldSeats::BestAvailable { quantity, .. } => *quantity,
    };
    let limit = entry.info.max_seats_per_user;
    let held: i32 = match sqlx::query_scalar(SEATS_HELD)
        .bind(entry.info.id)
        .bind(&user.user_id)
        .fetch_one(&state.pool)
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "seat limit pre-check skipped: the consumer decides");
            return Ok(());
        }
    };
    if held.saturating_add(requested) <= limit {
        return Ok(());
    }
    if let Some(key) = idempotency_key {
        let mut redis = state.redis.clone();
        // Unknown (Redis down) counts as a repeat: the consumer decides.
        if crate::request_registry::idempotency_key_claimed(&mut redis, &user.user_id, key)
            .await
            .unwrap_or(true)
        {
            return Ok(());
        }
    }
    let left = (limit - held).max(0);
    Err(AppError::conflict(
        "seat_limit_reached",
        format!(
            "you already hold or bought {held} of the {limit} seats one person may have at this \
             event, so {left} more at most"
        ),
    )
    .with("held", held)
    .with("requested", requested)
    .with("limit", limit))
}
