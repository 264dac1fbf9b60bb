//! Server-Sent Events: `GET /v1/events/{event_id}/stream` (one event's seat map) and
//! `GET /v1/me/stream` (the caller's holds, offers, bookings and refunds).
//!
//! Every stream starts with `ready` (its id is where the stream starts) and a `retry:`
//! hint; keeps the connection warm with comment heartbeats; resumes from `Last-Event-ID`
//! (or, for a fresh event stream, from `?since=` = the seat map's `position.next_offset`);
//! ends with `reconnect` when the notifier shuts down. See `hub` for what is sent when.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use seatq_common::http::auth::AuthUser;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::http::extract::{Path, Query};
use seatq_common::ids::EventId;
use serde::Deserialize;

use crate::frame::RECONNECT;
use crate::hub::{EventStart, Subscription};
use crate::position::{parse_offset, Cut};
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

fn last_event_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bad_cursor() -> AppError {
    AppError::bad_request(
        "invalid_cursor",
        "Last-Event-ID is not a cursor this stream issued",
    )
}

/// The frames of a subscription as SSE events, ending after `reconnect` or when the hub
/// lets the client go. The subscription (the client's registration) lives as long as the
/// stream does.
pub fn frames(sub: Subscription, retry: Duration) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(
        (sub, true, false),
        move |(mut sub, first, done)| async move {
            if done {
                return None;
            }
            let frame = match sub.initial.pop_front() {
                Some(f) => f,
                None => sub.rx.recv().await?,
            };
            let event = frame.sse(first.then_some(retry));
            let done = frame.event == RECONNECT;
            Some((Ok(event), (sub, false, done)))
        },
    )
}

fn respond(state: &NotifierState, sub: Subscription) -> Response {
    let heartbeat = Duration::from_secs(state.settings.heartbeat_secs.max(1));
    let retry = Duration::from_millis(state.settings.retry_ms);
    let mut response = Sse::new(frames(sub, retry))
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `GET /v1/events/{event_id}/stream[?since=N]`: seat-map deltas of one event, merged per
/// `coalesce_ms`. Public, like the seat map.
pub async fn event_stream(
    State(state): State<NotifierState>,
    Path(event_id): Path<EventId>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
    kill: ConnectionKillParts,
) -> AppResult<Response> {
    let start = match last_event_id(&headers) {
        Some(id) => EventStart::Resume(parse_offset(id).map_err(|_| bad_cursor())?),
        None => {
            if params.since.is_some_and(|s| s < 0) {
                return Err(AppError::bad_request(
                    "invalid_cursor",
                    "since must be a seat map's position.next_offset (0 or more)",
                ));
            }
            EventStart::Fresh(params.since)
        }
    };
    let sub = state
        .hub
        .subscribe_event(event_id, start, kill.0)
        .map_err(crate::state::unavailable)?;
    tracing::debug!(%event_id, ?start, "event stream opened");
    Ok(respond(&state, sub))
}

/// `GET /v1/me/stream`: the authenticated user's notifications.
pub async fn user_stream(
    State(state): State<NotifierState>,
    user: AuthUser,
    Query(_params): Query<StreamParams>,
    headers: HeaderMap,
    kill: ConnectionKillParts,
) -> AppResult<Response> {
    let resume = last_event_id(&headers)
        .map(|id| Cut::parse(id).map_err(|_| bad_cursor()))
        .transpose()?;
    let sub = state
        .hub
        .subscribe_user(user.user_id.clone(), resume, kill.0)
        .map_err(crate::state::unavailable)?;
    tracing::debug!(user_id = %user.user_id, "user stream opened");
    Ok(respond(&state, sub))
}
