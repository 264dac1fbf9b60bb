//! `GET /v1/ws`: the same messages as the SSE streams over one WebSocket, for clients that
//! want several events on one connection.
//!
//! With a token (`Authorization` or `?access_token=`) the user's own stream is on from the
//! start (`?last_event_id=` resumes it). Then, by message:
//! `{"type":"subscribe","event_id":"…","since":N}` / `{"type":"unsubscribe","event_id":"…"}`.
//! The server answers `subscribed` / `unsubscribed` / `error`, and sends each stream
//! message as `{"type":"message","stream":"me"|"event:{id}","id":…,"event":…,"data":{…}}`.

use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{Stream, StreamExt};
use seatq_common::http::auth::{stream_token, StreamUser};
use seatq_common::http::error::{AppError, AppResult, Problem};
use seatq_common::ids::{EventId, UserId};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::StreamMap;

use crate::frame::{SharedFrame, RECONNECT};
use crate::hub::{EventStart, Subscription};
use crate::position::Cut;
use crate::state::{ConnectionKillParts, NotifierState};

/// Event streams one connection may follow at once.
const MAX_SUBSCRIPTIONS: usize = 32;

type FrameStream = Pin<Box<dyn Stream<Item = SharedFrame> + Send>>;

fn frames(sub: Subscription) -> FrameStream {
    Box::pin(futures::stream::unfold(sub, |mut sub| async move {
        let frame = match sub.initial.pop_front() {
            Some(f) => f,
            None => sub.rx.recv().await?,
        };
        Some((frame, sub))
    }))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Subscribe {
        event_id: EventId,
        since: Option<i64>,
    },
    Unsubscribe {
        event_id: EventId,
    },
}

/// The caller, if a token came with the upgrade request (a bad token is refused).
pub struct MaybeUser(Option<UserId>);

impl FromRequestParts<NotifierState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &NotifierState,
    ) -> Result<Self, AppError> {
        if stream_token(parts).is_none() {
            return Ok(Self(None));
        }
        let StreamUser(user) = StreamUser::from_request_parts(parts, state).await?;
        Ok(Self(Some(user.user_id)))
    }
}

#[derive(Debug, Deserialize)]
pub struct WsParams {
    pub last_event_id: Option<String>,
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

/// The handshake as RFC 6455 asks for it, checked before axum's upgrade so that every
/// refusal is a problem with a stable code (axum's own are plain text) and a malformed
/// `Sec-WebSocket-Key` is refused too (axum only wants one there). What is checked is
/// what the API document's patterns say.
fn check_handshake(headers: &HeaderMap) -> Result<(), AppError> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = |detail: &str| AppError::bad_request("invalid_websocket_handshake", detail);
    if !value("connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")) {
        return Err(refuse("Connection must include upgrade"));
    }
    if !value("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(refuse("Upgrade must be websocket"));
    }
    if value("sec-websocket-version") != Some("13") {
        return Err(refuse("Sec-WebSocket-Version must be 13"));
    }
    if !value("sec-websocket-key").is_some_and(is_websocket_key) {
        return Err(refuse(
            "Sec-WebSocket-Key must be 16 bytes in base64 (24 characters ending in ==)",
        ));
    }
    Ok(())
}

/// 16 bytes in base64: 22 base64 characters, then `==`.
fn is_websocket_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// The rest of axum's refusals (a connection that cannot be upgraded, such as HTTP/2
/// without extended CONNECT) as problems.
fn upgrade_refused(rejection: WebSocketUpgradeRejection) -> AppError {
    let status = rejection.status();
    let code = if status == StatusCode::UPGRADE_REQUIRED {
        "upgrade_required"
    } else {
        "invalid_websocket_handshake"
    };
    AppError::new(status, code, rejection.body_text())
}

/// Upgrade to a WebSocket carrying the streams (see the module docs).
#[utoipa::path(get, path = "/v1/ws", tag = "streams",
    params(
        ("Connection" = String, Header, pattern = "^[ -~]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ -~]*$",
            description = "Must include `upgrade` (any case), as for every WebSocket"),
        ("Upgrade" = String, Header, pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Sec-WebSocket-Version" = String, Header, pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, pattern = "^[A-Za-z0-9+/]{22}==$",
            description = "16 random bytes in base64 (browsers make it)"),
        ("last_event_id" = Option<String>, Query, nullable = false,
            pattern = r"^[0-9]{1,9}:(-1|[0-9]{1,18}):[0-9]{1,10}(,[0-9]{1,9}:(-1|[0-9]{1,18}):[0-9]{1,10}){0,1023}$",
            description = "With a token: resume your own stream after this id, as `Last-Event-ID` does for `/v1/me/stream`"),
        ("access_token" = Option<String>, Query, nullable = false,
            description = "The bearer token, for browsers (a WebSocket cannot set headers); ignored when an Authorization header is sent")),
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switched to a WebSocket. With a token your own stream is on from the start. Then send `{\"type\":\"subscribe\",\"event_id\":…,\"since\":N}` or `{\"type\":\"unsubscribe\",\"event_id\":…}` (at most 32 event streams); the answers are `subscribed`, `unsubscribed` or `error` (with `code`), and each stream message comes as `{\"type\":\"message\",\"stream\":\"me\"|\"event:{id}\",\"id\":…,\"event\":…,\"data\":{…}}` with the kinds and data of the SSE streams"),
        (status = 400, body = Problem, description = "invalid_websocket_handshake, invalid_cursor"),
        (status = 401, body = Problem, description = "unauthorized: a token was sent and is not valid"),
        (status = 426, body = Problem, description = "upgrade_required: this connection cannot be upgraded"),
        (status = 503, body = Problem, description = "notifier_full, notifier_shutting_down, with Retry-After")))]
pub async fn upgrade(
    State(state): State<NotifierState>,
    MaybeUser(user): MaybeUser,
    seatq_common::http::extract::Query(params): seatq_common::http::extract::Query<WsParams>,
    kill: ConnectionKillParts,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> AppResult<Response> {
    check_handshake(&headers)?;
    let ws = ws.map_err(upgrade_refused)?;
    let resume = params
        .last_event_id
        .as_deref()
        .map(|c| {
            Cut::parse(c).map_err(|_| {
                AppError::bad_request(
                    "invalid_cursor",
                    "last_event_id is not a cursor this stream issued",
                )
            })
        })
        .transpose()?;
    let me = match user {
        Some(user) => Some(
            state
                .hub
                .subscribe_user(user, resume, kill.0.clone())
                .map_err(crate::state::unavailable)?,
        ),
        None => None,
    };
    Ok(ws
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| session(socket, state, me, kill.0)))
}

async fn session(
    mut socket: WebSocket,
    state: NotifierState,
    me: Option<Subscription>,
    kill: Option<tokio_util::sync::CancellationToken>,
) {
    let mut streams: StreamMap<String, FrameStream> = StreamMap::new();
    if let Some(me) = me {
        streams.insert("me".into(), frames(me));
    }
    let mut ping = tokio::time::interval(Duration::from_secs(state.settings.heartbeat_secs.max(1)));
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = command(&state, &mut streams, &text, kill.clone());
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by the library; binary is ignored
            },
            Some((stream, frame)) = streams.next(), if !streams.is_empty() => {
                if socket.send(Message::Text(frame.ws_text(&stream).into())).await.is_err() {
                    return;
                }
                if frame.event == RECONNECT {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn command(
    state: &NotifierState,
    streams: &mut StreamMap<String, FrameStream>,
    text: &str,
    kill: Option<tokio_util::sync::CancellationToken>,
) -> serde_json::Value {
    let error =
        |code: &str, detail: String| json!({"type": "error", "code": code, "detail": detail});
    let command: Command = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => return error("invalid_message", e.to_string()),
    };
    match command {
        Command::Subscribe { event_id, since } => {
            let key = format!("event:{event_id}");
            if streams.contains_key(&key) {
                return json!({"type": "subscribed", "stream": key});
            }
            if streams.len() >= MAX_SUBSCRIPTIONS {
                return error(
                    "too_many_subscriptions",
                    format!("at most {MAX_SUBSCRIPTIONS} streams per connection"),
                );
            }
            if since.is_some_and(|s| s < 0) {
                return error("invalid_cursor", "since must be 0 or more".into());
            }
            match state
                .hub
                .subscribe_event(event_id, EventStart::Fresh(since), kill)
            {
                Ok(sub) => {
                    streams.insert(key.clone(), frames(sub));
                    json!({"type": "subscribed", "stream": key})
                }
                Err(e) => error("unavailable", e.to_string()),
            }
        }
        Command::Unsubscribe { event_id } => {
            let key = format!("event:{event_id}");
            streams.remove(&key);
            json!({"type": "unsubscribed", "stream": key})
        }
    }
}
