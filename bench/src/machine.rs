//! Where and on what the numbers were measured: commit, cores, memory, load.
//!
//! Benchmark numbers without the machine and the commit are not comparable, so every
//! result file records them. Everything here is best effort: a missing `git` or
//! `/proc` gives "unknown" rather than failing a long run at the end.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub mem_gb: f64,
    pub cpu: String,
    /// 1-minute load average when the run started (the machine may be shared).
    pub load_avg_1m_at_start: f64,
    pub note: String,
}

impl Machine {
    pub fn detect(note: &str) -> Self {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0.0);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let load_avg_1m_at_start = std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0.0);
        Self {
            cores,
            mem_gb: (mem_kb / 1_048_576.0 * 10.0).round() / 10.0,
            cpu,
            load_avg_1m_at_start,
            note: note.to_string(),
        }
    }
}

fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git rev-parse HEAD` of the repository containing `repo`.
pub fn git_sha(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
}

/// Whether tracked files differ from HEAD (the numbers are then not exactly HEAD's).
pub fn git_dirty(repo: &Path) -> bool {
    git(repo, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())
}
