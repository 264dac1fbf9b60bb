//! Paying for a hold: checkout sessions at the payment provider, and the provider's
//! signed webhooks.
//!
//! The money side is not seat state, so the gateway records payments itself; what the
//! payment *means* for the seats (sell them, or refund because the hold was released
//! meanwhile) is decided by the consumer from a `payment_succeeded` / `payment_failed`
//! command, in order with everything else that happens to the event.
//!
//! Webhooks are verified (HMAC over `t.body`, timestamp tolerance, constant-time compare)
//! and idempotent by the provider's event id. The command is produced *before* the
//! webhook's transaction commits and with a request id derived from the payment: if the
//! broker is down the webhook gets a 503 and the provider retries; if the gateway dies
//! after producing, the retry produces the same request id, which the consumer decides
//! once. A webhook is therefore never lost and never applied twice. The transition and
//! the command are `seatq_common::payment_outcome`, shared with the scheduler's payment
//! reconciler, which settles payments whose webhook never comes.

use chrono::{DateTime, Utc};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{EventId, HoldId, PaymentId, SectionId, UserId};
use seatq_common::payment_outcome::{self, OutcomeError};
use seatq_common::payment_provider::{CreateSession, WebhookEvent};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::state::AppState;

/// What every payment asks for (recorded on the payment, which a capture is checked
/// against).
const CURRENCY: &str = seatq_common::command::DEFAULT_CURRENCY;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Checkout {
    pub payment_id: PaymentId,
    pub hold_id: HoldId,
    /// Where the buyer pays (the provider's page).
    pub payment_url: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    /// The hold's expiry (extended once if the payment is still in progress then).
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    pub received: bool,
    /// This provider event was handled before; nothing was done again.
    pub duplicate: bool,
}

type HoldForCheckout = (
    EventId,
    UserId,
    String,
    Vec<i32>,
    Option<SectionId>,
    i32,
    DateTime<Utc>,
);
type OpenPayment = (PaymentId, i64, String, Option<String>);

const SELECT_HOLD: &str =
    "SELECT event_id, user_id, status, seat_nos, ga_section_id, quantity, expires_at \
     FROM holds WHERE id = $1";
const SELECT_OPEN_PAYMENT: &str = "SELECT id, amount_cents, status, payment_url FROM payments \
     WHERE hold_id = $1 AND status IN ('pending', 'processing')";
const SELECT_PAID: &str =
    "SELECT EXISTS (SELECT 1 FROM payments WHERE hold_id = $1 AND status = 'paid')";
const INSERT_PAYMENT: &str =
    "INSERT INTO payments (id, hold_id, event_id, user_id, amount_cents, currency, status) \
     VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT DO NOTHING";
const SET_SESSION: &str =
    "UPDATE payments SET provider_session = $2, payment_url = $3, updated_at = now() \
     WHERE id = $1";
const ABANDON_PAYMENT: &str =
    "UPDATE payments SET status = 'failed', updated_at = now() WHERE id = $1 AND status = 'pending'";
const RECORD_WEBHOOK: &str = "INSERT INTO webhook_events (provider_event_id, payment_id, kind) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// Start (or resume) paying for `hold_id`.
pub async fn checkout(state: &AppState, user: &AuthUser, hold_id: HoldId) -> AppResult<Checkout> {
    let not_found = || AppError::not_found("hold_not_found", format!("no hold {hold_id}"));
    let (event_id, owner, status, seat_nos, ga, quantity, expires_at): HoldForCheckout =
        sqlx::query_as(SELECT_HOLD)
            .bind(hold_id)
            .fetch_optional(&state.pool)
            .await?
            .filter(|r: &HoldForCheckout| r.1 == user.user_id)
            .ok_or_else(not_found)?;
    if status != "active" {
        return Err(AppError::conflict(
            "hold_not_active",
            format!("the hold is {status}"),
        ));
    }
    if expires_at <= Utc::now() {
        return Err(AppError::conflict("hold_expired", "the hold has expired"));
    }
    let paid: bool = sqlx::query_scalar(SELECT_PAID)
        .bind(hold_id)
        .fetch_one(&state.pool)
        .await?;
    if paid {
        return Err(AppError::conflict("hold_paid", "this hold is already paid"));
    }
    let entry = state.catalog.event(event_id).await?.ok_or_else(not_found)?;
    let amount_cents = entry.layout.hold_total(&seat_nos, ga, quantity);
    // One checkout in progress per hold (a unique index): a second click, or two tabs,
    // get the same payment back.
    let payment_id = PaymentId::new();
    sqlx::query(INSERT_PAYMENT)
        .bind(payment_id)
        .bind(hold_id)
        .bind(event_id)
        .bind(&owner)
        .bind(amount_cents)
        .bind(CURRENCY)
        .execute(&state.pool)
        .await?;
    let (payment_id, amount_cents, status, url): OpenPayment = sqlx::query_as(SELECT_OPEN_PAYMENT)
        .bind(hold_id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| {
            AppError::conflict("checkout_closed", "the checkout just ended; try again")
        })?;
    let payment_url = match url {
        Some(url) => url,
        None => {
            let session = state
                .provider
                .create_session(&CreateSession {
                    payment_id: payment_id.0,
                    amount_cents,
                    currency: CURRENCY.into(),
                    description: format!("{} ({} seats)", entry.info.title, quantity),
                    // Back to the hold in the browser app, which shows the booking.
                    return_url: Some(format!(
                        "{}/#/holds/{hold_id}",
                        state.settings.gateway.public_url.trim_end_matches('/')
                    )),
                })
                .await;
            match session {
                Ok(session) => {
                    sqlx::query(SET_SESSION)
                        .bind(payment_id)
                        .bind(&session.session_id)
                        .bind(&session.payment_url)
                        .execute(&state.pool)
                        .await?;
                    session.payment_url
                }
                Err(e) => {
                    tracing::warn!(%payment_id, error = %e, "payment provider refused a session");
                    sqlx::query(ABANDON_PAYMENT)
                        .bind(payment_id)
                        .execute(&state.pool)
                        .await?;
                    return Err(AppError::unavailable(
                        "payment_provider_unavailable",
                        "payments cannot be started right now; your hold is kept",
                        2,
                    ));
                }
            }
        }
    };
    Ok(Checkout {
        payment_id,
        hold_id,
        payment_url,
        amount_cents,
        currency: CURRENCY.into(),
        status,
        expires_at,
    })
}

/// Handle one webhook delivery (already read as bytes, not yet verified).
pub async fn webhook(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> AppResult<WebhookAck> {
    let settings = &state.settings.payments;
    let header = signature.ok_or_else(|| {
        AppError::unauthorized("Payment-Signature header is missing").with_code("signature_missing")
    })?;
    seatq_common::signing::verify(
        settings.webhook_secret.as_bytes(),
        header,
        body,
        Utc::now().timestamp(),
        settings.webhook_tolerance_secs,
    )
    .map_err(|e| AppError::unauthorized(e.to_string()).with_code(e.code()))?;
    let event: WebhookEvent = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request("invalid_webhook", format!("not a webhook event: {e}"))
    })?;
    let payment_id = PaymentId(event.data.payment_id);
    let mut tx = state.pool.begin().await?;
    let payment = payment_outcome::lock(&mut tx, payment_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found("payment_not_found", format!("no payment {payment_id}"))
        })?;
    let recorded = sqlx::query(RECORD_WEBHOOK)
        .bind(&event.id)
        .bind(payment_id)
        .bind(event.kind.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if recorded == 0 {
        tx.rollback().await?;
        return Ok(WebhookAck {
            received: true,
            duplicate: true,
        });
    }
    let recorded = match payment_outcome::record(
        &mut tx,
        &state.catalog,
        &state.commands,
        &payment,
        &event.report(),
    )
    .await
    {
        Ok(recorded) => recorded,
        Err(OutcomeError::Database(e)) => return Err(e.into()),
        Err(e @ OutcomeError::Broker(_)) => {
            tracing::warn!(%payment_id, error = %e, "payment command not accepted; the provider will retry");
            return Err(AppError::unavailable(
                "broker_unavailable",
                "the payment cannot be recorded right now; retry",
                2,
            ));
        }
        Err(e) => return Err(AppError::internal("webhook", e)),
    };
    tx.commit().await?;
    recorded.committed();
    Ok(WebhookAck {
        received: true,
        duplicate: false,
    })
}
