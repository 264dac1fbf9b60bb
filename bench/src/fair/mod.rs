//! A fair fight: every design behind the same front, in the burst an on-sale is.
//!
//! The raw-SQL runs of the naive designs (`crate::scenarios`) talk to PostgreSQL
//! directly, while the pipeline pays for HTTP, JSON, JWT, validation and rate limiting on
//! the same cores: that comparison is kept as a floor, labelled as such. Here every design
//! sits behind the gateway's own router layers (the naive ones in a `bench front`
//! process, [`front`]), and the bench's client is the pipeline's HTTP client for all of
//! them (`crate::pipeline::client`, the same users, tokens and source addresses). Each
//! design gets, with the same seed and seats:
//! - closed loops at 32, 256 and 2,048 users (the first `--fair-closed-attempts` of the
//!   workload),
//! - the burst: 20,000 and then 100,000 users each sending one hold, arrivals from the
//!   seed within 2 s, open loop ([`arrivals`]), measured until every request is decided,
//! - sustained overload: arrivals at 2x the best closed-loop rate the design reached, for
//!   60 s.
//!
//! Each run starts on fresh seats (a new event, and for the naive designs a reset bench
//! database, a new front and a new private Redis). The pipeline's requests are stamped by
//! the gateway (`issued_at`) and decided by the consumer (`decided_at`); a naive front
//! stamps at the same point of the same handler and decides at once. Fairness
//! ([`ledger`]) and cost ([`cost`]) are computed the same way for all.
//!
//! Decision latency is counted from when the request was due at the client (closed loop:
//! sent), so the queue in front of a saturated design is in it; for the pipeline the
//! decision is the consumer's `decided_at` on the same machine's clock.

pub mod arrivals;
pub mod clock;
pub mod cost;
pub mod front;
pub mod ledger;
pub mod result;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::error::BenchError;
use crate::pg::BenchDatabase;
use crate::pipeline::{decisions, Pipeline};
use crate::redis_server::PrivateRedis;
use crate::runner::{self, Pace, RunOutcome};
use crate::scenarios::redis_first;
use crate::stack::Stack;
use crate::workload::{Attempt, Request, Stadium};

use cost::{Cost, CostResult, Meter, Processes};
use front::{FrontDesign, LISTENING};
use ledger::Entry;
use result::{DesignResult, FairFight, Overload, ScenarioResult, Setup};

/// The designs of the fair fight, by their keys in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum FairDesign {
    #[value(name = "pipeline")]
    Pipeline,
    #[value(name = "conditional_update")]
    ConditionalUpdate,
    #[value(name = "for_update")]
    ForUpdate,
    #[value(name = "redis_first")]
    RedisFirst,
}

pub const ALL_FAIR_DESIGNS: [FairDesign; 4] = [
    FairDesign::Pipeline,
    FairDesign::ConditionalUpdate,
    FairDesign::ForUpdate,
    FairDesign::RedisFirst,
];

impl FairDesign {
    pub fn key(self) -> &'static str {
        match self {
            FairDesign::Pipeline => "pipeline",
            FairDesign::ConditionalUpdate => "conditional_update",
            FairDesign::ForUpdate => "for_update",
            FairDesign::RedisFirst => "redis_first",
        }
    }

    fn front(self) -> Option<FrontDesign> {
        match self {
            FairDesign::Pipeline => None,
            FairDesign::ConditionalUpdate => Some(FrontDesign::ConditionalUpdate),
            FairDesign::ForUpdate => Some(FrontDesign::ForUpdate),
            FairDesign::RedisFirst => Some(FrontDesign::RedisFirst),
        }
    }

    /// The processes whose CPU is the design's (see [`cost`]).
    fn counted(self) -> &'static [&'static str] {
        match self {
            FairDesign::Pipeline => &cost::PROCESSES,
            _ => &["front", "postgres", "redis", "bench"],
        }
    }
}

/// The sizes and options of a fair fight.
#[derive(Debug, Clone)]
pub struct Options {
    pub designs: Vec<FairDesign>,
    pub closed_users: Vec<usize>,
    pub closed_attempts: usize,
    pub burst_users: Vec<usize>,
    pub burst_window: Duration,
    pub overload_secs: f64,
    pub overload_factor: f64,
    /// Connections of the open-loop runs (bursts, overload): requests due while all are
    /// busy wait at the client, their latency counted from when they were due.
    pub connections: usize,
    /// Connections of each naive front's pool (to PostgreSQL, or to its Redis).
    pub front_pool: usize,
    pub admin_url: String,
    /// Redis-first: share of each run's attempts answered when its Redis is killed and
    /// restarted empty (`--redis-restart-at`, as in the raw-SQL run).
    pub redis_restart_at: Option<f64>,
    pub seed: u64,
    pub stall: Duration,
}

/// Run the fair fight against the running stack.
pub async fn run(
    stack: &Stack,
    stadium: &Stadium,
    workload: Arc<Vec<Attempt>>,
    users: u32,
    opts: &Options,
) -> Result<FairFight, BenchError> {
    let most_users = opts
        .burst_users
        .iter()
        .map(|&n| n as u32)
        .chain([users])
        .max()
        .unwrap_or(users);
    let pipeline = Pipeline::new(
        stack.clone(),
        stadium,
        Arc::clone(&workload),
        most_users,
        opts.connections,
        opts.stall,
    )?;
    let naive = opts.designs.iter().any(|d| d.front().is_some());
    let db = match naive {
        true => Some(BenchDatabase::create(&opts.admin_url).await?),
        false => None,
    };
    let fight = Fight {
        stack,
        stadium,
        pipeline: &pipeline,
        db: db.as_ref(),
        opts,
        exe: std::env::current_exe().map_err(|e| BenchError::io("finding the bench binary", e))?,
    };
    let outcome = fight.all(&workload).await;
    if let Some(db) = db {
        let dropped = db.drop_database().await;
        if outcome.is_ok() {
            dropped?;
        }
    }
    outcome
}

struct Fight<'a> {
    stack: &'a Stack,
    stadium: &'a Stadium,
    pipeline: &'a Pipeline,
    db: Option<&'a BenchDatabase>,
    opts: &'a Options,
    exe: PathBuf,
}

/// One run's numbers and what it cost.
struct Measured {
    result: ScenarioResult,
    cost: Cost,
}

impl Fight<'_> {
    async fn all(&self, workload: &Arc<Vec<Attempt>>) -> Result<FairFight, BenchError> {
        let opts = self.opts;
        let mut fight = FairFight {
            setup: Setup::new(opts, self.stack.settings.rate_limits.enabled),
            designs: Default::default(),
        };
        let closed: Arc<Vec<Attempt>> = Arc::new(
            workload
                .iter()
                .cycle()
                .take(opts.closed_attempts)
                .cloned()
                .collect(),
        );
        for &design in &opts.designs {
            let mut total = Cost::default();
            let mut decisions = 0u64;
            let mut r = DesignResult::new(design);
            let mut keep = |m: Measured, r: &mut DesignResult| {
                total.add(&m.cost);
                decisions += m.result.decided;
                r.fairness.add(&m.result.fairness);
                r.oversold += m.result.oversold;
                r.max_wall_clock_step_ms =
                    r.max_wall_clock_step_ms.max(m.result.wall_clock_step_ms);
                let mut result = m.result;
                result.cpu_s_per_1000_decisions =
                    CostResult::new(&m.cost, result.decided, design.counted()).per_1000_counted();
                result
            };
            for &n in &opts.closed_users {
                let name = format!("{} closed {n}", design.key());
                let m = self
                    .scenario(design, &name, Arc::clone(&closed), Pace::Closed, n)
                    .await?;
                let s = keep(m, &mut r);
                r.closed_loop.insert(n.to_string(), s);
            }
            for &n in &opts.burst_users {
                let name = format!("{} burst {n}", design.key());
                let attempts = Arc::new(arrivals::one_each(self.stadium, n, opts.seed));
                let due = Arc::new(arrivals::burst(n, opts.burst_window, opts.seed));
                let connections = opts.connections.min(n).max(1);
                let m = self
                    .scenario(design, &name, attempts, Pace::Due(due), connections)
                    .await?;
                let s = keep(m, &mut r);
                r.burst.insert(n.to_string(), s);
            }
            let capacity = r
                .closed_loop
                .values()
                .map(|s| s.decisions_per_s)
                .fold(0.0, f64::max);
            if capacity > 0.0 && opts.overload_secs > 0.0 {
                let per_s = capacity * opts.overload_factor;
                let n = (per_s * opts.overload_secs).ceil() as usize;
                let attempts = Arc::new(workload.iter().cycle().take(n).cloned().collect());
                let name = format!("{} overload", design.key());
                let m = self
                    .scenario(
                        design,
                        &name,
                        attempts,
                        Pace::Open { per_s },
                        opts.connections,
                    )
                    .await?;
                let s = keep(m, &mut r);
                r.overload = Some(Overload::new(capacity, per_s, opts.overload_secs, s));
            }
            r.cost = CostResult::new(&total, decisions, design.counted());
            r.cpu_s_per_1000_decisions = r.cost.per_1000_counted();
            println!("{}", r.summary_line());
            fight.designs.insert(design.key().to_string(), r);
        }
        Ok(fight)
    }

    /// One run of `attempts` through `design` on fresh seats.
    async fn scenario(
        &self,
        design: FairDesign,
        name: &str,
        attempts: Arc<Vec<Attempt>>,
        pace: Pace,
        connections: usize,
    ) -> Result<Measured, BenchError> {
        let event = self.pipeline.event(&format!("fair fight: {name}")).await?;
        let root = self.stack.root();
        let clock = clock::StepWatch::start();
        let bar = runner::progress_bar(name, attempts.len() as u64);
        let Some(front_design) = design.front() else {
            let meter = Meter::start(Processes::new(root, None));
            let (outcome, retries) = self
                .pipeline
                .storm(&event, Arc::clone(&attempts), bar, pace, connections)
                .await?;
            decisions::wait_applied(self.stack, event.partition, name, self.opts.stall).await?;
            let (cost, _) = meter.stop().await;
            let decided = pipeline_ledger(self.stack, &outcome, &attempts).await?;
            let mut result = ScenarioResult::pipeline(&outcome, retries, connections, &decided);
            result.wall_clock_step_ms = clock.step_ms();
            return Ok(Measured { result, cost });
        };
        let db = self
            .db
            .ok_or_else(|| BenchError::Stack("no bench database for a naive design".into()))?;
        db.reset(self.stadium).await?;
        let redis = match front_design {
            FrontDesign::RedisFirst => Some(PrivateRedis::start().await?),
            _ => None,
        };
        let front = FrontProcess::start(
            &self.exe,
            root,
            front_design,
            &self.opts.admin_url,
            &db.name,
            redis.as_ref().map(PrivateRedis::url),
            self.opts.front_pool,
        )
        .await?;
        let meter = Meter::start(Processes::new(root, Some(front.pid)));
        // Redis-first: its Redis killed and restarted empty after a share of the answers.
        let restart_after = match (&redis, self.opts.redis_restart_at) {
            (Some(_), Some(share)) => Some((attempts.len() as f64 * share) as u64),
            _ => None,
        };
        let chaos = redis.map(|redis| {
            tokio::spawn(redis_first::restart_when(redis, bar.clone(), restart_after))
        });
        let storm = self
            .pipeline
            .storm_at(&front.url, &event, attempts, bar, pace, connections)
            .await;
        let (cost, _) = meter.stop().await;
        let ledger = front.stop().await;
        let restarted = match chaos {
            Some(chaos) => chaos.await??.1,
            None => None,
        };
        let (outcome, retries) = storm?;
        let ledger = ledger?;
        let mut result = ScenarioResult::front(&outcome, retries, connections, &ledger);
        result.redis_restart = restarted;
        result.wall_clock_step_ms = clock.step_ms();
        Ok(Measured { result, cost })
    }
}

/// A request the pipeline decided, joined with what the bench sent.
pub struct PipelineDecision {
    pub entry: Entry,
    /// From when it was due at the client to its decision, microseconds.
    pub decision_us: u64,
    /// Its decision, microseconds after the run's start.
    pub decided_after_us: u64,
}

const DECIDED: &str = "SELECT r.request_id,
        (extract(epoch FROM r.issued_at) * 1000000)::int8,
        (extract(epoch FROM r.decided_at) * 1000000)::int8,
        coalesce(h.seat_nos, '{}'::int[])
    FROM requests r LEFT JOIN holds h ON h.id = r.hold_id AND r.status = 'held'
    WHERE r.request_id = ANY($1)";

/// The decisions of a pipeline run's accepted requests, as a ledger like the fronts'.
async fn pipeline_ledger(
    stack: &Stack,
    outcome: &RunOutcome,
    attempts: &[Attempt],
) -> Result<Vec<PipelineDecision>, BenchError> {
    let sent: HashMap<Uuid, runner::Queued> = outcome
        .accepted
        .iter()
        .copied()
        .zip(outcome.queued.iter().copied())
        .collect();
    let rows: Vec<(Uuid, i64, i64, Vec<i32>)> = sqlx::query_as(DECIDED)
        .bind(&outcome.accepted)
        .fetch_all(&stack.pool)
        .await?;
    let start_us = outcome.started_wall.timestamp_micros();
    Ok(rows
        .into_iter()
        .filter_map(|(id, issued_us, decided_us, won)| {
            let queued = sent.get(&id)?;
            let attempt = attempts.get(queued.index as usize)?;
            let due_us = start_us + queued.due_us as i64;
            Some(PipelineDecision {
                entry: Entry {
                    arrived_us: issued_us,
                    user: attempt.user,
                    named: match &attempt.request {
                        Request::Seats(seats) => seats.clone(),
                        Request::BestAvailable { .. } => Vec::new(),
                    },
                    won,
                },
                decision_us: (decided_us - due_us).max(1) as u64,
                decided_after_us: (decided_us - start_us).max(0) as u64,
            })
        })
        .collect())
}

/// How long a front may take to start and to stop (it drains the Redis-first writer).
const FRONT_PATIENCE: Duration = Duration::from_secs(120);

/// A running `bench front`.
struct FrontProcess {
    child: Child,
    url: String,
    pid: u32,
    ledger: PathBuf,
}

impl FrontProcess {
    async fn start(
        exe: &std::path::Path,
        root: &std::path::Path,
        design: FrontDesign,
        admin_url: &str,
        database: &str,
        redis_url: Option<String>,
        pool: usize,
    ) -> Result<Self, BenchError> {
        let ledger = std::env::temp_dir().join(format!(
            "seatq-fair-{}-{}.json",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        let design_name = design
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let mut command = Command::new(exe);
        command
            .arg("front")
            .args(["--design", &design_name])
            .arg("--root")
            .arg(root)
            .args(["--admin-url", admin_url, "--database", database])
            .args(["--pool", &pool.to_string()])
            .arg("--ledger")
            .arg(&ledger)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(url) = redis_url {
            command.args(["--redis-url", &url]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::io("starting a bench front", e))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Stack("the front exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Stack("the front's stdout".into()))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(FRONT_PATIENCE, lines.next_line())
            .await
            .map_err(|_| {
                BenchError::Stack(format!(
                    "the front did not listen within {FRONT_PATIENCE:?}"
                ))
            })?
            .map_err(|e| BenchError::io("reading the front's stdout", e))?;
        let url = first
            .as_deref()
            .and_then(|l| l.strip_prefix(LISTENING))
            .ok_or_else(|| {
                BenchError::Stack(format!("the front said {first:?}, not where it listens"))
            })?
            .to_string();
        Ok(Self {
            child,
            url,
            pid,
            ledger,
        })
    }

    /// Close its stdin, wait for it to write its ledger and exit, and read the ledger.
    async fn stop(mut self) -> Result<Vec<Entry>, BenchError> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(FRONT_PATIENCE, self.child.wait())
            .await
            .map_err(|_| {
                BenchError::Stack(format!("the front did not stop within {FRONT_PATIENCE:?}"))
            })?
            .map_err(|e| BenchError::io("waiting for the front", e))?;
        if !status.success() {
            return Err(BenchError::Stack(format!("the front failed: {status}")));
        }
        let bytes = tokio::fs::read(&self.ledger)
            .await
            .map_err(|e| BenchError::io(format!("reading {}", self.ledger.display()), e))?;
        let _ = tokio::fs::remove_file(&self.ledger).await;
        Ok(serde_json::from_slice(&bytes)?)
    }
}
