//! The refund worker: gives money back through the payment provider.
//!
//! The consumer decides that a payment must be refunded (it arrived after its hold was
//! released, or a booking was cancelled) and writes a `refunds` row in the same
//! transaction as that decision. This worker issues pending refunds: it locks a batch with
//! `SKIP LOCKED` (several schedulers share the work), calls the provider with the refund's
//! id as the idempotency key — so a crash after the provider refunded but before the row
//! was marked only makes the retry get the same receipt back, never a second refund — then
//! marks the refund issued and the payment refunded, and tells the user (`refund_issued`).

use std::time::Duration;

use chrono::Utc;
use rdkafka::producer::FutureProducer;
use seatq_common::ids::{EventId, PaymentId, UserId};
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use seatq_common::payment_provider::{PaymentProvider, RefundRequest};
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;
use uuid::Uuid;

const LOCK_PENDING: &str =
    "SELECT id, payment_id, event_id, user_id, amount_cents, reason FROM refunds \
     WHERE status = 'pending' ORDER BY created_at LIMIT 50 FOR UPDATE SKIP LOCKED";
const MARK_ISSUED: &str = "UPDATE refunds SET status = 'issued', issued_at = now(), \
       provider_refund_id = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1";
const MARK_PAYMENT_REFUNDED: &str =
    "UPDATE payments SET status = 'refunded', updated_at = now() WHERE id = $1";
const MARK_FAILED: &str =
    "UPDATE refunds SET attempts = attempts + 1, last_error = $2 WHERE id = $1";

pub struct RefundWorker {
    pub pool: PgPool,
    pub provider: PaymentProvider,
    pub producer: FutureProducer,
    pub seat_events_topic: String,
    pub interval: Duration,
}

type PendingRefund = (Uuid, PaymentId, EventId, UserId, i64, String);

impl RefundWorker {
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            match self.issue_pending().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(refunds = n, "refunds issued"),
                Err(e) => tracing::warn!(error = %e, "refund worker failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Issue up to one batch of pending refunds; returns how many were issued.
    pub async fn issue_pending(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let pending: Vec<PendingRefund> = sqlx::query_as(LOCK_PENDING).fetch_all(&mut *tx).await?;
        let mut issued = 0;
        for (id, payment_id, event_id, user_id, amount_cents, reason) in pending {
            let request = RefundRequest {
                refund_id: id,
                payment_id: payment_id.0,
                amount_cents,
            };
            match self.provider.refund(&request).await {
                Ok(receipt) => {
                    sqlx::query(MARK_ISSUED)
                        .bind(id)
                        .bind(&receipt.provider_refund_id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(MARK_PAYMENT_REFUNDED)
                        .bind(payment_id)
                        .execute(&mut *tx)
                        .await?;
                    issued += 1;
                    tracing::info!(refund_id = %id, %payment_id, %event_id, amount_cents, %reason, "refund issued");
                    self.announce(event_id, payment_id, user_id, amount_cents, reason)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(refund_id = %id, %payment_id, error = %e, "refund not issued; will retry");
                    sqlx::query(MARK_FAILED)
                        .bind(id)
                        .bind(e.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(issued)
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
