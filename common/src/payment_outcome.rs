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
//!
//! A success carries what the provider captured. It is recorded on the payment and sent
//! with the command; if its amount or currency is not what the payment asked for, the
//! payment becomes `mismatched` (not `paid`: the hold may be paid for again) and the
//! consumer refunds the capture instead of booking (`PaymentOutcome::mismatch`). A success
//! after a failure (the buyer retried on the same payment) counts like any success: the
//! money was taken, so it books a live hold or is refunded.

use chrono::Utc;
use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::command::{Capture, Command, CommandEnvelope, Mismatch, PaymentOutcome};
use crate::command_producer::{CommandProducer, ProduceError};
use crate::ids::{EventId, HoldId, PaymentId, RequestId, UserId};
use crate::payment_provider::Report;

/// Who sends payment commands (`requests.user_id`).
pub const PAYMENTS_USER: &str = "system:payments";

const LOCK_PAYMENT: &str = "SELECT hold_id, event_id, amount_cents, currency, status \
     FROM payments WHERE id = $1 FOR UPDATE";
const SET_PAYMENT_STATUS: &str =
    "UPDATE payments SET status = $2, updated_at = now() WHERE id = $1";
const SET_CAPTURED: &str = "UPDATE payments SET status = $2, captured_cents = $3, \
     captured_currency = $4, updated_at = now() WHERE id = $1";

/// A payment row, locked by the caller's transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LockedPayment {
    pub payment_id: PaymentId,
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub amount_cents: i64,
    /// What the payment asked for (ISO 4217).
    pub currency: String,
    /// `pending`, `processing`, `paid`, `failed`, `mismatched` or `refunded`.
    pub status: String,
}

/// What `record` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The payment moved to `status`; `request_id` is the command sent, if any.
    Moved {
        status: &'static str,
        request_id: Option<RequestId>,
        /// A capture that is not what was asked for (refunded by the consumer).
        mismatch: Option<Mismatch>,
    },
    /// Out of order or already final: the state machine only moves forward.
    Unchanged,
}

impl Recorded {
    /// Count what was recorded, once the caller's transaction committed (a rolled-back
    /// outcome is learnt again and must not be counted twice).
    pub fn committed(&self) {
        if let Recorded::Moved {
            mismatch: Some(m), ..
        } = self
        {
            crate::metrics::payment_mismatch(m.as_str());
        }
    }
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
    let row: Option<(HoldId, EventId, i64, String, String)> = sqlx::query_as(LOCK_PAYMENT)
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.map(
        |(hold_id, event_id, amount_cents, currency, status)| LockedPayment {
            payment_id,
            hold_id,
            event_id,
            amount_cents,
            currency,
            status,
        },
    ))
}

/// Where `report` takes a payment in `status`, and the command that tells the consumer.
fn transition(report: &Report, payment: &LockedPayment) -> Option<(&'static str, Option<Command>)> {
    let outcome = |captured: Option<Capture>| PaymentOutcome {
        hold_id: payment.hold_id,
        payment_id: payment.payment_id,
        amount_cents: payment.amount_cents,
        currency: Some(payment.currency.clone()),
        captured,
    };
    match (report, payment.status.as_str()) {
        (Report::Processing, "pending") => Some(("processing", None)),
        // From `failed` too: a buyer may retry on the same payment after a decline, and
        // money taken must end booked or refunded, never ignored.
        (Report::Succeeded(capture), "pending" | "processing" | "failed") => {
            let outcome = outcome(Some(capture.clone()));
            let status = if outcome.mismatch().is_some() {
                "mismatched"
            } else {
                "paid"
            };
            Some((status, Some(Command::PaymentSucceeded(outcome))))
        }
        (Report::Failed, "pending" | "processing") => {
            Some(("failed", Some(Command::PaymentFailed(outcome(None)))))
        }
        _ => None,
    }
}

/// Record that the provider reported `report` for `payment` (locked in `tx`): move its
/// status forward and, for a final outcome, produce the command. The caller commits,
/// then calls [`Recorded::committed`].
pub async fn record(
    tx: &mut PgConnection,
    catalog: &Catalog,
    commands: &std::sync::Arc<CommandProducer>,
    payment: &LockedPayment,
    report: &Report,
) -> Result<Recorded, OutcomeError> {
    let Some((next, command)) = transition(report, payment) else {
        return Ok(Recorded::Unchanged);
    };
    let payment_id = payment.payment_id;
    match report {
        Report::Succeeded(capture) => {
            sqlx::query(SET_CAPTURED)
                .bind(payment_id)
                .bind(next)
                .bind(capture.amount_cents)
                .bind(&capture.currency)
                .execute(&mut *tx)
                .await?
        }
        _ => {
            sqlx::query(SET_PAYMENT_STATUS)
                .bind(payment_id)
                .bind(next)
                .execute(&mut *tx)
                .await?
        }
    };
    let Some(command) = command else {
        return Ok(Recorded::Moved {
            status: next,
            request_id: None,
            mismatch: None,
        });
    };
    let mismatch = match &command {
        Command::PaymentSucceeded(outcome) => outcome.mismatch(),
        _ => None,
    };
    if let (Some(m), Report::Succeeded(capture)) = (mismatch, report) {
        tracing::error!(%payment_id, hold_id = %payment.hold_id, mismatch = m.as_str(),
            asked_cents = payment.amount_cents, asked_currency = %payment.currency,
            captured_cents = capture.amount_cents, captured_currency = %capture.currency,
            "the provider captured something else than was asked for; it will be refunded");
    }
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
        .send_command(
            entry.info.kafka_partition,
            envelope.request_id,
            envelope.encode()?,
        )
        .await?;
    tracing::info!(%payment_id, hold_id = %payment.hold_id, event_id = %payment.event_id,
        request_id = %envelope.request_id, kind = envelope.command.kind(),
        "payment outcome enqueued");
    Ok(Recorded::Moved {
        status: next,
        request_id: Some(envelope.request_id),
        mismatch,
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
            currency: "USD".into(),
            status: status.into(),
        }
    }

    fn succeeded(amount_cents: i64, currency: &str) -> Report {
        Report::Succeeded(Capture {
            amount_cents,
            currency: currency.into(),
        })
    }

    #[test]
    fn transitions_only_move_forward() {
        let moved =
            |report: Report, status| transition(&report, &payment(status)).map(|(next, _)| next);
        let paid = || succeeded(5000, "USD");
        assert_eq!(moved(Report::Processing, "pending"), Some("processing"));
        assert_eq!(moved(paid(), "pending"), Some("paid"));
        assert_eq!(moved(paid(), "processing"), Some("paid"));
        assert_eq!(moved(Report::Failed, "processing"), Some("failed"));
        assert_eq!(moved(Report::Processing, "processing"), None);
        assert_eq!(moved(Report::Processing, "paid"), None);
        assert_eq!(moved(Report::Processing, "failed"), None);
        assert_eq!(moved(Report::Failed, "paid"), None);
        assert_eq!(moved(Report::Failed, "failed"), None);
        assert_eq!(moved(paid(), "paid"), None);
        assert_eq!(moved(paid(), "mismatched"), None);
        assert_eq!(moved(paid(), "refunded"), None);
    }

    #[test]
    fn a_success_after_a_failure_is_applied() {
        let (next, command) =
            transition(&succeeded(5000, "USD"), &payment("failed")).expect("moved");
        assert_eq!(next, "paid");
        assert!(matches!(command, Some(Command::PaymentSucceeded(p)) if p.mismatch().is_none()));
    }

    #[test]
    fn a_capture_unlike_the_payment_is_mismatched_and_still_sent() {
        for (report, mismatch) in [
            (succeeded(4000, "USD"), Mismatch::Amount),
            (succeeded(5000, "EUR"), Mismatch::Currency),
        ] {
            let (next, command) = transition(&report, &payment("processing")).expect("moved");
            assert_eq!(next, "mismatched");
            let Some(Command::PaymentSucceeded(outcome)) = command else {
                panic!("{command:?}");
            };
            assert_eq!(outcome.mismatch(), Some(mismatch));
        }
    }
}
