//! The sandbox provider's tables (`sandbox_sessions`, `sandbox_refunds`, migration 0004).
//!
//! Idempotency and the refund limit are enforced here, in PostgreSQL, rather than in the
//! handlers: a unique payment id per session, a unique key per refund, and the session row
//! locked while a refund is checked against what was captured, so retries and concurrent
//! calls cannot open a second session or pay back more than was taken.

use seatq_common::payment_provider::{CreateSession, RefundReceipt, RefundRequest};
use sqlx::PgPool;
use uuid::Uuid;

/// A checkout session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct SessionRow {
    pub id: String,
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub description: String,
    /// `open`, `succeeded` or `failed`.
    pub status: String,
    pub captured_cents: i64,
    /// The currency captured in, once succeeded.
    pub captured_currency: Option<String>,
    /// Where the payment page sends the buyer back to.
    pub return_url: Option<String>,
    /// Every refund of this payment is refused (set by `complete`, for tests).
    pub refuse_refunds: bool,
}

impl SessionRow {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub(super) struct RefundRow {
    pub id: String,
    pub amount_cents: i64,
}

const INSERT_SESSION: &str = "INSERT INTO sandbox_sessions \
    (id, payment_id, amount_cents, currency, description, status, return_url) \
    VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT (payment_id) DO NOTHING";

/// The columns of a [`SessionRow`].
macro_rules! session_columns {
    () => {
        "id, payment_id, amount_cents, currency, description, status, captured_cents, \
         captured_currency, return_url, refuse_refunds"
    };
}

const SELECT_SESSION_BY_PAYMENT: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sandbox_sessions WHERE payment_id = $1"
);

const SELECT_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sandbox_sessions WHERE id = $1"
);

/// Completes an open session only (or, when `$5`, a failed one with a success: the buyer
/// retried after a decline): the status guard makes completion happen once even when two
/// completions race. A success captures the amount (or `$3`) in the currency (or `$4`).
const COMPLETE_SESSION: &str = concat!(
    "UPDATE sandbox_sessions SET status = $2, \
     captured_cents = CASE WHEN $2 = 'succeeded' THEN coalesce($3, amount_cents) ELSE 0 END, \
     captured_currency = CASE WHEN $2 = 'succeeded' THEN coalesce($4, currency) END, \
     refuse_refunds = refuse_refunds OR $6, completed_at = now() \
     WHERE id = $1 AND (status = 'open' OR ($5 AND status = 'failed' AND $2 = 'succeeded')) \
     RETURNING ",
    session_columns!()
);

const LOCK_SESSION_BY_PAYMENT: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sandbox_sessions WHERE payment_id = $1 FOR UPDATE"
);

const SELECT_REFUND_BY_KEY: &str =
    "SELECT id, session_id, amount_cents FROM sandbox_refunds WHERE idempotency_key = $1";

const SUM_REFUNDS: &str =
    "SELECT COALESCE(SUM(amount_cents), 0)::bigint FROM sandbox_refunds WHERE session_id = $1";

const INSERT_REFUND: &str = "INSERT INTO sandbox_refunds (id, idempotency_key, session_id, \
    amount_cents) VALUES ($1, $2, $3, $4)";

const SELECT_REFUNDS: &str = "SELECT id, amount_cents FROM sandbox_refunds \
    WHERE session_id = $1 ORDER BY created_at, id";

/// The session of `req.payment_id`, created if there is none yet. An existing session is
/// returned as it is; the caller checks it matches the request.
pub(super) async fn create_or_get_session(
    pool: &PgPool,
    req: &CreateSession,
) -> Result<SessionRow, sqlx::Error> {
    let id = format!("cs_{}", Uuid::new_v4().simple());
    sqlx::query(INSERT_SESSION)
        .bind(&id)
        .bind(req.payment_id)
        .bind(req.amount_cents)
        .bind(&req.currency)
        .bind(&req.description)
        .bind(&req.return_url)
        .execute(pool)
        .await?;
    sqlx::query_as(SELECT_SESSION_BY_PAYMENT)
        .bind(req.payment_id)
        .fetch_one(pool)
        .await
}

pub(super) async fn session(pool: &PgPool, id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(SELECT_SESSION)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub(super) enum Completion {
    /// This call completed the session (now in its final state).
    Completed(SessionRow),
    /// It was completed before, as shown.
    AlreadyCompleted(SessionRow),
    NotFound,
}

/// How a session is completed besides its outcome (test controls of the API).
#[derive(Debug, Clone, Default)]
pub(super) struct CompleteOptions {
    /// Capture this much instead of the session's amount.
    pub capture_cents: Option<i64>,
    /// Capture in this currency instead of the session's.
    pub capture_currency: Option<String>,
    /// A failed session may be completed again with a success (a retry after a decline).
    pub retry: bool,
    /// Refuse every refund of this payment from now on.
    pub refuse_refunds: bool,
}

/// Complete an open session as succeeded (capturing the full amount unless told
/// otherwise) or failed.
pub(super) async fn complete(
    pool: &PgPool,
    id: &str,
    succeeded: bool,
    options: &CompleteOptions,
) -> Result<Completion, sqlx::Error> {
    let status = if succeeded { "succeeded" } else { "failed" };
    let updated: Option<SessionRow> = sqlx::query_as(COMPLETE_SESSION)
        .bind(id)
        .bind(status)
        .bind(options.capture_cents)
        .bind(&options.capture_currency)
        .bind(options.retry)
        .bind(options.refuse_refunds)
        .fetch_optional(pool)
        .await?;
    Ok(match updated {
        Some(row) => Completion::Completed(row),
        None => match session(pool, id).await? {
            Some(row) => Completion::AlreadyCompleted(row),
            None => Completion::NotFound,
        },
    })
}

pub(super) enum RefundOutcome {
    /// Issued now, or earlier under the same key (same receipt either way).
    Receipt(RefundReceipt),
    PaymentNotFound,
    NotCaptured,
    /// This payment's refunds are refused (`refuse_refunds`).
    Refused,
    Exceeds {
        captured_cents: i64,
        refunded_cents: i64,
    },
    /// The key was used before for a different payment or amount.
    KeyReused,
}

/// Issue a refund once per key, never beyond what the session captured.
pub(super) async fn refund(
    pool: &PgPool,
    req: &RefundRequest,
) -> Result<RefundOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The lock serialises every refund of this session, so the sum read below cannot be
    // outdated by the time the new refund is inserted.
    let session: Option<SessionRow> = sqlx::query_as(LOCK_SESSION_BY_PAYMENT)
        .bind(req.payment_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(session) = session else {
        return Ok(RefundOutcome::PaymentNotFound);
    };
    // Looked up under the lock: a retry racing the original waits for it and then finds it.
    let existing: Option<(String, String, i64)> = sqlx::query_as(SELECT_REFUND_BY_KEY)
        .bind(req.refund_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some((id, session_id, amount_cents)) = existing {
        if session_id != session.id || amount_cents != req.amount_cents {
            return Ok(RefundOutcome::KeyReused);
        }
        return Ok(RefundOutcome::Receipt(RefundReceipt {
            provider_refund_id: id,
            amount_cents,
        }));
    }
    if session.status != "succeeded" {
        return Ok(RefundOutcome::NotCaptured);
    }
    if session.refuse_refunds {
        return Ok(RefundOutcome::Refused);
    }
    let refunded_cents: i64 = sqlx::query_scalar(SUM_REFUNDS)
        .bind(&session.id)
        .fetch_one(&mut *tx)
        .await?;
    if refunded_cents.saturating_add(req.amount_cents) > session.captured_cents {
        return Ok(RefundOutcome::Exceeds {
            captured_cents: session.captured_cents,
            refunded_cents,
        });
    }
    let id = format!("re_{}", Uuid::new_v4().simple());
    let inserted = sqlx::query(INSERT_REFUND)
        .bind(&id)
        .bind(req.refund_id)
        .bind(&session.id)
        .bind(req.amount_cents)
        .execute(&mut *tx)
        .await;
    match inserted {
        Ok(_) => {}
        // The same key used concurrently for another payment (whose session we do not hold).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Ok(RefundOutcome::KeyReused)
        }
        Err(e) => return Err(e),
    }
    tx.commit().await?;
    Ok(RefundOutcome::Receipt(RefundReceipt {
        provider_refund_id: id,
        amount_cents: req.amount_cents,
    }))
}

/// A payment's session and its refunds, oldest first.
pub(super) async fn payment(
    pool: &PgPool,
    payment_id: Uuid,
) -> Result<Option<(SessionRow, Vec<RefundRow>)>, sqlx::Error> {
    let session: Option<SessionRow> = sqlx::query_as(SELECT_SESSION_BY_PAYMENT)
        .bind(payment_id)
        .fetch_optional(pool)
        .await?;
    let Some(session) = session else {
        return Ok(None);
    };
    let refunds = sqlx::query_as(SELECT_REFUNDS)
        .bind(&session.id)
        .fetch_all(pool)
        .await?;
    Ok(Some((session, refunds)))
}
