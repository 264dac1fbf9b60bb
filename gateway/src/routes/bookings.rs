//! Bookings and tickets: a buyer's bookings, cancelling one (through the pipeline, like
//! every seat change), a ticket's QR code, transferring a ticket, and check-in at the door.
//!
//! Everything a caller may not see answers 404, as if it did not exist: ids are not
//! secret, so a 403 would confirm that someone else's booking or ticket is there. The
//! logic lives in `crate::bookings`; these handlers only extract and shape responses.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::{BookingId, TicketId};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminUser, AuthUser};
use crate::bookings::{
    self, BookingList, BookingView, CancelOutcome, CancelledBooking, CheckinBody, CheckinView,
    PendingCancel, TicketView, TransferBody,
};
use crate::state::AppState;

/// Bookings, tickets and check-in.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(my_bookings))
        .routes(routes!(get_ticket))
        .routes(routes!(ticket_qr))
        .routes(routes!(transfer_ticket))
        .routes(routes!(check_in))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MyBookingsParams {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/bookings/{booking_id}", tag = "bookings",
    params(("booking_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "booking_not_found (also for someone else's)")))]
pub async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<BookingId>,
) -> AppResult<Json<BookingView>> {
    Ok(Json(bookings::booking(&state, &user, id).await?))
}

#[utoipa::path(get, path = "/v1/me/bookings", tag = "bookings", params(MyBookingsParams),
    security(("bearer" = [])),
    responses((status = 200, body = BookingList), (status = 400, body = Problem),
        (status = 401, body = Problem)))]
pub async fn my_bookings(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<MyBookingsParams>,
) -> AppResult<Json<BookingList>> {
    Ok(Json(
        bookings::my_bookings(&state, &user, params.limit).await?,
    ))
}

#[utoipa::path(post, path = "/v1/bookings/{booking_id}/cancel", tag = "bookings",
    params(("booking_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 200, body = CancelledBooking, description = "Cancelled; the refund is issued shortly"),
        (status = 202, body = PendingCancel, description = "Accepted by the broker, not decided within 5 s"),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "booking_not_found"),
        (status = 409, body = Problem, description = "booking_cancelled, event_started"),
        (status = 503, body = Problem, description = "broker_unavailable, with Retry-After")))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<BookingId>,
) -> AppResult<Response> {
    Ok(match bookings::cancel(&state, &user, id).await? {
        CancelOutcome::Cancelled(done) => (StatusCode::OK, Json(done)).into_response(),
        CancelOutcome::Pending(pending) => (StatusCode::ACCEPTED, Json(pending)).into_response(),
    })
}

#[utoipa::path(get, path = "/v1/tickets/{ticket_id}", tag = "bookings",
    params(("ticket_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 200, body = TicketView, description = "For the holder, the booking's owner or an admin; the code only for the holder and admins"),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "ticket_not_found")))]
pub async fn get_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<TicketId>,
) -> AppResult<Json<TicketView>> {
    Ok(Json(bookings::ticket(&state, &user, id).await?))
}

#[utoipa::path(get, path = "/v1/tickets/{ticket_id}/qr.svg", tag = "bookings",
    params(("ticket_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 200, content_type = "image/svg+xml", body = String, description = "The QR code of the ticket's current code (holder or admin)"),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "ticket_not_found"),
        (status = 410, body = Problem, description = "ticket_void")))]
pub async fn ticket_qr(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<TicketId>,
) -> AppResult<Response> {
    let svg = bookings::qr_svg(&state, &user, id).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            // The image is the ticket: no cache may keep it after a transfer.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        svg,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/tickets/{ticket_id}/transfer", tag = "bookings",
    params(("ticket_id" = String, Path, format = Uuid)), request_body = TransferBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = TicketView, description = "Transferred; the sender's code no longer checks in (the view has no code)"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "not_ticket_holder (admins who do not hold it)"),
        (status = 404, body = Problem, description = "ticket_not_found"),
        (status = 409, body = Problem, description = "ticket_void, already_checked_in"),
        (status = 422, body = Problem, description = "transfer_to_self, invalid_user_id")))]
pub async fn transfer_ticket(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<TicketId>,
    Json(body): Json<TransferBody>,
) -> AppResult<Json<TicketView>> {
    Ok(Json(
        bookings::transfer(&state, &user, id, &body.to_user_id).await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/checkins", tag = "admin", request_body = CheckinBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = CheckinView, description = "Admitted (exactly once per ticket)"),
        (status = 400, body = Problem, description = "ticket_code_malformed"),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "ticket_not_found (also for a forged code)"),
        (status = 409, body = Problem,
            description = "already_checked_in (with checked_in_at), ticket_void, code_superseded, wrong_event")))]
pub async fn check_in(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<CheckinBody>,
) -> AppResult<Json<CheckinView>> {
    Ok(Json(
        bookings::check_in(&state, &admin, &body.code, body.event_id).await?,
    ))
}
