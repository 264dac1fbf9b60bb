//! The outbox relay of one partition: publishes the messages its batches wrote, after
//! they committed, then deletes them.
//!
//! Running one relay per partition, owned by that partition's worker, keeps each event's
//! messages in commit order (a shared relay with SKIP LOCKED would reorder them). A crash
//! between publishing and deleting publishes some messages twice: consumers of
//! seat-events and hold-timers treat them as at-least-once.
//!
//! The messages of one page are packed per (topic, key) into records (`record::pack`),
//! in id order within each key: one record per event per page instead of one per
//! decision, because the broker's cost is per record. Readers decode records with
//! `record::decode_all`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use seatq_common::ids::EventId;
use seatq_common::record;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;
use seatq_common::waitlist_mirror;
use sqlx::PgPool;
use tokio::sync::Notify;

const PAGE: i64 = 5_000;
/// Bytes of one packed record at most (below any consumer's fetch size).
const RECORD_MAX_BYTES: usize = 64 * 1024;
const IDLE_CHECK: Duration = Duration::from_secs(1);

pub struct Relay {
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub topics: Topics,
    /// For the waitlists' Redis mirror; without it the scheduler's sweeper catches up.
    pub redis: Option<redis::aio::ConnectionManager>,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
}

/// Where an outbox message goes: (stream, key).
type Destination<'a> = (&'a str, &'a str);

const SELECT_PAGE: &str = "SELECT id, stream, message_key, payload::text FROM outbox \
     WHERE source_partition = $1 ORDER BY id LIMIT $2";
const DELETE_PUBLISHED: &str = "DELETE FROM outbox WHERE id = ANY($1)";

impl Relay {
    /// Publish up to one page; returns how many messages went out.
    pub async fn publish_page(&self, partition: i32) -> Result<usize, RelayError> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(SELECT_PAGE)
            .bind(partition)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Group by (stream, key), keeping id order within each group; groups go out in
        // the order of their first message. The producer keeps that order per partition.
        let mut groups: Vec<(Destination, Vec<&[u8]>)> = Vec::new();
        let mut index: HashMap<Destination, usize> = HashMap::new();
        for (_, stream, key, payload) in &rows {
            let at = *index.entry((stream, key)).or_insert_with(|| {
                groups.push(((stream, key), Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(payload.as_bytes());
        }
        let mut deliveries = Vec::new();
        let mut mirrors: Vec<(EventId, i32)> = Vec::new();
        for ((stream, key), messages) in &groups {
            if *stream == "waitlist_sync" {
                if let Ok(event_id) = key.parse::<EventId>() {
                    mirrors.extend(messages.iter().filter_map(|m| {
                        std::str::from_utf8(m)
                            .ok()?
                            .trim_matches('"')
                            .parse()
                            .ok()
                            .map(|s| (event_id, s))
                    }));
                }
                continue;
            }
            let topic = match *stream {
                "hold_timers" => &self.topics.hold_timers,
                _ => &self.topics.seat_events,
            };
            for part in record::split(messages, RECORD_MAX_BYTES) {
                let payload = match part {
                    [one] => one.to_vec(),
                    many => record::pack(many),
                };
                let message = FutureRecord::to(topic).key(*key).payload(&payload);
                match self.producer.send_result(message) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e.into()),
                Err(_) => return Err(rdkafka::error::KafkaError::Canceled.into()),
            }
        }
        self.sync_waitlists(mirrors).await;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        sqlx::query(DELETE_PUBLISHED)
            .bind(&ids)
            .execute(&self.pool)
            .await?;
        Ok(rows.len())
    }

    /// Rebuild the Redis mirror of waitlists the published batches changed. Best effort:
    /// PostgreSQL is the truth and the sweeper reconciles whatever fails here.
    async fn sync_waitlists(&self, mut seats: Vec<(EventId, i32)>) {
        let Some(redis) = &self.redis else { return };
        seats.sort_unstable();
        seats.dedup();
        let mut redis = redis.clone();
        for (event_id, seat_no) in seats {
            if let Err(e) =
                waitlist_mirror::rebuild(&self.pool, &mut redis, event_id, seat_no).await
            {
                tracing::warn!(%event_id, seat_no, error = %e, "waitlist mirror not rebuilt; the sweeper will");
            }
        }
    }

    /// Publish whenever woken (after each commit) and every second regardless (leftovers
    /// of a crashed predecessor), until `stop`.
    pub async fn run(self: Arc<Self>, partition: i32, wake: Arc<Notify>, stop: Shutdown) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.publish_page(partition).await {
                Ok(n) if n as i64 >= PAGE => continue,
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(partition, error = %e, "outbox relay failed; retrying");
                    if !seatq_common::shutdown::pause(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(IDLE_CHECK) => {}
            }
        }
    }
}
