//! How far the consumers are behind, per partition of the commands topic, and how many
//! consumer processes that calls for (`seatq-ctl lag`).
//!
//! Where the position comes from: the consumer's applied offset lives in PostgreSQL
//! (`consumer_offsets.next_offset`, written in each batch's transaction; it is the fence),
//! so that is what counts here. Offsets committed to the broker under the consumer group
//! are sent after the database commit and only as a hint for autoscalers (KEDA reads
//! them); they are shown alongside, so an operator can see what KEDA sees. Who owns a
//! partition now is what the group coordinator says (its members and their assignments);
//! a broker that does not describe its groups (nisshi 0.8.1 lists no members) leaves that
//! empty, and the consumer that applied each partition's last batch tells instead.
//!
//! Lag counts Kafka *records*, as KEDA's does: the gateway packs up to
//! `kafka.record_max_commands` hold requests into one record, so one record of lag can be
//! many commands. Choose `lagThreshold` in records.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sqlx::PgPool;

use seatq_common::config::Settings;
pub use seatq_common::scaling::{desired_consumers, partition_lag};
use seatq_common::topics::Topics;

use crate::group::Member;

const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

const APPLIED: &str = "SELECT kafka_partition, next_offset, owner FROM consumer_offsets \
     WHERE topic = $1 ORDER BY kafka_partition";

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("the broker call was interrupted")]
    Interrupted,
}

/// One partition of the commands topic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    pub low_watermark: i64,
    pub high_watermark: i64,
    /// Next offset to apply, from PostgreSQL (the authoritative position); None before
    /// the partition's first batch.
    pub committed: Option<i64>,
    /// The consumer group's committed offset at the broker (the lag hint KEDA reads).
    pub group_committed: Option<i64>,
    /// Records not applied yet.
    pub lag: i64,
    /// The group member assigned the partition now (its client id), if any.
    pub owner: Option<String>,
    /// The consumer that applied the partition's last batch.
    pub last_applied_by: Option<String>,
}

/// The whole topic and the suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct LagReport {
    pub topic: String,
    pub consumer_group: String,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: i64,
    /// The consumer group's members (client id `host-pid`) with their partitions.
    pub live_consumers: Vec<Member>,
    pub lag_threshold: i64,
    pub max_consumers: Option<u32>,
    pub suggested_consumers: u32,
}

/// Read watermarks and group offsets from the broker, positions and members from
/// PostgreSQL, and put them together.
pub async fn report(
    settings: &Settings,
    pool: &PgPool,
    lag_threshold: i64,
    max_consumers: Option<u32>,
) -> Result<LagReport, LagError> {
    let topic = Topics::new(&settings.kafka.topic_prefix).commands;
    let group = settings.consumer.group_id.clone();
    let (marks, live) = {
        let (kafka, topic, group) = (settings.kafka.clone(), topic.clone(), group.clone());
        tokio::task::spawn_blocking(move || broker_positions(&kafka, &topic, &group))
            .await
            .map_err(|_| LagError::Interrupted)??
    };
    let applied: Vec<(i32, i64, String)> =
        sqlx::query_as(APPLIED).bind(&topic).fetch_all(pool).await?;
    let partitions: Vec<PartitionLag> = marks
        .into_iter()
        .map(|(partition, low, high, group_committed)| {
            let stored = applied.iter().find(|(p, _, _)| *p == partition);
            let committed = stored.map(|s| s.1);
            PartitionLag {
                partition,
                low_watermark: low,
                high_watermark: high,
                committed,
                group_committed,
                lag: partition_lag(low, high, committed),
                owner: live
                    .iter()
                    .find(|m| m.partitions.contains(&partition))
                    .map(|m| m.client_id.clone()),
                last_applied_by: stored.map(|s| s.2.clone()),
            }
        })
        .collect();
    let total_lag = partitions.iter().map(|p| p.lag).sum();
    Ok(LagReport {
        suggested_consumers: desired_consumers(
            total_lag,
            lag_threshold,
            partitions.len(),
            max_consumers,
        ),
        topic,
        consumer_group: group,
        partitions,
        total_lag,
        live_consumers: live,
        lag_threshold,
        max_consumers,
    })
}

/// What the broker knows of one partition: (partition, low, high, group committed).
type BrokerPosition = (i32, i64, i64, Option<i64>);

/// Every partition of `topic` as the broker sees it, and the group's members. Blocking.
fn broker_positions(
    kafka: &seatq_common::config::KafkaSettings,
    topic: &str,
    group: &str,
) -> Result<(Vec<BrokerPosition>, Vec<Member>), LagError> {
    // A group member that never subscribes: it only asks (OffsetFetch), never joins.
    let consumer: BaseConsumer = seatq_common::kafka::consumer_config(kafka, group).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
    let mut ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return Err(LagError::Kafka(rdkafka::error::KafkaError::MetadataFetch(
            rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
        )));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &ids {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer.committed_offsets(tpl, BROKER_TIMEOUT)?;
    let members = crate::group::members(&consumer, group, topic)?;
    let positions = ids
        .into_iter()
        .map(|p| {
            let (low, high) = consumer.fetch_watermarks(topic, p, BROKER_TIMEOUT)?;
            let group = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            Ok((p, low, high, group))
        })
        .collect::<Result<Vec<_>, LagError>>()?;
    Ok((positions, members))
}

/// The report as a fixed-width table for people.
pub fn render_table(report: &LagReport) -> String {
    let show = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let members = if report.live_consumers.is_empty() {
        "not described by the broker".to_owned()
    } else {
        report.live_consumers.len().to_string()
    };
    let mut out = format!(
        "topic {}  group {}  members {}\n{:>9} {:>14} {:>12} {:>12} {:>10}  {:<24} {}\n",
        report.topic,
        report.consumer_group,
        members,
        "partition",
        "high watermark",
        "committed",
        "group (KEDA)",
        "lag",
        "owner",
        "last applied by",
    );
    for p in &report.partitions {
        out.push_str(&format!(
            "{:>9} {:>14} {:>12} {:>12} {:>10}  {:<24} {}\n",
            p.partition,
            p.high_watermark,
            show(p.committed),
            show(p.group_committed),
            p.lag,
            p.owner.as_deref().unwrap_or("-"),
            p.last_applied_by.as_deref().unwrap_or("-"),
        ));
    }
    out.push_str(&format!(
        "total lag {} records; suggested consumers {} (ceil(lag / {}), 1..={}{})\n",
        report.total_lag,
        report.suggested_consumers,
        report.lag_threshold,
        report.partitions.len(),
        report
            .max_consumers
            .map_or_else(String::new, |m| format!(", at most {m}")),
    ));
    out
}
