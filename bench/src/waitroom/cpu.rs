//! Who used the CPU: the stack's processes, the bench, and everything else on the
//! machine, from `/proc`.
//!
//! The services' pids come from the local stack's pid files (`.dev/run/*.pid`, read at
//! every snapshot: a service may be restarted); PostgreSQL is every process named
//! `postgres` (the postmaster and its backends; the tests' databases live in the same
//! cluster, so their queries count here too). "Other" is the machine's busy time
//! (`/proc/stat`) minus all of those: other people's builds and tests on a shared
//! machine.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::sse::notifier::{cpu_secs_of, ticks_per_sec};

/// The processes followed, in this order in every snapshot.
pub const COMPONENTS: [&str; 7] = [
    "gateway",
    "postgres",
    "broker",
    "consumer",
    "scheduler",
    "redis",
    "bench",
];

/// Cumulative CPU seconds of each component and of the machine at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub secs: [f64; COMPONENTS.len()],
    /// The machine's busy and total CPU seconds (all cores).
    pub machine_busy: f64,
}

pub struct Cpu {
    run_dir: PathBuf,
}

/// The pid in the stack's pid file `{dir}/{name}.pid`.
pub fn pid_file(dir: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Every process whose command name is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

/// CPU seconds of every process whose command name is `name`.
fn secs_of_named(name: &str) -> f64 {
    pids_named(name).into_iter().filter_map(cpu_secs_of).sum()
}

/// Busy seconds of all cores so far (`/proc/stat`: user, nice, system, irq, softirq,
/// steal).
fn machine_busy() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    busy as f64 / ticks_per_sec()
}

impl Cpu {
    /// The stack rooted at `root` (its pid files are in `.dev/run`).
    pub fn new(root: &Path) -> Self {
        Self {
            run_dir: root.join(".dev/run"),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let of = |name: &str| {
            pid_file(&self.run_dir, name)
                .and_then(cpu_secs_of)
                .unwrap_or(0.0)
        };
        Snapshot {
            at: Instant::now(),
            secs: [
                of("gateway"),
                secs_of_named("postgres"),
                of("broker"),
                of("consumer"),
                of("scheduler"),
                of("redis"),
                cpu_secs_of(std::process::id()).unwrap_or(0.0),
            ],
            machine_busy: machine_busy(),
        }
    }
}

/// Cores used by each component between two snapshots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseCpu {
    pub phase: String,
    pub wall_s: f64,
    /// (component, cores), in [`COMPONENTS`] order, then `other` and `machine`.
    pub cores: Vec<(String, f64)>,
}

impl PhaseCpu {
    pub fn between(phase: &str, from: &Snapshot, to: &Snapshot) -> Option<Self> {
        let wall = to.at.checked_duration_since(from.at)?.as_secs_f64();
        if wall < 0.5 {
            return None;
        }
        let round = |x: f64| crate::results::round(x.max(0.0), 2);
        let mut cores: Vec<(String, f64)> = COMPONENTS
            .iter()
            .zip(from.secs.iter().zip(&to.secs))
            .map(|(name, (a, b))| (name.to_string(), (b - a) / wall))
            .collect();
        let ours: f64 = cores.iter().map(|(_, c)| c).sum();
        let machine = (to.machine_busy - from.machine_busy) / wall;
        cores.push(("other".to_string(), machine - ours));
        cores.push(("machine".to_string(), machine));
        Some(Self {
            phase: phase.to_string(),
            wall_s: crate::results::round(wall, 1),
            cores: cores.into_iter().map(|(n, c)| (n, round(c))).collect(),
        })
    }
}
