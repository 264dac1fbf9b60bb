//! `GET /v1/admin/events/{event_id}/stats`: what an operator watches during an on-sale —
//! seats by status (held back counted apart), live holds, the waiting room (people waiting
//! and admitted, the admission controller's rate and its last readings), the consumer's
//! lag on the event's partition, and decisions per second.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::producer::Producer;
use seatq_common::catalog::EventEntry;
use seatq_common::command::HOLDBACK_USER;
use seatq_common::http::error::AppResult;
use seatq_common::ids::EventId;
use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventStats {
    pub event_id: EventId,
    pub generated_at: DateTime<Utc>,
    pub seats: SeatCounts,
    /// Active holds of buyers (holdbacks apart).
    pub holds_active: i64,
    pub bookings_confirmed: i64,
    pub waiting_room: WaitingRoomStats,
    pub pipeline: PipelineStats,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeatCounts {
    /// Reserved seats and general-admission places together.
    pub capacity: i64,
    pub available: i64,
    /// Held by buyers (waitlist offers included).
    pub held: i64,
    /// Held back by the organiser.
    pub held_back: i64,
    pub sold: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WaitingRoomStats {
    pub enabled: bool,
    pub waiting: i64,
    pub admitted: i64,
    /// Admissions per second the controller last chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_lag: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_decision_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PipelineStats {
    pub partition: i32,
    /// Commands in the partition not applied yet (absent if the broker cannot say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// This event's commands decided per second over the last 10 s.
    pub decisions_per_sec: f64,
}

const SEATS: &str = "SELECT \
       count(*) FILTER (WHERE s.status = 'available'), \
       count(*) FILTER (WHERE s.status = 'held' AND h.user_id <> $2), \
       count(*) FILTER (WHERE s.status = 'held' AND h.user_id = $2), \
       count(*) FILTER (WHERE s.status = 'sold'), \
       count(*) \
     FROM seats s LEFT JOIN holds h ON h.id = s.hold_id WHERE s.event_id = $1";
const PLACES: &str = "SELECT coalesce(sum(capacity), 0)::bigint, coalesce(sum(held), 0)::bigint, \
       coalesce(sum(sold), 0)::bigint FROM ga_inventory WHERE event_id = $1";
const HOLDS_AND_BOOKINGS: &str = "SELECT \
       (SELECT count(*) FROM holds WHERE event_id = $1 AND status = 'active' AND user_id <> $2), \
       (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed')";
const QUEUE: &str = "SELECT count(*) FILTER (WHERE status = 'waiting'), \
       count(*) FILTER (WHERE status = 'admitted') FROM queue_tickets WHERE event_id = $1";
const CONTROL: &str =
    "SELECT rate, last_lag, last_p99_ms FROM admission_control WHERE event_id = $1";
const DECIDED_RECENTLY: &str = "SELECT count(*) FROM requests \
     WHERE event_id = $1 AND decided_at > now() - interval '10 seconds'";
const APPLIED: &str =
    "SELECT next_offset FROM consumer_offsets WHERE topic = $1 AND kafka_partition = $2";

pub async fn stats(state: &AppState, entry: &EventEntry) -> AppResult<EventStats> {
    let id = entry.info.id;
    let pool = &state.pool;
    let (available, held, held_back, sold, seats): (i64, i64, i64, i64, i64) =
        sqlx::query_as(SEATS)
            .bind(id)
            .bind(HOLDBACK_USER)
            .fetch_one(pool)
            .await?;
    let (ga_capacity, ga_held, ga_sold): (i64, i64, i64) =
        sqlx::query_as(PLACES).bind(id).fetch_one(pool).await?;
    let (holds_active, bookings_confirmed): (i64, i64) = sqlx::query_as(HOLDS_AND_BOOKINGS)
        .bind(id)
        .bind(HOLDBACK_USER)
        .fetch_one(pool)
        .await?;
    let (waiting, admitted): (i64, i64) = sqlx::query_as(QUEUE).bind(id).fetch_one(pool).await?;
    let control: Option<(f64, Option<i64>, Option<f64>)> = sqlx::query_as(CONTROL)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let decided: i64 = sqlx::query_scalar(DECIDED_RECENTLY)
        .bind(id)
        .fetch_one(pool)
        .await?;
    let partition = entry.info.kafka_partition;
    Ok(EventStats {
        event_id: id,
        generated_at: Utc::now(),
        seats: SeatCounts {
            capacity: seats + ga_capacity,
            available: available + ga_capacity - ga_held - ga_sold,
            held: held + ga_held,
            held_back,
            sold: sold + ga_sold,
        },
        holds_active,
        bookings_confirmed,
        waiting_room: WaitingRoomStats {
            enabled: entry.info.waiting_room_enabled,
            waiting,
            admitted,
            admission_rate: control.map(|c| c.0),
            last_lag: control.and_then(|c| c.1),
            last_decision_p99_ms: control.and_then(|c| c.2),
        },
        pipeline: PipelineStats {
            partition,
            consumer_lag: consumer_lag(state, partition).await,
            decisions_per_sec: decided as f64 / 10.0,
        },
    })
}

/// The partition's log end (from the broker) minus the consumer's applied offset.
async fn consumer_lag(state: &AppState, partition: i32) -> Option<i64> {
    let topic = seatq_common::topics::Topics::new(&state.settings.kafka.topic_prefix).commands;
    let (producer, t) = (state.producer.clone(), topic.clone());
    let high = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_watermarks(&t, partition, Duration::from_secs(2))
            .map(|(_, high)| high)
    })
    .await
    .ok()?
    .ok()?;
    let applied: Option<i64> = sqlx::query_scalar(APPLIED)
        .bind(&topic)
        .bind(partition)
        .fetch_optional(&state.pool)
        .await
        .ok()?;
    Some((high - applied.unwrap_or(0)).max(0))
}
