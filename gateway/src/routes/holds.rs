//! Hold requests and holds: `POST /v1/events/{id}/holds` enqueues, the status routes
//! answer what the consumer decided.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use seatq_common::ids::{EventId, HoldId, RequestId};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::extract::{Json, Path, Query};
use crate::holds::{self, HoldRequestBody, HoldRequestView, HoldView};
use crate::rate_limit::{self, ClientIp, Limit};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HoldParams {
    /// Wait up to this many milliseconds (max 5000) for the decision and answer it inline.
    pub wait_ms: Option<u64>,
}

/// The answer to an accepted request that is not decided yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub request_id: RequestId,
    pub status: holds::RequestState,
    pub status_url: String,
}

#[utoipa::path(post, path = "/v1/events/{event_id}/holds", tag = "holds",
    params(("event_id" = String, Path, format = Uuid), HoldParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key, 1-128 visible ASCII")),
    request_body = HoldRequestBody, security(("bearer" = [])),
    responses(
        (status = 202, body = Accepted, description = "Accepted by the broker; poll status_url"),
        (status = 200, body = HoldRequestView, description = "Decided within wait_ms"),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem, description = "sale_not_open"),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem,
            description = "seat_limit_reached: you already hold or bought the event's max_seats_per_user (with held, requested, limit)"),
        (status = 422, body = crate::error::Problem),
        (status = 429, body = crate::error::Problem,
            description = "rate_limited, with Retry-After (per user and per client IP)"),
        (status = 503, body = crate::error::Problem,
            description = "broker_unavailable, with Retry-After; with request_id when the request is recorded as rejected not_accepted: it will never be applied, send it again")))]
pub async fn request_hold(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path(event_id): Path<EventId>,
    Query(params): Query<HoldParams>,
    headers: HeaderMap,
    Json(body): Json<HoldRequestBody>,
) -> AppResult<Response> {
    rate_limit::check(&state, Limit::Holds, &user.user_id, &client).await?;
    let max_wait = state.settings.gateway.max_wait_ms;
    let wait = match params.wait_ms {
        Some(ms) if ms > max_wait => {
            return Err(AppError::bad_request(
                "invalid_query",
                format!("wait_ms must be at most {max_wait}"),
            ))
        }
        Some(0) | None => None,
        Some(ms) => Some(Duration::from_millis(ms)),
    };
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => {
            let key = v.to_str().map_err(|_| {
                AppError::bad_request("invalid_idempotency_key", "Idempotency-Key must be ASCII")
            })?;
            crate::request_registry::validate_idempotency_key(key)?;
            Some(key)
        }
        None => None,
    };
    let entry = state
        .catalog
        .event(event_id)
        .await?
        .ok_or_else(|| super::events::event_not_found(event_id))?;
    crate::admission::sale_gate(&state.admission, &entry.info, &user.user_id, &headers)?;
    let hold = holds::plan_hold(&entry, &body, state.settings.gateway.max_seats_per_request)?;
    rate_limit::check_seat_limit(&state, &user, &entry, &hold, idempotency_key).await?;
    let submitted = holds::submit(&state, &user, &entry, hold, idempotency_key, wait).await?;
    if let Some(view) = submitted.decided {
        return Ok((StatusCode::OK, Json(view)).into_response());
    }
    let status_url = holds::status_url(submitted.request_id);
    let location =
        HeaderValue::from_str(&status_url).map_err(|e| AppError::internal("location", e))?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(Accepted {
            request_id: submitted.request_id,
            status: holds::RequestState::Pending,
            status_url,
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/hold-requests/{request_id}", tag = "holds",
    params(("request_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldRequestView,
            description = "pending, held or rejected; every request that got a 202 is pending or decided"),
        (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem, description = "request_not_found: unknown, or not yours")))]
pub async fn request_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<RequestId>,
) -> AppResult<Json<HoldRequestView>> {
    Ok(Json(holds::request_status(&state, &user, id).await?))
}

#[utoipa::path(get, path = "/v1/holds/{hold_id}", tag = "holds",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldView), (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn get_hold(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<HoldId>,
) -> AppResult<Json<HoldView>> {
    Ok(Json(holds::hold_view(&state, &user, id).await?))
}

/// The caller's active holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyHolds {
    /// Active holds (waitlist offers included), newest first.
    pub holds: Vec<HoldView>,
}

#[utoipa::path(get, path = "/v1/me/holds", tag = "holds", security(("bearer" = [])),
    responses((status = 200, body = MyHolds), (status = 401, body = crate::error::Problem)))]
pub async fn my_holds(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<MyHolds>> {
    Ok(Json(MyHolds {
        holds: holds::my_active_holds(&state, &user).await?,
    }))
}

/// The answer to a cancel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cancelled {
    pub hold_id: HoldId,
    /// `cancelled`, or `pending` when not decided within the wait (poll the hold).
    pub status: String,
    pub request_id: RequestId,
}

#[utoipa::path(delete, path = "/v1/holds/{hold_id}", tag = "holds",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = Cancelled, description = "Released (to the seat's waitlist first)"),
        (status = 202, body = Cancelled, description = "Accepted, not decided yet"),
        (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem, description = "hold_not_found"),
        (status = 409, body = crate::error::Problem, description = "hold_not_active")))]
pub async fn cancel_hold(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<HoldId>,
) -> AppResult<Response> {
    let (request_id, decided) = holds::cancel(&state, &user, id).await?;
    let status = if decided { "cancelled" } else { "pending" };
    let code = if decided {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        code,
        Json(Cancelled {
            hold_id: id,
            status: status.into(),
            request_id,
        }),
    )
        .into_response())
}
