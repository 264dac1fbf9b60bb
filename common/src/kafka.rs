//! Kafka clients with the settings seatq relies on, the same for the local broker (nisshi
//! 0.8.1 on PostgreSQL) and for Apache Kafka or Redpanda, so switching brokers is a config
//! change.
//!
//! - Manual offset commits only: the consumer's real position lives in PostgreSQL (the
//!   offset fence); the group's committed offsets are a lag hint for operators and KEDA.
//! - Consumer groups with `cooperative-sticky` assignment: a member joining or leaving
//!   moves only the partitions that must move, and the others keep being applied during
//!   the rebalance. A member that dies is evicted by the coordinator after
//!   `session.timeout.ms` (`kafka.session_timeout_ms`).
//! - Long-poll fetches (`fetch.wait.max.ms`, 500 ms by default): Apache Kafka answers as
//!   soon as records arrive; nisshi, the local broker, re-reads the fetch's partitions at
//!   1/2, 3/4, 7/8 … of the wait, so the wait trades idle cost against the latency of
//!   sporadic requests (bench/results/README.md, "The broker").
//! - No idempotent producer: a produce that times out must stay an ordinary failure the
//!   gateway can answer (503, the command abandoned; see gateway `commands`), not an epoch
//!   bump that can turn fatal. Order comes from one request in flight per connection;
//!   duplicates from retries are harmless because the consumer dedupes by request id.
//! - No snappy, no client telemetry push.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaSettings;

/// A name for this process in its consumer group (`client.id`) and in
/// `consumer_offsets.owner`: the host (the pod name in Kubernetes) and the process id, so a
/// restarted process is a new member.
pub fn instance_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| role.to_owned());
    format!("{host}-{}", std::process::id())
}

/// Settings every client shares.
pub fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("socket.keepalive.enable", "true")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set("enable.metrics.push", "false");
    // librdkafka's own debug contexts (e.g. "fetch,broker") for operators chasing a problem.
    if let Ok(contexts) = std::env::var("SEATQ_KAFKA_DEBUG") {
        config.set("debug", contexts);
    }
    config
}

pub fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = base_config(settings);
    config
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", settings.linger_ms.to_string())
        .set("batch.num.messages", "10000")
        .set(
            "message.timeout.ms",
            settings.produce_timeout_ms.to_string(),
        )
        .set(
            "request.timeout.ms",
            settings.produce_timeout_ms.min(30_000).to_string(),
        )
        .set("retry.backoff.ms", "50")
        .set("compression.type", "none");
    config
}

/// A group member that commits offsets only when told to.
pub fn consumer_config(settings: &KafkaSettings, group_id: &str) -> ClientConfig {
    let mut config = base_config(settings);
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_uncommitted")
        .set("fetch.wait.max.ms", settings.fetch_wait_max_ms.to_string())
        .set("fetch.min.bytes", "1")
        .set("fetch.max.bytes", settings.fetch_max_bytes.to_string())
        .set(
            "max.partition.fetch.bytes",
            settings.fetch_max_bytes.to_string(),
        )
        .set("message.max.bytes", settings.fetch_max_bytes.to_string())
        .set(
            "session.timeout.ms",
            settings.session_timeout_ms.clamp(1000, 300_000).to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout_ms / 4)
                .clamp(100, 3000)
                .to_string(),
        )
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "cooperative-sticky");
    config
}

pub fn producer(settings: &KafkaSettings) -> Result<FutureProducer, KafkaError> {
    producer_config(settings).create()
}

/// Create the topics that are missing (the broker does not auto-create them).
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base_config(settings).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => tracing::info!(%topic, partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                tracing::error!(%topic, ?code, "cannot create topic");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// [`ensure_topics`] for every seatq topic under the settings' prefix, with the
/// settings' partition count, retrying every second while the broker cannot be reached
/// (it may still be starting: a service waits for it rather than exit). False if
/// `shutdown` came first.
pub async fn ensure_topics_patiently(
    settings: &KafkaSettings,
    shutdown: &crate::shutdown::Shutdown,
) -> bool {
    let topics = crate::topics::Topics::new(&settings.topic_prefix);
    loop {
        match ensure_topics(settings, &topics.all(), settings.partitions).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the broker to ensure topics; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Number of partitions of `topic`, from broker metadata.
pub fn partition_count(
    producer: &FutureProducer,
    topic: &str,
    timeout: Duration,
) -> Result<i32, KafkaError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Timeout::After(timeout))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0);
    if count == 0 {
        return Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ));
    }
    Ok(count)
}

/// Produce one message and wait for the broker's acknowledgement.
/// Returns the (partition, offset) it was written at.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    key: &str,
    payload: &[u8],
) -> Result<(i32, i64), KafkaError> {
    let mut record = FutureRecord::to(topic).key(key).payload(payload);
    if let Some(p) = partition {
        record = record.partition(p);
    }
    // The producer's own message.timeout.ms bounds the wait; the queue timeout only covers
    // a full local queue.
    match producer
        .send(record, Timeout::After(Duration::from_millis(100)))
        .await
    {
        Ok(delivery) => Ok((delivery.partition, delivery.offset)),
        Err((e, _)) => Err(e),
    }
}

/// The partition Kafka's default partitioner picks for `key` (murmur2, as the Java client).
/// seatq fixes each event's partition once, at creation, with this function.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Apache Kafka's own tests of Utils.murmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    /// The Java client's `Utils.toPositive(murmur2(key)) % partitions` on the vectors above
    /// ("foobar" over 50 partitions is 16 in other Kafka clients' tests too): the same key
    /// lands on the same partition whichever client produced it.
    #[test]
    fn keys_land_on_the_java_clients_partitions() {
        let cases: [(&[u8], [i32; 3]); 4] = [
            (b"21", [0, 0, 40]),
            (b"foobar", [0, 6, 16]),
            (b"a-little-bit-long-string", [2, 8, 12]),
            (b"abc", [0, 3, 7]),
        ];
        for (key, expected) in cases {
            let got = [3, 12, 50].map(|n| partition_for_key(key, n));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn partitions_are_in_range() {
        for i in 0..1000 {
            let p = partition_for_key(format!("key-{i}").as_bytes(), 12);
            assert!((0..12).contains(&p));
        }
    }
}
