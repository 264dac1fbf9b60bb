//! The browser app: static files under `gateway/web/`, embedded in the binary at compile
//! time so a release build is one self-contained file, served at `/`.
//!
//! The app is plain HTML, CSS and JavaScript (no build step): it talks to the same origin's
//! JSON API and live streams, so the gateway serving it needs no CORS.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// (path, content type, body) of every file the app consists of: `app.js` (the entry
/// module) and its parts under `app/`, then the helper modules (`pow-worker.js` is not
/// imported but started as a module Web Worker by `pow.js`: it must be here all the same).
/// A module missing here is a 404 that stops the whole app from starting.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "/app/ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/ui.js"),
    ),
    (
        "/app/session.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/session.js"),
    ),
    (
        "/app/holds.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/holds.js"),
    ),
    (
        "/app/offers.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/offers.js"),
    ),
    (
        "/app/user-feed.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/user-feed.js"),
    ),
    (
        "/app/event-cache.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-cache.js"),
    ),
    (
        "/app/events.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/events.js"),
    ),
    (
        "/app/event-page.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-page.js"),
    ),
    (
        "/app/event-state.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-state.js"),
    ),
    (
        "/app/event-selection.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-selection.js"),
    ),
    (
        "/app/event-seat-info.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-seat-info.js"),
    ),
    (
        "/app/event-waitlists.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-waitlists.js"),
    ),
    (
        "/app/event-hold.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-hold.js"),
    ),
    (
        "/app/event-live.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-live.js"),
    ),
    (
        "/app/event-pickers.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/event-pickers.js"),
    ),
    (
        "/app/waiting-room.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/waiting-room.js"),
    ),
    (
        "/app/hold-views.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/hold-views.js"),
    ),
    (
        "/app/bookings.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/bookings.js"),
    ),
    (
        "/app/admin-ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-ui.js"),
    ),
    (
        "/app/admin-venues.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-venues.js"),
    ),
    (
        "/app/admin-events.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-events.js"),
    ),
    (
        "/app/admin-holdbacks.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-holdbacks.js"),
    ),
    (
        "/app/admin-control-room.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-control-room.js"),
    ),
    (
        "/app/admin-seat-story.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/admin-seat-story.js"),
    ),
    (
        "/app/lottery.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/lottery.js"),
    ),
    (
        "/app/checkin.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app/checkin.js"),
    ),
    (
        "/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/api.js"),
    ),
    (
        "/seatmap.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/seatmap.js"),
    ),
    (
        "/util.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/util.js"),
    ),
    (
        "/pow.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/pow.js"),
    ),
    (
        "/pow-worker.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/pow-worker.js"),
    ),
    (
        "/sha256.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/sha256.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
];

/// A strong validator for an embedded file: a hash of its bytes, so it changes with every
/// build that changes the file.
fn etag(body: &str) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn file(
    content_type: &'static str,
    body: &'static str,
    etag: &str,
    headers: &HeaderMap,
) -> Response {
    // The app is several ES modules that import each other: a browser must never combine
    // a cached old module with a new one after a deploy, so every load revalidates (a
    // 304 without a body when unchanged).
    let validators = [
        (header::ETAG, HeaderValue::from_str(etag).expect("hex etag")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        validators,
        body,
    )
        .into_response()
}

/// The app's routes (stateless, merged into the gateway's router).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            let tag = etag(body);
            let serve =
                move |headers: HeaderMap| async move { file(content_type, body, &tag, &headers) };
            router.route(path, get(serve))
        })
}
