//! Sending a lifecycle command (cancel, waitlist, payment outcome, booking cancellation)
//! through the pipeline and, optionally, waiting for its decision.
//!
//! These commands change seat state, so like hold requests they only ever go through the
//! event's partition of the commands topic; the gateway never writes seats itself. A 202
//! means the broker has the command; the decision is read back from `requests`.
//!
//! **A 503 must be true.** When the broker does not acknowledge a command in time, it may
//! still have written it (the acknowledgement was late, or lost): the command would then
//! be decided although the client was told it could not be accepted, and a retry would
//! make a second one. So for a command whose request id the gateway minted for this one
//! attempt ([`IdOrigin::Fresh`]), it *abandons* the id before answering: it records the
//! request as decided, `rejected` / `not_accepted`, at Kafka offset -1 (no position: the
//! consumer never decided it). The consumer skips a request id already decided, so if the
//! command ever arrives it is not applied, and the 503 is true. If the consumer decided it
//! first, the abandonment finds the row there and the gateway answers that decision
//! instead, as if the acknowledgement had come. A command whose id is derived from its
//! cause ([`IdOrigin::Derived`]: payment outcomes, timers) is never abandoned: its sender
//! retries with the same id until it is accepted, and the retries converge on one
//! decision.

use std::time::Duration;

use chrono::Utc;
use seatq_common::catalog::EventEntry;
use seatq_common::command::{Command, CommandEnvelope};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{HoldId, RequestId, UserId};
use serde::Serialize;

use crate::state::AppState;

/// What the consumer decided about a command.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommandDecision {
    pub request_id: RequestId,
    /// `applied` or `rejected` (`held` for hold requests).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<HoldId>,
    /// What happened, e.g. `{"outcome": "cancelled", "offers": [...]}`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

type DecisionRow = (
    String,
    Option<String>,
    Option<HoldId>,
    Option<serde_json::Value>,
);

const SELECT_DECISION: &str =
    "SELECT status, reason, hold_id, detail FROM requests WHERE request_id = $1";

/// The reason of an abandoned request (see the module docs).
pub const NOT_ACCEPTED: &str = "not_accepted";

/// Record a request the broker did not acknowledge as decided and never applied. Offset
/// and seq -1: it has no place in Kafka order (the consumer's decisions have offsets ≥ 0).
const INSERT_ABANDONED: &str =
    "INSERT INTO requests (request_id, event_id, user_id, kind, status, \
       reason, detail, kafka_partition, kafka_offset, kafka_seq, issued_at, decided_at) \
     VALUES ($1, $2, $3, $4, 'rejected', 'not_accepted', $5, $6, -1, -1, $7, now()) \
     ON CONFLICT (request_id) DO NOTHING";

/// Where a command's request id came from: whether a failed produce may abandon it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOrigin {
    /// Minted for this attempt only (a retry by the client gets a new one): abandoned
    /// when the broker does not acknowledge it, so the 503 is true.
    Fresh,
    /// Derived from the cause, re-sent as is by a retry: never abandoned.
    Derived,
}

/// What [`abandon`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Recorded as `not_accepted`: the command will never be applied.
    Recorded,
    /// The consumer had already decided it: answer with that decision.
    AlreadyDecided,
}

/// Abandon `envelope`'s request id after its produce failed (see the module docs).
pub async fn abandon(
    state: &AppState,
    envelope: &CommandEnvelope,
    partition: i32,
    error: &str,
) -> AppResult<Abandoned> {
    let inserted = sqlx::query(INSERT_ABANDONED)
        .bind(envelope.request_id)
        .bind(envelope.event_id)
        .bind(&envelope.user_id)
        .bind(envelope.command.kind())
        .bind(serde_json::json!({ "error": error }))
        .bind(partition)
        .bind(envelope.issued_at)
        .execute(&state.pool)
        .await?
        .rows_affected();
    if inserted == 1 {
        tracing::info!(request_id = %envelope.request_id, kind = envelope.command.kind(),
            "request abandoned: recorded as not accepted");
        Ok(Abandoned::Recorded)
    } else {
        tracing::info!(request_id = %envelope.request_id, kind = envelope.command.kind(),
            "produce failed but the command was already decided");
        Ok(Abandoned::AlreadyDecided)
    }
}

/// The 503 for a command the broker did not take, with the request id when it was
/// abandoned (its status says `not_accepted`).
pub fn not_accepted(detail: &str, abandoned: Option<RequestId>) -> AppError {
    let error = AppError::unavailable("broker_unavailable", detail.to_owned(), 2);
    match abandoned {
        Some(id) => error.with("request_id", id),
        None => error,
    }
}

/// Produce `command` for `entry`'s event as `actor`, with `request_id` (derive it from
/// the cause for commands that may be sent twice, and say which in `origin`), and wait up
/// to `wait` for the decision.
pub async fn send(
    state: &AppState,
    entry: &EventEntry,
    actor: &UserId,
    (request_id, origin): (RequestId, IdOrigin),
    command: Command,
    wait: Option<Duration>,
) -> AppResult<Option<CommandDecision>> {
    let envelope = CommandEnvelope {
        request_id,
        event_id: entry.info.id,
        user_id: actor.clone(),
        issued_at: Utc::now(),
        command,
        reply: wait.is_some(),
    };
    let payload = envelope
        .encode()
        .map_err(|e| AppError::internal("encode command", e))?;
    let signal = wait.map(|_| state.decisions.subscribe(request_id));
    if let Err(e) = state
        .commands
        .send_command(entry.info.kafka_partition, request_id, payload)
        .await
    {
        state.decisions.unsubscribe(request_id);
        tracing::warn!(%request_id, error = %e, "broker did not acknowledge the command");
        const DETAIL: &str = "this cannot be done right now; try again shortly";
        if origin == IdOrigin::Derived {
            return Err(not_accepted(DETAIL, None));
        }
        return match abandon(state, &envelope, entry.info.kafka_partition, &e.to_string()).await {
            Ok(Abandoned::Recorded) => Err(not_accepted(DETAIL, Some(request_id))),
            Ok(Abandoned::AlreadyDecided) => decision(state, request_id).await,
            Err(db) => {
                // Neither recorded nor known: the command may still be decided.
                tracing::warn!(%request_id, detail = %db.detail, "could not abandon the request");
                Err(not_accepted(DETAIL, None))
            }
        };
    }
    let (Some(wait), Some(signal)) = (wait, signal) else {
        return Ok(None);
    };
    let deadline = tokio::time::Instant::now() + wait;
    state
        .decisions
        .wait_for(request_id, signal, deadline, || decision(state, request_id))
        .await
}

/// The decision of `request_id`, if made.
pub async fn decision(
    state: &AppState,
    request_id: RequestId,
) -> AppResult<Option<CommandDecision>> {
    let row: Option<DecisionRow> = sqlx::query_as(SELECT_DECISION)
        .bind(request_id)
        .fetch_optional(&state.pool)
        .await?;
    Ok(
        row.map(|(status, reason, hold_id, detail)| CommandDecision {
            request_id,
            status,
            reason,
            hold_id,
            detail: detail.unwrap_or_else(|| serde_json::json!({})),
        }),
    )
}

/// A rejected decision as the HTTP error users should see (404/403/409 by reason).
pub fn rejection_error(decision: &CommandDecision) -> Option<AppError> {
    use axum::http::StatusCode;
    if decision.status != "rejected" {
        return None;
    }
    let reason = decision.reason.clone().unwrap_or_default();
    let (status, code): (StatusCode, &'static str) = match reason.as_str() {
        "hold_not_found" => (StatusCode::NOT_FOUND, "hold_not_found"),
        "booking_not_found" => (StatusCode::NOT_FOUND, "booking_not_found"),
        "not_hold_owner" => (StatusCode::FORBIDDEN, "not_hold_owner"),
        "not_booking_owner" => (StatusCode::FORBIDDEN, "not_booking_owner"),
        "hold_not_active" => (StatusCode::CONFLICT, "hold_not_active"),
        "booking_cancelled" => (StatusCode::CONFLICT, "booking_cancelled"),
        "event_started" => (StatusCode::CONFLICT, "event_started"),
        "seat_available" => (StatusCode::CONFLICT, "seat_available"),
        "seat_is_yours" => (StatusCode::CONFLICT, "seat_is_yours"),
        "already_waiting" => (StatusCode::CONFLICT, "already_waiting"),
        "not_waiting" => (StatusCode::NOT_FOUND, "not_waiting"),
        "waitlist_limit_exceeded" => (StatusCode::CONFLICT, "waitlist_limit_exceeded"),
        "unknown_seat" => (StatusCode::NOT_FOUND, "seat_not_found"),
        "seats_unavailable" => (StatusCode::CONFLICT, "seats_unavailable"),
        "seats_reserved_for_access" => (StatusCode::CONFLICT, "seats_reserved_for_access"),
        "release_time_passed" => (StatusCode::CONFLICT, "release_time_passed"),
        "tickets_transferred" => (StatusCode::CONFLICT, "tickets_transferred"),
        "ticket_checked_in" => (StatusCode::CONFLICT, "ticket_checked_in"),
        "sale_not_open" => (StatusCode::FORBIDDEN, "sale_not_open"),
        "sale_paused" => (StatusCode::CONFLICT, "sale_paused"),
        "sale_ended" => (StatusCode::CONFLICT, "sale_ended"),
        "admission_required" => (StatusCode::FORBIDDEN, "admission_required"),
        // The command failed while it was applied and is kept as a dead letter: our
        // fault, not the caller's (see docs/operations.md).
        "internal_error" => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "command_rejected"),
    };
    Some(
        AppError::new(status, code, format!("the request was refused: {reason}"))
            .with("request_id", decision.request_id),
    )
}
