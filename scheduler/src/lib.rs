//! seatq scheduler: delayed messages and the jobs that keep holds honest.
//!
//! ```text
//! seatq.hold-timers ──► delay queue per partition ──due──► expire_hold ──► seatq.commands
//!                                     └──reminder──► reservation_expiring ──► seatq.seat-events
//! sweeper (every 30 s): overdue active holds ──► expire_hold; waitlist mirrors ◄── PostgreSQL
//! refund worker: refunds (due, one at a time, backoff) ──► payment provider ──► refund_issued
//! reconciler: payments with an overdue webhook ──► payment provider ──► payment_* commands
//! admission: waiting rooms ──► admitted / queue_position, at a rate the pipeline can take
//! ```
//! Nothing here writes seat state: expiries are commands, decided by the consumer in
//! order with everything else on the event's partition (including the waitlist hand-off
//! and the payment grace period).

pub mod admission;
pub mod delay_queue;
pub mod reconcile;
pub mod refunds;
pub mod sweeper;
pub mod timers;
pub mod waiting_room_gauges;

use std::sync::Arc;
use std::time::Duration;

use seatq_common::catalog::Catalog;
use seatq_common::command_producer::CommandProducer;
use seatq_common::config::Settings;
use seatq_common::payment_provider::PaymentProvider;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// Run the timers, the sweeper, the refund worker and the payment reconciler until
/// `shutdown`.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), SchedulerError> {
    let pool = seatq_common::db::connect(&settings.database).await?;
    seatq_common::db::migrate(&pool).await?;
    let topics = Topics::new(&settings.kafka.topic_prefix);
    if !seatq_common::kafka::ensure_topics_patiently(&settings.kafka, &shutdown).await {
        return Ok(());
    }
    let producer = seatq_common::kafka::producer(&settings.kafka)?;
    let commands = CommandProducer::new(
        producer.clone(),
        topics.commands.clone(),
        settings.kafka.batch_limits(),
    );
    let catalog = Arc::new(Catalog::new(pool.clone(), Duration::from_secs(2)));
    let reconciler = reconcile::Reconciler {
        pool: pool.clone(),
        provider: PaymentProvider::new(&settings.payments),
        catalog: catalog.clone(),
        commands: commands.clone(),
        after: Duration::from_secs(settings.payments.reconcile_after_secs),
        interval: Duration::from_secs(settings.payments.reconcile_interval_secs.max(1)),
    };
    let redis = match seatq_common::redis_client::connect(&settings.redis).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "no Redis: waitlist mirrors are not reconciled");
            None
        }
    };
    let member = seatq_common::kafka::instance_name("scheduler");
    let safe: timers::SafeOffsets = Arc::default();
    let (rebalanced, rebalances) = tokio::sync::mpsc::unbounded_channel();
    let consumer: timers::TimerConsumer =
        seatq_common::kafka::consumer_config(&settings.kafka, &settings.scheduler.group_id)
            .set("client.id", &member)
            .set(
                "fetch.wait.max.ms",
                settings.scheduler.timers_fetch_wait_ms.to_string(),
            )
            .create_with_context(timers::TimerContext {
                topic: topics.hold_timers.clone(),
                safe: safe.clone(),
                events: rebalanced,
            })?;
    let timers = timers::TimerService {
        pool: pool.clone(),
        catalog: catalog.clone(),
        commands: commands.clone(),
        producer: producer.clone(),
        timers_topic: topics.hold_timers.clone(),
        seat_events_topic: topics.seat_events.clone(),
        remind_before: chrono::Duration::seconds(settings.scheduler.reminder_secs.max(0)),
        heartbeat: Duration::from_millis(settings.scheduler.heartbeat_ms.max(100)),
        clock_offset: chrono::Duration::milliseconds(settings.scheduler.clock_offset_ms),
    };
    let sweeper = sweeper::Sweeper {
        pool: pool.clone(),
        catalog,
        commands,
        redis: redis.clone(),
        interval: Duration::from_millis(settings.scheduler.sweep_interval_ms.max(100)),
        grace_secs: settings.scheduler.sweep_grace_secs.max(0),
    };
    let refunds = refunds::RefundWorker {
        pool: pool.clone(),
        provider: PaymentProvider::new(&settings.payments),
        producer: producer.clone(),
        seat_events_topic: topics.seat_events.clone(),
        interval: Duration::from_millis(settings.scheduler.refund_interval_ms.max(100)),
        retry: refunds::RetryPolicy::from_settings(&settings.scheduler),
    };
    let admission = admission::Admission {
        pool: pool.clone(),
        redis: redis.clone(),
        producer: producer.clone(),
        commands_topic: topics.commands.clone(),
        seat_events_topic: topics.seat_events.clone(),
        settings: settings.waiting_room.clone(),
    };
    tracing::info!(%member, group = %settings.scheduler.group_id, "scheduler started");
    seatq_common::metrics::serve(&settings.metrics.scheduler_listen, shutdown.clone()).await;
    seatq_common::metrics::zero_money_counters();
    let admitting = tokio::spawn(admission.run(shutdown.clone()));
    let sweeping = tokio::spawn(sweeper.run(shutdown.clone()));
    let refunding = tokio::spawn(refunds.run(shutdown.clone()));
    let reconciling = tokio::spawn(reconciler.run(shutdown.clone()));
    timers.run(consumer, safe, rebalances, shutdown).await;
    let _ = sweeping.await;
    let _ = refunding.await;
    let _ = reconciling.await;
    let _ = admitting.await;
    tracing::info!("scheduler stopped");
    Ok(())
}
