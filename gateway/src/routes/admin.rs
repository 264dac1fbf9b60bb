//! Organiser routes: venues (create, list) and events. Admin role required.

use axum::extract::State;
use axum::http::StatusCode;
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::http::extract::{Json, Query};
use seatq_common::ids::VenueId;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::inventory::{self, NewEvent, NewVenue};
use crate::search::{DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE};
use crate::state::AppState;
use crate::views::EventDetail;
use crate::views::VenueView;

/// Venues and events (admin role).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create_venue, list_venues))
        .routes(routes!(create_event))
}

/// Paging of the venue list, with the bounds the handler enforces (400 `invalid_query`
/// with `param`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VenueListParams {
    /// 1-based page number.
    #[param(minimum = 1, maximum = 100000)]
    pub page: Option<u32>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VenuePage {
    /// Newest first, each with its sections in order.
    pub venues: Vec<VenueView>,
    pub page: u32,
    pub per_page: u32,
    /// Venues on all pages.
    pub total: i64,
}

/// One page of venues, newest first.
const LIST_VENUES: &str = "SELECT id, name, city FROM venues \
     ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2";

const COUNT_VENUES: &str = "SELECT count(*) FROM venues";

fn page_param(param: &'static str, value: Option<u32>, default: u32, max: u32) -> AppResult<u32> {
    let value = value.unwrap_or(default);
    if value == 0 || value > max {
        return Err(
            AppError::bad_request("invalid_query", format!("{param} must be 1 to {max}"))
                .with("param", param),
        );
    }
    Ok(value)
}

#[utoipa::path(get, operation_id = "list_venues", path = "/v1/admin/venues", tag = "admin",
    params(VenueListParams), security(("bearer" = [])),
    responses((status = 200, body = VenuePage, description = "Venues, newest first"),
        (status = 400, body = Problem, description = "`invalid_query` (with `param`)")))]
pub async fn list_venues(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<VenueListParams>,
) -> AppResult<Json<VenuePage>> {
    let page = page_param("page", params.page, 1, MAX_PAGE)?;
    let per_page = page_param("per_page", params.per_page, DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let offset = i64::from(page - 1) * i64::from(per_page);
    let rows: Vec<(VenueId, String, String)> = sqlx::query_as(LIST_VENUES)
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&state.pool)
        .await?;
    let total: i64 = sqlx::query_scalar(COUNT_VENUES)
        .fetch_one(&state.pool)
        .await?;
    // Layouts never change once a venue exists: the catalog's cached copy is the venue.
    let mut venues = Vec::with_capacity(rows.len());
    for (id, name, city) in rows {
        let layout = state.catalog.layout(id).await?;
        venues.push(VenueView::of(id, name, city, &layout));
    }
    Ok(Json(VenuePage {
        venues,
        page,
        per_page,
        total,
    }))
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
