//! The three pipeline runs of issue 6: the flash sale (closed loop, as the naive designs
//! are run), the latency run at half of the measured maximum (open loop, fixed arrival
//! rate), and the crash run (kill -9 of the consumer, then of the broker, mid-storm).

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::error::BenchError;
use crate::pipeline::Pipeline;
use crate::results::{self, CrashResult, CrashStep, HalfLoadResult, PipelineResult};
use crate::runner::{self, Pace};
use crate::stack::{Action, Service, Stack};

/// Open-loop clients: enough that a slow answer never holds back the next arrival.
pub const OPEN_LOOP_CONNECTIONS: usize = 128;

pub async fn flash_sale(p: &Pipeline) -> Result<PipelineResult, BenchError> {
    let event = p.event("flash sale").await?;
    let bar = runner::progress_bar("pipeline", p.attempts.len() as u64);
    let (outcome, retries) = p.flash(&event, bar).await?;
    let run = p
        .settle("pipeline decisions", &event, &outcome, retries)
        .await?;
    let seat_story = crate::pipeline::seat_story::measure(&p.stack.pool, event.id).await?;
    Ok(PipelineResult {
        seat_story: Some(seat_story),
        ..PipelineResult::from(run)
    })
}

/// Open loop at `per_s` for at most `secs` (the first attempts of the workload).
pub async fn half_load(p: &Pipeline, per_s: f64, secs: f64) -> Result<HalfLoadResult, BenchError> {
    let n = ((per_s * secs) as usize).clamp(1, p.attempts.len());
    let attempts = Arc::new(p.attempts[..n].to_vec());
    let connections = p.concurrency.max(OPEN_LOOP_CONNECTIONS);
    let event = p.event("half load").await?;
    let bar = runner::progress_bar(&format!("half load {per_s:.0}/s"), n as u64);
    let (outcome, retries) = p
        .storm(&event, attempts, bar, Pace::Open { per_s }, connections)
        .await?;
    let run = p
        .settle("half load decisions", &event, &outcome, retries)
        .await?;
    Ok(HalfLoadResult {
        target_per_s: results::round(per_s, 1),
        completed_per_s: results::round(n as f64 / outcome.wall.as_secs_f64().max(1e-9), 1),
        accept_p99_ms: run.accept.p99_ms,
        decision_p50_ms: run.decisions.p50_ms,
        decision_p95_ms: run.decisions.p95_ms,
        decision_p99_ms: run.decisions.p99_ms,
        connections,
        run,
    })
}

/// When to kill what during the crash run (shares of the attempts answered).
#[derive(Debug, Clone, Copy)]
pub struct CrashPlan {
    pub consumer_at: f64,
    pub broker_at: f64,
    /// How long a killed service stays down before it is started again.
    pub down: Duration,
}

pub async fn crash(p: &Pipeline, plan: CrashPlan) -> Result<CrashResult, BenchError> {
    let event = p.event("crash run").await?;
    let total = p.attempts.len() as u64;
    let bar = runner::progress_bar("pipeline + kill -9", total);
    let steps = [
        (Service::Consumer, (total as f64 * plan.consumer_at) as u64),
        (Service::Broker, (total as f64 * plan.broker_at) as u64),
    ];
    let drill = tokio::spawn(drill(p.stack.clone(), bar.clone(), steps, plan.down));
    let storm = p.flash(&event, bar).await;
    // The drill restarts what it killed even if the storm failed: wait for it first.
    let crashes = drill.await??;
    let (outcome, retries) = storm?;
    let run = p
        .settle("decisions after kill -9", &event, &outcome, retries)
        .await?;
    Ok(CrashResult {
        crashes,
        lost_accepted: run.invariants.undecided,
        run,
    })
}

/// Kill -9 each service once `after` attempts were answered (or, if the storm ends
/// first, right after it), keep it down for `down`, start it again.
async fn drill(
    stack: Stack,
    bar: ProgressBar,
    steps: [(Service, u64); 2],
    down: Duration,
) -> Result<Vec<CrashStep>, BenchError> {
    let mut done = Vec::with_capacity(steps.len());
    for (service, after) in steps {
        while bar.position() < after && !bar.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let answered = bar.position();
        let killed = Instant::now();
        stack.service(Action::Kill9, service).await?;
        tokio::time::sleep(down).await;
        stack.service(Action::Start, service).await?;
        let step = CrashStep {
            service: service.name().to_string(),
            after_attempts: answered,
            down_ms: results::millis(killed.elapsed()),
        };
        bar.suspend(|| {
            eprintln!(
                "  {} killed (SIGKILL) after {answered} attempts, started again after {:.0} ms",
                step.service, step.down_ms
            )
        });
        done.push(step);
    }
    Ok(done)
}
