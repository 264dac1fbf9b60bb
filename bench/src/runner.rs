//! The closed-loop driver shared by every scenario.
//!
//! N client tasks, each with its own connection (a [`Client`]), are dealt the attempts
//! round-robin and send them one after another: the offered load is "N users clicking as
//! fast as the system answers" ([`Pace::Closed`]). [`Pace::Open`] sends at a fixed
//! arrival rate instead, whatever the answers take, and measures each latency from the
//! moment the attempt was due (so a slow answer cannot hide the queue behind it). Any
//! scenario — the naive designs, the seatq HTTP pipeline — only has to implement
//! [`Client`]; timing, latency histograms, progress and the ledger of promised seats (or
//! accepted request ids) are done here, identically for all.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::BenchError;
use crate::workload::Attempt;

/// The answer a user got for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// These seats were promised to the user.
    Held(Vec<i32>),
    /// Not all requested seats were available; nothing was held.
    Rejected,
    /// Queued for a decision made later (the seatq pipeline's 202), under this request id.
    Accepted(uuid::Uuid),
}

/// How attempts are offered.
#[derive(Debug, Clone, PartialEq)]
pub enum Pace {
    /// Each client sends its next attempt when the previous one is answered.
    Closed,
    /// Attempt `i` is due `i / per_s` seconds after the start, answered or not.
    Open { per_s: f64 },
    /// Attempt `i` is due `due[i]` after the start (non-decreasing), answered or not: the
    /// arrivals of a burst, drawn from the seed.
    Due(Arc<Vec<Duration>>),
}

impl Pace {
    /// When attempt `i` is due, after the start; `None` in a closed loop.
    fn due(&self, i: usize) -> Option<Duration> {
        match self {
            Pace::Closed => None,
            Pace::Open { per_s } => Some(Duration::from_secs_f64(i as f64 / per_s.max(1e-3))),
            Pace::Due(due) => Some(due.get(i).or(due.last()).copied().unwrap_or_default()),
        }
    }
}

/// An attempt queued for a later decision: which attempt, and when it was due (closed
/// loop: sent), in microseconds after the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub index: u32,
    pub due_us: u64,
}

/// One connection's worth of a scenario: turns an attempt into a decision.
pub trait Client: Send + 'static {
    fn attempt(
        &mut self,
        attempt: &Attempt,
    ) -> impl Future<Output = Result<Decision, BenchError>> + Send;
}

/// A seat promised to a user, as the user was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    pub seat_no: i32,
    pub user: u32,
}

/// What happened during one run of one scenario.
#[derive(Debug)]
pub struct RunOutcome {
    pub wall: Duration,
    /// Per-attempt latency in microseconds (errors included: the user waited too).
    pub latency_us: Histogram<u64>,
    pub held_attempts: u64,
    pub rejected: u64,
    /// Request ids of the attempts queued for a later decision.
    pub accepted: Vec<uuid::Uuid>,
    /// Which attempt each of `accepted` was, and when it was due (same order).
    pub queued: Vec<Queued>,
    /// The run's start on the wall clock (the clock the services stamp requests with).
    pub started_wall: chrono::DateTime<chrono::Utc>,
    pub errors: u64,
    /// Errors that were the client's timeout.
    pub timeouts: u64,
    /// Errors that were a 5xx answer.
    pub server_errors: u64,
    pub first_error: Option<String>,
    pub promises: Vec<Promise>,
}

impl RunOutcome {
    fn empty() -> Self {
        Self {
            wall: Duration::ZERO,
            latency_us: new_histogram(),
            held_attempts: 0,
            rejected: 0,
            accepted: Vec::new(),
            queued: Vec::new(),
            started_wall: chrono::Utc::now(),
            errors: 0,
            timeouts: 0,
            server_errors: 0,
            first_error: None,
            promises: Vec::new(),
        }
    }

    pub fn attempts(&self) -> u64 {
        self.held_attempts + self.rejected + self.accepted.len() as u64 + self.errors
    }

    pub fn decisions_per_s(&self) -> f64 {
        self.attempts() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1_000.0
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 us .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// A progress bar for `len` attempts of scenario `name`.
pub fn progress_bar(name: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{prefix:>26} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_prefix(name.to_string());
    bar
}

/// Send every attempt through `clients` (one task each, attempts dealt round-robin),
/// closed loop. `bar.position()` is the number of attempts answered so far, for anyone
/// who wants to act mid-run (the Redis restart and the pipeline crashes do).
pub async fn run<C: Client>(
    clients: Vec<C>,
    attempts: Arc<Vec<Attempt>>,
    bar: ProgressBar,
) -> Result<RunOutcome, BenchError> {
    run_paced(clients, attempts, bar, Pace::Closed).await
}

/// [`run`] with a choice of [`Pace`].
pub async fn run_paced<C: Client>(
    clients: Vec<C>,
    attempts: Arc<Vec<Attempt>>,
    bar: ProgressBar,
    pace: Pace,
) -> Result<RunOutcome, BenchError> {
    let workers = clients.len().max(1);
    let started_wall = chrono::Utc::now();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for (index, mut client) in clients.into_iter().enumerate() {
        let attempts = Arc::clone(&attempts);
        let bar = bar.clone();
        let pace = pace.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = RunOutcome::empty();
            for (i, attempt) in attempts.iter().enumerate().skip(index).step_by(workers) {
                let t0 = match pace.due(i) {
                    None => Instant::now(),
                    Some(after) => {
                        let due = started + after;
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                };
                let decision = client.attempt(attempt).await;
                out.latency_us
                    .saturating_record(t0.elapsed().as_micros().max(1) as u64);
                match decision {
                    Ok(Decision::Held(seats)) => {
                        out.held_attempts += 1;
                        out.promises
                            .extend(seats.into_iter().map(|seat_no| Promise {
                                seat_no,
                                user: attempt.user,
                            }));
                    }
                    Ok(Decision::Rejected) => out.rejected += 1,
                    Ok(Decision::Accepted(id)) => {
                        out.accepted.push(id);
                        out.queued.push(Queued {
                            index: i as u32,
                            due_us: t0.duration_since(started).as_micros() as u64,
                        });
                    }
                    Err(e) => {
                        out.errors += 1;
                        match &e {
                            BenchError::Http(h) if h.is_timeout() => out.timeouts += 1,
                            BenchError::Gateway { status, .. } if *status >= 500 => {
                                out.server_errors += 1
                            }
                            _ => {}
                        }
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
                bar.inc(1);
            }
            out
        }));
    }
    let mut total = RunOutcome::empty();
    total.started_wall = started_wall;
    for task in tasks {
        let part = task.await?;
        total.wall = started.elapsed();
        // Same bounds on both sides: adding cannot fail.
        let _ = total.latency_us.add(&part.latency_us);
        total.held_attempts += part.held_attempts;
        total.rejected += part.rejected;
        total.accepted.extend(part.accepted);
        total.queued.extend(part.queued);
        total.errors += part.errors;
        total.timeouts += part.timeouts;
        total.server_errors += part.server_errors;
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
        total.promises.extend(part.promises);
    }
    bar.finish();
    Ok(total)
}
