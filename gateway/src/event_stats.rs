//! `GET /v1/admin/events/{event_id}/stats`: what an operator watches during an on-sale —
//! the sale's state, seats by status (held back counted apart), live holds, bookings and
//! revenue, refunds pending and failed, the waiting room (people waiting and admitted, the
//! admission controller's rate, its targets and its last readings), the consumers' lag on
//! every partition and how many consumers it calls for, dead letters, decisions per
//! second, and unmet demand per section. The control room pushes the same picture live.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::producer::Producer;
use seatq_common::catalog::EventEntry;
use seatq_common::command::{SaleState, HOLDBACK_USER};
use seatq_common::http::error::AppResult;
use seatq_common::ids::EventId;
use serde::Serialize;

use crate::control_room::SectionDemand;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventStats {
    pub event_id: EventId,
    pub generated_at: DateTime<Utc>,
    pub sale_state: SaleState,
    pub seats: SeatCounts,
    /// Active holds of buyers (holdbacks apart).
    pub holds_active: i64,
    pub bookings_confirmed: i64,
    /// What the confirmed bookings were paid.
    pub revenue_cents: i64,
    pub refunds: RefundCounts,
    pub waiting_room: WaitingRoomStats,
    pub pipeline: PipelineStats,
    /// Hold requests for named seats refused, per section (at most 15 s old).
    pub unmet_demand: Vec<SectionDemand>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundCounts {
    /// Waiting to be sent to the provider, or retrying.
    pub pending: i64,
    /// Given up on after retries: an operator must act (docs/operations.md).
    pub failed: i64,
    pub issued: i64,
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
    /// Admissions so far (the controller's running total: an admission that expired and
    /// queued again counts twice).
    pub admitted: i64,
    /// Admissions per second the controller last chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_lag: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_decision_p99_ms: Option<f64>,
    /// The controller slows admission down when the decision p99 is above this…
    pub target_decision_p99_ms: f64,
    /// …or the commands not yet applied are more than this.
    pub target_lag: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PipelineStats {
    pub partition: i32,
    /// Commands in the partition not applied yet (absent if the broker cannot say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// This event's commands decided per second over the last 10 s.
    pub decisions_per_sec: f64,
    /// Every partition of the commands topic (records not applied yet; absent when the
    /// broker cannot say).
    pub partitions: Vec<PartitionLag>,
    /// Consumers the total lag calls for by KEDA's rule (`seatq-ctl lag` says the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_consumers: Option<u32>,
    /// Commands set aside as dead letters for this event.
    pub dead_letters: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartitionLag {
    pub partition: i32,
    pub lag: i64,
}

// The control room reads these every second during a storm, so none joins per seat: the
// seats held back are the seats of the active holdbacks (one index range), not a join of
// 50,000 seats with their holds (15 ms against 240 ms after a 200,000-user on-sale).
const SEATS: &str = "SELECT \
       count(*) FILTER (WHERE status = 'available'), \
       count(*) FILTER (WHERE status = 'held'), \
       count(*) FILTER (WHERE status = 'sold'), \
       count(*), \
       (SELECT coalesce(sum(quantity), 0)::bigint FROM holds \
          WHERE event_id = $1 AND user_id = $2 AND status = 'active') \
     FROM seats WHERE event_id = $1";
const PLACES: &str = "SELECT coalesce(sum(capacity), 0)::bigint, coalesce(sum(held), 0)::bigint, \
       coalesce(sum(sold), 0)::bigint FROM ga_inventory WHERE event_id = $1";
const HOLDS_AND_BOOKINGS: &str = "SELECT \
       (SELECT count(*) FROM holds WHERE event_id = $1 AND status = 'active' AND user_id <> $2), \
       (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed'), \
       (SELECT coalesce(sum(amount_cents), 0)::bigint FROM bookings \
          WHERE event_id = $1 AND status = 'confirmed'), \
       (SELECT count(*) FROM dead_letters WHERE event_id = $1), \
       (SELECT sale_state FROM events WHERE id = $1)";
const REFUNDS: &str = "SELECT count(*) FILTER (WHERE status = 'pending'), \
       count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'issued') \
     FROM refunds WHERE event_id = $1";
// Waiting tickets through their partial index; admissions from the controller's own
// running total rather than a count over every ticket of the line.
const QUEUE: &str = "SELECT count(*) FROM queue_tickets WHERE event_id = $1 AND status = 'waiting'";
const CONTROL: &str = "SELECT rate, last_lag, last_p99_ms, admitted_total \
     FROM admission_control WHERE event_id = $1";
const DECIDED_RECENTLY: &str = "SELECT count(*) FROM requests \
     WHERE event_id = $1 AND decided_at > now() - interval '10 seconds'";
const APPLIED: &str = "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE topic = $1";

pub async fn stats(state: &AppState, entry: &EventEntry) -> AppResult<EventStats> {
    let id = entry.info.id;
    let pool = &state.pool;
    let (available, held_all, sold, seats, held_back): (i64, i64, i64, i64, i64) =
        sqlx::query_as(SEATS)
            .bind(id)
            .bind(HOLDBACK_USER)
            .fetch_one(pool)
            .await?;
    let (ga_capacity, ga_held, ga_sold): (i64, i64, i64) =
        sqlx::query_as(PLACES).bind(id).fetch_one(pool).await?;
    let (holds_active, bookings_confirmed, revenue_cents, dead_letters, sale_state): (
        i64,
        i64,
        i64,
        i64,
        SaleState,
    ) = sqlx::query_as(HOLDS_AND_BOOKINGS)
        .bind(id)
        .bind(HOLDBACK_USER)
        .fetch_one(pool)
        .await?;
    let (refunds_pending, refunds_failed, refunds_issued): (i64, i64, i64) =
        sqlx::query_as(REFUNDS).bind(id).fetch_one(pool).await?;
    let held = held_all - held_back;
    let waiting: i64 = sqlx::query_scalar(QUEUE).bind(id).fetch_one(pool).await?;
    let control: Option<(f64, Option<i64>, Option<f64>, i64)> = sqlx::query_as(CONTROL)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let decided: i64 = sqlx::query_scalar(DECIDED_RECENTLY)
        .bind(id)
        .fetch_one(pool)
        .await?;
    let partition = entry.info.kafka_partition;
    let partitions = partition_lags(state).await;
    let demand = crate::control_room::demand(state, entry).await?;
    let settings = &state.settings.waiting_room;
    Ok(EventStats {
        event_id: id,
        generated_at: Utc::now(),
        sale_state,
        revenue_cents,
        refunds: RefundCounts {
            pending: refunds_pending,
            failed: refunds_failed,
            issued: refunds_issued,
        },
        unmet_demand: demand.sections.clone(),
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
            admitted: control.map_or(0, |c| c.3),
            admission_rate: control.map(|c| c.0),
            last_lag: control.and_then(|c| c.1),
            last_decision_p99_ms: control.and_then(|c| c.2),
            target_decision_p99_ms: settings.target_decision_p99_ms,
            target_lag: settings.target_lag,
        },
        pipeline: PipelineStats {
            partition,
            consumer_lag: partitions
                .as_ref()
                .and_then(|all| all.iter().find(|p| p.partition == partition))
                .map(|p| p.lag),
            decisions_per_sec: decided as f64 / 10.0,
            suggested_consumers: partitions.as_ref().map(|all| {
                seatq_common::scaling::desired_consumers(
                    all.iter().map(|p| p.lag).sum(),
                    seatq_common::scaling::DEFAULT_LAG_THRESHOLD,
                    all.len(),
                    None,
                )
            }),
            partitions: partitions.unwrap_or_default(),
            dead_letters,
        },
    })
}

/// Every partition's log end and start (from the broker) against the consumers' applied
/// offsets (PostgreSQL); none when the broker cannot say.
async fn partition_lags(state: &AppState) -> Option<Vec<PartitionLag>> {
    let topic = state.topics.commands.clone();
    let (producer, t, count) = (
        state.producer.clone(),
        topic.clone(),
        state.command_partitions,
    );
    let marks = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|p| {
                producer
                    .client()
                    .fetch_watermarks(&t, p, Duration::from_secs(2))
                    .map(|(low, high)| (p, low, high))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .ok()?
    .ok()?;
    let applied: Vec<(i32, i64)> = sqlx::query_as(APPLIED)
        .bind(&topic)
        .fetch_all(&state.pool)
        .await
        .ok()?;
    Some(
        marks
            .into_iter()
            .map(|(partition, low, high)| {
                let stored = applied.iter().find(|a| a.0 == partition).map(|a| a.1);
                PartitionLag {
                    partition,
                    lag: seatq_common::scaling::partition_lag(low, high, stored),
                }
            })
            .collect(),
    )
}
