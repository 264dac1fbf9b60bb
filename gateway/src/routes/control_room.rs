//! The on-sale control room's routes (admin role): its live picture, unmet demand, pause,
//! resume or end a sale, and every seat's story.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::EventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminUser, StreamUser};
use crate::commands::CommandDecision;
use crate::control_room::{ControlRooms, Demand, Frame, Watcher};
use crate::routes::holdbacks::QueuedHoldback;
use crate::sale_control::{self, Changed, SaleChange, SaleStatus};
use crate::seat_history::{self, Page, SeatHistory};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(control_room_stream))
        .routes(routes!(demand))
        .routes(routes!(sale_status, change_sale))
        .routes(routes!(seat_history))
}

/// The kinds of control-room messages.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ControlRoomMessage {
    Stats,
    Demand,
}

/// One Server-Sent Event of the control room.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ControlRoomEvent {
    /// `stats` every second (the `EventStats` of `GET …/stats`), `demand` when unmet
    /// demand was recomputed (a `Demand`, at most every 15 s; the first comes at once).
    event: ControlRoomMessage,
    #[schema(content_media_type = "application/json")]
    data: String,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// EventSource cannot set headers: the admin's token may come here instead.
    pub access_token: Option<String>,
}

#[utoipa::path(get, operation_id = "control_room_stream", path = "/v1/admin/events/{event_id}/control-room", tags = ["streams", "admin"],
    params(("event_id" = String, Path, format = Uuid), StreamParams), security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = ControlRoomEvent,
            description = "An endless stream: `demand` and `stats` at once, then `stats` every second and `demand` when it changes; `: ping` comments keep it warm. One computation per event however many watch"),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found")))]
pub async fn control_room_stream(
    State(state): State<AppState>,
    StreamUser(user): StreamUser,
    Path(event_id): Path<EventId>,
    Query(_params): Query<StreamParams>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>> {
    if !user.is_admin() {
        return Err(AppError::forbidden(
            "admin_only",
            "this route needs the admin role",
        ));
    }
    let entry = super::events::event_entry(&state, event_id).await?;
    let room = ControlRooms::watch(&state, &entry);
    let shutdown = state.control_rooms.shutdown().clone();
    tracing::debug!(%event_id, "control room opened");
    Ok(Sse::new(frames(room, shutdown)).keep_alive(KeepAlive::default()))
}

/// Each new frame as SSE events: `demand` when it differs from the last sent, `stats`.
fn frames(
    room: tokio::sync::watch::Receiver<Option<std::sync::Arc<Frame>>>,
    shutdown: seatq_common::shutdown::Shutdown,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let start = (
        room,
        shutdown,
        None::<std::sync::Arc<Demand>>,
        true,
        Watcher::open(),
    );
    stream::unfold(
        start,
        |(mut room, shutdown, sent, first, watcher)| async move {
            // The first frame may be there already; after it, wait for the next.
            let frame = loop {
                if !first || room.borrow().is_none() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        changed = room.changed() => changed.ok()?,
                    }
                }
                if let Some(frame) = room.borrow_and_update().clone() {
                    break frame;
                }
            };
            let mut events = Vec::with_capacity(2);
            if !sent
                .as_ref()
                .is_some_and(|d| std::sync::Arc::ptr_eq(d, &frame.demand))
            {
                let json = serde_json::to_string(&*frame.demand).unwrap_or_default();
                events.push(Ok(Event::default().event("demand").data(json)));
            }
            events.push(Ok(Event::default()
                .event("stats")
                .data(frame.stats_json.clone())));
            Some((
                stream::iter(events),
                (room, shutdown, Some(frame.demand.clone()), false, watcher),
            ))
        },
    )
    .flatten()
}

#[utoipa::path(get, operation_id = "event_demand", path = "/v1/admin/events/{event_id}/demand", tag = "admin",
    params(("event_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = Demand,
            description = "Refused hold requests per section and for the most refused seats (at most 15 s old)"),
        (status = 403, body = Problem, description = "admin_only"),
        (status = 404, body = Problem, description = "event_not_found")))]
pub async fn demand(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(event_id): Path<EventId>,
) -> AppResult<Json<Demand>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    let demand = crate::control_room::demand(&state, &entry).await?;
    Ok(Json((*demand).clone()))
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
            Changed::Queued(request_id) => super::holdbacks::queued(request_id),
        },
    )
}
