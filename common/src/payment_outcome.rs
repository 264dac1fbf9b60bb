//! Recording what the payment provider says happened to a payment: the one place that
//! moves a `payments` row forward and turns the outcome into a command for the consumer.
//!
//! Two paths learn outcomes: the provider's webhook (gateway) and the payment reconciler
//! (scheduler), which asks the provider about payments whose webhook never came. Both
//! call `record` inside their own transaction, with the payment row locked, so they make
//! the same transition and produce the same command with the same request id
//! (`RequestId::derived(payment_id, kind)`): whichever arrives first, and however many
//! times, the consumer applies the outcome once.
//!
//! The command is produced before the caller commits: if the broker refuses it, the
//! caller rolls back and the outcome is learnt again later (webhook retry, next
//! reconcile round).

use chrono::Utc;
use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::command::{Command, CommandEnvelope, PaymentOutcome};
use crate::command_producer::{CommandProducer, ProduceError};
use crate::ids::{EventId, HoldId, PaymentId, RequestId, UserId};
use crate::payment_provider::WebhookKind;

/// Who sends payment commands (`requests.user_id`).
pub const PAYMENTS_USER: &str = "system:payments";

const LOCK_PAYMENT: &str =
    "SELECT hold_id, event_id, amount_cents, status FROM payments WHERE id = $1 FOR UPDATE";
const SET_PAYMENT_STATUS: &str =
    "UPDATE payments SET status = $2, updated_at = now() WHERE id = $1";

/// A payment row, locked by the caller's transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockedPayment {
    pub payment_id: PaymentId,
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub amount_cents: i64,
    /// `pending`, `processing`, `paid`, `failed` or `refunded`.
    pub status: String,
}

/// What `record` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The payment moved to `status`; `request_id` is the command sent, if any.
    Moved {
        status: &'static str,
        request_id: Option<RequestId>,
    },
    /// Out of order or already final: the state machine only moves forward.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("payment of an unknown event {0}")]
    UnknownEvent(EventId),
    #[error("encode command: {0}")]
    Encode(#[from] serde_json::Error),
    /// The command was not accepted: roll back, the outcome will be learnt again.
    #[error("payment command not accepted: {0}")]
    Broker(#[from] ProduceError),
}

/// Lock a payment for the rest of `tx` (`None` if there is no such payment).
pub async fn lock(
    tx: &mut PgConnection,
    payment_id: PaymentId,
) -> Result<Option<LockedPayment>, sqlx::Error> {
    let row: Option<(HoldId, EventId, i64, String)> = sqlx::query_as(LOCK_PAYMENT)
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(
        row.map(|(hold_id, event_id, amount_cents, status)| LockedPayment {
            payment_id,
            hold_id,
            event_id,
            amount_cents,
            status,
        }),
    )
}

/// Where `kind` takes a payment in `status`, and the command that tells the consumer.
fn transition(
    kind: WebhookKind,
    payment: &LockedPayment,
) -> Option<(&'static str, Option<Command>)> {
    let outcome = || PaymentOutcome {
        hold_id: payment.hold_id,
        payment_id: payment.payment_id,
        amount_cents: payment.amount_cents,
    };
    match (kind, payment.status.as_str()) {
        (WebhookKind::Processing, "pending") => Some(("processing", None)),
        (WebhookKind::Succeeded, "pending" | "processing") => {
            Some(("paid", Some(Command::PaymentSucceeded(outcome()))))
        }
        (WebhookKind::Failed, "pending" | "processing") => {
            Some(("failed", Some(Command::PaymentFailed(outcome()))))
        }
        _ => None,
    }
}

/// Record that the provider reported `kind` for `payment` (locked in `tx`): move its
/// status forward and, for a final outcome, produce the command. The caller commits.
pub async fn record(
    tx: &mut PgConnection,
    catalog: &Catalog,
    commands: &std::sync::Arc<CommandProducer>,
    payment: &LockedPayment,
    kind: WebhookKind,
) -> Result<Recorded, OutcomeError> {
    let Some((next, command)) = transition(kind, payment) else {
        return Ok(Recorded::Unchanged);
    };
    let payment_id = payment.payment_id;
    sqlx::query(SET_PAYMENT_STATUS)
        .bind(payment_id)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    let Some(command) = command else {
        return Ok(Recorded::Moved {
            status: next,
            request_id: None,
        });
    };
    let entry = catalog
        .event(payment.event_id)
        .await?
        .ok_or(OutcomeError::UnknownEvent(payment.event_id))?;
    let envelope = CommandEnvelope {
        request_id: RequestId::derived(payment_id.0, command.kind()),
        event_id: payment.event_id,
        user_id: UserId(PAYMENTS_USER.into()),
        issued_at: Utc::now(),
        command,
        reply: false,
    };
    commands
        .send(entry.info.kafka_partition, envelope.encode()?)
        .await?;
    tracing::info!(%payment_id, hold_id = %payment.hold_id, event_id = %payment.event_id,
        request_id = %envelope.request_id, kind = envelope.command.kind(),
        "payment outcome enqueued");
    Ok(Recorded::Moved {
        status: next,
        request_id: Some(envelope.request_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: &str) -> LockedPayment {
        LockedPayment {
            payment_id: PaymentId::new(),
            hold_id: HoldId::new(),
            event_id: EventId::new(),
            amount_cents: 5000,
            status: status.into(),
        }
    }

    #[test]
    fn transitions_only_move_forward() {
        let moved = |kind, status| transition(kind, &payment(status)).map(|(next, _)| next);
        assert_eq!(
            moved(WebhookKind::Processing, "pending"),
            Some("processing")
        );
        assert_eq!(moved(WebhookKind::Succeeded, "pending"), Some("paid"));
        assert_eq!(moved(WebhookKind::Succeeded, "processing"), Some("paid"));
        assert_eq!(moved(WebhookKind::Failed, "processing"), Some("failed"));
        assert_eq!(moved(WebhookKind::Processing, "processing"), None);
        assert_eq!(moved(WebhookKind::Processing, "paid"), None);
        assert_eq!(moved(WebhookKind::Succeeded, "failed"), None);
        assert_eq!(moved(WebhookKind::Failed, "paid"), None);
        assert_eq!(moved(WebhookKind::Succeeded, "refunded"), None);
    }
}
