//! Organiser routes for holdbacks and an event's live stats (admin role).

use axum::extract::State;
use axum::http::StatusCode;
use seatq_common::ids::{EventId, HoldId};

use crate::auth::AdminUser;
use crate::error::AppResult;
use crate::event_stats::{self, EventStats};
use crate::extract::{Json, Path};
use crate::holdbacks::{self, HoldbackList, HoldbackView, NewHoldback};
use crate::routes::holds::Cancelled;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/admin/events/{event_id}/holdbacks", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), request_body = NewHoldback,
    security(("bearer" = [])),
    responses((status = 201, body = HoldbackView, description = "Seats off sale"),
        (status = 403, body = crate::error::Problem, description = "admin_only"),
        (status = 404, body = crate::error::Problem, description = "event_not_found"),
        (status = 409, body = crate::error::Problem, description = "seats_unavailable (held or sold already)"),
        (status = 422, body = crate::error::Problem,
            description = "unknown_seat, unknown_section, general_admission_section, duplicate_seat, holdback_too_large, invalid_note, invalid_release_at")))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(event_id): Path<EventId>,
    Json(body): Json<NewHoldback>,
) -> AppResult<(StatusCode, Json<HoldbackView>)> {
    let entry = super::events::event_entry(&state, event_id).await?;
    let view = holdbacks::create(&state, &admin, &entry, &body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/v1/admin/events/{event_id}/holdbacks", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = HoldbackList),
        (status = 403, body = crate::error::Problem, description = "admin_only"),
        (status = 404, body = crate::error::Problem, description = "event_not_found")))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<HoldbackList>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(holdbacks::list(&state, &entry).await?))
}

#[utoipa::path(post, path = "/v1/admin/holdbacks/{hold_id}/release", tag = "admin",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = Cancelled, description = "Back on sale (waitlists first)"),
        (status = 202, body = Cancelled, description = "Queued, not decided yet"),
        (status = 404, body = crate::error::Problem, description = "hold_not_found"),
        (status = 409, body = crate::error::Problem, description = "hold_not_active")))]
pub async fn release(
    state: State<AppState>,
    AdminUser(admin): AdminUser,
    hold: Path<HoldId>,
) -> AppResult<axum::response::Response> {
    // Releasing a holdback is an admin's cancel of its hold.
    super::holds::cancel_hold(state, admin, hold).await
}

#[utoipa::path(get, path = "/v1/admin/events/{event_id}/stats", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = EventStats),
        (status = 403, body = crate::error::Problem, description = "admin_only"),
        (status = 404, body = crate::error::Problem, description = "event_not_found")))]
pub async fn stats(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<EventStats>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(event_stats::stats(&state, &entry).await?))
}
