//! Checkout and the payment provider's webhook.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::{Json, Path};
use seatq_common::ids::HoldId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::payments::{self, Checkout, WebhookAck};
use crate::state::AppState;

/// Checkout and the provider's webhook.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(checkout))
        .routes(routes!(webhook))
}

#[utoipa::path(post, path = "/v1/holds/{hold_id}/checkout", tag = "payments",
    params(("hold_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses(
        (status = 200, body = Checkout, description = "Pay at payment_url; the same payment comes back until it ends"),
        (status = 404, body = Problem, description = "hold_not_found"),
        (status = 409, body = Problem, description = "hold_not_active, hold_expired, hold_paid"),
        (status = 503, body = Problem, description = "payment_provider_unavailable")))]
pub async fn checkout(
    State(state): State<AppState>,
    user: AuthUser,
    Path(hold_id): Path<HoldId>,
) -> AppResult<Json<Checkout>> {
    Ok(Json(payments::checkout(&state, &user, hold_id).await?))
}

#[utoipa::path(post, path = "/v1/payments/webhook", tag = "payments",
    params(("Payment-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>")),
    request_body(content = String, description = "The provider's event (JSON), signed as sent"),
    responses(
        (status = 200, body = WebhookAck),
        (status = 400, body = Problem, description = "invalid_webhook"),
        (status = 401, body = Problem,
            description = "signature_missing, signature_malformed, signature_stale, signature_mismatch"),
        (status = 404, body = Problem, description = "payment_not_found"),
        (status = 503, body = Problem, description = "broker_unavailable: the provider retries")))]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<WebhookAck>> {
    let signature = headers
        .get("payment-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(payments::webhook(&state, signature, &body).await?))
}
