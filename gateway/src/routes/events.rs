//! Browsing: the event list, one event, and its live seat map. These read PostgreSQL
//! only (through caches), so they keep working when the broker is down.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::EventId;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::inventory;
use crate::search::{EventSearch, RawSearch};
use crate::seat_map::{self, SeatMap};
use crate::state::AppState;
use crate::views::{EventDetail, EventSummary};

/// Browsing: the event list, one event, its seat map.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(seat_map))
}

/// The search parameters, with the bounds `crate::search` enforces (400 `invalid_query`
/// with `param`, or `query_too_long`) stated in the document.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Words to find in the title, performer, venue name or city; each matches a word
    /// starting with it ("queue jump" finds "The Queue Jumpers"). At most 10 words and
    /// 200 characters (else 400 `query_too_long`). With a query, events come by
    /// relevance (title and performer above venue and city), then start time.
    #[param(
        max_length = 200,
        pattern = r"^[\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+){0,9}(?:[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+[\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub query: Option<String>,
    /// Venue city, case-insensitive exact match (at most 100 characters, no control
    /// characters).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{0,100}$")]
    pub city: Option<String>,
    /// Events starting at or after this RFC 3339 time.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Events starting at or before this RFC 3339 time (before `from`: no events).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// 1-based page number.
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    pub page: u32,
    pub per_page: u32,
    /// Events matching the search on all pages.
    pub total: i64,
}

#[utoipa::path(get, operation_id = "list_events", path = "/v1/events", tag = "events", params(ListParams),
    responses((status = 200, body = EventPage,
            description = "Events by start time, or by relevance to `query`; cached ≤ 1 s"),
        (status = 400, body = Problem,
            description = "`invalid_query` (with `param`) or `query_too_long`")))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> AppResult<Response> {
    let search = EventSearch::parse(&RawSearch {
        query: params.query.as_deref(),
        city: params.city.as_deref(),
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        page: params.page,
        per_page: params.per_page,
    })?;
    let body = state
        .event_search
        .get_or_build(&search, || async {
            let (events, total) = inventory::search_events(&state.pool, &search).await?;
            let page = EventPage {
                events,
                page: search.page,
                per_page: search.per_page,
                total,
            };
            serde_json::to_vec(&page)
                .map(Bytes::from)
                .map_err(|e| AppError::internal("encode event page", e))
        })
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

pub async fn event_detail(state: &AppState, id: EventId) -> AppResult<EventDetail> {
    let entry = state
        .catalog
        .event(id)
        .await?
        .ok_or_else(|| event_not_found(id))?;
    let venue = inventory::venue_ref(&state.pool, entry.info.venue_id).await?;
    let sale = crate::sale_control::status(&state.pool, id).await?;
    Ok(EventDetail::new(&entry, venue, sale.sale_state))
}

/// The event with its layout (cached), or 404 `event_not_found`.
pub async fn event_entry(
    state: &AppState,
    id: EventId,
) -> Result<std::sync::Arc<seatq_common::catalog::EventEntry>, AppError> {
    state
        .catalog
        .event(id)
        .await?
        .ok_or_else(|| event_not_found(id))
}

pub fn event_not_found(id: EventId) -> AppError {
    AppError::not_found("event_not_found", format!("no event {id}"))
}

#[utoipa::path(get, operation_id = "get_event", path = "/v1/events/{event_id}", tag = "events",
    params(("event_id" = String, Path, format = Uuid)),
    responses((status = 200, body = EventDetail), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<EventId>,
) -> AppResult<Json<EventDetail>> {
    Ok(Json(event_detail(&state, id).await?))
}

#[utoipa::path(get, path = "/v1/events/{event_id}/seats", tag = "events",
    params(("event_id" = String, Path, format = Uuid)),
    responses((status = 200, body = SeatMap, description = "Seat map; ETag / If-None-Match honoured"),
        (status = 304, description = "Unchanged since the client's ETag"),
        (status = 404, body = Problem)))]
pub async fn seat_map(
    State(state): State<AppState>,
    Path(id): Path<EventId>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let entry = state
        .catalog
        .event(id)
        .await?
        .ok_or_else(|| event_not_found(id))?;
    let map = state
        .seat_maps
        .get_or_build(id, || async {
            let map = seat_map::build(&state.pool, &entry, &state.topics.commands).await?;
            serde_json::to_vec(&map).map_err(|e| AppError::internal("encode seat map", e))
        })
        .await?;
    let etag = HeaderValue::from_str(&map.etag).map_err(|e| AppError::internal("etag", e))?;
    let cache_control = HeaderValue::from_static("public, max-age=1");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == map.etag || t.trim() == "*")
        });
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
        ],
        map.body.clone(),
    )
        .into_response())
}
