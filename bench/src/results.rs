//! The numbers recorded for each design, as they appear in `results/*.json`.
//!
//! Kept apart from the scenarios so every design reports the same timing fields the same
//! way, and the report code needs nothing from the scenarios but these plain structs.

use serde::{Deserialize, Serialize};

use crate::pipeline::invariants::Invariants;
use crate::runner::RunOutcome;

/// Throughput and latency of one run (latency includes retries and errors: the user
/// waited for them too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    pub decisions_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub wall_s: f64,
    /// Attempts answered "held".
    pub held_attempts: u64,
    /// Attempts answered "not available".
    pub rejected: u64,
    /// Attempts that failed (database or Redis error after retries).
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// `x` rounded to `places` decimals (results keep what is meaningful).
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// A duration in milliseconds, to the microsecond.
pub fn millis(d: std::time::Duration) -> f64 {
    round(d.as_secs_f64() * 1_000.0, 3)
}

impl From<&RunOutcome> for Timing {
    fn from(o: &RunOutcome) -> Self {
        Self {
            decisions_per_s: round(o.decisions_per_s(), 1),
            p50_ms: round(o.quantile_ms(0.50), 3),
            p95_ms: round(o.quantile_ms(0.95), 3),
            p99_ms: round(o.quantile_ms(0.99), 3),
            max_ms: round(o.latency_us.max() as f64 / 1_000.0, 3),
            wall_s: round(o.wall.as_secs_f64(), 3),
            held_attempts: o.held_attempts,
            rejected: o.rejected,
            errors: o.errors,
            first_error: o.first_error.clone(),
        }
    }
}

/// A design whose table of record is the `seats` table: (a) and (b).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatsTableResult {
    #[serde(flatten)]
    pub timing: Timing,
    /// Seats with status 'held' at the end.
    pub held: u64,
    /// Seats promised twice, promised but not held by that user, or in two hold rows.
    pub oversold: u64,
    /// Seats held in the table that no client was told about (errors after commit).
    pub held_unpromised: u64,
    /// Seats listed in `holds` rows (design (b) only writes them).
    pub hold_row_seats: u64,
}

/// A Redis crash in the middle of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisRestart {
    /// Attempts answered when Redis was killed.
    pub after_attempts: u64,
    /// From SIGKILL until the new, empty server accepted connections.
    pub outage_ms: f64,
}

/// Design (c): Redis decides, PostgreSQL is written behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisFirstResult {
    #[serde(flatten)]
    pub timing: Timing,
    /// Seats the script confirmed to users.
    pub held: u64,
    /// Confirmed seats that PostgreSQL records for a different user: sold twice.
    pub double_promised_after_redis_restart: u64,
    /// Writer inserts that hit the unique seat (any holder, so >= the line above).
    pub writer_conflicts: u64,
    /// Rows in `seat_claims` at the end.
    pub pg_claims: u64,
    /// Confirmed seats with no row in PostgreSQL at the end (writer lost them).
    pub promises_without_claim: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_restart: Option<RedisRestart>,
    /// Scripts re-sent by clients while Redis was unreachable.
    pub resent_scripts: u64,
    pub writer_batches: u64,
    /// Most promises waiting to be written to PostgreSQL at once.
    pub writer_max_backlog: usize,
    /// From the last attempt answered until PostgreSQL had every promise.
    pub writer_drain_ms: f64,
}

/// The accept side of a storm over HTTP: how fast and how soon the gateway said `202`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptTiming {
    pub accepted: u64,
    pub accepted_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub wall_s: f64,
    /// `503 broker_unavailable` answers the clients waited out and sent again.
    pub broker_retries: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl AcceptTiming {
    pub fn new(o: &RunOutcome, broker_retries: u64) -> Self {
        let accepted = o.accepted.len() as u64;
        Self {
            accepted,
            accepted_per_s: round(accepted as f64 / o.wall.as_secs_f64().max(1e-9), 1),
            p50_ms: round(o.quantile_ms(0.50), 3),
            p95_ms: round(o.quantile_ms(0.95), 3),
            p99_ms: round(o.quantile_ms(0.99), 3),
            max_ms: round(o.latency_us.max() as f64 / 1_000.0, 3),
            wall_s: round(o.wall.as_secs_f64(), 3),
            broker_retries,
            errors: o.errors,
            first_error: o.first_error.clone(),
        }
    }
}

/// The decision side: request (gateway `issued_at`) to decision (consumer `decided_at`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionTiming {
    pub decided: u64,
    /// Requests decided `held` (the rest were rejected).
    pub held: u64,
    pub decisions_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the last `202` until the consumer had applied everything.
    pub settle_ms: f64,
    /// False if the wait gave up (no progress for the stall timeout).
    pub caught_up: bool,
}

impl DecisionTiming {
    pub fn new(
        s: &crate::pipeline::decisions::DecisionStats,
        settle: std::time::Duration,
        caught_up: bool,
    ) -> Self {
        Self {
            decided: s.decided,
            held: s.held,
            decisions_per_s: s.decisions_per_s(),
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
            max_ms: s.max_ms,
            settle_ms: millis(settle),
            caught_up,
        }
    }
}

/// One storm through the pipeline, settled and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRun {
    pub event_id: uuid::Uuid,
    pub accept: AcceptTiming,
    pub decisions: DecisionTiming,
    pub invariants: Invariants,
}

/// The flash sale through seatq, closed loop like the naive designs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineResult {
    pub accepted_per_s: f64,
    pub decisions_per_s: f64,
    pub accept_p99_ms: f64,
    pub decision_p50_ms: f64,
    pub decision_p95_ms: f64,
    pub decision_p99_ms: f64,
    #[serde(flatten)]
    pub run: PipelineRun,
    /// The control room's answers on the storm's event: seat stories, receipts, demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_story: Option<crate::pipeline::seat_story::SeatStoryTiming>,
}

impl From<PipelineRun> for PipelineResult {
    fn from(run: PipelineRun) -> Self {
        Self {
            seat_story: None,
            accepted_per_s: run.accept.accepted_per_s,
            decisions_per_s: run.decisions.decisions_per_s,
            accept_p99_ms: run.accept.p99_ms,
            decision_p50_ms: run.decisions.p50_ms,
            decision_p95_ms: run.decisions.p95_ms,
            decision_p99_ms: run.decisions.p99_ms,
            run,
        }
    }
}

/// Open loop at a fixed arrival rate (half the closed loop's decisions/s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HalfLoadResult {
    pub target_per_s: f64,
    /// Attempts answered per second over the run (below the target when the system
    /// could not keep up: each latency then includes the wait since it was due).
    pub completed_per_s: f64,
    pub accept_p99_ms: f64,
    pub decision_p50_ms: f64,
    pub decision_p95_ms: f64,
    pub decision_p99_ms: f64,
    pub connections: usize,
    #[serde(flatten)]
    pub run: PipelineRun,
}

/// One kill -9 during the crash run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashStep {
    pub service: String,
    /// Attempts answered when it was killed.
    pub after_attempts: u64,
    /// From SIGKILL until the restarted service was up again.
    pub down_ms: f64,
}

/// The storm with kill -9 of the consumer and then of the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashResult {
    pub crashes: Vec<CrashStep>,
    /// Accepted (202) requests that were never decided.
    pub lost_accepted: u64,
    #[serde(flatten)]
    pub run: PipelineRun,
}

/// The consumer alone, draining a topic the gateway filled while it was stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainResult {
    pub decided: u64,
    pub undecided: u64,
    /// Decisions/s from the end of the first batch to the end of the last.
    pub decisions_per_s: f64,
    /// From starting the consumer process to the last decision (startup included).
    pub from_start_s: f64,
}

/// A plain Kafka client on a scratch topic, with the gateway's command payloads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerResult {
    pub topic: String,
    pub records: u64,
    pub commands: u64,
    /// Commands per record (`seatq_common::record::pack`).
    pub pack: usize,
    /// The records' request-id headers (`--headers`; not recorded before the option).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<crate::cli::Headers>,
    /// Payload and header value bytes.
    pub bytes: u64,
    pub produce_s: f64,
    pub produce_records_per_s: f64,
    pub produce_commands_per_s: f64,
    pub fetch_s: f64,
    pub fetched_records: u64,
    pub fetch_records_per_s: f64,
    pub fetch_commands_per_s: f64,
}

/// Each stage on its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stages {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_accept_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_drain_per_s: Option<f64>,
    /// Commands per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_produce_per_s: Option<f64>,
    /// Commands per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_fetch_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_accept: Option<AcceptTiming>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_drain: Option<DrainResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerResult>,
}

/// The value at index `i` of a `percentile_disc(ARRAY[...])` result, 0 when there was
/// nothing to measure (SQL gives NULL for an empty set), rounded to the microsecond.
pub fn nth_quantile(quantiles: Option<&[f64]>, i: usize) -> f64 {
    round(quantiles.and_then(|q| q.get(i).copied()).unwrap_or(0.0), 3)
}

/// A latency measured in SQL over many rows: how many, median, 99th percentile, worst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From `count(ms), percentile_disc(ARRAY[0.5, 0.99]) ..., max(ms)`.
    pub fn from_sql(count: i64, quantiles: Option<&[f64]>, max: Option<f64>) -> Self {
        Self {
            count: count.max(0) as u64,
            p50_ms: nth_quantile(quantiles, 0),
            p99_ms: nth_quantile(quantiles, 1),
            max_ms: round(max.unwrap_or(0.0), 3),
        }
    }
}

/// Request (`issued_at`) to decision (`decided_at`) of one kind of command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandLatency {
    pub kind: String,
    #[serde(flatten)]
    pub latency: Latency,
}

/// What the lifecycle left in the database (columns of the same names).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, sqlx::FromRow)]
pub struct LifecycleCounts {
    /// Confirmed bookings, and their tickets.
    #[sqlx(try_from = "i64")]
    pub bookings: u64,
    #[sqlx(try_from = "i64")]
    pub tickets: u64,
    #[sqlx(try_from = "i64")]
    pub expired: u64,
    #[sqlx(try_from = "i64")]
    pub refunds: u64,
    /// Holds created by waitlist hand-offs, and their seats.
    #[sqlx(try_from = "i64")]
    pub offers: u64,
    #[sqlx(try_from = "i64")]
    pub offered_seats: u64,
    /// Waitlist entries passed over at a hand-off.
    #[sqlx(try_from = "i64")]
    pub skipped: u64,
}

/// The hold lifecycle's invariants, in SQL on the scenario's event (all 0 when right).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LifecycleInvariants {
    /// A seat in two live holds, or the seats table and the live holds disagreeing.
    pub oversold: u64,
    /// Seats held by a hold that is not active, or sold by one that is not sold.
    pub non_live_holder: u64,
    /// |sold + held + available − capacity| plus any difference between the seats
    /// table's sold / held counts and the seats of sold / active holds.
    pub capacity_mismatch: u64,
    pub sold_seats: u64,
    pub held_seats: u64,
    pub available_seats: u64,
    pub capacity: u64,
    /// Holds sold or paid (payment kept) without exactly one confirmed booking, holds
    /// not sold with a booking, and paid payments with both or neither of a booking
    /// and a refund.
    pub paid_not_one_booking: u64,
    /// Bookings whose tickets are not one per seat of the hold.
    pub ticket_mismatches: u64,
    /// Holds still active although `expires_at + grace_secs` has passed.
    pub overdue_active: u64,
    /// Holds that expired, but later than `expires_at + grace_secs`.
    pub ended_late: u64,
    /// The sweeper's promise: its grace plus one sweep interval.
    pub grace_secs: i64,
    /// Waitlist offers made to someone other than the first eligible waiting user (an
    /// earlier entry passed over, or skipped while under the per-user limit), or offers
    /// whose hold does not match the entry.
    pub offers_not_first: u64,
    /// Seats released while someone was waiting for them, with no offer made.
    pub offers_missed: u64,
}

impl LifecycleInvariants {
    /// Every count that must be 0.
    pub fn violations(&self) -> u64 {
        self.oversold
            + self.non_live_holder
            + self.capacity_mismatch
            + self.paid_not_one_booking
            + self.ticket_mismatches
            + self.overdue_active
            + self.ended_late
            + self.offers_not_first
            + self.offers_missed
    }
}

/// The full hold lifecycle on a fresh event: holds, payments through the sandbox provider,
/// expiry through the scheduler, waitlist offers, bookings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleResult {
    pub event_id: uuid::Uuid,
    pub seats: i32,
    pub hold_ttl_secs: i32,
    pub max_seats_per_user: i32,
    pub offer_ttl_secs: i64,
    /// Simulated users (holders and waiting users).
    pub users: u32,
    /// Two-seat holds granted / refused.
    pub holds: u64,
    pub holds_rejected: u64,
    /// Holds the plan pays for, and payments completed at the sandbox provider.
    pub paid_planned: u64,
    pub payments_completed: u64,
    /// Holds the plan leaves to expire.
    pub expiring_planned: u64,
    /// Waitlist joins accepted; of them, by users at the per-user seat limit (they must
    /// be passed over when the seat is released).
    pub waitlist_joins: u64,
    pub joins_at_limit: u64,
    #[serde(flatten)]
    pub counts: LifecycleCounts,
    /// Seats with at least one eligible waiting user in the plan.
    pub expected_offered_seats: u64,
    /// Waiting users at the seat limit in the plan: each must be skipped once.
    pub expected_skipped: u64,
    /// Old hold `ended_at` to the offer hold's `created_at`.
    pub release_to_offer: Latency,
    /// Old hold `expires_at` to the offer hold's `created_at`: what the waiting user sees.
    pub due_to_offer: Latency,
    /// `ended_at - expires_at` of the expired holds.
    pub expiry_lateness: Latency,
    /// First `payment.succeeded` webhook received to the booking's `created_at`.
    pub payment_to_booking: Latency,
    /// Request to decision per command kind, this event only.
    pub commands: Vec<CommandLatency>,
    /// The users' HTTP part (holds, checkouts, payments, waitlist joins).
    pub users_s: f64,
    /// From the users' last request until every hold had ended and every payment had
    /// its booking.
    pub settle_s: f64,
    /// False if the wait gave up at its deadline.
    pub settled: bool,
    pub wall_s: f64,
    /// `503` answers waited out and sent again.
    pub broker_retries: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub invariants: LifecycleInvariants,
}

/// The notifier process the SSE scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SseNotifier {
    pub bin: String,
    /// When the binary was built (its modification time).
    pub bin_modified: String,
    pub addr: String,
    pub log: String,
    /// `RLIMIT_NOFILE` it ran with (soft, hard).
    pub fd_limit: (u64, u64),
    /// Descriptors open once ready, before any stream.
    pub baseline_fds: usize,
    pub baseline_rss_kb: u64,
    /// From start to `/readyz` (reading back the seat events it keeps).
    pub ready_s: f64,
    pub coalesce_ms: u64,
    pub client_buffer: usize,
    pub socket_send_buffer: usize,
    pub max_clients: usize,
    pub heartbeat_secs: u64,
}

/// Streams asked for beyond what the notifier's descriptor limit allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FdCap {
    pub requested: usize,
    pub capped_to: usize,
    pub fd_limit: u64,
    pub baseline_fds: usize,
    /// Descriptors left free for the stats and readiness requests.
    pub reserve: usize,
}

/// One step of the SSE scenario: streams open, a storm, and what every stream received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsePhase {
    pub streams_target: usize,
    /// Streams open (each got `ready`) during this phase.
    pub streams: usize,
    /// Of those, the ones on HTTP/2 connections, and those connections.
    pub http2_streams: usize,
    pub http2_connections: usize,
    pub opened: usize,
    pub open_failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_open_error: Option<String>,
    pub open_s: f64,
    pub load_avg_1m: f64,
    /// The notifier's VmRSS with the streams open, before the storm, and after it.
    pub notifier_rss_kb: u64,
    pub notifier_rss_kb_after_storm: u64,
    /// (VmRSS with the streams open − VmRSS before any stream) / streams.
    pub notifier_kb_per_stream: f64,
    /// (VmRSS with the streams open − VmRSS after the previous phase's storm) / streams
    /// added in this phase: the cost of one more stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifier_kb_per_added_stream: Option<f64>,
    pub notifier_fds: usize,
    /// Same for the bench's stream-holding workers (all of them together).
    pub client_rss_kb: u64,
    pub client_rss_kb_after_storm: u64,
    pub client_kb_per_stream: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_before: Option<crate::sse::notifier::HubStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_after: Option<crate::sse::notifier::HubStats>,
    /// Streams the notifier dropped as too slow during the phase (`dropped_slow`).
    pub dropped_slow: u64,
    pub storm: crate::sse::storm::StormTally,
    pub storm_s: f64,
    /// Seat changes decided in the phase (holds granted + holds cancelled), from SQL.
    pub seat_changes: u64,
    pub seat_changes_per_s: f64,
    /// `seat_status_changed` deltas of the event published to the seat events.
    pub deltas_published: u64,
    pub published_complete: bool,
    pub timestamp_type: String,
    /// `seat_status_changed` messages received by all streams, and per second between
    /// the first and the last receipt.
    pub messages: u64,
    pub messages_per_s: f64,
    pub messages_per_stream_per_s: f64,
    pub delivered_s: f64,
    pub data_mb_per_s: f64,
    pub seats_per_message: f64,
    pub decided_to_received: crate::sse::measure::Percentiles,
    pub published_to_received: crate::sse::measure::Percentiles,
    pub first_to_each: crate::sse::measure::Percentiles,
    /// Changes (per stream) never received; receipts earlier than their start.
    pub changes_missed: u64,
    pub deltas_missed: u64,
    pub negative_latencies: u64,
    /// Every stream had the last change, and how long after the storm's last answer.
    pub caught_up: bool,
    pub catch_up_ms: f64,
    pub notifier_cpu_s: f64,
    /// Notifier CPU seconds per wall second from the storm's start to catch-up.
    pub notifier_cpu_share: f64,
    /// The same for the bench's stream-holding workers together.
    pub client_cpu_share: f64,
    /// Time between the first receipts of consecutive messages: the notifier's flush
    /// ticks as the fastest stream saw them (`coalesce_ms` when on time).
    pub tick_gap: crate::sse::measure::Percentiles,
    /// The streams' kernel socket queues, sampled every 2 s from the storm to catch-up.
    pub queues: crate::sse::sockets::Queues,
    pub disconnects: u64,
    pub reconnects: u64,
    pub ready_mismatches: u64,
    pub bad_messages: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<String>,
    pub heartbeats: u64,
    pub state: crate::sse::protocol::StateCheck,
}

/// `bench sse`: many SSE streams on one standalone notifier during a storm of changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SseResult {
    pub event_id: uuid::Uuid,
    pub seats: i32,
    pub notifier: SseNotifier,
    pub requested_streams: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_cap: Option<FdCap>,
    /// Streams per HTTP/2 connection in phases past the notifier's descriptors (0: such
    /// phases are capped instead).
    pub http2_streams_per_connection: usize,
    pub workers: usize,
    pub streams_per_worker: usize,
    pub storm_secs: f64,
    pub storm_rate: f64,
    pub actors: usize,
    pub phases: Vec<SsePhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<crate::sse::notifier::Stopped>,
    /// Warnings and errors the notifier logged during the run (count, and the first).
    pub notifier_log_warnings: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_notifier_warning: Option<String>,
    /// What went wrong on the way (the run still reports what it measured).
    pub problems: Vec<String>,
    pub wall_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_from_sql_rounds_and_reads_nothing_as_zero() {
        let l = Latency::from_sql(3, Some(&[1.23456, 99.00049]), Some(120.0004));
        assert_eq!(
            l,
            Latency {
                count: 3,
                p50_ms: 1.235,
                p99_ms: 99.0,
                max_ms: 120.0,
            }
        );
        assert_eq!(Latency::from_sql(0, None, None), Latency::default());
        // A quantile array shorter than asked for (never from our queries).
        assert_eq!(nth_quantile(Some(&[5.0]), 1), 0.0);
    }
}
