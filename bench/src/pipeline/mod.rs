//! The seatq pipeline under the flash-sale workload, over HTTP against the running stack.
//!
//! Every run follows the same three steps, so the flash sale, the half-load latency run,
//! the crash run and the stage measurements differ only in how they send and what they
//! break on the way: a fresh event ([`Pipeline::event`]), a storm of hold requests
//! ([`Pipeline::storm`], the shared runner with the HTTP client), and settling
//! ([`Pipeline::settle`]): wait for the consumer, look up every accepted request's
//! decision, check the invariants.

pub mod api;
pub mod client;
pub mod decisions;
pub mod invariants;
pub mod runs;
pub mod seat_story;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use uuid::Uuid;

use crate::error::BenchError;
use crate::results::{AcceptTiming, DecisionTiming, PipelineRun};
use crate::runner::{self, Pace, RunOutcome};
use crate::sources::{Sources, DEFAULT_SOURCE_IPS};
use crate::stack::Stack;
use crate::workload::{Attempt, Stadium};

use api::{EventRules, Tokens};
use client::HttpClient;

const EVENT_PARTITION: &str = "SELECT kafka_partition FROM events WHERE id = $1";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The clients users send from, spread over loopback source addresses so the gateway's
/// per-IP rate limits see many people, not one bench (see `crate::sources`).
pub fn user_clients() -> Result<Arc<Sources>, BenchError> {
    Ok(Arc::new(Sources::new(DEFAULT_SOURCE_IPS, REQUEST_TIMEOUT)?))
}

/// An event created for one run.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub id: Uuid,
    /// The commands-topic partition all its commands go to.
    pub partition: i32,
    /// The partition's log end before the run: every command of the run is at or after it.
    pub from_offset: i64,
}

/// The HTTP client every run uses: one pool, connections kept, no Nagle delay.
pub fn http_client() -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(usize::MAX)
        .build()?)
}

/// Create an event shaped like `venue` with `rules` through the admin API, and note its
/// partition and that partition's log end (every command of the run comes after it).
pub async fn new_event(
    stack: &Stack,
    http: &reqwest::Client,
    tokens: &Tokens,
    venue: &Stadium,
    title: &str,
    rules: EventRules,
) -> Result<Event, BenchError> {
    new_event_with(
        stack,
        http,
        tokens,
        venue,
        title,
        rules,
        serde_json::json!({}),
    )
    .await
}

/// [`new_event`] with some of the event's fields set by `overrides` (see
/// [`api::create_event`]).
pub async fn new_event_with(
    stack: &Stack,
    http: &reqwest::Client,
    tokens: &Tokens,
    venue: &Stadium,
    title: &str,
    rules: EventRules,
    overrides: serde_json::Value,
) -> Result<Event, BenchError> {
    let id =
        api::create_event(http, &stack.gateway, tokens, venue, title, rules, overrides).await?;
    let partition: i32 = sqlx::query_scalar(EVENT_PARTITION)
        .bind(id)
        .fetch_one(&stack.pool)
        .await?;
    let from_offset = stack.log_end(partition).await?;
    Ok(Event {
        id,
        partition,
        from_offset,
    })
}

/// What every pipeline run shares: the stack, tokens, the workload.
pub struct Pipeline {
    pub stack: Stack,
    http: reqwest::Client,
    users: Arc<Sources>,
    tokens: Arc<Tokens>,
    stadium: Arc<Stadium>,
    pub attempts: Arc<Vec<Attempt>>,
    pub concurrency: usize,
    /// Give up waiting for decisions after this long without progress.
    pub stall: Duration,
}

impl Pipeline {
    pub fn new(
        stack: Stack,
        stadium: &Stadium,
        attempts: Arc<Vec<Attempt>>,
        users: u32,
        concurrency: usize,
        stall: Duration,
    ) -> Result<Self, BenchError> {
        let tokens = Tokens::mint(&stack.settings.auth.jwt_secret, users)?;
        let http = http_client()?;
        Ok(Self {
            stack,
            http,
            users: user_clients()?,
            tokens: Arc::new(tokens),
            stadium: Arc::new(stadium.clone()),
            attempts,
            concurrency,
            stall,
        })
    }

    /// A fresh 50,000-seat event, on sale now.
    pub async fn event(&self, title: &str) -> Result<Event, BenchError> {
        new_event(
            &self.stack,
            &self.http,
            &self.tokens,
            &self.stadium,
            title,
            EventRules::FLASH_SALE,
        )
        .await
    }

    /// Send `attempts` as hold requests for `event` from `connections` clients.
    /// Returns the outcome and the number of 503s that were retried.
    pub async fn storm(
        &self,
        event: &Event,
        attempts: Arc<Vec<Attempt>>,
        bar: ProgressBar,
        pace: Pace,
        connections: usize,
    ) -> Result<(RunOutcome, u64), BenchError> {
        self.storm_at(&self.stack.gateway, event, attempts, bar, pace, connections)
            .await
    }

    /// [`Pipeline::storm`] against the front at `base` (the fair fight's fronts of the
    /// naive designs serve the same route).
    pub async fn storm_at(
        &self,
        base: &str,
        event: &Event,
        attempts: Arc<Vec<Attempt>>,
        bar: ProgressBar,
        pace: Pace,
        connections: usize,
    ) -> Result<(RunOutcome, u64), BenchError> {
        let url: Arc<str> = format!("{base}/v1/events/{}/holds", event.id).into();
        let retries = Arc::new(AtomicU64::new(0));
        let clients = (0..connections.max(1))
            .map(|_| {
                HttpClient::new(
                    Arc::clone(&self.users),
                    Arc::clone(&url),
                    Arc::clone(&self.tokens),
                    Arc::clone(&self.stadium),
                    Arc::clone(&retries),
                )
            })
            .collect();
        let outcome = runner::run_paced(clients, attempts, bar, pace).await?;
        Ok((outcome, retries.load(Ordering::Relaxed)))
    }

    /// The whole workload, closed loop, as the naive designs get it.
    pub async fn flash(
        &self,
        event: &Event,
        bar: ProgressBar,
    ) -> Result<(RunOutcome, u64), BenchError> {
        let attempts = Arc::clone(&self.attempts);
        self.storm(event, attempts, bar, Pace::Closed, self.concurrency)
            .await
    }

    /// Wait for the consumer, then read back every decision and check the invariants.
    pub async fn settle(
        &self,
        name: &str,
        event: &Event,
        outcome: &RunOutcome,
        broker_retries: u64,
    ) -> Result<PipelineRun, BenchError> {
        let storm_over = Instant::now();
        let applied =
            decisions::wait_applied(&self.stack, event.partition, name, self.stall).await?;
        let settle = storm_over.elapsed();
        let stats = decisions::stats(&self.stack, &outcome.accepted).await?;
        let invariants = invariants::check(
            &self.stack.pool,
            event.id,
            event.partition,
            event.from_offset,
            stats.undecided,
        )
        .await?;
        Ok(PipelineRun {
            event_id: event.id,
            accept: AcceptTiming::new(outcome, broker_retries),
            decisions: DecisionTiming::new(&stats, settle, applied.caught_up),
            invariants,
        })
    }
}
