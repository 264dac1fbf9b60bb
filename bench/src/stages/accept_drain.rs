//! Gateway accept rate with the consumer stopped, then the consumer's drain rate of the
//! topic that filled meanwhile.
//!
//! The two belong together: the drain needs a topic full of commands, and a stopped
//! consumer must be started again before the stack is handed back. The consumer is
//! started again even when the storm fails.

use chrono::Utc;

use crate::error::BenchError;
use crate::pipeline::{decisions, Pipeline};
use crate::results::{self, AcceptTiming, DrainResult};
use crate::runner;
use crate::stack::{Action, Service};

pub async fn run(p: &Pipeline) -> Result<(AcceptTiming, DrainResult), BenchError> {
    p.stack.service(Action::Stop, Service::Consumer).await?;
    let filled = async {
        let event = p.event("gateway accept stage").await?;
        let bar = runner::progress_bar("gateway accept (no consumer)", p.attempts.len() as u64);
        let (outcome, retries) = p.flash(&event, bar).await?;
        Ok::<_, BenchError>((event, outcome, retries))
    }
    .await;

    let started_at = Utc::now();
    let restarted = p.stack.service(Action::Start, Service::Consumer).await;
    let (event, outcome, retries) = filled?;
    restarted?;
    let applied =
        decisions::wait_applied(&p.stack, event.partition, "consumer drain", p.stall).await?;
    let stats = decisions::stats(&p.stack, &outcome.accepted).await?;
    let from_start_s = stats.last_decided.map_or_else(
        || applied.waited.as_secs_f64(),
        |last| (last - started_at).num_milliseconds() as f64 / 1e3,
    );
    let drain = DrainResult {
        decided: stats.decided,
        undecided: stats.undecided,
        decisions_per_s: stats.drain_per_s(),
        from_start_s: results::round(from_start_s, 3),
    };
    Ok((AcceptTiming::new(&outcome, retries), drain))
}
