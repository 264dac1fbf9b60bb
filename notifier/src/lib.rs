//! seatq notifier: seat updates and user notifications, live, to browsers.
//!
//! ```text
//! seatq.seat-events ──► ingest thread ──► hub ──► SSE  /v1/events/{id}/stream (seat-map deltas, coalesced)
//!  (every partition,        (per event deltas,     ├─► SSE  /v1/me/stream (holds, offers, bookings, refunds)
//!   no consumer group)       per user messages)    └─► WS   /v1/ws (both, subscribe by message)
//! ```
//! Kafka is the backplane: each instance reads every partition and can serve any client,
//! so notifiers scale behind a plain load balancer and a client may reconnect to any of
//! them (stream ids are Kafka positions). The gateway can embed the notifier's routes for
//! a one-process local stack (`notifier.embedded`); in production it runs on its own.
//! Either way the routes are part of the API: the gateway's document (`/v1/openapi.json`)
//! takes their operations from here (`openapi`), declared once with the handlers.

pub mod frame;
pub mod hub;
pub mod ingest;
pub mod position;
pub mod sse;
pub mod state;
pub mod ws;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use seatq_common::config::Settings;
use seatq_common::http::auth::JwtKeys;
use seatq_common::http::error::AppError;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::hub::{Hub, HubConfig};
use crate::state::NotifierState;

/// A running notifier: its routes can be served by any server.
#[derive(Clone)]
pub struct Notifier {
    pub state: NotifierState,
}

impl Notifier {
    /// Start reading seat events and merging deltas; stop (telling clients to reconnect)
    /// when `shutdown` is cancelled.
    pub fn start(settings: &Settings, shutdown: Shutdown) -> std::io::Result<Self> {
        let n = &settings.notifier;
        // Before the hub, which keeps metric handles from the installed recorder.
        seatq_common::metrics::install();
        let hub = Hub::new(HubConfig {
            retain_per_partition: n.retain_per_partition.max(1),
            retain_deltas_per_event: n.retain_deltas_per_event.max(1),
            client_buffer: n.client_buffer.max(1),
            max_clients: n.max_clients.max(1),
            max_connection_streams: max_connection_streams(n.max_clients),
        });
        let ready = Arc::new(AtomicBool::new(false));
        let topic = Topics::new(&settings.kafka.topic_prefix).seat_events;
        ingest::spawn(
            settings,
            topic,
            hub.clone(),
            ready.clone(),
            shutdown.clone(),
        )?;
        let coalesce = Duration::from_millis(n.coalesce_ms.max(10));
        {
            let (hub, shutdown) = (hub.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(coalesce);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => hub.flush(),
                    }
                }
                hub.flush();
                hub.close();
            });
        }
        Ok(Self {
            state: NotifierState {
                hub,
                jwt: Arc::new(JwtKeys::new(&settings.auth.jwt_secret)),
                settings: Arc::new(n.clone()),
                ready,
            },
        })
    }

    /// The stream routes, for the notifier's own server or for embedding in the gateway.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let (routes, _) = stream_router().split_for_parts();
        routes.with_state(self.state.clone())
    }

    /// The standalone service: the streams, health, readiness and stats.
    pub fn app(&self) -> Router {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/v1/notifier/stats", get(stats))
            .with_state(self.state.clone())
            .merge(self.routes())
            .fallback(|| async { AppError::not_found("route_not_found", "no such route") });
        seatq_common::metrics::instrument(app).merge(seatq_common::metrics::routes())
    }
}

/// The stream routes, each declared once with its OpenAPI operation (`#[utoipa::path]`
/// on the handler, registered by `routes!`), so the API document and what is served agree.
fn stream_router() -> OpenApiRouter<NotifierState> {
    OpenApiRouter::default()
        .routes(routes!(sse::event_stream))
        .routes(routes!(sse::user_stream))
        .routes(routes!(ws::upgrade))
}

/// The stream routes' operations, for the API document the gateway serves
/// (`/v1/openapi.json`): the streams are part of the API wherever they are served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    stream_router().into_openapi()
}

/// File descriptors kept for everything but streams (the broker, logs, health checks).
const FD_RESERVE: usize = 64;

/// Streams that own their connection (HTTP/1.1, WebSocket) this process can serve: the
/// configured maximum, but below the open-file limit, so the client past it gets
/// `503 notifier_full` (and retries elsewhere) instead of a connection that the kernel
/// accepts and the process cannot. Streams multiplexed over HTTP/2 need no descriptor of
/// their own and are bounded by `max_clients` alone.
fn max_connection_streams(configured: usize) -> usize {
    let budget = open_file_limit().map(|limit| limit.saturating_sub(FD_RESERVE));
    let max = budget.map_or(configured, |b| configured.min(b)).max(1);
    if max < configured {
        tracing::info!(max, configured, "streams capped by the open-file limit");
    }
    max
}

/// The soft open-file limit (`Max open files` in /proc/self/limits), on Linux.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

async fn readyz(State(state): State<NotifierState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with the seat events",
        )
    }
}

async fn stats(State(state): State<NotifierState>) -> Json<hub::HubStats> {
    Json(state.hub.stats())
}

impl Notifier {
    /// Serve the standalone app on `listener` until `shutdown`.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        let options = seatq_common::http::serve::ServeOptions {
            send_buffer: Some(self.state.settings.socket_send_buffer.max(4096)),
            ..seatq_common::http::serve::ServeOptions::with_idle_timeout_secs(
                self.state.settings.idle_timeout_secs,
            )
        };
        seatq_common::http::serve::serve_with(listener, self.app(), shutdown, options).await
    }
}

/// Run a standalone notifier on `notifier.listen` until `shutdown`.
pub async fn run(settings: Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    let notifier = Notifier::start(&settings, shutdown.clone())?;
    let listener = seatq_common::http::serve::bind(&settings.notifier.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "notifier listening");
    notifier.serve(listener, shutdown).await?;
    Ok(())
}
