//! What `bench waitroom` records (`waitroom` in the result files).

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pipeline::invariants::Invariants;
use crate::results::round;
use crate::waitroom::cpu::PhaseCpu;
use crate::waitroom::measure::{DecidedIn, OrderChecks, QueueWait};
use crate::waitroom::pow::PowBench;
use crate::waitroom::sample::Sample;

/// p50, p90, p99 and max of a client-side histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Millis {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Millis {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| round(us as f64 / 1_000.0, 3);
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The scheduler's waiting-room settings during the run (its configuration file, its
/// `SEATQ_WAITING_ROOM__*` environment).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Controller {
    pub tick_ms: u64,
    pub initial_rate: f64,
    pub min_rate: f64,
    pub max_rate: f64,
    pub rate_step: f64,
    pub backoff: f64,
    pub target_lag: i64,
    pub target_decision_p99_ms: f64,
    pub latency_window_secs: i64,
    pub max_unconverted: i64,
    pub position_update_secs: u64,
    pub admission_ttl_secs: i64,
    /// `SEATQ_WAITING_ROOM__*` variables the running scheduler was started with.
    pub scheduler_overrides: Vec<String>,
}

impl From<&seatq_common::config::WaitingRoomSettings> for Controller {
    fn from(s: &seatq_common::config::WaitingRoomSettings) -> Self {
        Self {
            tick_ms: s.tick_ms,
            initial_rate: s.initial_rate,
            min_rate: s.min_rate,
            max_rate: s.max_rate,
            rate_step: s.rate_step,
            backoff: s.backoff,
            target_lag: s.target_lag,
            target_decision_p99_ms: s.target_decision_p99_ms,
            latency_window_secs: s.latency_window_secs,
            max_unconverted: s.max_unconverted,
            position_update_secs: s.position_update_secs,
            admission_ttl_secs: s.admission_ttl_secs,
            scheduler_overrides: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joins {
    /// `201`: a new ticket.
    pub joined: u64,
    /// `200`: the user's ticket already (none expected: everyone joins once).
    pub joined_again: u64,
    /// Answered with a provisional (lottery) place: the pre-sale joins.
    pub provisional: u64,
    pub errors: u64,
    /// In the database: joined before / after the sale opened.
    pub before_sale: u64,
    pub after_sale: u64,
    /// First join → last join (the gateway's `joined_at`), and the pause at on-sale
    /// between the two bursts when the first ended early.
    pub span_s: f64,
    /// Accepted joins per second while the bursts lasted (first join → last join, minus
    /// the pause between them).
    pub per_s: f64,
    /// Of the pre-sale burst alone.
    pub presale_per_s: f64,
    /// The round trip of each answered join.
    pub latency: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admission {
    pub admitted: u64,
    /// Still waiting when admissions stopped (removed then).
    pub waiting_at_stop: u64,
    pub waiting_presale_at_stop: u64,
    /// Sale opening → first admission batch, s.
    pub first_after_sale_s: Option<f64>,
    /// Sale opening → last admission batch, s.
    pub last_after_sale_s: Option<f64>,
    /// Admitted per second from the sale opening to the last batch.
    pub per_s: f64,
    /// The best 10 s (admitted / 10).
    pub peak_10s_per_s: f64,
    /// Admission batches (ticks that let someone in) and the gaps between them.
    pub batches: u64,
    pub batch_gap: Millis,
    pub largest_batch: u64,
    /// The highest rate the controller chose, and how often it cut the rate (samples in
    /// which it was lower than the second before).
    pub max_rate_seen: f64,
    pub rate_cuts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Polls {
    pub pollers: usize,
    pub polls: u64,
    pub errors: u64,
    pub latency: Millis,
    /// Pollers who saw their own admission before the watcher did.
    pub saw_admission: u64,
    /// `admitted_at` → seen: by a polling user, and by the watcher (the user stream's
    /// stand-in, every 250 ms).
    pub admitted_to_polled: Millis,
    pub admitted_to_watched: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holds {
    /// Admitted users told of it (each buys once).
    pub buyers: u64,
    pub sent: u64,
    pub accepted: u64,
    /// Refused by the gateway, by `status code`.
    pub refused: Vec<(String, u64)>,
    pub errors: u64,
    /// Reading the ticket for the token, and the hold request's `202`.
    pub token_latency: Millis,
    pub accept_latency: Millis,
    /// Buyers who had not finished when the bench stopped waiting for them.
    pub unfinished: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decisions {
    pub decided: u64,
    pub held: u64,
    pub undecided: u64,
    /// By outcome: `held` or `rejected: reason`.
    pub outcomes: Vec<(String, i64)>,
    /// Request (`issued_at`, gateway) → decision (`decided_at`, consumer), ms.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub per_s: f64,
    pub target_p99_ms: f64,
    /// Seconds (of `decided_at`) whose decisions' p99 was over the target, of seconds
    /// with decisions; and the worst 10 s p99.
    pub seconds_over_target: u64,
    pub seconds_with_decisions: u64,
    pub worst_10s_p99_ms: f64,
}

/// The waiting room's own invariants (the pipeline's are in `invariants`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct WaitroomInvariants {
    pub admitted_before_sale: u64,
    pub holds_without_admission: u64,
    /// Joins answered `201` without a ticket in the database, or tickets nobody got
    /// (beyond the joins that failed at the client: their ticket may exist).
    pub tickets_mismatch: u64,
    /// Hold requests of admitted users refused `403` (their token must be good).
    pub admitted_refused: u64,
}

impl WaitroomInvariants {
    pub fn violations(&self) -> u64 {
        self.admitted_before_sale
            + self.holds_without_admission
            + self.tickets_mismatch
            + self.admitted_refused
    }
}

/// A request the gateway must refuse, and what it answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateCheck {
    pub what: String,
    pub expected: String,
    pub got: String,
}

/// Ten seconds of the run: what the controller did and what the pipeline showed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// Start, seconds since the sale opened.
    pub t: i32,
    pub admitted_per_s: f64,
    /// The controller's rate and readings at the end of the bucket.
    pub rate: Option<f64>,
    pub control_lag: Option<i64>,
    pub control_p99_ms: Option<f64>,
    pub consumer_lag: Option<i64>,
    /// Hold requests accepted per second (bench), decided per second and their p99.
    pub holds_per_s: f64,
    pub decided_per_s: f64,
    pub decision_p99_ms: Option<f64>,
    pub buyers_pending: u64,
    pub joined: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitroomResult {
    /// Organisers watching the control room through the on-sale, and its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_room: Option<super::watchers::ControlRoomLoad>,
    pub event_id: Uuid,
    pub seats: i32,
    pub users: u32,
    pub presale_users: u32,
    pub on_sale_at: DateTime<Utc>,
    pub presale_secs: f64,
    pub max_secs: f64,
    pub join_concurrency: usize,
    pub source_ips: usize,
    pub poll_ms: u64,
    pub think_ms: u64,
    pub buyers_in_flight: usize,
    pub controller: Controller,
    pub joins: Joins,
    pub admission: Admission,
    pub polls: Polls,
    pub holds: Holds,
    pub decisions: Decisions,
    pub queue_wait: QueueWait,
    pub order: OrderChecks,
    pub invariants: Invariants,
    pub waitroom_invariants: WaitroomInvariants,
    pub gate: Vec<GateCheck>,
    /// 429s and 503s waited out and sent again (all requests).
    pub rate_limited: u64,
    pub unavailable: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub pow: PowBench,
    pub cpu: Vec<PhaseCpu>,
    pub trajectory: Vec<Bucket>,
    pub decided_per_second: Vec<DecidedIn>,
    pub samples: Vec<Sample>,
    /// Why admissions stopped, and when (s after the sale opened).
    pub stop_reason: String,
    pub stopped_after_s: f64,
    /// Seats held at the end of the run.
    pub seats_taken: u64,
    pub problems: Vec<String>,
    pub wall_s: f64,
}
