//! Reading `seatq.hold-timers` and firing what is due.
//!
//! Scheduler instances share the topic's partitions through a Kafka consumer group
//! (`scheduler.group_id`, `cooperative-sticky`), as consumers share the commands topic.
//! Each assigned partition has a [`DelayQueue`]. Its safe offset (below the oldest timer
//! not fired yet) is committed to the group every `scheduler.heartbeat_ms`, and once more
//! when the partition is revoked, so a restart or the instance taking the partition over
//! resumes there: it may fire again what fired since, never skip a timer.
//!
//! A due expiry becomes an `expire_hold` command on the event's partition of the commands
//! topic, with a request id derived from (hold, expiry): a timer read twice, or fired by
//! two instances during a hand-over, is decided once. Holds already ended, or extended
//! past this timer, are skipped without a command. A due reminder is published straight
//! to `seatq.seat-events` as `reservation_expiring` (a notification, not a state change).
//!
//! If this scheduler's clock runs ahead of the consumer's, an expiry arrives before the
//! hold is due by the consumer's clock and is decided `not_due` under its request id. The
//! consumer then re-arms the timer (a new timer record carrying an attempt number and when
//! to fire on this clock); the attempt is part of the next firing's request id
//! ([`expiry_attempt_request_id`]), so the re-armed expiry is a new request instead of a
//! duplicate of the decided one, and the hold still ends on time rather than at the
//! sweeper's next pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use seatq_common::catalog::Catalog;
use seatq_common::command::{Command, CommandEnvelope, ExpireHold};
use seatq_common::command_producer::CommandProducer;
use seatq_common::ids::{HoldId, RequestId, UserId};
use seatq_common::message::{ArmedTimer, SeatEvent, SeatEventEnvelope};
use seatq_common::record;
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;
use uuid::Uuid;

use crate::delay_queue::{DelayQueue, Due, Firing};

/// Who sends the scheduler's commands (`requests.user_id`).
pub const SCHEDULER_USER: &str = "system:scheduler";

const ACTIVE_HOLDS: &str =
    "SELECT id, user_id, expires_at FROM holds WHERE id = ANY($1) AND status = 'active'";

/// The request id of the expiry of `hold_id` set for `expires_at`.
pub fn expiry_request_id(hold_id: HoldId, expires_at: DateTime<Utc>) -> RequestId {
    expiry_attempt_request_id(hold_id, expires_at, 0)
}

/// The request id of the expiry of `hold_id` set for `expires_at`, re-armed `attempt`
/// times (0: the hold's own timer, whose id is [`expiry_request_id`]).
pub fn expiry_attempt_request_id(
    hold_id: HoldId,
    expires_at: DateTime<Utc>,
    attempt: u32,
) -> RequestId {
    let micros = expires_at.timestamp_micros();
    let name = match attempt {
        0 => format!("expire:{micros}"),
        n => format!("expire:{micros}:{n}"),
    };
    RequestId::derived(hold_id.0, &name)
}

/// The safe offset of each partition this instance reads, shared with the rebalance
/// callback so a revoked partition's position is committed before it goes.
pub type SafeOffsets = Arc<std::sync::Mutex<HashMap<i32, i64>>>;

/// What a rebalance did, for the timer loop.
#[derive(Debug)]
pub enum Rebalanced {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// The timer consumer's context: commits revoked partitions' safe offsets and tells the
/// loop which partitions came and went. Runs inside the consumer's poll (`recv`).
pub struct TimerContext {
    pub topic: String,
    pub safe: SafeOffsets,
    pub events: tokio::sync::mpsc::UnboundedSender<Rebalanced>,
}

/// The hold-timers consumer.
pub type TimerConsumer = StreamConsumer<TimerContext>;

impl TimerContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for TimerContext {}

impl ConsumerContext for TimerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let partitions = self.partitions(tpl);
        let safe: Vec<(i32, i64)> = {
            let mut map = self.safe.lock().unwrap_or_else(|p| p.into_inner());
            partitions
                .iter()
                .filter_map(|p| map.remove(p).map(|o| (*p, o)))
                .collect()
        };
        let mut list = TopicPartitionList::new();
        for (p, offset) in &safe {
            let _ = list.add_partition_offset(&self.topic, *p, Offset::Offset(*offset));
        }
        if list.count() > 0 {
            if let Err(e) = consumer.commit(&list, CommitMode::Sync) {
                tracing::warn!(error = %e, "could not commit the revoked partitions' positions");
            }
        }
        tracing::info!(partitions = ?partitions, "hold-timer partitions revoked");
        let _ = self.events.send(Rebalanced::Revoked(partitions));
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = self.partitions(tpl);
                tracing::info!(partitions = ?partitions, "hold-timer partitions assigned");
                let _ = self.events.send(Rebalanced::Assigned(partitions));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "hold-timer rebalance failed"),
        }
    }
}

pub struct TimerService {
    pub pool: PgPool,
    pub catalog: Arc<Catalog>,
    pub commands: Arc<CommandProducer>,
    pub producer: FutureProducer,
    pub timers_topic: String,
    pub seat_events_topic: String,
    pub remind_before: Duration,
    /// How often the safe offsets are committed.
    pub heartbeat: StdDuration,
    /// Added to the machine's clock (`scheduler.clock_offset_ms`; tests only).
    pub clock_offset: Duration,
}

/// Start or drop the queues of the partitions a rebalance gave or took.
fn apply_rebalance(event: Rebalanced, queues: &mut HashMap<i32, DelayQueue>) {
    match event {
        Rebalanced::Assigned(partitions) => {
            for p in partitions {
                queues.entry(p).or_default();
            }
        }
        Rebalanced::Revoked(partitions) => {
            for p in partitions {
                queues.remove(&p);
                seatq_common::metrics::timers_pending(p, 0);
            }
        }
    }
}

impl TimerService {
    /// This scheduler's time: the machine's, plus the offset tests may set.
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Run until `shutdown`: read the assigned partitions' timers, fire them, commit safe
    /// offsets.
    pub async fn run(
        self,
        consumer: TimerConsumer,
        safe: SafeOffsets,
        mut events: tokio::sync::mpsc::UnboundedReceiver<Rebalanced>,
        shutdown: Shutdown,
    ) {
        if let Err(e) = consumer.subscribe(&[&self.timers_topic]) {
            tracing::error!(error = %e, "cannot join the scheduler group; no timers will fire");
            return;
        }
        let mut queues: HashMap<i32, DelayQueue> = HashMap::new();
        let mut beat = tokio::time::interval(self.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = self.now();
            let next = queues.values().filter_map(DelayQueue::next_due).min();
            let nap = next
                .map(|d| (d - now).to_std().unwrap_or_default())
                .unwrap_or(StdDuration::from_secs(1))
                .min(StdDuration::from_secs(1));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = beat.tick() => {
                    self.commit_offsets(&consumer, &queues, &safe, CommitMode::Async);
                    for (&p, queue) in &queues {
                        seatq_common::metrics::timers_pending(p, queue.len());
                    }
                }
                Some(event) = events.recv() => apply_rebalance(event, &mut queues),
                received = consumer.recv() => match received {
                    Ok(m) => {
                        let partition = m.partition();
                        // A message of a partition just assigned can come before the loop
                        // saw the assignment: take the news first.
                        if !queues.contains_key(&partition) {
                            while let Ok(event) = events.try_recv() {
                                apply_rebalance(event, &mut queues);
                            }
                        }
                        if let Some(queue) = queues.get_mut(&partition) {
                            let timers = m.payload()
                                .map(record::decode_all::<ArmedTimer>)
                                .transpose()
                                .unwrap_or_else(|e| {
                                    tracing::warn!(partition, offset = m.offset(), error = %e,
                                        "skipping an unreadable hold timer");
                                    None
                                })
                                .unwrap_or_default();
                            for t in timers.iter().filter(|t| t.attempt > 0) {
                                seatq_common::metrics::expiry_rearmed();
                                tracing::warn!(hold_id = %t.timer.hold_id, attempt = t.attempt,
                                    fire_at = ?t.fire_at, "an expiry came before the consumer's clock said it was due \
                                    (is this scheduler's clock ahead?); re-armed");
                            }
                            queue.push(m.offset(), timers, self.remind_before, self.now());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "hold-timer consumer error"),
                },
                _ = tokio::time::sleep(nap) => {}
            }
            self.fire_due(&mut queues).await;
        }
        self.commit_offsets(&consumer, &queues, &safe, CommitMode::Sync);
    }

    /// Commit each read partition's safe offset to the group, and note it for the
    /// rebalance callback. A partition nothing was read from yet keeps its position.
    fn commit_offsets(
        &self,
        consumer: &TimerConsumer,
        queues: &HashMap<i32, DelayQueue>,
        safe: &SafeOffsets,
        mode: CommitMode,
    ) {
        let mut list = TopicPartitionList::new();
        let mut map = safe.lock().unwrap_or_else(|p| p.into_inner());
        for (&partition, queue) in queues {
            let Some(offset) = queue.safe_offset() else {
                continue;
            };
            if map.get(&partition) == Some(&offset) && matches!(mode, CommitMode::Async) {
                continue;
            }
            map.insert(partition, offset);
            let _ =
                list.add_partition_offset(&self.timers_topic, partition, Offset::Offset(offset));
        }
        drop(map);
        if list.count() > 0 {
            if let Err(e) = consumer.commit(&list, mode) {
                tracing::warn!(error = %e, "cannot commit the hold-timer positions");
            }
        }
    }

    async fn fire_due(&self, queues: &mut HashMap<i32, DelayQueue>) {
        let now = self.now();
        for (&partition, queue) in queues.iter_mut() {
            let due = queue.take_due(now);
            if due.is_empty() {
                continue;
            }
            let ids: Vec<Uuid> = due.iter().map(|d| d.timer.hold_id.0).collect();
            let active: HashMap<Uuid, (UserId, DateTime<Utc>)> =
                match sqlx::query_as::<_, (Uuid, UserId, DateTime<Utc>)>(ACTIVE_HOLDS)
                    .bind(&ids)
                    .fetch_all(&self.pool)
                    .await
                {
                    Ok(rows) => rows.into_iter().map(|(id, u, e)| (id, (u, e))).collect(),
                    Err(e) => {
                        tracing::warn!(partition, error = %e, "cannot look up due holds; retrying");
                        let later = now + Duration::seconds(1);
                        for d in due {
                            queue.retry(d, later);
                        }
                        continue;
                    }
                };
            for d in due {
                // Ended, or extended past this timer (a newer timer exists): nothing to do.
                let live = active
                    .get(&d.timer.hold_id.0)
                    .filter(|(_, expires_at)| *expires_at <= d.timer.expires_at);
                let Some((user_id, _)) = live else {
                    if d.firing == Firing::Expire {
                        queue.fired(d.offset);
                    }
                    continue;
                };
                let result = match d.firing {
                    Firing::Reminder => self.remind(&d, user_id).await,
                    Firing::Expire => self.expire(&d).await,
                };
                match result {
                    Ok(()) => {
                        seatq_common::metrics::timer_fired(match d.firing {
                            Firing::Expire => "expire",
                            Firing::Reminder => "reminder",
                        });
                        if d.firing == Firing::Expire {
                            queue.fired(d.offset);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(partition, hold_id = %d.timer.hold_id, error = %e,
                            "cannot fire a hold timer; retrying");
                        if d.firing == Firing::Expire {
                            queue.retry(d, now + Duration::seconds(1));
                        }
                    }
                }
            }
        }
    }

    async fn expire(&self, due: &Due) -> Result<(), String> {
        let timer = &due.timer;
        let entry = self
            .catalog
            .event(timer.event_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("event {} not found", timer.event_id))?;
        let envelope = CommandEnvelope {
            request_id: expiry_attempt_request_id(timer.hold_id, timer.expires_at, due.attempt),
            event_id: timer.event_id,
            user_id: UserId(SCHEDULER_USER.into()),
            // This scheduler's clock: the consumer compares it with its own to re-arm an
            // expiry that came early.
            issued_at: self.now(),
            command: Command::ExpireHold(ExpireHold {
                hold_id: timer.hold_id,
                expires_at: timer.expires_at,
                attempt: due.attempt,
            }),
            reply: false,
        };
        let payload = envelope.encode().map_err(|e| e.to_string())?;
        let placed = self
            .commands
            .send_command(entry.info.kafka_partition, envelope.request_id, payload)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(hold_id = %timer.hold_id, event_id = %timer.event_id,
            request_id = %envelope.request_id, attempt = due.attempt,
            partition = placed.partition, offset = placed.offset, "hold timer fired");
        Ok(())
    }

    async fn remind(&self, due: &Due, user_id: &UserId) -> Result<(), String> {
        let timer = &due.timer;
        let envelope = SeatEventEnvelope {
            event_id: timer.event_id,
            occurred_at: self.now(),
            payload: SeatEvent::ReservationExpiring {
                hold_id: timer.hold_id,
                user_id: user_id.clone(),
                expires_at: timer.expires_at,
            },
        };
        let payload = serde_json::to_vec(&envelope).map_err(|e| e.to_string())?;
        seatq_common::kafka::send(
            &self.producer,
            &self.seat_events_topic,
            None,
            &timer.event_id.to_string(),
            &payload,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}
