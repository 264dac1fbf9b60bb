//! Reading the last records of a topic partition, for operators (`seatq-ctl peek`): the
//! offsets, the `request_id` headers of the commands and the payloads, with seatq's own
//! client (Debian's `kcat` cannot talk to the local broker; docs/broker.md says why).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use seatq_common::config::KafkaSettings;

const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// One record as `peek` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Peeked {
    pub offset: i64,
    pub key: Option<String>,
    /// The request ids of the `request_id` header, in record order (one per packed command).
    pub request_ids: Vec<String>,
    pub payload: String,
}

/// The last `count` records of `topic`'s `partition` (oldest first). Blocking.
pub fn last_records(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    count: i64,
) -> Result<Vec<Peeked>, rdkafka::error::KafkaError> {
    // A throwaway group that never commits: reading does not disturb anyone's position.
    let group = format!("seatq-ctl-peek-{}", std::process::id());
    let consumer: BaseConsumer = seatq_common::kafka::consumer_config(kafka, &group).create()?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
    let start = (high - count.max(1)).max(low);
    if start >= high {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + BROKER_TIMEOUT;
    while out.len() < (high - start) as usize && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = message?;
        let request_ids = m
            .headers()
            .map(|h| {
                h.iter()
                    .filter(|h| h.key == seatq_common::command_producer::REQUEST_ID_HEADER)
                    .filter_map(|h| h.value)
                    .flat_map(seatq_common::command_producer::request_ids_in_header)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        out.push(Peeked {
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            request_ids,
            payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        });
    }
    Ok(out)
}
