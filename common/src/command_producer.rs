//! Producing commands: many requests, few records.
//!
//! The broker's cost is mostly per record, not per byte (a log row to write, index and
//! fetch), so one record per hold request caps the whole pipeline at what the broker can
//! do per record. Instead
//! each partition gets a flusher task: requests queue up while the previous records are on
//! their way, and the flusher packs everything waiting (up to a size cap) into the next
//! record, a JSON array of envelopes. Under light load a record carries one command and
//! nothing waits; under a storm records grow and the broker sees a few hundred records a
//! second however many requests arrive. The batching is self-clocking (no timer): a
//! request waits only for the records ahead of it.
//!
//! Every request still gets its own answer: the record's (partition, offset) and its place
//! in the record, once the broker acknowledged it, or the error if it did not. And each
//! command's request id travels as a `request_id` record header too (one per command, in
//! record order), so Kafka tools and tracing can follow a request without reading the
//! payload.
//!
//! Order: records of one partition are handed to librdkafka in the order they are built,
//! and the producer keeps one request in flight per connection, so the log has them in
//! that order. A caller's command is in the log before its future resolves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::ids::RequestId;
use crate::record;

/// The record header that carries the request ids of the record's commands, in record
/// order, separated by commas (one id for a lone command). One header per record, not one
/// per command: the broker stores each header as a row of its own, and per-command headers
/// cut its produce rate 3.5-fold (bench/results/README.md, "The broker").
pub const REQUEST_ID_HEADER: &str = "request_id";

/// The request ids a `REQUEST_ID_HEADER` value lists.
pub fn request_ids_in_header(value: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(value)
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
}

/// The `REQUEST_ID_HEADER` value for these ids; None when there are none.
pub fn request_id_header<I: IntoIterator<Item = S>, S: std::fmt::Display>(
    ids: I,
) -> Option<String> {
    let mut value = String::new();
    for id in ids {
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(&id.to_string());
    }
    (!value.is_empty()).then_some(value)
}

/// Where a command landed: partition, record offset, index within the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub partition: i32,
    pub offset: i64,
    pub seq: i32,
    /// Commands in the record: how full records are right now (a queue-position estimate).
    pub record_commands: i32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProduceError {
    #[error("broker: {0}")]
    Broker(String),
    #[error("the command producer is shutting down")]
    Closed,
}

/// Limits of one record.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// At most this many commands per record.
    pub max_commands: usize,
    /// At most this many bytes per record; well below the consumers' `fetch.max.bytes`.
    pub max_bytes: usize,
    /// Records of one partition on their way to the broker at once.
    pub in_flight: usize,
}

struct Pending {
    payload: Vec<u8>,
    /// The command's request id, for its record header.
    request_id: Option<RequestId>,
    reply: oneshot::Sender<Result<Placed, ProduceError>>,
}

/// Packs commands into records, one flusher task per partition (started on first use).
pub struct CommandProducer {
    producer: FutureProducer,
    topic: String,
    limits: BatchLimits,
    queues: Mutex<HashMap<i32, mpsc::UnboundedSender<Pending>>>,
}

impl CommandProducer {
    pub fn new(producer: FutureProducer, topic: String, limits: BatchLimits) -> Arc<Self> {
        Arc::new(Self {
            producer,
            topic,
            limits,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Queue one encoded envelope for `partition` and wait for the broker's acknowledgement.
    pub async fn send(
        self: &Arc<Self>,
        partition: i32,
        payload: Vec<u8>,
    ) -> Result<Placed, ProduceError> {
        self.enqueue(partition, None, payload).await
    }

    /// [`Self::send`] a command whose request id goes into the record's headers.
    pub async fn send_command(
        self: &Arc<Self>,
        partition: i32,
        request_id: RequestId,
        payload: Vec<u8>,
    ) -> Result<Placed, ProduceError> {
        self.enqueue(partition, Some(request_id), payload).await
    }

    async fn enqueue(
        self: &Arc<Self>,
        partition: i32,
        request_id: Option<RequestId>,
        payload: Vec<u8>,
    ) -> Result<Placed, ProduceError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            payload,
            request_id,
            reply,
        };
        self.queue(partition)
            .send(pending)
            .map_err(|_| ProduceError::Closed)?;
        answer.await.map_err(|_| ProduceError::Closed)?
    }

    fn queue(self: &Arc<Self>, partition: i32) -> mpsc::UnboundedSender<Pending> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(partition)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(Arc::clone(self).flush(partition, rx));
                tx
            })
            .clone()
    }

    /// The flusher of one partition: take what is waiting, make it one record, repeat.
    async fn flush(self: Arc<Self>, partition: i32, mut rx: mpsc::UnboundedReceiver<Pending>) {
        let in_flight = Arc::new(Semaphore::new(self.limits.in_flight.max(1)));
        let mut carry: Option<Pending> = None;
        loop {
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let first = match carry.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            let mut bytes = first.payload.len() + 2;
            let mut batch = vec![first];
            while batch.len() < self.limits.max_commands {
                match rx.try_recv() {
                    Ok(p) if bytes + p.payload.len() < self.limits.max_bytes => {
                        bytes += p.payload.len() + 1;
                        batch.push(p);
                    }
                    Ok(p) => {
                        carry = Some(p);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.produce(partition, batch, permit);
        }
    }

    /// Hand one record to librdkafka now (this fixes its place in the partition), and
    /// answer its commands when the broker acknowledges it.
    fn produce(
        &self,
        partition: i32,
        batch: Vec<Pending>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        // A lone command stays a plain envelope, readable by any tool. The request ids go
        // into one header in record order.
        let ids = request_id_header(batch.iter().filter_map(|p| p.request_id));
        let payload = if batch.len() == 1 {
            batch[0].payload.clone()
        } else {
            let parts: Vec<&[u8]> = batch.iter().map(|p| p.payload.as_slice()).collect();
            record::pack(&parts)
        };
        let key = partition.to_string();
        let mut record = FutureRecord::to(&self.topic)
            .partition(partition)
            .key(&key)
            .payload(&payload);
        if let Some(ids) = &ids {
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: REQUEST_ID_HEADER,
                value: Some(ids.as_bytes()),
            }));
        }
        let delivery = match self.producer.send_result(record) {
            Ok(delivery) => delivery,
            Err((e, _)) => {
                answer_all(batch, Err(ProduceError::Broker(e.to_string())));
                return;
            }
        };
        tokio::spawn(async move {
            let outcome = match delivery.await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err(ProduceError::Broker(e.to_string())),
                Err(_) => Err(ProduceError::Broker(KafkaError::Canceled.to_string())),
            };
            drop(permit);
            match outcome {
                Ok((partition, offset)) => {
                    let record_commands = batch.len() as i32;
                    for (seq, p) in batch.into_iter().enumerate() {
                        let _ = p.reply.send(Ok(Placed {
                            partition,
                            offset,
                            seq: seq as i32,
                            record_commands,
                        }));
                    }
                }
                Err(e) => answer_all(batch, Err(e)),
            }
        });
    }
}

fn answer_all(batch: Vec<Pending>, outcome: Result<Placed, ProduceError>) {
    for p in batch {
        let _ = p.reply.send(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_header_lists_its_request_ids_in_order() {
        let ids = [RequestId::new(), RequestId::new(), RequestId::new()];
        let value = request_id_header(ids).expect("a header");
        let read: Vec<&str> = request_ids_in_header(value.as_bytes()).collect();
        let want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        assert_eq!(read, want);
        assert_eq!(request_id_header(Vec::<RequestId>::new()), None);
        assert_eq!(request_ids_in_header(b"").count(), 0);
    }
}
