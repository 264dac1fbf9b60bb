//! The broker alone: a plain librdkafka client producing the workload's commands to a
//! scratch topic, then fetching them all back.
//!
//! Payloads are the gateway's own (`CommandEnvelope::encode`), packed `pack` to a record
//! with `seatq_common::record::pack` the way the gateway packs what arrives together for a partition,
//! and the clients use `seatq_common::kafka`'s producer and consumer settings, so the
//! numbers are what seatq's own hops could get from this broker at best. One partition,
//! like one event. The scratch topic is left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use seatq_common::command::{Command, CommandEnvelope, HoldSeats};
use seatq_common::command_producer::{request_id_header, REQUEST_ID_HEADER};
use seatq_common::ids::{EventId, RequestId, SectionId, UserId};
use seatq_common::record::pack as encode_batch;

use crate::cli::Headers;
use crate::error::BenchError;
use crate::results::{self, BrokerResult};
use crate::runner;
use crate::stack::Stack;
use crate::workload::{holder, Attempt, Request, Stadium};

/// Records in flight in the producer at once.
const IN_FLIGHT: usize = 4_096;
const QUEUE_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// One packed record: its payload and its request-id header values.
struct Packed {
    payload: Vec<u8>,
    headers: Vec<String>,
}

/// The gateway's command for each attempt, all for one (made-up) event, with its request id.
fn encode_commands(
    stadium: &Stadium,
    attempts: &[Attempt],
) -> Result<Vec<(String, Vec<u8>)>, BenchError> {
    let event_id = EventId::new();
    let sections: Vec<SectionId> = stadium.sections.iter().map(|_| SectionId::new()).collect();
    attempts
        .iter()
        .map(|a| {
            let hold = match &a.request {
                Request::Seats(seat_nos) => HoldSeats::seats(seat_nos.clone()),
                Request::BestAvailable { section, quantity } => {
                    HoldSeats::best(sections[section.index as usize], *quantity)
                }
            };
            let request_id = RequestId::new();
            let envelope = CommandEnvelope {
                request_id,
                event_id,
                user_id: UserId(holder(a.user)),
                issued_at: Utc::now(),
                command: Command::HoldSeats(hold),
                reply: false,
            };
            Ok((request_id.to_string(), envelope.encode()?))
        })
        .collect()
}

pub async fn run(
    stack: &Stack,
    stadium: &Stadium,
    attempts: &[Attempt],
    pack: usize,
    headers: Headers,
    stall: Duration,
) -> Result<BrokerResult, BenchError> {
    let pack = pack.max(1);
    let commands = encode_commands(stadium, attempts)?;
    let records: Vec<Packed> = commands
        .chunks(pack)
        .map(|chunk| Packed {
            payload: encode_batch(&chunk.iter().map(|(_, c)| c).collect::<Vec<_>>()),
            headers: match headers {
                Headers::None => Vec::new(),
                Headers::PerRecord => request_id_header(chunk.iter().map(|(id, _)| id))
                    .into_iter()
                    .collect(),
                Headers::PerCommand => chunk.iter().map(|(id, _)| id.clone()).collect(),
            },
        })
        .collect();
    let bytes: u64 = records
        .iter()
        .map(|r| (r.payload.len() + r.headers.iter().map(|h| h.len()).sum::<usize>()) as u64)
        .sum();
    let topic = format!(
        "{}.bench-scratch-{}",
        stack.settings.kafka.topic_prefix,
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let kafka = &stack.settings.kafka;
    seatq_common::kafka::ensure_topics(kafka, &[&topic], 1).await?;

    let producer: FutureProducer = seatq_common::kafka::producer_config(kafka).create()?;
    let key = EventId::new().to_string();
    let bar = runner::progress_bar(&format!("broker produce x{pack}"), records.len() as u64);
    let started = Instant::now();
    futures::stream::iter(records.iter())
        .map(|packed| {
            let mut record = FutureRecord::to(&topic)
                .partition(0)
                .key(&key)
                .payload(&packed.payload);
            if !packed.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(packed.headers.len());
                for id in &packed.headers {
                    headers = headers.insert(Header {
                        key: REQUEST_ID_HEADER,
                        value: Some(id.as_bytes()),
                    });
                }
                record = record.headers(headers);
            }
            let (producer, bar) = (&producer, &bar);
            async move {
                let sent = producer.send(record, Timeout::After(QUEUE_WAIT)).await;
                bar.inc(1);
                sent.map(|_| ()).map_err(|(e, _)| BenchError::Kafka(e))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let produce = started.elapsed();
    bar.finish();

    let (fetched, fetch) = fetch_all(stack, &topic, records.len() as u64, stall).await?;
    let per_s = |n: u64, d: Duration| results::round(n as f64 / d.as_secs_f64().max(1e-9), 1);
    // The first record's arrival starts the fetch clock: rate over the rest.
    let fetched_after_first = fetched.saturating_sub(1);
    let n_records = records.len() as u64;
    let n_commands = commands.len() as u64;
    let fetched_commands = (fetched_after_first * pack as u64).min(n_commands);
    Ok(BrokerResult {
        topic,
        records: n_records,
        commands: n_commands,
        pack,
        headers: Some(headers),
        bytes,
        produce_s: results::round(produce.as_secs_f64(), 3),
        produce_records_per_s: per_s(n_records, produce),
        produce_commands_per_s: per_s(n_commands, produce),
        fetch_s: results::round(fetch.as_secs_f64(), 3),
        fetched_records: fetched,
        fetch_records_per_s: per_s(fetched_after_first, fetch),
        fetch_commands_per_s: per_s(fetched_commands, fetch),
    })
}

/// Read `topic` partition 0 from the beginning until `expected` records came (or none
/// came for `stall`); returns how many, and the time from the first to the last (the
/// client's connection and metadata set-up is not the broker's fetch rate).
async fn fetch_all(
    stack: &Stack,
    topic: &str,
    expected: u64,
    stall: Duration,
) -> Result<(u64, Duration), BenchError> {
    let group = format!("seatq-bench-{}", uuid::Uuid::new_v4().simple());
    let consumer: BaseConsumer =
        seatq_common::kafka::consumer_config(&stack.settings.kafka, &group).create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let bar = runner::progress_bar("broker fetch", expected);
    let consumer = Arc::new(consumer);
    let poller = {
        let (consumer, bar) = (Arc::clone(&consumer), bar.clone());
        tokio::task::spawn_blocking(move || -> Result<(u64, Duration), BenchError> {
            let (mut got, mut first, mut last) = (0u64, None, Instant::now());
            while got < expected && last.elapsed() < stall {
                match consumer.poll(POLL) {
                    Some(Ok(message)) => {
                        last = Instant::now();
                        if message.payload().is_some() {
                            first.get_or_insert(last);
                            got += 1;
                            bar.inc(1);
                        }
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => {}
                }
            }
            let span = first.map_or(Duration::ZERO, |first| last - first);
            Ok((got, span))
        })
    };
    let result = poller.await?;
    bar.finish();
    result
}
