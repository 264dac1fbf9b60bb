//! The browser app: static files under `gateway/web/`, embedded in the binary at compile
//! time so a release build is one self-contained file, served at `/`.
//!
//! The app is plain HTML, CSS and JavaScript (no build step): it talks to the same origin's
//! JSON API and live streams, so the gateway serving it needs no CORS.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// (path, content type, body) of every file the app consists of.
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
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
];

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Short: a new build is picked up on reload without a fingerprinting step.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The app's routes (stateless, merged into the gateway's router).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES
        .iter()
        .fold(Router::new(), |router, &(path, content_type, body)| {
            router.route(path, get(move || async move { file(content_type, body) }))
        })
}
