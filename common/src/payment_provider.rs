//! seatq's client for its payment provider, and the wire types both sides share.
//!
//! The provider's API is Stripe-like: seatq opens a checkout session per payment attempt,
//! the buyer pays on the provider's page, and the provider reports the outcome by signed
//! webhook (`Payment-Signature`, see `signing`). Every call carries seatq's own id as the
//! idempotency key (payment id for sessions, refund id for refunds), so a call retried
//! after a timeout can never open a second session or pay back twice.
//!
//! On the local stack and in tests the provider is the gateway's sandbox, which speaks the
//! same API; keeping the types here means the two cannot drift apart.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::PaymentSettings;

/// Open (or get back) the checkout session of one payment attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    /// seatq's payment id; the provider answers the same session for the same id.
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    /// Shown to the buyer on the payment page.
    pub description: String,
    /// Where the payment page sends the buyer when done (the provider's default if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    /// Where to send the buyer to pay.
    pub payment_url: String,
}

/// Pay money back for a captured payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// seatq's refund id, the idempotency key: the same id gets the same receipt back.
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub provider_refund_id: String,
    pub amount_cents: i64,
}

/// A payment as the provider sees it (`GET /sandbox/v1/payments/{payment_id}`): what the
/// reconciler asks when a payment's webhook is overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPayment {
    pub session_id: String,
    /// `open` (the buyer has not paid), `succeeded`, `failed` or `expired`.
    pub status: String,
    pub amount_cents: i64,
    /// The session's currency (what was asked for).
    pub currency: String,
    pub captured_cents: i64,
    /// The currency of the capture, once succeeded (the session's unless the provider
    /// converted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_currency: Option<String>,
    #[serde(default)]
    pub refunded_cents: i64,
}

impl ProviderPayment {
    /// The final outcome the provider reports, as the webhook that would say it; `None`
    /// while the session is still open.
    pub fn outcome(&self) -> Option<WebhookKind> {
        match self.status.as_str() {
            "succeeded" => Some(WebhookKind::Succeeded),
            // An abandoned session never takes money: for seatq it is a failed attempt.
            "failed" | "expired" | "canceled" => Some(WebhookKind::Failed),
            _ => None,
        }
    }

    /// The final outcome with what was captured, as the webhook would report it.
    pub fn report(&self) -> Option<Report> {
        Some(match self.outcome()? {
            WebhookKind::Succeeded => Report::Succeeded(Capture {
                amount_cents: self.captured_cents,
                currency: self
                    .captured_currency
                    .clone()
                    .unwrap_or_else(|| self.currency.clone()),
            }),
            WebhookKind::Failed => Report::Failed,
            WebhookKind::Processing => Report::Processing,
        })
    }
}

/// What the provider took: an amount in a currency (ISO 4217 code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub amount_cents: i64,
    pub currency: String,
}

/// What the provider reports about a payment, with the capture a success must carry (it
/// is checked against what seatq asked for before anything is booked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Processing,
    Succeeded(Capture),
    Failed,
}

impl Report {
    pub fn kind(&self) -> WebhookKind {
        match self {
            Report::Processing => WebhookKind::Processing,
            Report::Succeeded(_) => WebhookKind::Succeeded,
            Report::Failed => WebhookKind::Failed,
        }
    }
}

/// The body of every webhook the provider sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The provider's event id (`evt_…`): a redelivery carries the same id, which is how
    /// a receiver recognises it.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    /// Unix seconds when the provider created the event.
    pub created: i64,
    pub data: WebhookData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookKind {
    /// The buyer submitted the payment; the outcome follows.
    #[serde(rename = "payment.processing")]
    Processing,
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    #[serde(rename = "payment.failed")]
    Failed,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Processing => "payment.processing",
            WebhookKind::Succeeded => "payment.succeeded",
            WebhookKind::Failed => "payment.failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookData {
    pub payment_id: Uuid,
    pub session_id: String,
    /// What was captured (`payment.succeeded`), otherwise what was asked for.
    pub amount_cents: i64,
    /// The currency of `amount_cents` (ISO 4217).
    pub currency: String,
}

impl WebhookEvent {
    /// What this webhook reports, with the capture of a success.
    pub fn report(&self) -> Report {
        match self.kind {
            WebhookKind::Processing => Report::Processing,
            WebhookKind::Succeeded => Report::Succeeded(Capture {
                amount_cents: self.data.amount_cents,
                currency: self.data.currency.clone(),
            }),
            WebhookKind::Failed => Report::Failed,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or its answer could not be read: the outcome is
    /// unknown, so the caller retries with the same idempotency key.
    #[error("payment provider unreachable: {0}")]
    Http(String),
    /// The provider answered with an error status.
    #[error("payment provider refused ({status}): {body}")]
    Rejected { status: u16, body: String },
}

impl ProviderError {
    /// Whether retrying the same call may succeed (transport errors, 5xx, 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Http(_) => true,
            ProviderError::Rejected { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

impl From<reqwest::Error> for ProviderError {
    fn from(e: reqwest::Error) -> Self {
        ProviderError::Http(e.to_string())
    }
}

/// The provider's API, authenticated with seatq's API key.
#[derive(Debug, Clone)]
pub struct PaymentProvider {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

/// Longest answer body kept in a `Rejected` error (it ends up in logs).
const MAX_ERROR_BODY: usize = 2048;

impl PaymentProvider {
    pub fn new(settings: &PaymentSettings) -> Self {
        // A build failure here means the TLS/system setup is broken; fall back to the
        // default client (no timeout) rather than refusing to start.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "payment provider client; using defaults");
                reqwest::Client::new()
            });
        Self {
            http,
            base_url: settings.provider_url.trim_end_matches('/').to_owned(),
            api_key: settings.provider_api_key.clone(),
        }
    }

    /// Open the checkout session of a payment (or get back the one already open for it).
    pub async fn create_session(&self, req: &CreateSession) -> Result<Session, ProviderError> {
        self.post("/sandbox/v1/sessions", req).await
    }

    /// Pay back `amount_cents` of a captured payment, once per `refund_id`.
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundReceipt, ProviderError> {
        self.post("/sandbox/v1/refunds", req).await
    }

    /// The provider's view of a payment; `None` if it has no session for it (the session
    /// was never opened, so no money can have been taken).
    pub async fn payment(
        &self,
        payment_id: Uuid,
    ) -> Result<Option<ProviderPayment>, ProviderError> {
        let response = self
            .http
            .get(format!(
                "{}/sandbox/v1/payments/{payment_id}",
                self.base_url
            ))
            .bearer_auth(&self.api_key)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::read(response).await.map(Some)
    }

    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ProviderError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await?;
        Self::read(response).await
    }

    /// A 2xx answer's body, or the error status with (the start of) its body.
    async fn read<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, ProviderError> {
        let status = response.status();
        if !status.is_success() {
            let mut body = response.text().await.unwrap_or_default();
            if body.len() > MAX_ERROR_BODY {
                let mut end = MAX_ERROR_BODY;
                while !body.is_char_boundary(end) {
                    end -= 1;
                }
                body.truncate(end);
            }
            return Err(ProviderError::Rejected {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_wire_format() {
        let payment_id = Uuid::new_v4();
        let event = WebhookEvent {
            id: "evt_1".into(),
            kind: WebhookKind::Succeeded,
            created: 1_700_000_000,
            data: WebhookData {
                payment_id,
                session_id: "cs_1".into(),
                amount_cents: 5000,
                currency: "USD".into(),
            },
        };
        let json = serde_json::to_value(&event).expect("serialize");
        assert_eq!(json["type"], "payment.succeeded");
        assert_eq!(json["data"]["payment_id"], payment_id.to_string());
        assert_eq!(json["data"]["currency"], "USD");
        let back: WebhookEvent = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, event);
        assert_eq!(
            back.report(),
            Report::Succeeded(Capture {
                amount_cents: 5000,
                currency: "USD".into()
            })
        );
        for kind in [
            WebhookKind::Processing,
            WebhookKind::Succeeded,
            WebhookKind::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("kind"),
                serde_json::Value::String(kind.as_str().into())
            );
        }
    }
}
