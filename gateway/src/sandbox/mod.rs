//! The sandbox payment provider: a small but real provider that behaves like Stripe, served
//! by the gateway only when `payments.sandbox_enabled` is on (local stack and tests).
//!
//! seatq's payment flow has to be exercised end to end without a provider account: checkout
//! sessions opened idempotently, a payment page a person (or a browser test) can click,
//! signed webhooks that arrive late, more than once and after failed deliveries, and
//! refunds that can never pay back more than was taken. The sandbox keeps its own state in
//! `sandbox_*` tables and talks to seatq only over HTTP, exactly as a real provider would,
//! so nothing in seatq can take a shortcut through it.
//!
//! - `api`: the JSON API seatq (`seatq_common::payment_provider`) and tests call.
//! - `page`: the HTML payment page the buyer is sent to.
//! - `store`: the sandbox's tables.
//! - `webhooks`: signed delivery with retries.

mod api;
mod page;
mod store;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use seatq_common::config::Settings;
use seatq_common::http::error::AppError;
use sqlx::PgPool;

/// What the sandbox's handlers share.
#[derive(Clone)]
struct SandboxState {
    pool: PgPool,
    settings: Arc<Settings>,
    /// For webhook deliveries.
    http: reqwest::Client,
}

/// The sandbox's routes with their state applied, ready to be merged into the gateway's
/// router (it has no fallback of its own, so merging cannot conflict).
///
/// Empty unless `payments.sandbox_enabled`: anyone holding the (well-known default) API
/// key could mark payments paid, so it must not be served by mistake in production.
pub fn router(pool: PgPool, settings: Arc<Settings>) -> Router {
    if !settings.payments.sandbox_enabled {
        return Router::new();
    }
    // A receiver that hangs must not hold a delivery task forever: it counts as a failed
    // attempt and is retried, like any other failure.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "sandbox webhook client; using defaults");
            reqwest::Client::new()
        });
    let state = SandboxState {
        pool,
        settings,
        http,
    };
    Router::new()
        .route("/sandbox/v1/sessions", post(api::create_session))
        .route(
            "/sandbox/v1/sessions/{session_id}/complete",
            post(api::complete_session),
        )
        .route("/sandbox/v1/refunds", post(api::refund))
        .route("/sandbox/v1/payments/{payment_id}", get(api::payment))
        .route(
            "/sandbox/pay/{session_id}",
            get(page::show).post(page::submit),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Proof that the caller sent the provider API key (`Authorization: Bearer …`).
struct ApiKey;

impl FromRequestParts<SandboxState> for ApiKey {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SandboxState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme name is case-insensitive (RFC 9110).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or_else(|| AppError::unauthorized("a Bearer API key is required"))?;
        let expected = state.settings.payments.provider_api_key.as_bytes();
        if constant_time_eq(presented.as_bytes(), expected) {
            Ok(ApiKey)
        } else {
            Err(AppError::unauthorized("invalid API key"))
        }
    }
}

/// Equal bytes, in time independent of where they differ (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Unix seconds now.
fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"key", b"key"));
        assert!(!constant_time_eq(b"key", b"kex"));
        assert!(!constant_time_eq(b"key", b"key2"));
        assert!(constant_time_eq(b"", b""));
    }
}
