//! Hold requests and holds: `POST /v1/events/{id}/holds` enqueues, the status routes
//! answer what the consumer decided.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::{EventId, HoldId, RequestId};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::holds::{self, HoldRequestBody, HoldRequestView, HoldView};
use crate::rate_limit::{self, ClientIp, Limit};
use crate::state::AppState;

/// Hold requests, their status, holds. The hold route alone counts every answer it gives
/// (extractor refusals included) in the hold-request metrics, so the layer is on it only.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(request_hold).layer(axum::middleware::from_fn(
            seatq_common::metrics::count_hold_requests,
        )))
        .routes(routes!(request_status))
        .routes(routes!(get_hold, cancel_hold))
        .routes(routes!(my_holds))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoldParams {
    /// Wait up to this many milliseconds (`gateway.max_wait_ms`, 5000 unless configured)
    /// for the decision and answer it inline.
    #[param(maximum = 5000)]
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
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,128}$",
            description = "Repeat-safe key, 1-128 visible ASCII: a repeat gets the first request's answer")),
    request_body = HoldRequestBody, security(("bearer" = [])),
    responses(
        (status = 202, body = Accepted, description = "Accepted by the broker; poll status_url"),
        (status = 200, body = HoldRequestView, description = "Decided within wait_ms"),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "sale_not_open"),
        (status = 404, body = Problem),
        (status = 409, body = Problem,
            description = "seat_limit_reached: you already hold or bought the event's max_seats_per_user (with held, requested, limit)"),
        (status = 422, body = Problem),
        (status = 429, body = Problem,
            description = "rate_limited, with Retry-After (per user and per client IP)"),
        (status = 503, body = Problem,
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
    holds::check_seat_limit(&state, &user, &entry, &hold, idempotency_key).await?;
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

#[utoipa::path(get, operation_id = "hold_request_status", path = "/v1/hold-requests/{request_id}", tag = "holds",
    params(("request_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldRequestView,
            description = "pending, held or rejected; every request that got a 202 is pending or decided"),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "request_not_found: unknown, or not yours")))]
pub async fn request_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<RequestId>,
) -> AppResult<Json<HoldRequestView>> {
    Ok(Json(holds::request_status(&state, &user, id).await?))
}

#[utoipa::path(get, path = "/v1/holds/{hold_id}", tag = "holds",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldView), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
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
    responses((status = 200, body = MyHolds), (status = 401, body = Problem)))]
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
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "hold_not_found"),
        (status = 409, body = Problem, description = "hold_not_active")))]
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
