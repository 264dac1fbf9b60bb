//! The fair fight's results: the keys of `fair_fight` in latest.json, and the README's
//! side-by-side table (design x scenario) with the fairness counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::fair::cost::CostResult;
use crate::fair::ledger::{self, Entry, Fairness};
use crate::fair::{FairDesign, Options, PipelineDecision};
use crate::results::round;
use crate::runner::{self, RunOutcome};

/// How the fight was set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub closed_attempts: usize,
    pub burst_window_s: f64,
    pub overload_secs: f64,
    pub overload_factor: f64,
    pub open_loop_connections: usize,
    pub front_pool: usize,
    pub seed: u64,
    /// The stack's `rate_limits.enabled`: the same for every front.
    pub rate_limits: bool,
    pub arrival_clock: String,
}

impl Setup {
    pub fn new(opts: &Options, rate_limits: bool) -> Self {
        Self {
            closed_attempts: opts.closed_attempts,
            burst_window_s: opts.burst_window.as_secs_f64(),
            overload_secs: opts.overload_secs,
            overload_factor: opts.overload_factor,
            open_loop_connections: opts.connections,
            front_pool: opts.front_pool,
            seed: opts.seed,
            rate_limits,
            arrival_clock: "wall clock of the one machine, microseconds, stamped where the \
                gateway stamps issued_at (checked, about to be queued or decided); each run \
                checks that it did not step against the monotonic clock \
                (wall_clock_step_ms), so the stamps order arrivals as a monotonic clock would"
                .to_string(),
        }
    }
}

/// One run of one design.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub attempts: u64,
    pub connections: usize,
    /// Decided (held or refused).
    pub decided: u64,
    pub held: u64,
    /// Decided over the time from the start until all were decided.
    pub decisions_per_s: f64,
    pub all_decided_s: f64,
    /// The front's answer (the pipeline: its 202), from when the request was due.
    pub accept_p50_ms: f64,
    pub accept_p99_ms: f64,
    /// The decision, from when the request was due.
    pub decision_p50_ms: f64,
    pub decision_p99_ms: f64,
    pub decision_max_ms: f64,
    /// Requests that got no answer or a wrong one (timeouts and 5xx included).
    pub errors: u64,
    pub timeouts: u64,
    pub server_errors: u64,
    /// 429 and 503 answers waited out and sent again.
    pub retried: u64,
    /// The pipeline: accepted (202) but never decided.
    pub undecided: u64,
    /// Seats won by two requests.
    pub oversold: u64,
    pub fairness: Fairness,
    /// How far the wall clock (the arrival stamps' clock) stepped against the monotonic
    /// clock during the run, ms (`clock`): 0 means the stamps order arrivals as a
    /// monotonic clock would.
    pub wall_clock_step_ms: f64,
    /// CPU seconds per 1,000 decisions of this run (the design's processes).
    pub cpu_s_per_1000_decisions: f64,
    /// Redis-first: when its Redis was killed and restarted empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_restart: Option<crate::results::RedisRestart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

fn ms(us: u64) -> f64 {
    round(us as f64 / 1_000.0, 3)
}

impl ScenarioResult {
    fn common(outcome: &RunOutcome, retried: u64, connections: usize) -> Self {
        Self {
            attempts: outcome.attempts(),
            connections,
            accept_p50_ms: round(outcome.quantile_ms(0.5), 3),
            accept_p99_ms: round(outcome.quantile_ms(0.99), 3),
            errors: outcome.errors,
            timeouts: outcome.timeouts,
            server_errors: outcome.server_errors,
            retried,
            first_error: outcome.first_error.clone(),
            ..Self::default()
        }
    }

    /// A naive design's run: decided when answered; the ledger from its front.
    pub fn front(outcome: &RunOutcome, retried: u64, connections: usize, ledger: &[Entry]) -> Self {
        let all = outcome.wall.as_secs_f64();
        let decided = outcome.held_attempts + outcome.rejected;
        Self {
            decided,
            held: outcome.held_attempts,
            decisions_per_s: round(decided as f64 / all.max(1e-9), 1),
            all_decided_s: round(all, 3),
            decision_p50_ms: round(outcome.quantile_ms(0.5), 3),
            decision_p99_ms: round(outcome.quantile_ms(0.99), 3),
            decision_max_ms: ms(outcome.latency_us.max()),
            oversold: ledger::oversold(ledger),
            fairness: ledger::fairness(ledger),
            ..Self::common(outcome, retried, connections)
        }
    }

    /// The pipeline's run: decided when the consumer recorded it.
    pub fn pipeline(
        outcome: &RunOutcome,
        retried: u64,
        connections: usize,
        decided: &[PipelineDecision],
    ) -> Self {
        let mut latency = runner::new_histogram();
        for d in decided {
            latency.saturating_record(d.decision_us);
        }
        let last_us = decided
            .iter()
            .map(|d| d.decided_after_us)
            .max()
            .unwrap_or(0);
        let all = (last_us as f64 / 1e6).max(outcome.wall.as_secs_f64());
        let entries: Vec<Entry> = decided.iter().map(|d| d.entry.clone()).collect();
        Self {
            decided: decided.len() as u64,
            held: entries.iter().filter(|e| !e.won.is_empty()).count() as u64,
            decisions_per_s: round(decided.len() as f64 / all.max(1e-9), 1),
            all_decided_s: round(all, 3),
            decision_p50_ms: ms(latency.value_at_quantile(0.5)),
            decision_p99_ms: ms(latency.value_at_quantile(0.99)),
            decision_max_ms: ms(latency.max()),
            undecided: (outcome.accepted.len() as u64).saturating_sub(decided.len() as u64),
            oversold: ledger::oversold(&entries),
            fairness: ledger::fairness(&entries),
            ..Self::common(outcome, retried, connections)
        }
    }
}

/// Sustained overload: arrivals at a multiple of the measured capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overload {
    /// The best closed-loop decisions/s of the design.
    pub capacity_per_s: f64,
    pub offered_per_s: f64,
    pub offered_secs: f64,
    pub decided_per_s: f64,
    pub decision_p99_ms: f64,
    pub errors: u64,
    /// How long after the last arrival the last decision came: a design that keeps up
    /// drains at once; one that queues needs about the offered time again.
    pub drain_after_arrivals_s: f64,
    /// `bounded` when errors stayed 0 and the last decision came within 10 % of the
    /// offered time after the last arrival; else `queued` (errors 0, latency grew with
    /// the backlog) or `collapsed` (errors).
    pub verdict: String,
    pub run: ScenarioResult,
}

impl Overload {
    pub fn new(capacity: f64, offered: f64, secs: f64, run: ScenarioResult) -> Self {
        let drain = (run.all_decided_s - secs).max(0.0);
        let verdict = match (run.errors + run.undecided, drain <= 0.1 * secs) {
            (0, true) => "bounded",
            (0, false) => "queued",
            _ => "collapsed",
        };
        Self {
            capacity_per_s: round(capacity, 1),
            offered_per_s: round(offered, 1),
            offered_secs: secs,
            decided_per_s: run.decisions_per_s,
            decision_p99_ms: run.decision_p99_ms,
            errors: run.errors,
            drain_after_arrivals_s: round(drain, 3),
            verdict: verdict.to_string(),
            run,
        }
    }
}

/// Everything measured for one design.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesignResult {
    /// What served it.
    pub front: String,
    /// By concurrent users.
    pub closed_loop: BTreeMap<String, ScenarioResult>,
    /// By users in the burst.
    pub burst: BTreeMap<String, ScenarioResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overload: Option<Overload>,
    /// Summed over all its runs.
    pub fairness: Fairness,
    /// Seats won twice, over all its runs.
    pub oversold: u64,
    /// The largest wall-clock step of its runs, ms (0: arrival order is exact).
    pub max_wall_clock_step_ms: f64,
    /// CPU seconds per 1,000 decisions of the processes that serve it (see `cost`).
    pub cpu_s_per_1000_decisions: f64,
    pub cost: CostResult,
}

impl DesignResult {
    pub fn new(design: FairDesign) -> Self {
        Self {
            front: match design {
                FairDesign::Pipeline => "the stack's seatq gateway (202, consumer decides)",
                _ => {
                    "bench front: the gateway's layers and handler checks, deciding in place (200)"
                }
            }
            .to_string(),
            closed_loop: BTreeMap::new(),
            burst: BTreeMap::new(),
            overload: None,
            fairness: Fairness::default(),
            oversold: 0,
            max_wall_clock_step_ms: 0.0,
            cpu_s_per_1000_decisions: 0.0,
            cost: CostResult::default(),
        }
    }

    pub fn summary_line(&self) -> String {
        let mut out = String::new();
        for (n, s) in sorted(&self.closed_loop) {
            let _ = write!(out, "closed {n}: {:.0}/s; ", s.decisions_per_s);
        }
        for (n, s) in sorted(&self.burst) {
            let _ = write!(
                out,
                "burst {n}: all decided {:.1} s, p99 {:.0} ms, {} errors; ",
                s.all_decided_s, s.decision_p99_ms, s.errors
            );
        }
        if let Some(o) = &self.overload {
            let _ = write!(
                out,
                "overload {:.0}/s offered: {:.0}/s decided, p99 {:.0} ms, {} errors ({}); ",
                o.offered_per_s, o.decided_per_s, o.decision_p99_ms, o.errors, o.verdict
            );
        }
        let _ = write!(
            out,
            "fairness {} violations of {} contested (max gap {:.1} ms); {:.3} CPU s/1000 decisions; oversold {}",
            self.fairness.violations,
            self.fairness.contested_seats,
            self.fairness.max_gap_ms,
            self.cpu_s_per_1000_decisions,
            self.oversold
        );
        out
    }
}

/// Entries in the order of their numeric keys.
fn sorted<T>(map: &BTreeMap<String, T>) -> Vec<(&String, &T)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX));
    v
}

/// The fair fight, as written to latest.json (`fair_fight`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairFight {
    pub setup: Setup,
    /// By design key: pipeline, conditional_update, for_update, redis_first.
    pub designs: BTreeMap<String, DesignResult>,
}

impl FairFight {
    /// One line per design, for the run's summary.
    pub fn summary(&self) -> String {
        let mut out = String::from("fair fight (every design behind the gateway's layers):\n");
        for (name, d) in self.ordered() {
            let _ = writeln!(out, "  {name}: {}", d.summary_line());
        }
        out
    }

    fn ordered(&self) -> Vec<(&'static str, &DesignResult)> {
        crate::fair::ALL_FAIR_DESIGNS
            .iter()
            .filter_map(|d| Some((d.key(), self.designs.get(d.key())?)))
            .collect()
    }

    /// The README's side-by-side table. `floor`: the raw-SQL runs (design, decisions/s,
    /// p99 ms) to show beneath, labelled.
    pub fn markdown(&self, floor: &[(&str, f64, f64)]) -> String {
        let designs = self.ordered();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Fair fight: every design behind the gateway's layers\n\n\
             Same seed and seats for all; the same HTTP client; rate limits {}. Decision \
             latency from when each request was due; the burst is open loop (arrivals from \
             the seed within {} s, {} connections).\n",
            if self.setup.rate_limits { "on" } else { "off" },
            self.setup.burst_window_s,
            self.setup.open_loop_connections
        );
        let mut header = String::from("| scenario |");
        let mut rule = String::from("|---|");
        for (name, _) in &designs {
            let _ = write!(header, " {name} |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        let row = |out: &mut String, label: String, cell: &dyn Fn(&DesignResult) -> String| {
            let mut line = format!("| {label} |");
            for (_, d) in &designs {
                let _ = write!(line, " {} |", cell(d));
            }
            let _ = writeln!(out, "{line}");
        };
        let mut closed: Vec<String> = designs
            .iter()
            .flat_map(|(_, d)| d.closed_loop.keys().cloned())
            .collect();
        closed.sort_by_key(|k| k.parse::<u64>().unwrap_or(u64::MAX));
        closed.dedup();
        for n in &closed {
            row(
                &mut out,
                format!("closed loop, {n} users: decisions/s (p99 ms)"),
                &|d| {
                    d.closed_loop.get(n).map_or("–".into(), |s| {
                        format!("{:.0} ({:.0})", s.decisions_per_s, s.decision_p99_ms)
                    })
                },
            );
        }
        let mut bursts: Vec<String> = designs
            .iter()
            .flat_map(|(_, d)| d.burst.keys().cloned())
            .collect();
        bursts.sort_by_key(|k| k.parse::<u64>().unwrap_or(u64::MAX));
        bursts.dedup();
        for n in &bursts {
            row(
                &mut out,
                format!("burst of {n}: all decided s / decision p50, p99, max ms / errors"),
                &|d| {
                    d.burst.get(n).map_or("–".into(), |s| {
                        format!(
                            "{:.1} s / {:.0}, {:.0}, {:.0} / {}",
                            s.all_decided_s,
                            s.decision_p50_ms,
                            s.decision_p99_ms,
                            s.decision_max_ms,
                            s.errors + s.undecided
                        )
                    })
                },
            );
        }
        row(
            &mut out,
            "overload: offered → decided /s, p99 ms, errors".into(),
            &|d| {
                d.overload.as_ref().map_or("–".into(), |o| {
                    format!(
                        "{:.0} → {:.0}, {:.0}, {} ({})",
                        o.offered_per_s, o.decided_per_s, o.decision_p99_ms, o.errors, o.verdict
                    )
                })
            },
        );
        row(
            &mut out,
            "fairness: violations / contested seats (max gap ms)".into(),
            &|d| {
                format!(
                    "{} / {} ({:.1})",
                    d.fairness.violations, d.fairness.contested_seats, d.fairness.max_gap_ms
                )
            },
        );
        row(&mut out, "oversold seats".into(), &|d| {
            d.oversold.to_string()
        });
        row(&mut out, "CPU s per 1,000 decisions".into(), &|d| {
            format!("{:.3}", d.cpu_s_per_1000_decisions)
        });
        if !floor.is_empty() {
            let _ = writeln!(
                out,
                "\nFloor, not like for like: the naive designs as raw SQL from the bench \
                 straight to PostgreSQL (no HTTP, no JWT, no validation, no rate limits), \
                 closed loop:\n"
            );
            for (name, per_s, p99) in floor {
                let _ = writeln!(out, "- `{name}` (raw SQL): {per_s:.0}/s, p99 {p99:.1} ms");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_verdicts() {
        let run = |all: f64, errors: u64| ScenarioResult {
            all_decided_s: all,
            errors,
            ..ScenarioResult::default()
        };
        assert_eq!(
            Overload::new(100.0, 200.0, 60.0, run(61.0, 0)).verdict,
            "bounded"
        );
        assert_eq!(
            Overload::new(100.0, 200.0, 60.0, run(120.0, 0)).verdict,
            "queued"
        );
        assert_eq!(
            Overload::new(100.0, 200.0, 60.0, run(61.0, 3)).verdict,
            "collapsed"
        );
    }

    #[test]
    fn the_table_has_a_column_per_design_and_the_floor_beneath() {
        let mut fight = FairFight {
            setup: Setup {
                closed_attempts: 10,
                burst_window_s: 2.0,
                overload_secs: 60.0,
                overload_factor: 2.0,
                open_loop_connections: 2048,
                front_pool: 32,
                seed: 42,
                rate_limits: true,
                arrival_clock: String::new(),
            },
            designs: BTreeMap::new(),
        };
        for design in [FairDesign::ForUpdate, FairDesign::Pipeline] {
            let mut d = DesignResult::new(design);
            d.closed_loop.insert(
                "32".into(),
                ScenarioResult {
                    decisions_per_s: 1234.0,
                    ..ScenarioResult::default()
                },
            );
            fight.designs.insert(design.key().to_string(), d);
        }
        let md = fight.markdown(&[("for_update", 7450.0, 15.0)]);
        assert!(md.contains("| scenario | pipeline | for_update |"), "{md}");
        assert!(
            md.contains("| closed loop, 32 users: decisions/s (p99 ms) | 1234 (0) | 1234 (0) |")
        );
        assert!(md.contains("- `for_update` (raw SQL): 7450/s, p99 15.0 ms"));
    }

    #[test]
    fn numeric_keys_sort_as_numbers() {
        let mut m = BTreeMap::new();
        for k in ["2048", "256", "32"] {
            m.insert(k.to_string(), ());
        }
        let keys: Vec<&String> = sorted(&m).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["32", "256", "2048"]);
    }
}
