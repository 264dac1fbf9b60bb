//! `/v1/events/{event_id}/seats/{seat_id}/waitlist`: join, place, leave.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path};
use seatq_common::ids::EventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::rate_limit::{self, ClientIp, Limit};
use crate::state::AppState;
use crate::waitlist::{self, Joined, WaitlistPending, WaitlistPlace};

/// Seat waitlists, and the caller's places.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(join, place, leave))
        .routes(routes!(mine))
}

#[utoipa::path(post, operation_id = "join_waitlist", path = "/v1/events/{event_id}/seats/{seat_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, format = Uuid), ("seat_id" = String, Path, example = "A-1-1")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = WaitlistPlace, description = "On the waitlist"),
        (status = 202, body = WaitlistPending, description = "Accepted, not decided yet: GET shows the place"),
        (status = 403, body = Problem,
            description = "sale_not_open; admission_required, admission_expired, admission_invalid, admission_wrong_event (waiting-room events: send X-Admission-Token, as for holds)"),
        (status = 404, body = Problem, description = "seat_not_found"),
        (status = 409, body = Problem,
            description = "seat_available, seat_is_yours, already_waiting, waitlist_limit_exceeded, seats_reserved_for_access (a wheelchair space or companion seat before `accessible_release_at`)"),
        (status = 429, body = Problem, description = "rate_limited, with Retry-After"),
        (status = 503, body = Problem)))]
pub async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path((event_id, seat_id)): Path<(EventId, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    rate_limit::check(&state, Limit::Waitlist, &user.user_id, &client).await?;
    let entry = super::events::event_entry(&state, event_id).await?;
    // A waitlist is a way to buy: it opens with the sale, behind the waiting room.
    crate::admission::sale_gate(&state.admission, &entry.info, &user.user_id, &headers)?;
    Ok(
        match waitlist::join(&state, &user, &entry, &seat_id).await? {
            Joined::Place(place) => (StatusCode::CREATED, Json(place)).into_response(),
            Joined::Pending(pending) => (StatusCode::ACCEPTED, Json(pending)).into_response(),
        },
    )
}

#[utoipa::path(get, operation_id = "waitlist_place", path = "/v1/events/{event_id}/seats/{seat_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, format = Uuid), ("seat_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = WaitlistPlace),
        (status = 404, body = Problem, description = "not_waiting, seat_not_found")))]
pub async fn place(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, seat_id)): Path<(EventId, String)>,
) -> AppResult<Json<WaitlistPlace>> {
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(Json(
        waitlist::position(&state, &user, &entry, &seat_id).await?,
    ))
}

#[utoipa::path(delete, operation_id = "leave_waitlist", path = "/v1/events/{event_id}/seats/{seat_id}/waitlist", tag = "waitlist",
    params(("event_id" = String, Path, format = Uuid), ("seat_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "Left the waitlist"),
        (status = 202, body = WaitlistPending),
        (status = 404, body = Problem, description = "not_waiting, seat_not_found"),
        (status = 429, body = Problem, description = "rate_limited, with Retry-After")))]
pub async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientIp,
    Path((event_id, seat_id)): Path<(EventId, String)>,
) -> AppResult<Response> {
    rate_limit::check(&state, Limit::Waitlist, &user.user_id, &client).await?;
    let entry = super::events::event_entry(&state, event_id).await?;
    Ok(
        match waitlist::leave(&state, &user, &entry, &seat_id).await? {
            (_, Some(_)) => StatusCode::NO_CONTENT.into_response(),
            (request_id, None) => (
                StatusCode::ACCEPTED,
                Json(WaitlistPending {
                    request_id,
                    status: "pending".into(),
                }),
            )
                .into_response(),
        },
    )
}

/// The caller's waitlist places.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MyWaitlists {
    /// Seats the caller waits for, or was offered and has not paid or given up yet,
    /// oldest first (at most 200).
    pub places: Vec<WaitlistPlace>,
}

#[utoipa::path(get, operation_id = "my_waitlists", path = "/v1/me/waitlists", tag = "waitlist", security(("bearer" = [])),
    responses((status = 200, body = MyWaitlists),
        (status = 503, body = Problem, description = "waitlist_unavailable")))]
pub async fn mine(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<MyWaitlists>> {
    Ok(Json(MyWaitlists {
        places: waitlist::my_places(&state, &user).await?,
    }))
}
