//! What a design costs: CPU seconds and peak memory of each process that serves it.
//!
//! The same processes are followed for every design, from `/proc` (the helpers of
//! `crate::waitroom::cpu` and `crate::sse::notifier`): the front (the stack's gateway for
//! the pipeline, the design's own `bench front` process otherwise), the broker, the
//! consumer, PostgreSQL (every `postgres` process), Redis (every `redis-server`: the
//! stack's, which the rate limiter uses, and the Redis-first design's private one, which
//! may be killed and restarted mid-run) and the bench client itself. CPU is the
//! difference of two snapshots around a run, per process id (a process that started
//! during the run counts from zero; one that ended during it is lost); memory is the
//! largest resident size seen by a sampler every 250 ms during it (PostgreSQL's is the
//! sum over its processes, so shared buffers count more than once: compare it between
//! designs, not with the machine's memory).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sse::notifier::{cpu_secs_of, rss_kb_of};
use crate::waitroom::cpu::{pid_file, pids_named};

/// The processes followed, in this order everywhere.
pub const PROCESSES: [&str; 6] = ["front", "broker", "consumer", "postgres", "redis", "bench"];
const N: usize = PROCESSES.len();

const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Where to find each process of one run.
#[derive(Debug, Clone)]
pub struct Processes {
    run_dir: PathBuf,
    /// The front's pid; `None`: the stack's gateway.
    front: Option<u32>,
}

/// CPU seconds so far of each process of each group.
type CpuSnapshot = [Vec<(u32, f64)>; N];

impl Processes {
    pub fn new(root: &Path, front: Option<u32>) -> Self {
        Self {
            run_dir: root.join(".dev/run"),
            front,
        }
    }

    fn pids(&self) -> [Vec<u32>; N] {
        let file = |name: &str| {
            pid_file(&self.run_dir, name)
                .into_iter()
                .collect::<Vec<_>>()
        };
        let mut redis = pids_named("redis-server");
        for pid in file("redis") {
            if !redis.contains(&pid) {
                redis.push(pid);
            }
        }
        [
            self.front.map_or_else(|| file("gateway"), |pid| vec![pid]),
            file("broker"),
            file("consumer"),
            pids_named("postgres"),
            redis,
            vec![std::process::id()],
        ]
    }

    fn cpu_secs(&self) -> CpuSnapshot {
        self.pids().map(|pids| {
            pids.into_iter()
                .filter_map(|pid| Some((pid, cpu_secs_of(pid)?)))
                .collect()
        })
    }

    fn rss_kb(&self) -> [u64; N] {
        self.pids()
            .map(|pids| pids.into_iter().filter_map(rss_kb_of).sum())
    }
}

/// CPU and peak memory of one run, per process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub cpu_s: [f64; N],
    pub peak_rss_kb: [u64; N],
}

impl Cost {
    /// Add another run: CPU adds up, peaks are the larger.
    pub fn add(&mut self, other: &Cost) {
        for i in 0..N {
            self.cpu_s[i] += other.cpu_s[i];
            self.peak_rss_kb[i] = self.peak_rss_kb[i].max(other.peak_rss_kb[i]);
        }
    }
}

/// Following a run's processes from [`Meter::start`] to [`Meter::stop`].
pub struct Meter {
    processes: Processes,
    from: CpuSnapshot,
    started: Instant,
    stop: oneshot::Sender<()>,
    sampler: JoinHandle<[u64; N]>,
}

impl Meter {
    pub fn start(processes: Processes) -> Self {
        let from = processes.cpu_secs();
        let (stop, mut stopped) = oneshot::channel();
        let watched = processes.clone();
        let sampler = tokio::spawn(async move {
            let mut peak = [0u64; N];
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break peak,
                    _ = every.tick() => {
                        for (p, now) in peak.iter_mut().zip(watched.rss_kb()) {
                            *p = (*p).max(now);
                        }
                    }
                }
            }
        });
        Self {
            processes,
            from,
            started: Instant::now(),
            stop,
            sampler,
        }
    }

    /// Stop following: the CPU used since the start, and the peaks (a sampler that
    /// failed leaves them at 0).
    pub async fn stop(self) -> (Cost, Duration) {
        let to = self.processes.cpu_secs();
        let wall = self.started.elapsed();
        let _ = self.stop.send(());
        let peak_rss_kb = self.sampler.await.unwrap_or_default();
        let mut cpu_s = [0.0; N];
        for (c, (from, to)) in cpu_s.iter_mut().zip(self.from.iter().zip(&to)) {
            *c = used_between(from, to);
        }
        (Cost { cpu_s, peak_rss_kb }, wall)
    }
}

/// CPU seconds used between two snapshots of a group, process by process.
fn used_between(from: &[(u32, f64)], to: &[(u32, f64)]) -> f64 {
    to.iter()
        .map(|(pid, b)| {
            let a = from.iter().find(|(p, _)| p == pid).map_or(0.0, |(_, a)| *a);
            (b - a).max(0.0)
        })
        .sum()
}

/// A design's cost over all its runs, as reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CostResult {
    /// Decisions made in the runs measured.
    pub decisions: u64,
    /// The processes that serve the design (the broker and the consumer serve the
    /// pipeline only; for the naive designs they idle beside and are shown, not counted).
    pub counted: Vec<String>,
    /// CPU seconds per 1,000 decisions of each process followed.
    pub cpu_s_per_1000_decisions_by_process: Vec<(String, f64)>,
    /// CPU seconds of each process over the runs.
    pub cpu_s_by_process: Vec<(String, f64)>,
    /// Largest resident size seen of each process, MB.
    pub peak_rss_mb_by_process: Vec<(String, f64)>,
}

impl CostResult {
    pub fn new(cost: &Cost, decisions: u64, counted: &[&str]) -> Self {
        let per_1000 = |s: f64| crate::results::round(s * 1_000.0 / decisions.max(1) as f64, 4);
        let named = |f: &dyn Fn(usize) -> f64| -> Vec<(String, f64)> {
            PROCESSES
                .iter()
                .enumerate()
                .map(|(i, name)| (name.to_string(), f(i)))
                .collect()
        };
        Self {
            decisions,
            counted: counted.iter().map(|s| s.to_string()).collect(),
            cpu_s_per_1000_decisions_by_process: named(&|i| per_1000(cost.cpu_s[i])),
            cpu_s_by_process: named(&|i| crate::results::round(cost.cpu_s[i], 2)),
            peak_rss_mb_by_process: named(&|i| {
                crate::results::round(cost.peak_rss_kb[i] as f64 / 1_024.0, 1)
            }),
        }
    }

    /// CPU seconds per 1,000 decisions of the processes counted for the design.
    pub fn per_1000_counted(&self) -> f64 {
        let sum: f64 = self
            .cpu_s_per_1000_decisions_by_process
            .iter()
            .filter(|(name, _)| self.counted.contains(name))
            .map(|(_, s)| s)
            .sum();
        crate::results::round(sum, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_counted_per_process_new_ones_from_zero() {
        let from = [(1, 10.0), (2, 5.0), (3, 7.0)];
        // 2 ended, 4 started during the run.
        let to = [(1, 12.0), (3, 7.5), (4, 1.0)];
        assert_eq!(used_between(&from, &to), 3.5);
    }

    #[test]
    fn costs_add_cpu_and_keep_the_highest_peak() {
        let mut a = Cost {
            cpu_s: [1.0; N],
            peak_rss_kb: [10; N],
        };
        let mut b = Cost::default();
        b.cpu_s[0] = 2.0;
        b.peak_rss_kb[0] = 50;
        a.add(&b);
        assert_eq!(a.cpu_s[0], 3.0);
        assert_eq!(a.peak_rss_kb[0], 50);
        assert_eq!(a.peak_rss_kb[1], 10);
    }

    #[test]
    fn only_the_counted_processes_make_the_total() {
        let cost = Cost {
            cpu_s: [1.0, 5.0, 5.0, 2.0, 0.5, 0.5],
            ..Cost::default()
        };
        let r = CostResult::new(&cost, 2_000, &["front", "postgres", "redis", "bench"]);
        assert_eq!(r.per_1000_counted(), 2.0);
        let all = CostResult::new(&cost, 2_000, &PROCESSES);
        assert_eq!(all.per_1000_counted(), 7.0);
    }
}
