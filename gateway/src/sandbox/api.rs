//! The sandbox provider's JSON API (`/sandbox/v1/…`, Bearer API key): what seatq's
//! `PaymentProvider` client calls, plus the controls tests use to drive a payment
//! (`complete` with delays, duplicate or dropped webhooks, a retry after a decline, a
//! capture unlike the session, refused refunds) and to inspect it afterwards.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::http::extract::{Json, Path};
use seatq_common::payment_provider::{CreateSession, RefundReceipt, RefundRequest, Session};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::store::{self, CompleteOptions, Completion, RefundOutcome, RefundRow, SessionRow};
use super::webhooks::{self, Plan};
use super::{ApiKey, SandboxState};

/// Longest `delay_ms` a test may ask for.
const MAX_DELAY_MS: u64 = 60_000;
/// Most copies of one webhook a test may ask for.
const MAX_DUPLICATES: u32 = 200;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// How the buyer's payment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Outcome {
    Succeed,
    Fail,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteRequest {
    outcome: Outcome,
    /// Wait this long before sending webhooks (at most 60000).
    delay_ms: Option<u64>,
    /// Send the final webhook this many times, same event id (1..=200, default 1).
    duplicates: Option<u32>,
    /// Send no `payment.processing` first.
    skip_processing: Option<bool>,
    /// Send no webhooks at all, as when the provider's process dies before delivering
    /// them: only asking the provider (`GET …/payments/{id}`) reveals the outcome.
    drop_webhooks: Option<bool>,
    /// Capture this much (at most the session's amount) instead of the amount asked for.
    capture_cents: Option<i64>,
    /// Capture in this currency instead of the session's (as after a conversion).
    capture_currency: Option<String>,
    /// Complete a failed session again with a success: the buyer retried after a decline
    /// (a second `payment.succeeded` after `payment.failed`, as Stripe's payment intents).
    retry: Option<bool>,
    /// Refuse every refund of this payment (as for a disputed charge): `402 refund_declined`.
    refuse_refunds: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(super) struct Completed {
    session_id: String,
    status: String,
    /// Id of the final webhook event (every duplicate carries it).
    event_id: String,
}

#[derive(Debug, Serialize)]
pub(super) struct PaymentView {
    session_id: String,
    status: String,
    amount_cents: i64,
    currency: String,
    captured_cents: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    captured_currency: Option<String>,
    refunded_cents: i64,
    refunds: Vec<RefundRow>,
}

pub(super) fn payment_url(state: &SandboxState, session_id: &str) -> String {
    let base = state.settings.gateway.public_url.trim_end_matches('/');
    format!("{base}/sandbox/pay/{session_id}")
}

fn validate_currency(currency: &str) -> AppResult<()> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(AppError::unprocessable(
            "invalid_currency",
            "currency must be a three-letter ISO 4217 code",
        ));
    }
    Ok(())
}

fn validate_session(req: &CreateSession) -> AppResult<()> {
    if req.amount_cents < 0 {
        return Err(AppError::unprocessable(
            "invalid_amount",
            "amount_cents must not be negative",
        ));
    }
    validate_currency(&req.currency)?;
    if req.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::unprocessable(
            "invalid_description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// `POST /sandbox/v1/sessions`: open the checkout session of a payment, or get back the
/// one already open for its payment id.
pub(super) async fn create_session(
    State(state): State<SandboxState>,
    _key: ApiKey,
    Json(req): Json<CreateSession>,
) -> AppResult<Json<Session>> {
    validate_session(&req)?;
    let session = store::create_or_get_session(&state.pool, &req).await?;
    // Like an idempotency key reused with other parameters: a bug on the caller's side.
    if session.amount_cents != req.amount_cents
        || !session.currency.eq_ignore_ascii_case(&req.currency)
    {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "a session for this payment_id exists with another amount or currency",
        )
        .with("session_id", &session.id));
    }
    Ok(Json(Session {
        payment_url: payment_url(&state, &session.id),
        session_id: session.id,
    }))
}

/// What completing a session did.
pub(super) enum Finish {
    /// This call completed it; the webhooks are on their way.
    Done {
        session: SessionRow,
        /// Id of the final webhook event.
        event_id: String,
    },
    /// It was completed before, as shown; nothing was sent.
    AlreadyCompleted(SessionRow),
    NotFound,
}

/// Complete a session and, if this call did, report it by webhook in the background.
pub(super) async fn complete(
    state: &SandboxState,
    session_id: &str,
    outcome: Outcome,
    plan: Plan,
    options: &CompleteOptions,
) -> Result<Finish, sqlx::Error> {
    let succeeded = outcome == Outcome::Succeed;
    Ok(
        match store::complete(&state.pool, session_id, succeeded, options).await? {
            Completion::Completed(session) => {
                tracing::info!(session_id, payment_id = %session.payment_id,
                    status = %session.status, "sandbox session completed");
                let event_id = webhooks::spawn(state, &session, succeeded, plan);
                Finish::Done { session, event_id }
            }
            Completion::AlreadyCompleted(session) => Finish::AlreadyCompleted(session),
            Completion::NotFound => Finish::NotFound,
        },
    )
}

pub(super) fn session_not_found(session_id: &str) -> AppError {
    AppError::not_found("session_not_found", format!("no session {session_id}"))
}

fn session_completed(session: &SessionRow) -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "session_completed",
        "this session is already completed",
    )
    .with("status", &session.status)
}

/// `POST /sandbox/v1/sessions/{session_id}/complete`: the buyer pays (or is declined).
pub(super) async fn complete_session(
    State(state): State<SandboxState>,
    _key: ApiKey,
    Path(session_id): Path<String>,
    Json(req): Json<CompleteRequest>,
) -> AppResult<(StatusCode, Json<Completed>)> {
    let delay_ms = req.delay_ms.unwrap_or(0);
    if delay_ms > MAX_DELAY_MS {
        return Err(AppError::unprocessable(
            "invalid_delay",
            format!("delay_ms must be at most {MAX_DELAY_MS}"),
        ));
    }
    let duplicates = req.duplicates.unwrap_or(1);
    if !(1..=MAX_DUPLICATES).contains(&duplicates) {
        return Err(AppError::unprocessable(
            "invalid_duplicates",
            format!("duplicates must be between 1 and {MAX_DUPLICATES}"),
        ));
    }
    if let Some(currency) = &req.capture_currency {
        validate_currency(currency)?;
    }
    if req.capture_cents.is_some_and(|c| c < 0) {
        return Err(AppError::unprocessable(
            "invalid_capture",
            "capture_cents must not be negative",
        ));
    }
    if let (Some(capture), Some(session)) = (
        req.capture_cents,
        store::session(&state.pool, &session_id).await?,
    ) {
        if capture > session.amount_cents {
            return Err(AppError::unprocessable(
                "invalid_capture",
                format!(
                    "capture_cents must be at most the session's {}",
                    session.amount_cents
                ),
            ));
        }
    }
    let plan = Plan {
        delay: Duration::from_millis(delay_ms),
        processing: !req.skip_processing.unwrap_or(false),
        duplicates,
        dropped: req.drop_webhooks.unwrap_or(false),
    };
    let options = CompleteOptions {
        capture_cents: req.capture_cents,
        capture_currency: req.capture_currency.map(|c| c.to_ascii_uppercase()),
        retry: req.retry.unwrap_or(false),
        refuse_refunds: req.refuse_refunds.unwrap_or(false),
    };
    match complete(&state, &session_id, req.outcome, plan, &options).await? {
        Finish::Done { session, event_id } => Ok((
            StatusCode::ACCEPTED,
            Json(Completed {
                session_id: session.id,
                status: session.status,
                event_id,
            }),
        )),
        Finish::AlreadyCompleted(session) => Err(session_completed(&session)),
        Finish::NotFound => Err(session_not_found(&session_id)),
    }
}

/// `POST /sandbox/v1/refunds`: pay back part or all of a captured payment, once per
/// `refund_id`.
pub(super) async fn refund(
    State(state): State<SandboxState>,
    _key: ApiKey,
    Json(req): Json<RefundRequest>,
) -> AppResult<Json<RefundReceipt>> {
    if req.amount_cents < 0 {
        return Err(AppError::unprocessable(
            "invalid_amount",
            "amount_cents must not be negative",
        ));
    }
    match store::refund(&state.pool, &req).await? {
        RefundOutcome::Receipt(receipt) => Ok(Json(receipt)),
        RefundOutcome::PaymentNotFound => Err(AppError::not_found(
            "payment_not_found",
            format!("no session for payment {}", req.payment_id),
        )),
        RefundOutcome::NotCaptured => Err(AppError::new(
            StatusCode::CONFLICT,
            "payment_not_captured",
            "the payment did not succeed, so there is nothing to refund",
        )),
        RefundOutcome::Refused => Err(AppError::new(
            StatusCode::PAYMENT_REQUIRED,
            "refund_declined",
            "refunds of this payment are declined",
        )),
        RefundOutcome::Exceeds {
            captured_cents,
            refunded_cents,
        } => Err(AppError::bad_request(
            "refund_exceeds_capture",
            format!(
                "refunding {} would exceed the captured {captured_cents} ({refunded_cents} already refunded)",
                req.amount_cents
            ),
        )
        .with("captured_cents", captured_cents)
        .with("refunded_cents", refunded_cents)),
        RefundOutcome::KeyReused => Err(AppError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this refund_id was used for another payment or amount",
        )),
    }
}

/// `GET /sandbox/v1/payments/{payment_id}`: a payment's session and refunds.
pub(super) async fn payment(
    State(state): State<SandboxState>,
    _key: ApiKey,
    Path(payment_id): Path<Uuid>,
) -> AppResult<Json<PaymentView>> {
    let (session, refunds) = store::payment(&state.pool, payment_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "payment_not_found",
                format!("no session for payment {payment_id}"),
            )
        })?;
    Ok(Json(PaymentView {
        refunded_cents: refunds.iter().map(|r| r.amount_cents).sum(),
        session_id: session.id,
        status: session.status,
        amount_cents: session.amount_cents,
        currency: session.currency,
        captured_cents: session.captured_cents,
        captured_currency: session.captured_currency,
        refunds,
    }))
}
