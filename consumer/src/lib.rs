//! seatq consumer: applies the commands topic to PostgreSQL, one writer per partition.
//!
//! ```text
//! poll thread ──(partition p)──► worker p ──batch txn──► PostgreSQL ──► relay p ──► seat-events, hold-timers
//!      ▲   seek / commit requests   │
//!      └────────────────────────────┘
//! ```
//! The broker decides which partitions this process gets; PostgreSQL decides what has
//! been applied (the stored offset is the fence), so a rebalance that briefly gives a
//! partition to two consumers cannot apply a command twice.

pub mod assignment;
pub mod batch;
pub mod best_available;
pub mod decide;
pub mod poller;
pub mod relay;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use seatq_common::catalog::Catalog;
use seatq_common::config::Settings;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;

use crate::assignment::{Assignment, RebalanceContext};
use crate::batch::BatchApplier;
use crate::relay::Relay;
use crate::worker::WorkerShared;

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the poll thread panicked")]
    PollThread,
}

/// A name for this process in `consumer_offsets.owner`.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "consumer".into());
    format!("{host}-{}", std::process::id())
}

/// Consume until `shutdown`, then finish in-flight batches and leave the group.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), ConsumerError> {
    let pool = seatq_common::db::connect(&settings.database).await?;
    seatq_common::db::migrate(&pool).await?;
    let topics = Topics::new(&settings.kafka.topic_prefix);
    // The broker may still be starting: wait for it rather than exit.
    loop {
        match seatq_common::kafka::ensure_topics(
            &settings.kafka,
            &topics.all(),
            settings.kafka.partitions,
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the broker to ensure topics; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let shared = Arc::new(WorkerShared {
        applier: BatchApplier {
            pool: pool.clone(),
            catalog: Arc::new(Catalog::new(pool.clone(), Duration::from_secs(2))),
            topic: topics.commands.clone(),
            owner: instance_name(),
        },
        relay: Arc::new(Relay {
            pool,
            producer: seatq_common::kafka::producer(&settings.kafka)?,
            topics: topics.clone(),
        }),
        control: control_tx,
        batch_max: settings.consumer.batch_max.max(1),
        batch_wait: Duration::from_millis(settings.consumer.batch_wait_ms),
    });
    let assignment = Arc::new(Assignment::new(
        tokio::runtime::Handle::current(),
        shared,
        topics.commands.clone(),
        Duration::from_millis(settings.consumer.revoke_timeout_ms),
    ));
    let consumer: BaseConsumer<RebalanceContext> =
        seatq_common::kafka::consumer_config(&settings.kafka, &settings.consumer.group_id)
            .create_with_context(RebalanceContext {
                assignment: assignment.clone(),
            })?;
    consumer.subscribe(&[&topics.commands])?;
    tracing::info!(topic = %topics.commands, group = %settings.consumer.group_id, "consumer started");
    let poll_shutdown = shutdown.clone();
    let topic = topics.commands.clone();
    let poll = std::thread::Builder::new()
        .name("seatq-poll".into())
        .spawn(move || poller::run(consumer, topic, control_rx, assignment, poll_shutdown))
        .map_err(|_| ConsumerError::PollThread)?;
    shutdown.cancelled().await;
    tokio::task::spawn_blocking(move || poll.join())
        .await
        .map_err(|_| ConsumerError::PollThread)?
        .map_err(|_| ConsumerError::PollThread)?;
    tracing::info!("consumer stopped");
    Ok(())
}
