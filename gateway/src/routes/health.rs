//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer). A gateway
//! whose broker is down is still ready for browsing, so readiness reports each
//! dependency and fails only when PostgreSQL, which every route needs, is down.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use seatq_common::http::extract::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Liveness and readiness.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: bool,
    pub redis: bool,
    pub broker: bool,
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let timeout = Duration::from_secs(1);
    let database = tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&state.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let mut redis = state.redis.clone();
    let redis = tokio::time::timeout(
        timeout,
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let producer = state.producer.clone();
    let topic = state.topics.commands.clone();
    let broker = tokio::task::spawn_blocking(move || {
        seatq_common::kafka::partition_count(&producer, &topic, timeout).is_ok()
    })
    .await
    .unwrap_or(false);
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if database && redis && broker {
                "ready"
            } else {
                "degraded"
            },
            database,
            redis,
            broker,
        }),
    )
}
