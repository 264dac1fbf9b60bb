//! The router with its middleware, and serving it until shutdown.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use seatq_common::shutdown::Shutdown;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::routes::{admin, dev, events, health, holdbacks, holds, payments, queue, waitlist};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    // The sandbox payment provider (local stack and tests): a separate service in spirit,
    // with its own state, merged in only when enabled.
    let sandbox = crate::sandbox::router(state.pool.clone(), state.settings.clone());
    let settings = &state.settings;
    let mut api = Router::new()
        .merge(crate::web::router())
        .route("/v1/admin/venues", post(admin::create_venue))
        .route("/v1/admin/events", post(admin::create_event))
        .route(
            "/v1/admin/events/{event_id}/holdbacks",
            post(holdbacks::create).get(holdbacks::list),
        )
        .route(
            "/v1/admin/holdbacks/{hold_id}/release",
            post(holdbacks::release),
        )
        .route("/v1/admin/events/{event_id}/stats", get(holdbacks::stats))
        .route(
            "/v1/admin/requests/{request_id}",
            get(holdbacks::request_status),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/events/{event_id}", get(events::get))
        .route("/v1/events/{event_id}/seats", get(events::seat_map))
        .route(
            "/v1/events/{event_id}/holds",
            post(holds::request_hold).layer(axum::middleware::from_fn(
                seatq_common::metrics::count_hold_requests,
            )),
        )
        .route("/v1/hold-requests/{request_id}", get(holds::request_status))
        .route(
            "/v1/holds/{hold_id}",
            get(holds::get_hold).delete(holds::cancel_hold),
        )
        .route("/v1/me/holds", get(holds::my_holds))
        .route("/v1/me/waitlists", get(waitlist::mine))
        .route("/v1/events/{event_id}/queue", post(queue::join))
        .route(
            "/v1/events/{event_id}/queue/challenge",
            post(queue::challenge),
        )
        .route("/v1/events/{event_id}/queue/{ticket}", get(queue::status))
        .route("/v1/holds/{hold_id}/checkout", post(payments::checkout))
        .route("/v1/payments/webhook", post(payments::webhook))
        .route(
            "/v1/events/{event_id}/seats/{seat_id}/waitlist",
            post(waitlist::join)
                .get(waitlist::place)
                .delete(waitlist::leave),
        )
        // bookings and tickets
        .route(
            "/v1/bookings/{booking_id}",
            get(crate::routes::bookings::get_booking),
        )
        .route(
            "/v1/bookings/{booking_id}/cancel",
            post(crate::routes::bookings::cancel_booking),
        )
        .route("/v1/me/bookings", get(crate::routes::bookings::my_bookings))
        .route(
            "/v1/tickets/{ticket_id}",
            get(crate::routes::bookings::get_ticket),
        )
        .route(
            "/v1/tickets/{ticket_id}/qr.svg",
            get(crate::routes::bookings::ticket_qr),
        )
        .route(
            "/v1/tickets/{ticket_id}/transfer",
            post(crate::routes::bookings::transfer_ticket),
        )
        .route(
            "/v1/admin/checkins",
            post(crate::routes::bookings::check_in),
        )
        // end bookings and tickets
        .route("/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if settings.auth.dev_tokens {
        api = api.route("/v1/dev/token", post(dev::issue_token));
    }
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

async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi::json(),
    )
        .into_response()
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
