//! Letting people in from waiting rooms, as fast as the pipeline can take them.
//!
//! Every `waiting_room.tick_ms`, for each on-sale event with people waiting, the scheduler
//! admits the next `rate × tick` tickets in line (PostgreSQL order: lottery draws first,
//! then arrival), tells them (`admitted`), and every few seconds tells everyone still
//! waiting where they are (`queue_position`). Several schedulers may run: a transaction-
//! scoped advisory lock per event makes one of them do each tick.
//!
//! The rate is a closed loop (additive increase, multiplicative decrease, as TCP does
//! with its window). Each tick measures the event's pipeline:
//! - **lag**: commands in the event's partition not applied yet (log end − the consumer's
//!   stored offset);
//! - **decision p99**: hold requests' accept → decision time over the last
//!   `latency_window_secs`.
//!
//! If either is above its target (`target_lag`, `target_decision_p99_ms`) the rate is
//! multiplied by `backoff` (0.5), else it grows by `rate_step` per tick, within
//! `min_rate`..`max_rate`. So admissions ramp up while decisions stay fast and halve
//! within a tick of the queue of commands building up: the waiting room holds the crowd
//! back instead of the consumer's backlog. Optionally `max_unconverted` caps how many
//! admitted users may be in the sale without having held anything yet.
//!
//! A paused or ended sale (`events.sale_state`) admits nobody: the line keeps its order
//! and moves again when the sale resumes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, Producer};
use redis::aio::ConnectionManager;
use seatq_common::config::WaitingRoomSettings;
use seatq_common::ids::{EventId, UserId};
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use seatq_common::record;
use seatq_common::shutdown::Shutdown;
use seatq_common::waiting_room;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

const EVENTS_WAITING: &str = "SELECT e.id, e.kafka_partition FROM events e \
     WHERE e.waiting_room_enabled AND e.on_sale_at <= now() AND e.sale_state = 'open' \
       AND EXISTS (SELECT 1 FROM queue_tickets q WHERE q.event_id = e.id AND q.status = 'waiting')";
const LOCK_EVENT: &str =
    "SELECT pg_try_advisory_xact_lock(hashtextextended('admission:' || $1::text, 0))";
const CONTROL: &str = "SELECT rate, carry FROM admission_control WHERE event_id = $1";
const SAVE_CONTROL: &str = "INSERT INTO admission_control \
       (event_id, rate, carry, admitted_total, last_lag, last_p99_ms, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (event_id) DO UPDATE SET \
       rate = EXCLUDED.rate, carry = EXCLUDED.carry, \
       admitted_total = admission_control.admitted_total + EXCLUDED.admitted_total, \
       last_lag = EXCLUDED.last_lag, last_p99_ms = EXCLUDED.last_p99_ms, updated_at = now()";
const DECISION_P99_MS: &str = "SELECT percentile_cont(0.99) WITHIN GROUP \
       (ORDER BY extract(epoch FROM decided_at - issued_at) * 1000) \
     FROM requests WHERE event_id = $1 AND kind = 'hold_seats' \
       AND decided_at > now() - make_interval(secs => $2)";
const APPLIED_OFFSET: &str = "SELECT next_offset FROM consumer_offsets \
     WHERE topic = $1 AND kafka_partition = $2";
/// Admitted users who have not held anything at this event yet.
const UNCONVERTED: &str = "SELECT count(*) FROM queue_tickets q WHERE q.event_id = $1 \
       AND q.status = 'admitted' AND q.admitted_at > now() - make_interval(secs => $2) \
       AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.event_id = q.event_id AND h.user_id = q.user_id)";
const ADMIT: &str = "UPDATE queue_tickets SET status = 'admitted', admitted_at = now() \
     WHERE id IN (SELECT id FROM queue_tickets WHERE event_id = $1 AND status = 'waiting' \
                  ORDER BY sort_key LIMIT $2 FOR UPDATE SKIP LOCKED) \
     RETURNING id, user_id, admitted_at";
const WAITING_IN_ORDER: &str = "SELECT id, user_id FROM queue_tickets \
     WHERE event_id = $1 AND status = 'waiting' ORDER BY sort_key";

/// Records of notifications are packed up to this size (well below a fetch).
const RECORD_BYTES: usize = 128 * 1024;

pub struct Admission {
    pub pool: PgPool,
    pub redis: Option<ConnectionManager>,
    pub producer: FutureProducer,
    pub commands_topic: String,
    pub seat_events_topic: String,
    pub settings: WaitingRoomSettings,
}

/// What one tick decided for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub rate: f64,
    pub admitted: usize,
    pub lag: Option<i64>,
    pub p99_ms: Option<f64>,
}

/// The controller: the next rate from this tick's health.
pub fn next_rate(
    settings: &WaitingRoomSettings,
    rate: f64,
    lag: Option<i64>,
    p99_ms: Option<f64>,
) -> f64 {
    let behind = lag.is_some_and(|l| l > settings.target_lag)
        || p99_ms.is_some_and(|p| p > settings.target_decision_p99_ms);
    let next = if behind {
        rate * settings.backoff
    } else {
        rate + settings.rate_step
    };
    next.clamp(settings.min_rate, settings.max_rate.max(settings.min_rate))
}

impl Admission {
    pub async fn run(self, shutdown: Shutdown) {
        let self_ = Arc::new(self);
        let tick = Duration::from_millis(self_.settings.tick_ms.max(50));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Position pushes run beside the ticks, one at a time per event: with 100,000
        // waiting a push takes seconds, and inline it held admission ticks back by as much
        // (seen by `bench waitroom`: batch gaps of up to 11.6 s instead of 1 s).
        let mut pushes: HashMap<EventId, (Instant, tokio::task::JoinHandle<()>)> = HashMap::new();
        let mut gauges = crate::waiting_room_gauges::WaitingRoomGauges::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let events: Vec<(EventId, i32)> =
                match sqlx::query_as(EVENTS_WAITING).fetch_all(&self_.pool).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list waiting rooms");
                        continue;
                    }
                };
            let listed: HashSet<EventId> = events.iter().map(|(id, _)| *id).collect();
            for (event_id, partition) in events {
                let ticked = self_.tick(event_id, partition, tick).await;
                if let Ok(Some(t)) = &ticked {
                    gauges.ticked(partition, t);
                }
                match ticked {
                    Ok(Some(t)) if t.admitted > 0 => tracing::info!(
                        %event_id, admitted = t.admitted, rate = t.rate, lag = ?t.lag,
                        p99_ms = ?t.p99_ms, "admitted from the waiting room"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(%event_id, error = %e, "admission tick failed"),
                }
                let every = Duration::from_secs(self_.settings.position_update_secs.max(1));
                let due = pushes
                    .get(&event_id)
                    .is_none_or(|(at, push)| push.is_finished() && at.elapsed() >= every);
                if due {
                    let admission = Arc::clone(&self_);
                    let push = tokio::spawn(async move {
                        if let Err(e) = admission.tell_positions(event_id).await {
                            tracing::warn!(%event_id, error = %e, "queue positions not sent");
                        }
                    });
                    pushes.insert(event_id, (Instant::now(), push));
                }
            }
            // Forget events whose line has emptied, once their last push is done.
            pushes.retain(|id, (_, push)| listed.contains(id) || !push.is_finished());
            gauges.publish(&self_.pool).await;
        }
    }

    /// One admission step for one event (None: another scheduler has it this tick).
    pub async fn tick(
        &self,
        event_id: EventId,
        partition: i32,
        tick: Duration,
    ) -> Result<Option<Tick>, sqlx::Error> {
        let lag = self.lag(partition).await;
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar(LOCK_EVENT)
            .bind(event_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let (rate, carry): (f64, f64) = sqlx::query_as(CONTROL)
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or((self.settings.initial_rate, 0.0));
        let p99_ms: Option<f64> = sqlx::query_scalar(DECISION_P99_MS)
            .bind(event_id)
            .bind(self.settings.latency_window_secs.max(1) as f64)
            .fetch_one(&mut *tx)
            .await?;
        let rate = next_rate(&self.settings, rate, lag, p99_ms);
        let quota = rate * tick.as_secs_f64() + carry;
        let mut admit = quota.floor().max(0.0) as i64;
        if self.settings.max_unconverted > 0 {
            let window = self.settings.admission_ttl_secs.max(1) as f64;
            let unconverted: i64 = sqlx::query_scalar(UNCONVERTED)
                .bind(event_id)
                .bind(window)
                .fetch_one(&mut *tx)
                .await?;
            admit = admit.min((self.settings.max_unconverted - unconverted).max(0));
        }
        let admitted: Vec<(Uuid, UserId, DateTime<Utc>)> = if admit > 0 {
            sqlx::query_as(ADMIT)
                .bind(event_id)
                .bind(admit)
                .fetch_all(&mut *tx)
                .await?
        } else {
            Vec::new()
        };
        // Unused quota carries over, at most one second's worth (no bursts after a lull).
        let carry = (quota - admitted.len() as f64).clamp(0.0, rate);
        save_control(
            &mut tx,
            event_id,
            rate,
            carry,
            admitted.len() as i64,
            lag,
            p99_ms,
        )
        .await?;
        tx.commit().await?;
        if !admitted.is_empty() {
            self.announce_admitted(event_id, &admitted).await;
        }
        Ok(Some(Tick {
            rate,
            admitted: admitted.len(),
            lag,
            p99_ms,
        }))
    }

    /// Commands of the partition not yet applied (None if the broker cannot say).
    async fn lag(&self, partition: i32) -> Option<i64> {
        let producer = self.producer.clone();
        let topic = self.commands_topic.clone();
        let high = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_watermarks(&topic, partition, Duration::from_secs(2))
                .map(|(_, high)| high)
        })
        .await
        .ok()?
        .ok()?;
        let applied: Option<i64> = sqlx::query_scalar(APPLIED_OFFSET)
            .bind(&self.commands_topic)
            .bind(partition)
            .fetch_optional(&self.pool)
            .await
            .ok()?;
        Some((high - applied.unwrap_or(0)).max(0))
    }

    async fn announce_admitted(
        &self,
        event_id: EventId,
        admitted: &[(Uuid, UserId, DateTime<Utc>)],
    ) {
        if let Some(redis) = &self.redis {
            let tickets: Vec<Uuid> = admitted.iter().map(|a| a.0).collect();
            if let Err(e) = waiting_room::remove(&mut redis.clone(), event_id, &tickets).await {
                tracing::warn!(%event_id, error = %e, "admitted tickets still in the Redis line");
            }
        }
        let ttl = chrono::Duration::seconds(self.settings.admission_ttl_secs.max(1));
        let notices = admitted
            .iter()
            .map(|(ticket, user_id, at)| SeatEvent::Admitted {
                user_id: user_id.clone(),
                ticket: *ticket,
                expires_at: *at + ttl,
            });
        self.publish(event_id, notices.collect()).await;
    }

    /// Tell everyone waiting for `event_id` their position and estimated wait; and make sure
    /// the Redis line agrees with PostgreSQL.
    pub async fn tell_positions(&self, event_id: EventId) -> Result<(), sqlx::Error> {
        if let Some(redis) = &self.redis {
            if let Err(e) = waiting_room::reconcile(&self.pool, &mut redis.clone(), event_id).await
            {
                tracing::warn!(%event_id, error = %e, "waiting line not reconciled");
            }
        }
        let waiting: Vec<(Uuid, UserId)> = sqlx::query_as(WAITING_IN_ORDER)
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?;
        let rate: f64 = sqlx::query_as::<_, (f64, f64)>(CONTROL)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|(rate, _carry)| rate)
            .unwrap_or(self.settings.initial_rate)
            .max(0.1);
        let notices = waiting
            .into_iter()
            .enumerate()
            .map(|(i, (ticket, user_id))| SeatEvent::QueuePosition {
                user_id,
                ticket,
                position: i as i64 + 1,
                eta_secs: Some(((i as f64 + 1.0) / rate).ceil() as i64),
            });
        self.publish(event_id, notices.collect()).await;
        Ok(())
    }

    /// Publish user notifications of one event, packed into records.
    async fn publish(&self, event_id: EventId, notices: Vec<SeatEvent>) {
        if notices.is_empty() {
            return;
        }
        let now = Utc::now();
        let messages: Vec<Vec<u8>> = notices
            .into_iter()
            .filter_map(|payload| {
                serde_json::to_vec(&SeatEventEnvelope {
                    event_id,
                    occurred_at: now,
                    payload,
                })
                .ok()
            })
            .collect();
        let key = event_id.to_string();
        for chunk in record::split(&messages, RECORD_BYTES) {
            let payload = record::pack(chunk);
            if let Err(e) = seatq_common::kafka::send(
                &self.producer,
                &self.seat_events_topic,
                None,
                &key,
                &payload,
            )
            .await
            {
                // Notifications, not state: the ticket's GET shows the same.
                tracing::warn!(%event_id, error = %e, "waiting-room notifications not published");
                return;
            }
        }
    }
}

async fn save_control(
    tx: &mut Transaction<'_, Postgres>,
    event_id: EventId,
    rate: f64,
    carry: f64,
    admitted: i64,
    lag: Option<i64>,
    p99_ms: Option<f64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(SAVE_CONTROL)
        .bind(event_id)
        .bind(rate)
        .bind(carry)
        .bind(admitted)
        .bind(lag)
        .bind(p99_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WaitingRoomSettings {
        WaitingRoomSettings {
            default_min_capacity: 10_000,
            default_pow_difficulty: 16,
            secret: "s".into(),
            admission_ttl_secs: 1800,
            challenge_ttl_secs: 300,
            tick_ms: 1000,
            initial_rate: 50.0,
            min_rate: 5.0,
            max_rate: 1000.0,
            rate_step: 50.0,
            backoff: 0.5,
            target_lag: 5000,
            target_decision_p99_ms: 1000.0,
            latency_window_secs: 10,
            max_unconverted: 0,
            position_update_secs: 10,
        }
    }

    #[test]
    fn healthy_ticks_ramp_up_and_a_backlog_halves_the_rate() {
        let s = settings();
        assert_eq!(next_rate(&s, 50.0, Some(0), Some(100.0)), 100.0);
        assert_eq!(
            next_rate(&s, 100.0, None, None),
            150.0,
            "no signal: keep ramping"
        );
        assert_eq!(next_rate(&s, 400.0, Some(6000), Some(100.0)), 200.0, "lag");
        assert_eq!(
            next_rate(&s, 400.0, Some(10), Some(1500.0)),
            200.0,
            "latency"
        );
        assert_eq!(
            next_rate(&s, 6.0, Some(9999), None),
            5.0,
            "never below the floor"
        );
        assert_eq!(
            next_rate(&s, 990.0, Some(0), None),
            1000.0,
            "never above the ceiling"
        );
    }
}
