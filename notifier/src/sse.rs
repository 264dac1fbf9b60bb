//! Server-Sent Events: `GET /v1/events/{event_id}/stream` (one event's seat map) and
//! `GET /v1/me/stream` (the caller's holds, offers, bookings and refunds).
//!
//! Every stream starts with `ready` (its id is where the stream starts) and a `retry:`
//! hint; keeps the connection warm with comment heartbeats; resumes from `Last-Event-ID`
//! (or, for a fresh event stream, from `?since=` = the seat map's `position.next_offset`);
//! ends with `reconnect` when the notifier shuts down. See `hub` for what is sent when.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use seatq_common::http::auth::StreamUser;
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::http::extract::{Path, Query};
use seatq_common::ids::EventId;
use serde::Deserialize;

use crate::frame::RECONNECT;
use crate::hub::{EventStart, Subscription};
use crate::position::{parse_offset, Cut, MAX_OFFSET};
use crate::state::{ConnectionKillParts, NotifierState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Event streams: the seat map's `position.next_offset` (send what came after it).
    pub since: Option<i64>,
    /// EventSource cannot set headers: the token may come in the query string (read by
    /// the authentication extractor).
    pub access_token: Option<String>,
}

/// The `Last-Event-ID` header: absent or empty means none; anything else must be a cursor
/// (also a header that is not visible ASCII, which no cursor is).
fn last_event_id(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok("") => Ok(None),
            Ok(id) => Ok(Some(id)),
            Err(_) => Err(bad_cursor()),
        },
    }
}

fn bad_cursor() -> AppError {
    AppError::bad_request(
        "invalid_cursor",
        "Last-Event-ID is not a cursor this stream issued",
    )
}

/// One Server-Sent Event of a stream, as the API document describes it (each `event:`,
/// `id:` and `data:` block; the `retry:` hint and `: ping` heartbeats carry no data and
/// are not events).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StreamEvent {
    /// The message kind. Every stream starts with `ready`; `resync` means the cursor is
    /// older than what the notifier kept (re-fetch the seat map or your holds, keep
    /// reading); `reconnect` ends a stream when the notifier shuts down (reconnect, to any
    /// instance, with the last id). An event stream then sends `seat_status_changed`; a
    /// user stream the seat events addressed to the user.
    event: MessageKind,
    /// The message as JSON: `{"detail": …}` for `ready`, `resync` and `reconnect`;
    /// `{"event_id", "seats": [{"seat_id", "status"}], "sections": [{"section",
    /// "available"}], "next_offset"}` for `seat_status_changed` (changes merged over
    /// `notifier.coalesce_ms`); the seat event's envelope (its `kind` is the `event`) on a
    /// user stream.
    #[schema(content_media_type = "application/json")]
    data: String,
    /// The resume cursor after this message: send it back as `Last-Event-ID` (EventSource
    /// does) to continue where the stream broke off, on any notifier. Absent on `resync`
    /// and `reconnect`, and on `ready` before anything was published.
    id: Option<String>,
}

/// The kinds of stream messages (`Frame::event`): the control messages of `frame`, and
/// the kinds of `seatq_common::message::SeatEvent`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MessageKind {
    Ready,
    Resync,
    Reconnect,
    SeatStatusChanged,
    HoldCreated,
    HoldRejected,
    HoldReleased,
    HoldExtended,
    ReservationExpiring,
    WaitlistOffer,
    WaitlistUpdated,
    PaymentFailed,
    BookingConfirmed,
    BookingCancelled,
    RefundIssued,
    QueuePosition,
    Admitted,
}

/// A heartbeat: a comment line, which EventSource ignores but proxies see as traffic.
const HEARTBEAT: &[u8] = b": ping\n\n";

/// The stream body: the `retry:` hint, then the subscription's frames (each encoded once
/// for all clients, see `Frame::sse`) with a heartbeat whenever nothing was sent for
/// `heartbeat`; it ends after `reconnect` or when the hub lets the client go. The
/// subscription (the client's registration) lives as long as the body does.
pub fn body(
    sub: Subscription,
    retry: Duration,
    heartbeat: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let hint = Bytes::from(format!("retry: {}\n\n", retry.as_millis()));
    let frames = futures::stream::unfold((sub, false), move |(mut sub, done)| async move {
        if done {
            return None;
        }
        let next = match sub.initial.pop_front() {
            Some(f) => Some(f),
            None => match tokio::time::timeout(heartbeat, sub.rx.recv()).await {
                Ok(Some(f)) => Some(f),
                Ok(None) => return None,
                Err(_) => None, // quiet for a while: heartbeat
            },
        };
        Some(match next {
            Some(frame) => {
                let done = frame.event == RECONNECT;
                (Ok(frame.sse()), (sub, done))
            }
            None => (Ok(Bytes::from_static(HEARTBEAT)), (sub, false)),
        })
    });
    futures::stream::once(async move { Ok(hint) }).chain(frames)
}

fn respond(state: &NotifierState, sub: Subscription) -> Response {
    let heartbeat = Duration::from_secs(state.settings.heartbeat_secs.max(1));
    let retry = Duration::from_millis(state.settings.retry_ms);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Proxies (nginx) must not buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body(sub, retry, heartbeat)),
    )
        .into_response()
}

/// Seat-map deltas of one event, merged per `coalesce_ms`. Public, like the seat map.
#[utoipa::path(get, path = "/v1/events/{event_id}/stream", tag = "streams",
    params(("event_id" = String, Path, format = Uuid),
        ("since" = Option<i64>, Query, nullable = false, minimum = 0, maximum = 999999999999999.0,
            description = "The seat map's `position.next_offset`: start after it, so nothing between the snapshot and the stream is missed. Without it the stream starts now"),
        ("access_token" = Option<String>, Query, nullable = false,
            description = "Accepted so that one URL shape serves both streams; this stream is public and does not read it"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^([0-9]{1,15})?$",
            description = "Resume a broken stream after this id (EventSource sends it by itself); it wins over `since`")),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamEvent,
            description = "An endless stream: `ready` (its id is where the stream starts), then `seat_status_changed` deltas; `: ping` comments keep it warm. The same for an event that does not exist: nothing comes"),
        (status = 400, body = Problem, description = "invalid_cursor: a Last-Event-ID or since this stream did not issue"),
        (status = 503, body = Problem, description = "notifier_full, notifier_shutting_down, with Retry-After: try again, elsewhere")))]
pub async fn event_stream(
    State(state): State<NotifierState>,
    Path(event_id): Path<EventId>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
    kill: ConnectionKillParts,
) -> AppResult<Response> {
    // A `since` out of range is refused even when Last-Event-ID wins over it: a bad
    // parameter is the client's mistake either way.
    if params.since.is_some_and(|s| !(0..=MAX_OFFSET).contains(&s)) {
        return Err(AppError::bad_request(
            "invalid_cursor",
            "since must be a seat map's position.next_offset (0 or more)",
        ));
    }
    let start = match last_event_id(&headers)? {
        Some(id) => EventStart::Resume(parse_offset(id).map_err(|_| bad_cursor())?),
        None => EventStart::Fresh(params.since),
    };
    let sub = state
        .hub
        .subscribe_event(event_id, start, kill.0)
        .map_err(crate::state::unavailable)?;
    tracing::debug!(%event_id, ?start, "event stream opened");
    Ok(respond(&state, sub))
}

/// The authenticated user's notifications (token in `Authorization` or `?access_token=`).
#[utoipa::path(get, path = "/v1/me/stream", tag = "streams",
    params(
        ("access_token" = Option<String>, Query, nullable = false,
            description = "The bearer token, for EventSource, which cannot set headers; ignored when an Authorization header is sent"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = r"^([0-9]{1,9}:(-1|[0-9]{1,18}):[0-9]{1,10}(,[0-9]{1,9}:(-1|[0-9]{1,18}):[0-9]{1,10}){0,1023})?$",
            description = "Resume a broken stream after this id (EventSource sends it by itself): per partition of the seat events, what was sent (`partition:offset:index`, comma separated)")),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = StreamEvent,
            description = "An endless stream: `ready`, then what happens to your holds, waitlist places, payments, bookings and refunds, and your place in waiting rooms; `: ping` comments keep it warm"),
        (status = 400, body = Problem, description = "invalid_cursor: a Last-Event-ID this stream did not issue"),
        (status = 503, body = Problem, description = "notifier_full, notifier_shutting_down, with Retry-After: try again, elsewhere")))]
pub async fn user_stream(
    State(state): State<NotifierState>,
    StreamUser(user): StreamUser,
    Query(_params): Query<StreamParams>,
    headers: HeaderMap,
    kill: ConnectionKillParts,
) -> AppResult<Response> {
    let resume = last_event_id(&headers)?
        .map(|id| Cut::parse(id).map_err(|_| bad_cursor()))
        .transpose()?;
    let sub = state
        .hub
        .subscribe_user(user.user_id.clone(), resume, kill.0)
        .map_err(crate::state::unavailable)?;
    tracing::debug!(user_id = %user.user_id, "user stream opened");
    Ok(respond(&state, sub))
}
