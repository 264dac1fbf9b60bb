//! `/v1/events/{event_id}/queue`: the waiting room (see `crate::waiting_room`), and its
//! pre-sale lottery as published for checking (`crate::lottery`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path};
use seatq_common::ids::EventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::lottery::{self, LotteryView};
use crate::rate_limit::{self, ClientIp, Limit};
use crate::state::AppState;
use crate::waiting_room::{self, Challenge, JoinBody, QueueTicketView};

/// The waiting room: challenge, join, status.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(challenge))
        .routes(routes!(join))
        .routes(routes!(status))
        .routes(routes!(lottery_view))
        .routes(routes!(lottery_entrants))
}

#[utoipa::path(get, operation_id = "lottery", path = "/v1/events/{event_id}/lottery", tag = "waiting room",
    params(("event_id" = String, Path, format = Uuid)),
    responses((status = 200, body = LotteryView,
            description = "The commitment; after the draw also the seed and the entrant list's fingerprint (docs/lottery.md)"),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "waiting_room_off")))]
pub async fn lottery_view(
    State(state): State<AppState>,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<LotteryView>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(lottery::view(&state, &entry).await?))
}

#[utoipa::path(get, operation_id = "lottery_entrants", path = "/v1/events/{event_id}/lottery/entrants", tag = "waiting room",
    params(("event_id" = String, Path, format = Uuid)),
    responses((status = 200, content_type = "text/plain", body = String,
            description = "Every entrant's tag, sorted, one per line; its SHA-256 is the lottery's entrants_fingerprint"),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "waiting_room_off, lottery_not_revealed (before reveal_at)")))]
pub async fn lottery_entrants(
    State(state): State<AppState>,
    Path(event_id): Path<EventId>,
) -> AppResult<axum::response::Response> {
    let entry = super::events::event_entry(&state, event_id).await?;
    let list = lottery::entrants(&state, &entry).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], list).into_response())
}

#[utoipa::path(post, operation_id = "waiting_room_challenge", path = "/v1/events/{event_id}/queue/challenge", tag = "waiting room",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = Challenge),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "waiting_room_off"),
        (status = 429, body = Problem, description = "rate_limited, with Retry-After")))]
pub async fn challenge(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<Challenge>> {
    rate_limit::check(&state, Limit::Queue, &user.user_id, &client).await?;
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(waiting_room::challenge(&state, &entry)?))
}

#[utoipa::path(post, operation_id = "join_waiting_room", path = "/v1/events/{event_id}/queue", tag = "waiting room",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    request_body = JoinBody,
    responses((status = 201, body = QueueTicketView, description = "Joined"),
        (status = 200, body = QueueTicketView, description = "Already in: the same ticket"),
        (status = 403, body = Problem,
            description = "challenge_required, challenge_invalid, challenge_expired, challenge_unsolved, challenge_used"),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "waiting_room_off"),
        (status = 429, body = Problem, description = "rate_limited, with Retry-After")))]
pub async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path(event_id): Path<EventId>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<QueueTicketView>)> {
    rate_limit::check(&state, Limit::Queue, &user.user_id, &client).await?;
    let entry = super::events::event_entry(&state, event_id).await?;
    // The body is optional (events without proof of work need none).
    let body: JoinBody = if body.iter().all(u8::is_ascii_whitespace) {
        JoinBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            seatq_common::http::error::AppError::bad_request(
                "invalid_json",
                format!("invalid body: {e}"),
            )
        })?
    };
    let (ticket, created) = waiting_room::join(&state, &user, &entry, &body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ticket)))
}

#[utoipa::path(get, operation_id = "waiting_room_status", path = "/v1/events/{event_id}/queue/{ticket}", tag = "waiting room",
    params(("event_id" = String, Path, format = Uuid), ("ticket" = String, Path, format = Uuid)),
    security(("bearer" = [])),
    responses((status = 200, body = QueueTicketView),
        (status = 404, body = Problem, description = "ticket_not_found (also someone else's)"),
        (status = 429, body = Problem, description = "rate_limited, with Retry-After")))]
pub async fn status(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path((event_id, ticket)): Path<(EventId, Uuid)>,
) -> AppResult<Json<QueueTicketView>> {
    rate_limit::check(&state, Limit::QueueStatus, &user.user_id, &client).await?;
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(
        waiting_room::status(&state, &user, &entry, ticket).await?,
    ))
}
