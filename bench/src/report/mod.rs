//! The run's record: one JSON file per part, `latest.json`, the README and the terminal
//! summary.
//!
//! The parts — the flash sale (`bench all`), the fair fight, the hold lifecycle, SSE
//! fan-out, the waiting room — are measured by different runs at different times: a
//! full-size single-part run replaces only its own part. So each part has a file of its
//! own in `results/` ([`files`]), holding its result and when and where it was measured,
//! and everything else is derived from those files alone ([`files::render`], also
//! `bench render`): `latest.json` (what other tools read, its keys unchanged) and the
//! README's generated part ([`markdown`]). Nothing is spliced into, or patched in, text
//! that another run wrote. The dated copies (`results/2026…json`) are each run's own
//! report, kept as history.

mod files;
mod markdown;
mod summary;

use serde::{Deserialize, Serialize};

use crate::cli::RunArgs;
use crate::machine::Machine;
use crate::pipeline::invariants::Invariants;
use crate::results::{
    CrashResult, HalfLoadResult, LifecycleResult, PipelineResult, RedisFirstResult,
    SeatsTableResult, SseResult, Stages,
};
use crate::waitroom::result::WaitroomResult;
use crate::workload::{self, Stadium};

pub use files::{render, save, PartKind};

/// A run's report, and the shape of `latest.json`.
///
/// In a run, the parts it ran fill it in; `latest.json` is the flash-sale part's file
/// with every other part's result put in, and `{part}_run` beside a part measured by
/// another run than the flash sale.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub git_sha: String,
    pub git_dirty: bool,
    pub started_at: String,
    pub finished_at: String,
    pub machine: Machine,
    pub seats: i32,
    pub attempts: usize,
    pub users: u32,
    pub concurrency: usize,
    pub seed: u64,
    pub smoke: bool,
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub naive_conditional_update: Option<SeatsTableResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub naive_for_update: Option<SeatsTableResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_first: Option<RedisFirstResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineResult>,
    /// The pipeline flash sale's invariants (see `pipeline::invariants`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invariants: Option<Invariants>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_half_load: Option<HalfLoadResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashResult>,
    /// Seats oversold or double-held after kill -9 of the consumer and the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_oversold_after_crashes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
    /// Pipeline decisions/s over naive (b)'s, same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_for_update: Option<f64>,
    /// Pipeline decisions/s over naive (a)'s, same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_conditional_update: Option<f64>,
    pub notes: Vec<String>,
    // The other parts come last, each with `{part}_run` when another run measured it:
    // where earlier versions added them to a `latest.json` that had none.
    /// The hold lifecycle after the sale (`lifecycle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleResult>,
    /// In `latest.json`, when the lifecycle was measured by another run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_run: Option<RunInfo>,
    /// SSE fan-out on one standalone notifier (`sse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse_run: Option<RunInfo>,
    /// On-sale with the virtual waiting room (`waitroom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waitroom: Option<WaitroomResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waitroom_run: Option<RunInfo>,
    /// Every design behind the gateway's layers (`fair-fight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_fight: Option<crate::fair::result::FairFight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fair_fight_run: Option<RunInfo>,
}

/// When and on what a part was measured (`{part}_run` in `latest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub git_sha: String,
    pub git_dirty: bool,
    pub started_at: String,
    pub finished_at: String,
    pub machine: Machine,
}

impl RunInfo {
    /// The commit as the README shows it: 12 digits, `+dirty` when files differed.
    fn commit(&self) -> String {
        short_commit(&self.git_sha, self.git_dirty)
    }
}

fn short_commit(sha: &str, dirty: bool) -> String {
    format!(
        "{}{}",
        &sha[..sha.len().min(12)],
        if dirty { "+dirty" } else { "" }
    )
}

fn ratio(pipeline: f64, naive: f64) -> Option<f64> {
    (naive > 0.0).then(|| crate::results::round(pipeline / naive, 2))
}

impl Report {
    /// An empty report for this run; parts fill themselves in.
    pub fn new(run: &RunArgs, machine: Machine, stadium: &Stadium, attempts: usize) -> Self {
        Self {
            git_sha: String::new(),
            git_dirty: false,
            started_at: String::new(),
            finished_at: String::new(),
            machine,
            seats: stadium.seat_count(),
            attempts,
            users: run.users(),
            concurrency: run.concurrency,
            seed: run.seed,
            smoke: run.smoke,
            workload: workload::DESCRIPTION.to_string(),
            naive_conditional_update: None,
            naive_for_update: None,
            redis_first: None,
            pipeline: None,
            invariants: None,
            pipeline_half_load: None,
            crash: None,
            pipeline_oversold_after_crashes: None,
            stages: None,
            lifecycle: None,
            lifecycle_run: None,
            sse: None,
            sse_run: None,
            waitroom: None,
            waitroom_run: None,
            fair_fight: None,
            fair_fight_run: None,
            ratio_vs_for_update: None,
            ratio_vs_conditional_update: None,
            notes: vec![
                "Closed loop: each client task sends its next attempt when the previous one is answered (the half-load run is open loop).".to_string(),
                "Naive latency is the request's round trip; the pipeline's is request (gateway issued_at) to decision (consumer decided_at). No per-user seat limit in any design (the pipeline's events allow 100 seats per user).".to_string(),
                "PostgreSQL, Redis, the broker, the seatq services and the bench client share the machine's cores.".to_string(),
                "fifo_violations: seats won by a request W although an earlier request in Kafka order (partition, offset, seq) named the seat and was rejected seats_unavailable listing it.".to_string(),
            ],
        }
    }

    /// The ratios of the pipeline's decisions/s to the naive designs' (same run).
    pub fn compute_ratios(&mut self) {
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        let ours = pipeline.decisions_per_s;
        self.ratio_vs_for_update = self
            .naive_for_update
            .as_ref()
            .and_then(|r| ratio(ours, r.timing.decisions_per_s));
        self.ratio_vs_conditional_update = self
            .naive_conditional_update
            .as_ref()
            .and_then(|r| ratio(ours, r.timing.decisions_per_s));
    }

    /// When and on what this run was measured.
    pub fn run(&self) -> RunInfo {
        RunInfo {
            git_sha: self.git_sha.clone(),
            git_dirty: self.git_dirty,
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            machine: self.machine.clone(),
        }
    }

    /// The summary for the terminal.
    pub fn summary(&self) -> String {
        summary::summary(self)
    }
}

/// The golden results: `latest.json` as of 2026-12-07 (the flash sale of 2026-11-25, each
/// other part from a full-size run of its own since), and the README's generated part
/// that the report code before part files made of it, replayed as the README came to be
/// (a full run without the other parts, then each part's own run spliced in). In the
/// JSON, the waiting room's per-second `samples` and `decided_per_second` are left out
/// and the notifier's path is relative, as the README shows it wherever the bench is
/// built: neither changes what is rendered.
#[cfg(test)]
mod golden {
    pub const LATEST: &str = include_str!("testdata/latest.json");
    pub const README_GENERATED: &str = include_str!("testdata/README-generated.md");

    pub fn report() -> super::Report {
        serde_json::from_str(LATEST).expect("the golden latest.json reads")
    }

    pub fn set() -> super::files::ResultSet {
        super::files::ResultSet::split(report())
    }
}
