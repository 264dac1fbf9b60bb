//! seatq consumer: applies the commands topic to PostgreSQL, one writer per partition.
//!
//! ```text
//! poll thread ──(partition p)──► worker p ──batch txn──► PostgreSQL ──► relay p ──► seat-events, hold-timers
//!      ▲   seek / commit requests   │
//!      └────────────────────────────┘
//! ```
//! Kafka's consumer group decides which partitions this process applies (`group`);
//! PostgreSQL decides what has been applied (the stored offset is the fence), so a
//! hand-over that briefly gives a partition to two consumers cannot apply a command twice.
//!
//! The layout, in the order a command meets it:
//!
//! - Receiving: `group` (the consumer group and its rebalances), `assignment` (which
//!   partitions this process applies now), `poller` (the one thread that polls Kafka and
//!   hands messages to workers), `worker` (one task per partition: batches, retries).
//! - Applying one batch, in one transaction: `batch` (the steps in order), `input`
//!   (records to commands and refusals), `ledger` (the data a batch touches), `decide`,
//!   `best_available` and `seating` (hold requests and their seating rules), `lifecycle`
//!   (everything after a hold), `store` (the SQL), `outbox` (the messages a batch publishes).
//! - After commit: `relay` (outbox rows to Kafka, one per partition).
//! - When a batch keeps failing: `poison` (finds the commands that make it fail, by trial)
//!   and `dead_letters` (what operators see of them).
//! - Operating: `lag` (queue depth per partition, for scaling), `metrics`, `peek`.

pub mod assignment;
pub mod batch;
pub mod best_available;
pub mod dead_letters;
pub mod decide;
pub mod group;
pub mod input;
pub mod lag;
pub mod ledger;
pub mod lifecycle;
pub mod metrics;
pub(crate) mod outbox;
pub mod peek;
pub mod poison;
pub mod poller;
pub mod relay;
pub mod seating;
pub(crate) mod store;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use seatq_common::catalog::Catalog;
use seatq_common::config::Settings;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;

use crate::assignment::Assignment;
use crate::batch::BatchApplier;
use crate::group::GroupContext;
use crate::poller::GroupConsumer;
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

/// Consume until `shutdown`, then finish in-flight batches and leave the group.
pub async fn run(settings: Settings, shutdown: Shutdown) -> Result<(), ConsumerError> {
    let pool = seatq_common::db::connect(&settings.database).await?;
    seatq_common::db::migrate(&pool).await?;
    let topics = Topics::new(&settings.kafka.topic_prefix);
    if !seatq_common::kafka::ensure_topics_patiently(&settings.kafka, &shutdown).await {
        return Ok(());
    }
    let owner = seatq_common::kafka::instance_name("consumer");
    let producer = seatq_common::kafka::producer(&settings.kafka)?;
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let shared = Arc::new(WorkerShared {
        applier: BatchApplier {
            pool: pool.clone(),
            catalog: Arc::new(Catalog::new(pool.clone(), Duration::from_secs(2))),
            topic: topics.commands.clone(),
            owner: owner.clone(),
            lifecycle: crate::lifecycle::LifecycleConfig::from_settings(&settings),
            drill_panic_user: Some(&settings.consumer.drill_panic_user)
                .filter(|u| !u.is_empty())
                .map(|u| seatq_common::ids::UserId(u.clone())),
        },
        relay: Arc::new(Relay {
            pool: pool.clone(),
            producer: producer.clone(),
            topics: topics.clone(),
            redis: match seatq_common::redis_client::connect(&settings.redis).await {
                Ok(redis) => Some(redis),
                Err(e) => {
                    tracing::warn!(error = %e, "no Redis: waitlist mirrors are left to the sweeper");
                    None
                }
            },
        }),
        control: control_tx.clone(),
        batch_max: settings.consumer.batch_max.max(1),
        batch_wait: Duration::from_millis(settings.consumer.batch_wait_ms),
    });
    let assignment = Arc::new(Assignment::new(
        tokio::runtime::Handle::current(),
        shared,
        Duration::from_millis(settings.consumer.revoke_timeout_ms),
    ));
    seatq_common::metrics::serve(&settings.metrics.consumer_listen, shutdown.clone()).await;
    let sampler = metrics::Sampler {
        pool: pool.clone(),
        producer: producer.clone(),
        topic: topics.commands.clone(),
        assignment: assignment.clone(),
    };
    tokio::spawn(sampler.run(shutdown.clone()));
    let context = GroupContext {
        assignment: assignment.clone(),
        runtime: tokio::runtime::Handle::current(),
        pool,
        topic: topics.commands.clone(),
    };
    let consumer: GroupConsumer =
        seatq_common::kafka::consumer_config(&settings.kafka, &settings.consumer.group_id)
            .set("client.id", &owner)
            .create_with_context(context)?;
    tracing::info!(topic = %topics.commands, member = %owner, group = %settings.consumer.group_id,
        "consumer started");
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
