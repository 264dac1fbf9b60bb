//! Organiser routes: venues and events. Admin role required.

use axum::extract::State;
use axum::http::StatusCode;
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::inventory::{self, NewEvent, NewVenue, VenueView};
use crate::state::AppState;
use crate::views::EventDetail;

/// Venues and events (admin role).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_venue))
        .routes(routes!(create_event))
}

#[utoipa::path(post, path = "/v1/admin/venues", tag = "admin", request_body = NewVenue,
    security(("bearer" = [])),
    responses((status = 201, body = VenueView), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_venue(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(venue): Json<NewVenue>,
) -> AppResult<(StatusCode, Json<VenueView>)> {
    let view = inventory::create_venue(&state.pool, &venue).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(post, path = "/v1/admin/events", tag = "admin", request_body = NewEvent,
    security(("bearer" = [])),
    responses((status = 201, body = EventDetail), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_event(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(event): Json<NewEvent>,
) -> AppResult<(StatusCode, Json<EventDetail>)> {
    let id = inventory::create_event(&state.pool, &event, state.event_limits()).await?;
    let detail = super::events::event_detail(&state, id).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}
