//! The refund worker: gives money back through the payment provider.
//!
//! The consumer decides that a payment must be refunded (it arrived after its hold was
//! released, it captured something else than was asked for, or a booking was cancelled)
//! and writes a `refunds` row in the same transaction as that decision. This worker issues
//! due refunds **one at a time, each on its own**:
//!
//! 1. *Claim* it with one committed `UPDATE … SKIP LOCKED`: its `next_attempt_at` moves a
//!    lease ahead (so no other worker takes it meanwhile) and `attempts` counts the try.
//!    No row lock is held after this statement.
//! 2. *Call* the provider, outside any transaction, with the refund's id as the idempotency
//!    key: a crash after the provider refunded but before the row was marked only makes the
//!    retry (once the lease ran out) get the same receipt back, never a second refund.
//! 3. *Record* the result in one short transaction, guarded by the try number, so a worker
//!    whose lease ran out while another took the refund writes nothing.
//!
//! A refund the provider does not accept is tried again after a capped exponential backoff
//! (`refund_backoff_ms`, doubled per failed try, at most `refund_backoff_max_ms`), and after
//! `refund_max_attempts` tries it becomes `failed`: counted (`seatq_refunds_failed_total`),
//! alerted, and left for an operator (docs/operations.md). Due refunds are taken
//! oldest due first, so one that keeps failing is tried ever more rarely and never stands in
//! front of the others. An issued refund is announced to the user (`refund_issued`); a
//! payment whose issued refunds reach what it captured is marked `refunded`.

use std::time::Duration;

use chrono::Utc;
use rdkafka::producer::FutureProducer;
use seatq_common::config::SchedulerSettings;
use seatq_common::ids::{EventId, PaymentId, UserId};
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use seatq_common::payment_provider::{PaymentProvider, RefundRequest};
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;
use uuid::Uuid;

/// Claim the refund due longest ago: lease it and count the try.
const CLAIM_DUE: &str = "UPDATE refunds r SET attempts = r.attempts + 1, \
       last_attempt_at = now(), next_attempt_at = now() + make_interval(secs => $1) \
     FROM (SELECT id FROM refunds WHERE status = 'pending' AND next_attempt_at <= now() \
           ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) due \
     WHERE r.id = due.id \
     RETURNING r.id, r.payment_id, r.event_id, r.user_id, r.amount_cents, r.reason, r.attempts";
/// The results below apply only while the refund is still this worker's try.
const MARK_ISSUED: &str = "UPDATE refunds SET status = 'issued', issued_at = now(), \
       provider_refund_id = $2, last_error = NULL \
     WHERE id = $1 AND status = 'pending' AND attempts = $3";
/// Refunded once what was given back reaches what was captured (a payment may be refunded
/// in parts, e.g. a booking cancelled ticket by ticket).
const MARK_PAYMENT_REFUNDED: &str =
    "UPDATE payments p SET status = 'refunded', updated_at = now() \
     WHERE p.id = $1 AND p.status <> 'refunded' \
       AND (SELECT coalesce(sum(r.amount_cents), 0) FROM refunds r \
            WHERE r.payment_id = p.id AND r.status = 'issued') \
           >= coalesce(p.captured_cents, p.amount_cents)";
const MARK_FAILED_TRY: &str = "UPDATE refunds SET last_error = $2, \
       status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END, \
       failed_at = CASE WHEN $4 THEN now() END, \
       next_attempt_at = now() + make_interval(secs => $5) \
     WHERE id = $1 AND status = 'pending' AND attempts = $3";
const COUNT_FAILED: &str = "SELECT count(*) FROM refunds WHERE status = 'failed'";

/// Longest a claimed refund stays this worker's: more than a provider call can take
/// (the client gives up after 10 s), so a lease runs out only when the worker died.
const LEASE: Duration = Duration::from_secs(30);
/// Refunds issued per round at most, so the loop also sees shutdown in a long backlog.
const ROUND_MAX: usize = 500;
/// The longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 1000;

/// How often and how long a refund is tried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries before the refund is `failed`.
    pub max_attempts: i32,
    /// Wait after the first failed try; doubled after each further one.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

impl RetryPolicy {
    pub fn from_settings(s: &SchedulerSettings) -> Self {
        Self {
            max_attempts: s.refund_max_attempts.max(1),
            backoff: Duration::from_millis(s.refund_backoff_ms.max(1)),
            backoff_max: Duration::from_millis(s.refund_backoff_max_ms.max(s.refund_backoff_ms)),
        }
    }

    /// The wait after failed try number `attempt` (1-based).
    pub fn backoff_after(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(32);
        self.backoff
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.backoff_max)
    }
}

pub struct RefundWorker {
    pub pool: PgPool,
    pub provider: PaymentProvider,
    pub producer: FutureProducer,
    pub seat_events_topic: String,
    pub interval: Duration,
    pub retry: RetryPolicy,
}

/// A refund this worker claimed.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: Uuid,
    payment_id: PaymentId,
    event_id: EventId,
    user_id: UserId,
    amount_cents: i64,
    reason: String,
    /// This try's number: the guard of the result.
    attempts: i32,
}

/// What issuing due refunds did in one round.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub issued: usize,
    /// Tries that failed and will be retried.
    pub retrying: usize,
    /// Refunds that failed their last try.
    pub failed: usize,
}

impl RefundWorker {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            match self.issue_due().await {
                Ok(Round {
                    issued: 0,
                    retrying: 0,
                    failed: 0,
                }) => {}
                Ok(round) => tracing::info!(
                    issued = round.issued,
                    retrying = round.retrying,
                    failed = round.failed,
                    "refunds tried"
                ),
                Err(e) => tracing::warn!(error = %e, "refund worker failed"),
            }
            match sqlx::query_scalar::<_, i64>(COUNT_FAILED)
                .fetch_one(&self.pool)
                .await
            {
                Ok(n) => seatq_common::metrics::refunds_failed_unresolved(n),
                Err(e) => tracing::debug!(error = %e, "failed refunds not counted"),
            }
            if !seatq_common::shutdown::pause(&shutdown, self.interval).await {
                return;
            }
        }
    }

    /// Try every refund that is due now (up to a round's worth), one after the other.
    pub async fn issue_due(&self) -> Result<Round, sqlx::Error> {
        let mut round = Round::default();
        for _ in 0..ROUND_MAX {
            let Some(refund) = self.claim().await? else {
                break;
            };
            match self.attempt(refund).await? {
                Tried::Issued => round.issued += 1,
                Tried::Retrying => round.retrying += 1,
                Tried::Failed => round.failed += 1,
                Tried::Superseded => {}
            }
        }
        Ok(round)
    }

    async fn claim(&self) -> Result<Option<Claimed>, sqlx::Error> {
        sqlx::query_as(CLAIM_DUE)
            .bind(LEASE.as_secs_f64())
            .fetch_optional(&self.pool)
            .await
    }

    /// Call the provider for a claimed refund and record what it said.
    async fn attempt(&self, refund: Claimed) -> Result<Tried, sqlx::Error> {
        let request = RefundRequest {
            refund_id: refund.id,
            payment_id: refund.payment_id.0,
            amount_cents: refund.amount_cents,
        };
        let (id, payment_id) = (refund.id, refund.payment_id);
        match self.provider.refund(&request).await {
            Ok(receipt) => {
                seatq_common::metrics::refund_attempt("issued");
                let mut tx = self.pool.begin().await?;
                let marked = sqlx::query(MARK_ISSUED)
                    .bind(id)
                    .bind(&receipt.provider_refund_id)
                    .bind(refund.attempts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if marked == 0 {
                    // Our lease ran out and another worker has the refund: it gets the
                    // same receipt and records it.
                    tracing::warn!(refund_id = %id, %payment_id, "refund issued, recorded by another try");
                    return Ok(Tried::Superseded);
                }
                sqlx::query(MARK_PAYMENT_REFUNDED)
                    .bind(payment_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(refund_id = %id, %payment_id, event_id = %refund.event_id,
                    amount_cents = refund.amount_cents, reason = %refund.reason,
                    attempt = refund.attempts, "refund issued");
                self.announce(
                    refund.event_id,
                    payment_id,
                    refund.user_id,
                    refund.amount_cents,
                    refund.reason,
                )
                .await;
                Ok(Tried::Issued)
            }
            Err(e) => {
                seatq_common::metrics::refund_attempt(if e.is_retryable() {
                    "unreachable"
                } else {
                    "refused"
                });
                let last = refund.attempts >= self.retry.max_attempts;
                let wait = self.retry.backoff_after(refund.attempts);
                let error: String = e.to_string().chars().take(MAX_ERROR_CHARS).collect();
                let marked = sqlx::query(MARK_FAILED_TRY)
                    .bind(id)
                    .bind(&error)
                    .bind(refund.attempts)
                    .bind(last)
                    .bind(wait.as_secs_f64())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if marked == 0 {
                    return Ok(Tried::Superseded);
                }
                if last {
                    seatq_common::metrics::refund_failed();
                    tracing::error!(refund_id = %id, %payment_id, event_id = %refund.event_id,
                        amount_cents = refund.amount_cents, attempts = refund.attempts,
                        error = %error, "refund failed for good; an operator must act (docs/operations.md)");
                    Ok(Tried::Failed)
                } else {
                    tracing::warn!(refund_id = %id, %payment_id, attempt = refund.attempts,
                        retry_in_ms = wait.as_millis() as u64, error = %error,
                        "refund not issued; will retry");
                    Ok(Tried::Retrying)
                }
            }
        }
    }

    /// Tell the user. A notification, not state: if it is lost the booking page still
    /// shows the refund.
    async fn announce(
        &self,
        event_id: EventId,
        payment_id: PaymentId,
        user_id: UserId,
        amount_cents: i64,
        reason: String,
    ) {
        let envelope = SeatEventEnvelope {
            event_id,
            occurred_at: Utc::now(),
            payload: SeatEvent::RefundIssued {
                payment_id,
                user_id,
                amount_cents,
                reason,
            },
        };
        let Ok(payload) = serde_json::to_vec(&envelope) else {
            return;
        };
        if let Err(e) = seatq_common::kafka::send(
            &self.producer,
            &self.seat_events_topic,
            None,
            &event_id.to_string(),
            &payload,
        )
        .await
        {
            tracing::warn!(%payment_id, error = %e, "refund_issued not published");
        }
    }
}

/// What one try of a refund came to.
enum Tried {
    Issued,
    Retrying,
    Failed,
    /// Another worker took the refund over (this one's lease ran out); nothing recorded.
    Superseded,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy {
            max_attempts: 12,
            backoff: Duration::from_secs(5),
            backoff_max: Duration::from_secs(1800),
        };
        let waits: Vec<u64> = (1..=12)
            .map(|a| policy.backoff_after(a).as_secs())
            .collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800]
        );
        assert_eq!(policy.backoff_after(0), Duration::from_secs(5));
        assert_eq!(policy.backoff_after(i32::MAX), Duration::from_secs(1800));
    }
}
