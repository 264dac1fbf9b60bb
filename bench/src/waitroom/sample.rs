//! Every second while the run lasts: the admission controller's state (its row in
//! `admission_control`: the rate it chose, admitted so far, the lag and decision p99 it
//! last read), the consumer's lag on the event's partition (broker log end − applied
//! offset), what the users have done so far, and a CPU snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::results::round;
use crate::stack::Stack;
use crate::waitroom::cpu::{Cpu, Snapshot};
use crate::waitroom::crowd::Crowd;

const EVERY: Duration = Duration::from_secs(1);

const CONTROL: &str = "SELECT rate, admitted_total, last_lag, last_p99_ms \
     FROM admission_control WHERE event_id = $1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the sale opened (negative before).
    pub t: f64,
    /// The controller's rate (admissions/s), once it ran for this event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_total: Option<i64>,
    /// The consumer lag and decision p99 the controller last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_lag: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_p99_ms: Option<f64>,
    /// Broker log end − the consumer's applied offset, read by the bench.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    pub joined: u64,
    pub admitted_seen: u64,
    pub holds_sent: u64,
    pub holds_accepted: u64,
    /// Buyers told of their admission and not done (thinking, or waiting for a slot).
    pub buyers_pending: u64,
    #[serde(skip)]
    pub cpu: Option<Snapshot>,
}

/// Sample until `done`.
pub async fn run(
    stack: Stack,
    crowd: Arc<Crowd>,
    event: Uuid,
    partition: i32,
    sale: DateTime<Utc>,
    cpu: Cpu,
    done: Arc<AtomicBool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !done.load(Ordering::Relaxed) {
        interval.tick().await;
        let snapshot = cpu.snapshot();
        let t = (Utc::now() - sale).num_microseconds().unwrap_or(0) as f64 / 1e6;
        let control: Option<(f64, i64, Option<i64>, Option<f64>)> = sqlx::query_as(CONTROL)
            .bind(event)
            .fetch_optional(&stack.pool)
            .await
            .ok()
            .flatten();
        let consumer_lag = match (
            stack.log_end(partition).await,
            stack.applied(partition).await,
        ) {
            (Ok(end), Ok(applied)) => Some((end - applied).max(0)),
            _ => None,
        };
        let c = &crowd.counters;
        samples.push(Sample {
            t: round(t, 2),
            rate: control.map(|c| round(c.0, 1)),
            admitted_total: control.map(|c| c.1),
            control_lag: control.and_then(|c| c.2),
            control_p99_ms: control.and_then(|c| c.3).map(|p| round(p, 1)),
            consumer_lag,
            joined: c.joined.load(Ordering::Relaxed),
            admitted_seen: c.admitted_seen.load(Ordering::Relaxed),
            holds_sent: c.holds_sent.load(Ordering::Relaxed),
            holds_accepted: c.holds_accepted.load(Ordering::Relaxed),
            buyers_pending: crowd.buyers_pending(),
            cpu: Some(snapshot),
        });
    }
    samples
}
