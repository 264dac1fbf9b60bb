//! The on-sale control room's routes (admin role): pause, resume or end a sale, and
//! every seat's story.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::EventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::commands::CommandDecision;
use crate::routes::holdbacks::{request_status_url, QueuedHoldback};
use crate::sale_control::{self, Changed, SaleChange, SaleStatus};
use crate::seat_history::{self, Page, SeatHistory};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(sale_status, change_sale))
        .routes(routes!(seat_history))
}

/// A page of a seat's commands.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// The page after this queue position (`next_after` of the previous page).
    #[param(pattern = r"^[0-9]{1,18}\.[0-9]{1,9}$")]
    pub after: Option<String>,
    /// Commands per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, operation_id = "seat_history", path = "/v1/admin/events/{event_id}/seats/{seat_id}/history", tag = "admin",
    params(("event_id" = String, Path, format = Uuid), ("seat_id" = String, Path, example = "A-1-1"), HistoryParams),
    security(("bearer" = [])),
    responses((status = 200, body = SeatHistory,
            description = "The commands naming the seat in queue order, then what followed"),
        (status = 400, body = Problem, description = "invalid_query (with `param`)"),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found, seat_not_found")))]
pub async fn seat_history(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path((event_id, seat_id)): Path<(EventId, String)>,
    Query(params): Query<HistoryParams>,
) -> AppResult<Json<SeatHistory>> {
    let page = Page::parse(params.after.as_deref(), params.limit)?;
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(
        seat_history::seat_history(&state.pool, &entry, &seat_id, page).await?,
    ))
}

#[utoipa::path(get, operation_id = "sale_status", path = "/v1/admin/events/{event_id}/sale", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = SaleStatus),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found")))]
pub async fn sale_status(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<SaleStatus>> {
    Ok(Json(sale_control::status(&state.pool, event_id).await?))
}

#[utoipa::path(post, operation_id = "change_sale", path = "/v1/admin/events/{event_id}/sale", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), request_body = SaleChange,
    security(("bearer" = [])),
    responses((status = 200, body = CommandDecision,
            description = "Applied at its place in the queue: `detail` says `from`, `sale_state` and whether it `changed`"),
        (status = 202, body = QueuedHoldback, description = "Queued, not decided within a few seconds: poll status_url"),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found"),
        (status = 409, body = Problem, description = "sale_ended: an ended sale cannot be reopened"),
        (status = 422, body = Problem, description = "invalid_note")))]
pub async fn change_sale(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(event_id): Path<EventId>,
    Json(body): Json<SaleChange>,
) -> AppResult<Response> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(
        match sale_control::change(&state, &admin, &entry, &body).await? {
            Changed::Decided(decision) => (StatusCode::OK, Json(decision)).into_response(),
            Changed::Queued(request_id) => (
                StatusCode::ACCEPTED,
                Json(QueuedHoldback {
                    request_id,
                    status: "pending".into(),
                    status_url: request_status_url(request_id),
                }),
            )
                .into_response(),
        },
    )
}
