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

/// `GET /v1/me/stream`: the authenticated user's notifications (`Authorization` or
/// `?access_token=`).
pub async fn user_stream(
    State(state): State<NotifierState>,
    StreamUser(user): StreamUser,
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
