//! Organiser routes for holdbacks and an event's live stats (admin role).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path};
use seatq_common::ids::{EventId, HoldId, RequestId};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::commands::{self, CommandDecision};
use crate::event_stats::{self, EventStats};
use crate::holdbacks::{self, Created, HoldbackList, HoldbackView, NewHoldback};
use crate::routes::holds::Cancelled;
use crate::state::AppState;

/// Holdbacks, admin command status and live stats (admin role).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(release))
        .routes(routes!(stats))
        .routes(routes!(request_status))
}

/// A holdback queued but not decided within the wait.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedHoldback {
    pub request_id: RequestId,
    /// `pending`.
    pub status: String,
    /// Poll for the decision (`GET /v1/admin/requests/{request_id}`).
    pub status_url: String,
}

#[utoipa::path(post, operation_id = "create_holdback", path = "/v1/admin/events/{event_id}/holdbacks", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), request_body = NewHoldback,
    security(("bearer" = [])),
    responses((status = 201, body = HoldbackView, description = "Seats off sale"),
        (status = 202, body = QueuedHoldback, description = "Queued, not decided within a few seconds: poll status_url"),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "seats_unavailable (held or sold already), release_time_passed (release_at passed before the queue reached the holdback)"),
        (status = 422, body = Problem,
            description = "unknown_seat, unknown_section, general_admission_section, duplicate_seat, holdback_too_large, invalid_note, invalid_release_at")))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(event_id): Path<EventId>,
    Json(body): Json<NewHoldback>,
) -> AppResult<Response> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(
        match holdbacks::create(&state, &admin, &entry, &body).await? {
            Created::Made(view) => (StatusCode::CREATED, Json(view)).into_response(),
            Created::Queued(request_id) => queued(request_id),
        },
    )
}

/// `202` for an organiser's command not decided within the wait: where to poll it.
pub fn queued(request_id: RequestId) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(QueuedHoldback {
            request_id,
            status: "pending".into(),
            status_url: request_status_url(request_id),
        }),
    )
        .into_response()
}

/// Where an organiser's command can be polled (relative to the API root).
pub fn request_status_url(id: RequestId) -> String {
    format!("/v1/admin/requests/{id}")
}

#[utoipa::path(get, operation_id = "admin_request_status", path = "/v1/admin/requests/{request_id}", tag = "admin",
    params(("request_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = CommandDecision,
            description = "`applied` or `rejected` (with `reason`) once decided, `pending` until then"),
        (status = 403, body = Problem, description = "admin_only")))]
pub async fn request_status(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(request_id): Path<RequestId>,
) -> AppResult<Json<CommandDecision>> {
    // An unknown id reads as pending: admins see every request, and a command the
    // consumer has not reached yet has no row.
    let decision = commands::decision(&state, request_id)
        .await?
        .unwrap_or_else(|| CommandDecision {
            request_id,
            status: "pending".into(),
            reason: None,
            hold_id: None,
            detail: serde_json::json!({}),
        });
    Ok(Json(decision))
}

#[utoipa::path(get, operation_id = "list_holdbacks", path = "/v1/admin/events/{event_id}/holdbacks", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldbackList),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found")))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<HoldbackList>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(holdbacks::list(&state, &entry).await?))
}

#[utoipa::path(post, operation_id = "release_holdback", path = "/v1/admin/holdbacks/{hold_id}/release", tag = "admin",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = Cancelled, description = "Back on sale (waitlists first)"),
        (status = 202, body = Cancelled, description = "Queued, not decided yet"),
        (status = 404, body = Problem, description = "hold_not_found"),
        (status = 409, body = Problem, description = "hold_not_active")))]
pub async fn release(
    state: State<AppState>,
    AdminUser(admin): AdminUser,
    hold: Path<HoldId>,
) -> AppResult<axum::response::Response> {
    // Releasing a holdback is an admin's cancel of its hold.
    super::holds::cancel_hold(state, admin, hold).await
}

#[utoipa::path(get, operation_id = "event_stats", path = "/v1/admin/events/{event_id}/stats", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = EventStats),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found")))]
pub async fn stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<EventStats>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(event_stats::stats(&state, &entry).await?))
}
