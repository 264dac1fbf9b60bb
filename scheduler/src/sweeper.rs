//! The safety net: every so often, expire holds that are past their expiry plus a grace
//! period and still active (a timer that was never emitted, lost, or fired while the
//! consumer could not apply it), and rebuild the Redis waitlist mirrors from PostgreSQL.
//!
//! Expiring twice is harmless: the command's request id is derived from the hold and its
//! expiry, and the consumer ignores an expiry for a hold that already ended.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use seatq_common::catalog::Catalog;
use seatq_common::command::{Command, CommandEnvelope, ExpireHold};
use seatq_common::command_producer::CommandProducer;
use seatq_common::ids::{EventId, HoldId, RequestId, UserId};
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;

use crate::timers::SCHEDULER_USER;

const OVERDUE: &str = "SELECT id, event_id, expires_at FROM holds \
     WHERE status = 'active' AND expires_at < now() - make_interval(secs => $1) \
     ORDER BY expires_at LIMIT 10000";

pub struct Sweeper {
    pub pool: PgPool,
    pub catalog: Arc<Catalog>,
    pub commands: Arc<CommandProducer>,
    pub redis: Option<ConnectionManager>,
    pub interval: Duration,
    pub grace_secs: i64,
}

/// The sweeper's request id for expiring `hold_id` set for `expires_at` (distinct from the
/// timer's, so a timer decided as "not due yet" does not mask the sweep).
pub fn sweep_request_id(hold_id: HoldId, expires_at: DateTime<Utc>) -> RequestId {
    RequestId::derived(
        hold_id.0,
        &format!("sweep:{}", expires_at.timestamp_micros()),
    )
}

impl Sweeper {
    pub async fn run(mut self, shutdown: Shutdown) {
        loop {
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => {
                    seatq_common::metrics::sweeper_caught(n);
                    tracing::info!(holds = n, "sweeper expired overdue holds");
                }
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
            if let Some(redis) = self.redis.as_mut() {
                if let Err(e) =
                    seatq_common::waitlist_mirror::reconcile_all(&self.pool, redis).await
                {
                    tracing::warn!(error = %e, "waitlist mirrors not reconciled");
                }
            }
            if !seatq_common::shutdown::pause(&shutdown, self.interval).await {
                return;
            }
        }
    }

    /// Send `expire_hold` for every overdue hold; returns how many.
    pub async fn sweep(&self) -> Result<usize, String> {
        let overdue: Vec<(HoldId, EventId, DateTime<Utc>)> = sqlx::query_as(OVERDUE)
            .bind(self.grace_secs as f64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| e.to_string())?;
        for (hold_id, event_id, expires_at) in &overdue {
            let Some(entry) = self
                .catalog
                .event(*event_id)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let envelope = CommandEnvelope {
                request_id: sweep_request_id(*hold_id, *expires_at),
                event_id: *event_id,
                user_id: UserId(SCHEDULER_USER.into()),
                issued_at: Utc::now(),
                command: Command::ExpireHold(ExpireHold {
                    hold_id: *hold_id,
                    expires_at: *expires_at,
                    attempt: 0,
                }),
                reply: false,
            };
            let payload = envelope.encode().map_err(|e| e.to_string())?;
            self.commands
                .send_command(entry.info.kafka_partition, envelope.request_id, payload)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(%hold_id, %event_id, "sweeper expiring an overdue hold");
        }
        Ok(overdue.len())
    }
}
