//! Reading all of `seatq.seat-events` into the hub.
//!
//! Every notifier instance reads every partition (no consumer group, nothing committed):
//! Kafka is the backplane, so any instance can serve any client and ids mean the same on
//! all of them. At start each partition is read from `warm_records` before its end, so
//! clients that reconnect after a notifier restart can still be resumed.
//!
//! A plain thread, as in the consumer: every librdkafka call stays on one thread and
//! nothing here needs the async runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use seatq_common::config::Settings;
use seatq_common::message::SeatEventEnvelope;
use seatq_common::record;
use seatq_common::shutdown::Shutdown;

use crate::hub::Hub;
use crate::position::Pos;

const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Start reading in the background; `ready` is set once the partitions have been read
/// up to where they ended at start.
pub fn spawn(
    settings: &Settings,
    topic: String,
    hub: Arc<Hub>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    let kafka = settings.kafka.clone();
    let warm = settings.notifier.warm_records.max(0);
    std::thread::Builder::new()
        .name("notifier-ingest".into())
        .spawn(move || {
            // No group membership: every instance reads everything. The id only names the
            // client in the broker's logs.
            let group = format!("seatq-notifier-{}", uuid::Uuid::new_v4().simple());
            let consumer: BaseConsumer = match seatq_common::kafka::consumer_config(&kafka, &group).create() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create the seat-events reader");
                    return;
                }
            };
            let Some(targets) = assign(&consumer, &topic, warm, &hub, &shutdown) else {
                return;
            };
            tracing::info!(partitions = targets.len(), "reading seat events");
            let mut caught_up = false;
            while !shutdown.is_cancelled() {
                if !caught_up && hub.caught_up(&targets) {
                    caught_up = true;
                    ready.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!("caught up with the seat events");
                }
                let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let message = match result {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "seat-events reader error");
                        continue;
                    }
                };
                let (partition, offset) = (message.partition(), message.offset());
                let Some(payload) = message.payload() else {
                    continue;
                };
                match record::decode_all::<SeatEventEnvelope>(payload) {
                    Ok(envelopes) => {
                        for (index, envelope) in envelopes.iter().enumerate() {
                            // Follows a request from the gateway's span to its stream frame.
                            tracing::debug!(partition, offset, index, event_id = %envelope.event_id,
                                kind = envelope.payload.kind(),
                                request_id = ?envelope.payload.request_id(), "seat event");
                            hub.publish(partition, Pos::new(offset, index as u32), envelope);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(partition, offset, error = %e, "skipping an unreadable seat event");
                    }
                }
            }
        })
}

/// Assign every partition of `topic` from `warm` records before its end, waiting for the
/// topic to exist. Returns where each partition ended at start.
fn assign(
    consumer: &BaseConsumer,
    topic: &str,
    warm: i64,
    hub: &Hub,
    shutdown: &Shutdown,
) -> Option<BTreeMap<i32, i64>> {
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match plan(consumer, topic, warm) {
            Ok(plan) if !plan.is_empty() => {
                let mut list = TopicPartitionList::new();
                let mut ends = BTreeMap::new();
                for (partition, (start, end)) in &plan {
                    if let Err(e) =
                        list.add_partition_offset(topic, *partition, Offset::Offset(*start))
                    {
                        tracing::warn!(error = %e, "cannot add a partition");
                        continue;
                    }
                    hub.start_partition(*partition, *start);
                    ends.insert(*partition, *end);
                }
                match consumer.assign(&list) {
                    Ok(()) => return Some(ends),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot assign the seat-events partitions")
                    }
                }
            }
            Ok(_) => tracing::info!(topic, "waiting for the seat-events topic"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the seat-events partitions; retrying")
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Per partition: (start, end) offsets.
fn plan(
    consumer: &BaseConsumer,
    topic: &str,
    warm: i64,
) -> Result<BTreeMap<i32, (i64, i64)>, rdkafka::error::KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let mut plan = BTreeMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), METADATA_TIMEOUT)?;
            plan.insert(p.id(), ((high - warm).max(low), high));
        }
    }
    Ok(plan)
}
