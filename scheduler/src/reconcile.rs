//! The payment reconciler: asks the provider about payments whose outcome webhook is
//! overdue.
//!
//! Webhooks are the fast path, not the only one: a provider can lose them (the sandbox
//! sends them from the gateway's memory, so a gateway crash drops them; see
//! docs/faults.md), and a payment whose money was taken must not stay `processing` with
//! no booking and no refund. Every `interval`, this worker picks payments still
//! `pending`/`processing` that nothing has been heard of for `after`, asks the provider
//! (`GET …/payments/{id}`), and records a final outcome through
//! `seatq_common::payment_outcome` — the same transition and the same command request id
//! as the webhook, so whichever comes first, the consumer applies it once. A session
//! still open is looked at again `after` later (its `updated_at` is touched).
//!
//! Each payment is handled in its own short transaction, locked with `SKIP LOCKED` and
//! rechecked under the lock, so several schedulers share the work and a webhook waits
//! for at most one provider call.

use std::sync::Arc;
use std::time::Duration;

use seatq_common::catalog::Catalog;
use seatq_common::command_producer::CommandProducer;
use seatq_common::ids::{EventId, HoldId, PaymentId};
use seatq_common::payment_outcome::{self, LockedPayment, OutcomeError, Recorded};
use seatq_common::payment_provider::{PaymentProvider, ProviderError};
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;

/// Payments looked at per round.
const BATCH: i64 = 100;

const OVERDUE: &str = "SELECT id FROM payments \
     WHERE status IN ('pending', 'processing') AND provider_session IS NOT NULL \
       AND updated_at < now() - make_interval(secs => $1) \
     ORDER BY updated_at LIMIT $2";
/// The same conditions, rechecked under the lock: another scheduler or a webhook may have
/// handled the payment since it was picked.
const LOCK_OVERDUE: &str =
    "SELECT hold_id, event_id, amount_cents, currency, status FROM payments \
     WHERE id = $1 AND status IN ('pending', 'processing') \
       AND updated_at < now() - make_interval(secs => $2) \
     FOR UPDATE SKIP LOCKED";
const TOUCH: &str = "UPDATE payments SET updated_at = now() WHERE id = $1";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Outcome(#[from] OutcomeError),
}

pub struct Reconciler {
    pub pool: PgPool,
    pub provider: PaymentProvider,
    pub catalog: Arc<Catalog>,
    pub commands: Arc<CommandProducer>,
    /// A payment not heard of for this long is asked about.
    pub after: Duration,
    pub interval: Duration,
}

impl Reconciler {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            match self.reconcile_overdue().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(payments = n, "payment outcomes reconciled"),
                Err(e) => tracing::warn!(error = %e, "payment reconciler failed"),
            }
            if !seatq_common::shutdown::pause(&shutdown, self.interval).await {
                return;
            }
        }
    }

    /// Look at one batch of overdue payments; returns how many got a final outcome.
    pub async fn reconcile_overdue(&self) -> Result<usize, sqlx::Error> {
        let after = self.after.as_secs_f64();
        let overdue: Vec<PaymentId> = sqlx::query_scalar(OVERDUE)
            .bind(after)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
        let mut settled = 0;
        for payment_id in overdue {
            match self.reconcile(payment_id, after).await {
                Ok(true) => settled += 1,
                Ok(false) => {}
                // One payment's trouble (provider down, broker refusing) must not stop
                // the others; it is picked again next round.
                Err(e) => tracing::warn!(%payment_id, error = %e, "payment not reconciled"),
            }
        }
        Ok(settled)
    }

    #[tracing::instrument(skip(self, after), fields(status))]
    async fn reconcile(&self, payment_id: PaymentId, after: f64) -> Result<bool, ReconcileError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(HoldId, EventId, i64, String, String)> = sqlx::query_as(LOCK_OVERDUE)
            .bind(payment_id)
            .bind(after)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((hold_id, event_id, amount_cents, currency, status)) = row else {
            return Ok(false);
        };
        let payment = LockedPayment {
            payment_id,
            hold_id,
            event_id,
            amount_cents,
            currency,
            status,
        };
        let outcome = match self.provider.payment(payment_id.0).await? {
            Some(view) => {
                tracing::Span::current().record("status", view.status.as_str());
                view.report()
            }
            None => {
                tracing::warn!("the provider has no session for this payment");
                None
            }
        };
        let (settled, recorded) = match outcome {
            Some(report) => {
                let recorded = payment_outcome::record(
                    &mut tx,
                    &self.catalog,
                    &self.commands,
                    &payment,
                    &report,
                )
                .await?;
                if let Recorded::Moved { status, .. } = &recorded {
                    tracing::info!(%status, "payment outcome learnt from the provider, not its webhook");
                }
                (true, Some(recorded))
            }
            None => {
                sqlx::query(TOUCH)
                    .bind(payment_id)
                    .execute(&mut *tx)
                    .await?;
                (false, None)
            }
        };
        tx.commit().await?;
        if let Some(recorded) = recorded {
            recorded.committed();
        }
        Ok(settled)
    }
}
