//! The router with its middleware, and serving it until shutdown.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use seatq_common::http::error::AppError;
use seatq_common::shutdown::Shutdown;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// The gateway's router: the API (`routes::api_router`, declared once per route with its
/// OpenAPI operation) and the browser app behind the middleware stack, and the sandbox
/// payment provider beside it.
pub fn router(state: AppState) -> Router {
    // The sandbox payment provider (local stack and tests): a separate service in spirit,
    // with its own state, merged in only when enabled.
    let sandbox = crate::sandbox::router(state.pool.clone(), state.settings.clone());
    let (api, _) = crate::routes::api_router(state.settings.auth.dev_tokens).split_for_parts();
    let api = api.merge(crate::web::router());
    with_layers(api, state).merge(sandbox)
}

/// `api` behind the gateway's middleware stack (body limits, compression, timeout,
/// problem+json errors, panics caught, request ids, tracing), with `state`. Public so
/// that the benchmark can serve its own hold routes behind exactly these layers.
pub fn with_layers(api: Router<AppState>, state: AppState) -> Router {
    let settings = &state.settings;
    let request_id = header::HeaderName::from_static("x-request-id");
    api.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.gateway.max_body_bytes))
        // Also for bodies no extractor reads, and a Content-Length over the limit is
        // refused at once rather than after reading up to it.
        .layer(RequestBodyLimitLayer::new(settings.gateway.max_body_bytes))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(settings.gateway.request_timeout_ms),
        ))
        .layer(axum::middleware::map_response(bare_errors_as_problems))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal("handler", "panic").into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                let rid = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), http_request_id = %rid)
            },
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Errors the handlers do not write themselves — the timeout layer's 408, axum's plain-text
/// rejections (a byte body over the limit) — get the problem+json shape too, so every
/// error a client sees has a stable `code`.
async fn bare_errors_as_problems(response: Response) -> Response {
    let status = response.status();
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !bare || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let code = match status {
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
    AppError::new(status, code, detail).into_response()
}

async fn not_found() -> AppError {
    AppError::not_found("route_not_found", "no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Serve until `shutdown` is cancelled, then finish in-flight requests. With
/// `notifier.embedded` the gateway also runs a notifier and serves its streams (outside the
/// API's compression and timeout layers, which do not suit endless responses).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut app = router(state.clone());
    if state.settings.notifier.embedded {
        let notifier = seatq_notifier::Notifier::start(&state.settings, shutdown.clone())?;
        app = app.merge(notifier.routes());
    }
    tracing::info!(%addr, embedded_notifier = state.settings.notifier.embedded, "gateway listening");
    serve_app(listener, app, &state.settings, shutdown).await
}

/// Serve `app` as the gateway serves its router: latency metrics per route, `/metrics`,
/// and the gateway's connection handling (idle timeout, header limits). Public so that
/// the benchmark's fronts handle connections exactly like the gateway.
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    settings: &seatq_common::config::Settings,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    // Latency per route template over everything merged above; /metrics itself outside it.
    seatq_common::metrics::install();
    seatq_common::metrics::zero_money_counters();
    let app = seatq_common::metrics::instrument(app).merge(seatq_common::metrics::routes());
    let options = seatq_common::http::serve::ServeOptions::with_idle_timeout_secs(
        settings.gateway.idle_timeout_secs,
    );
    seatq_common::http::serve::serve_with(listener, app, shutdown, options).await
}

/// Bind `settings.gateway.listen`, connect, and serve in the background until `shutdown`.
/// Returns the bound address (useful with port 0) — for tests and embedding.
pub async fn spawn(
    settings: seatq_common::config::Settings,
    shutdown: Shutdown,
) -> Result<
    (
        std::net::SocketAddr,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
    crate::state::StartupError,
> {
    let listener = seatq_common::http::serve::bind(&settings.gateway.listen)
        .await
        .map_err(|e| crate::state::StartupError::Bind(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::state::StartupError::Bind(e.to_string()))?;
    let state = AppState::connect(settings, shutdown.clone()).await?;
    Ok((addr, tokio::spawn(serve(listener, state, shutdown))))
}
