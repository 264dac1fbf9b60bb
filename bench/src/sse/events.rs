//! What the scenario reads besides the streams: the seat map, the seat changes the
//! consumer decided (PostgreSQL), and when their deltas were published (the broker).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::BenchError;
use crate::sse::protocol::SectionStatus;
use crate::stack::Stack;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A seat map: its reserved sections' statuses and the position it reflects.
#[derive(Debug, Clone)]
pub struct SeatMap {
    pub next_offset: i64,
    pub sections: Vec<SectionStatus>,
}

#[derive(Deserialize)]
struct MapView {
    position: PositionView,
    sections: Vec<SectionView>,
}

#[derive(Deserialize)]
struct PositionView {
    next_offset: i64,
}

#[derive(Deserialize)]
struct SectionView {
    code: String,
    rows: Option<i32>,
    seats_per_row: Option<i32>,
    status: Option<String>,
}

/// `GET /v1/events/{event}/seats`, retried until it reflects everything the consumer has
/// applied (the gateway caches the map for up to `gateway.seat_map_cache_ms`).
pub async fn seat_map(
    stack: &Stack,
    http: &reqwest::Client,
    event: Uuid,
    partition: i32,
) -> Result<SeatMap, BenchError> {
    let url = format!("{}/v1/events/{event}/seats", stack.gateway);
    let started = Instant::now();
    loop {
        let applied = stack.applied(partition).await?;
        let r = http.get(&url).send().await?;
        let view: MapView = crate::pipeline::api::expect(r, reqwest::StatusCode::OK, "seat map")
            .await?
            .json()
            .await?;
        if view.position.next_offset >= applied || started.elapsed() > Duration::from_secs(10) {
            let sections = view
                .sections
                .into_iter()
                .filter_map(|s| {
                    Some(SectionStatus {
                        rows: s.rows?,
                        seats_per_row: s.seats_per_row?,
                        status: s.status?,
                        code: s.code,
                    })
                })
                .collect();
            return Ok(SeatMap {
                next_offset: view.position.next_offset,
                sections,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The seat changes of `event` decided at or after `from_offset` of its partition: holds
/// granted and holds cancelled (each changes seats), as (offset, `decided_at` in µs).
const CHANGES: &str = "SELECT kafka_offset, \
        (extract(epoch FROM decided_at) * 1000000)::bigint \
     FROM requests \
     WHERE event_id = $1 AND kafka_partition = $2 AND kafka_offset >= $3 \
       AND ((kind = 'hold_seats' AND status = 'held') \
         OR (kind = 'cancel_hold' AND status = 'applied'))";

pub async fn changes(
    stack: &Stack,
    event: Uuid,
    partition: i32,
    from_offset: i64,
) -> Result<Vec<(i64, i64)>, BenchError> {
    Ok(sqlx::query_as(CHANGES)
        .bind(event)
        .bind(partition)
        .bind(from_offset)
        .fetch_all(&stack.pool)
        .await?)
}

/// The `seat_status_changed` deltas of one event read back from `seatq.seat-events`.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// (`next_offset`, record timestamp in µs).
    pub deltas: Vec<(i64, i64)>,
    /// `create_time` (the relay's producer stamped it) or `log_append_time`.
    pub timestamp_type: String,
    /// Every partition was read to its end.
    pub complete: bool,
}

/// Reads `seatq.seat-events` by assignment (no group), from positions taken before a
/// phase to the log ends after it.
pub struct SeatEvents {
    consumer: BaseConsumer,
    topic: String,
}

impl SeatEvents {
    pub fn new(stack: &Stack) -> Result<Self, BenchError> {
        let consumer: BaseConsumer =
            seatq_common::kafka::consumer_config(&stack.settings.kafka, "seatq-bench-sse")
                .create()?;
        Ok(Self {
            consumer,
            topic: stack.topics.seat_events.clone(),
        })
    }

    /// The log end of every partition.
    pub fn ends(&self) -> Result<BTreeMap<i32, i64>, BenchError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), METADATA_TIMEOUT)?;
        let mut out = BTreeMap::new();
        for t in metadata.topics().iter().filter(|t| t.name() == self.topic) {
            for p in t.partitions() {
                let (_, high) =
                    self.consumer
                        .fetch_watermarks(&self.topic, p.id(), METADATA_TIMEOUT)?;
                out.insert(p.id(), high);
            }
        }
        Ok(out)
    }

    /// `event`'s deltas from `from` to the current log ends.
    pub fn read(
        &self,
        from: &BTreeMap<i32, i64>,
        event: Uuid,
        patience: Duration,
    ) -> Result<Published, BenchError> {
        let ends = self.ends()?;
        let mut list = TopicPartitionList::new();
        let mut pos = BTreeMap::new();
        for (&p, &end) in &ends {
            let start = from.get(&p).copied().unwrap_or(0);
            if end > start {
                list.add_partition_offset(&self.topic, p, Offset::Offset(start))?;
                pos.insert(p, (start, end));
            }
        }
        let mut out = Published {
            complete: true,
            ..Published::default()
        };
        if pos.is_empty() {
            return Ok(out);
        }
        self.consumer.assign(&list)?;
        let started = Instant::now();
        while pos.values().any(|(at, end)| at < end) {
            if started.elapsed() > patience {
                out.complete = false;
                break;
            }
            let Some(result) = self.consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let Ok(m) = result else { continue };
            if let Some(entry) = pos.get_mut(&m.partition()) {
                entry.0 = entry.0.max(m.offset() + 1);
            }
            let (kind, ms) = match m.timestamp() {
                Timestamp::CreateTime(ms) => ("create_time", ms),
                Timestamp::LogAppendTime(ms) => ("log_append_time", ms),
                Timestamp::NotAvailable => continue,
            };
            let Some(payload) = m.payload() else { continue };
            let Ok(envelopes) = seatq_common::record::decode_all::<SeatEventEnvelope>(payload)
            else {
                continue;
            };
            for e in envelopes.iter().filter(|e| e.event_id.0 == event) {
                if let SeatEvent::SeatStatusChanged { next_offset, .. } = e.payload {
                    out.deltas.push((next_offset, ms * 1_000));
                    out.timestamp_type = kind.to_string();
                }
            }
        }
        self.consumer.unassign()?;
        Ok(out)
    }
}
