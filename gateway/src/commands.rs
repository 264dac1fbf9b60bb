//! Sending a lifecycle command (cancel, waitlist, payment outcome, booking cancellation)
//! through the pipeline and, optionally, waiting for its decision.
//!
//! These commands change seat state, so like hold requests they only ever go through the
//! event's partition of the commands topic; the gateway never writes seats itself. A 202
//! means the broker has the command; the decision is read back from `requests`.

use std::time::Duration;

use chrono::Utc;
use seatq_common::catalog::EventEntry;
use seatq_common::command::{Command, CommandEnvelope};
use seatq_common::ids::{HoldId, RequestId, UserId};
use serde::Serialize;

use crate::error::{AppError, AppResult};
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

/// Produce `command` for `entry`'s event as `actor`, with `request_id` (derive it from
/// the cause for commands that may be sent twice), and wait up to `wait` for the decision.
pub async fn send(
    state: &AppState,
    entry: &EventEntry,
    actor: &UserId,
    request_id: RequestId,
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
        .send(entry.info.kafka_partition, payload)
        .await
    {
        state.decisions.unsubscribe(request_id);
        tracing::warn!(%request_id, error = %e, "broker did not acknowledge the command");
        return Err(AppError::unavailable(
            "broker_unavailable",
            "this cannot be done right now; try again shortly",
            2,
        ));
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
            detail: detail.unwrap_or(serde_json::Value::Null),
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
        "release_time_passed" => (StatusCode::CONFLICT, "release_time_passed"),
        "tickets_transferred" => (StatusCode::CONFLICT, "tickets_transferred"),
        "ticket_checked_in" => (StatusCode::CONFLICT, "ticket_checked_in"),
        "sale_not_open" => (StatusCode::FORBIDDEN, "sale_not_open"),
        "admission_required" => (StatusCode::FORBIDDEN, "admission_required"),
        // The command failed while it was applied and is kept as a dead letter: our
        // fault, not the caller's (see the README's operating notes).
        "internal_error" => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "command_rejected"),
    };
    Some(
        AppError::new(status, code, format!("the request was refused: {reason}"))
            .with("request_id", decision.request_id),
    )
}
