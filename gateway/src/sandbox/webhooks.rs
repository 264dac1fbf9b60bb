//! Webhook delivery, the way a real provider does it: signed (`Payment-Signature`), in the
//! background after the API call has answered, retried with backoff when the receiver
//! fails, and, when asked, delivered several times with the same event id.
//!
//! Duplicates and delays are the point: seatq must treat a webhook as "at least once, maybe
//! late", and tests use `duplicates` and `delay_ms` to prove it does; `drop_webhooks` loses
//! them altogether, which the payment reconciler must make up for.

use std::time::Duration;

use seatq_common::payment_provider::{WebhookData, WebhookEvent, WebhookKind};
use seatq_common::signing;
use uuid::Uuid;

use super::store::SessionRow;
use super::SandboxState;

/// Waits between attempts; one more attempt than waits (8 in all, ~14 s), like Stripe's
/// schedule compressed from days to seconds.
const BACKOFF_MS: [u64; 7] = [200, 500, 1000, 2000, 5000, 5000, 5000];

/// How the outcome of a session is reported.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// Wait this long before the first webhook.
    pub delay: Duration,
    /// Send `payment.processing` first.
    pub processing: bool,
    /// Send the final webhook this many times at once, with one event id.
    pub duplicates: u32,
    /// Send nothing (a lost outcome, for the reconciler to find).
    pub dropped: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            processing: true,
            duplicates: 1,
            dropped: false,
        }
    }
}

fn event_id() -> String {
    format!("evt_{}", Uuid::new_v4().simple())
}

/// A webhook about `session`: a success reports what was captured, anything else what
/// was asked for.
fn event(session: &SessionRow, kind: WebhookKind, id: String) -> WebhookEvent {
    let (amount_cents, currency) = match (kind, &session.captured_currency) {
        (WebhookKind::Succeeded, Some(currency)) => (session.captured_cents, currency.clone()),
        _ => (session.amount_cents, session.currency.clone()),
    };
    WebhookEvent {
        id,
        kind,
        created: super::now_unix(),
        data: WebhookData {
            payment_id: session.payment_id,
            session_id: session.id.clone(),
            amount_cents,
            currency,
        },
    }
}

/// Report the outcome of a just completed session in the background; returns the final
/// event's id (known before anything is sent, so the caller can answer it at once).
pub(super) fn spawn(
    state: &SandboxState,
    session: &SessionRow,
    succeeded: bool,
    plan: Plan,
) -> String {
    let kind = if succeeded {
        WebhookKind::Succeeded
    } else {
        WebhookKind::Failed
    };
    let final_id = event_id();
    let processing = plan
        .processing
        .then(|| event(session, WebhookKind::Processing, event_id()));
    let outcome = event(session, kind, final_id.clone());
    if plan.dropped {
        tracing::info!(payment_id = %session.payment_id, event_id = %final_id,
            "sandbox drops this session's webhooks, as asked");
        return final_id;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if !plan.delay.is_zero() {
            tokio::time::sleep(plan.delay).await;
        }
        if let Some(processing) = processing {
            deliver(&state, &processing).await;
        }
        let copies = (0..plan.duplicates.max(1)).map(|_| deliver(&state, &outcome));
        futures::future::join_all(copies).await;
    });
    final_id
}

/// POST one event until the receiver answers 2xx or the attempts run out; true if it was
/// delivered.
async fn deliver(state: &SandboxState, event: &WebhookEvent) -> bool {
    let payments = &state.settings.payments;
    let body = match serde_json::to_vec(event) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, event_id = %event.id, "cannot serialise webhook");
            return false;
        }
    };
    let attempts = BACKOFF_MS.len() + 1;
    for attempt in 1..=attempts {
        // Signed per attempt with the current time, so a late retry is not refused as stale.
        let signature =
            signing::signature_header(payments.webhook_secret.as_bytes(), super::now_unix(), &body);
        let result = state
            .http
            .post(&payments.sandbox_webhook_url)
            .header("content-type", "application/json")
            .header("payment-signature", signature)
            .body(body.clone())
            .send()
            .await;
        let failure = match result {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(event_id = %event.id, kind = event.kind.as_str(), attempt,
                    "webhook delivered");
                return true;
            }
            Ok(response) => format!("receiver answered {}", response.status()),
            Err(e) => e.to_string(),
        };
        match BACKOFF_MS.get(attempt - 1) {
            Some(&wait) => {
                tracing::warn!(event_id = %event.id, kind = event.kind.as_str(), attempt,
                    retry_in_ms = wait, %failure, "webhook delivery failed");
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            None => {
                tracing::error!(event_id = %event.id, kind = event.kind.as_str(), attempt,
                    %failure, "webhook delivery failed; giving up");
            }
        }
    }
    false
}
