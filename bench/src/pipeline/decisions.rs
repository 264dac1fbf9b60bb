//! Waiting for the consumer to decide everything a storm queued, and what the decisions
//! say about latency and throughput.
//!
//! Waiting polls one row, not 500,000: the event's commands all go to one partition, the
//! consumer's applied offset for it is in `consumer_offsets`, and once that reaches the
//! log end taken after the last `202`, every accepted command has been applied (decided
//! and committed in the same transaction as the offset). Only then is the decision of
//! every accepted request id looked up, once, so a request that was accepted but never
//! decided is counted as `undecided` rather than trusted away.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::Connection;
use uuid::Uuid;

use crate::error::BenchError;
use crate::results::{nth_quantile, round};
use crate::runner;
use crate::stack::Stack;

const POLL: Duration = Duration::from_millis(200);

/// How the wait for the consumer ended.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    /// From the start of the wait until the consumer reached the log end (or gave up).
    pub waited: Duration,
    /// False when the consumer made no progress for the stall timeout.
    pub caught_up: bool,
}

/// Wait until the consumer has applied `partition` up to its current log end, or has
/// made no progress for `stall`.
pub async fn wait_applied(
    stack: &Stack,
    partition: i32,
    name: &str,
    stall: Duration,
) -> Result<Applied, BenchError> {
    let started = Instant::now();
    let end = stack.log_end(partition).await?;
    let first = stack.applied(partition).await?;
    let bar = runner::progress_bar(name, (end - first).max(0) as u64);
    let (mut last, mut last_move) = (first, Instant::now());
    let caught_up = loop {
        let applied = stack.applied(partition).await?;
        bar.set_position((applied - first).max(0) as u64);
        if applied >= end {
            break true;
        }
        if applied != last {
            (last, last_move) = (applied, Instant::now());
        } else if last_move.elapsed() > stall {
            bar.suspend(|| eprintln!(
                "  {name}: no progress for {stall:?} at offset {applied} of {end}; counting the rest as undecided"
            ));
            break false;
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish();
    Ok(Applied {
        waited: started.elapsed(),
        caught_up,
    })
}

/// What the decisions of a storm's accepted requests say.
#[derive(Debug, Clone)]
pub struct DecisionStats {
    pub decided: u64,
    /// Decided `held`.
    pub held: u64,
    /// Accepted (202) but no decision in `requests`.
    pub undecided: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Earliest `issued_at` (the gateway's clock when it accepted the first request).
    pub first_issued: Option<DateTime<Utc>>,
    pub first_decided: Option<DateTime<Utc>>,
    pub last_decided: Option<DateTime<Utc>>,
    /// Decisions of the first batch (they share its `decided_at`).
    pub first_batch: u64,
}

fn seconds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    let (from, to) = (from?, to?);
    Some((to - from).num_microseconds()? as f64 / 1e6)
}

impl DecisionStats {
    /// Decisions per second from the first accept to the last decision.
    pub fn decisions_per_s(&self) -> f64 {
        seconds(self.first_issued, self.last_decided)
            .filter(|s| *s > 0.0)
            .map_or(0.0, |s| round(self.decided as f64 / s, 1))
    }

    /// Decisions per second while the consumer worked: from the end of its first batch
    /// to the end of its last (a drain that starts with a full topic).
    pub fn drain_per_s(&self) -> f64 {
        seconds(self.first_decided, self.last_decided)
            .filter(|s| *s > 0.0)
            .map_or(0.0, |s| {
                round(self.decided.saturating_sub(self.first_batch) as f64 / s, 1)
            })
    }
}

const CREATE_ACCEPTED: &str =
    "CREATE TEMP TABLE bench_accepted (request_id uuid PRIMARY KEY) ON COMMIT DROP";
const INSERT_ACCEPTED: &str = "INSERT INTO bench_accepted SELECT DISTINCT unnest($1::uuid[])";
/// Latency is request -> decision as the pipeline recorded it: `issued_at` is set by the
/// gateway when it accepts the request, `decided_at` by the consumer's batch.
const DECISION_STATS: &str = "SELECT count(request_id), count(*) - count(request_id),
        count(*) FILTER (WHERE status = 'held'),
        percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms),
        min(issued_at), min(decided_at), max(decided_at)
    FROM (SELECT r.request_id, r.status, r.issued_at, r.decided_at,
                 (extract(epoch FROM r.decided_at - r.issued_at) * 1000)::float8 AS ms
          FROM bench_accepted a LEFT JOIN requests r ON r.request_id = a.request_id) d";
const FIRST_BATCH: &str = "SELECT count(*) FROM bench_accepted a
    JOIN requests r ON r.request_id = a.request_id WHERE r.decided_at = $1";

type StatsRow = (
    i64,
    i64,
    i64,
    Option<Vec<f64>>,
    Option<f64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// Look up the decision of every accepted request id.
pub async fn stats(stack: &Stack, accepted: &[Uuid]) -> Result<DecisionStats, BenchError> {
    let mut conn = stack.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(CREATE_ACCEPTED).execute(&mut *tx).await?;
    sqlx::query(INSERT_ACCEPTED)
        .bind(accepted)
        .execute(&mut *tx)
        .await?;
    let (decided, undecided, held, quantiles, max, first_issued, first_decided, last_decided): StatsRow =
        sqlx::query_as(DECISION_STATS).fetch_one(&mut *tx).await?;
    let first_batch: i64 = match first_decided {
        Some(at) => {
            sqlx::query_scalar(FIRST_BATCH)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?
        }
        None => 0,
    };
    tx.commit().await?;
    let q = |i: usize| nth_quantile(quantiles.as_deref(), i);
    Ok(DecisionStats {
        decided: decided.max(0) as u64,
        held: held.max(0) as u64,
        undecided: undecided.max(0) as u64,
        p50_ms: q(0),
        p95_ms: q(1),
        p99_ms: q(2),
        max_ms: round(max.unwrap_or(0.0), 3),
        first_issued,
        first_decided,
        last_decided,
        first_batch: first_batch.max(0) as u64,
    })
}
