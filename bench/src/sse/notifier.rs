//! The standalone notifier under test: started by the scenario as its own process, with
//! the local stack's settings, and watched through `/proc` and its stats route.
//!
//! The gateway of the local stack embeds a notifier too, but that one shares its process
//! (and its memory and cores) with the whole HTTP API, so nothing measured there would be
//! the notifier's. This one is `seatq-notifier` alone, as production runs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STATS_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// `GET /v1/notifier/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubStats {
    /// Streams registered.
    pub clients: u64,
    /// Clients disconnected because their queue was full (they stopped reading).
    pub dropped_slow: u64,
    /// Seat-event messages read from the broker (not messages sent to clients).
    pub messages: u64,
}

/// How the notifier ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    /// From SIGTERM to exit.
    pub after_ms: f64,
    /// It had to be killed (did not exit within 20 s of SIGTERM).
    pub killed: bool,
    pub exit: String,
}

pub struct NotifierProcess {
    child: tokio::process::Child,
    pub pid: u32,
    /// `host:port` it listens on.
    pub addr: String,
    pub log: PathBuf,
}

/// A port free right now on loopback (the notifier binds it a moment later).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl NotifierProcess {
    /// Start `bin` the way the local stack's services are started: the variables of
    /// `deploy/local/lib.sh`, `deploy/local/seatq.toml`, not embedded, on its own port,
    /// with its descriptor limit raised to the hard limit; output appended to `log`.
    pub async fn start(root: &Path, bin: &Path, log: &Path) -> Result<Self, BenchError> {
        let port = free_port().map_err(|e| BenchError::io("finding a free port", e))?;
        let addr = format!("127.0.0.1:{port}");
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| BenchError::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| BenchError::io(format!("opening {}", log.display()), e))?;
        let lib = root.join("deploy/local/lib.sh");
        let child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" >/dev/null && ulimit -n "$(ulimit -Hn)" && exec "$2""#)
            .arg("seatq-bench-notifier")
            .arg(&lib)
            .arg(bin)
            .current_dir(root)
            .env("SEATQ_CONFIG", root.join("deploy/local/seatq.toml"))
            .env("SEATQ_NOTIFIER__EMBEDDED", "false")
            .env("SEATQ_NOTIFIER__LISTEN", &addr)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", bin.display()), e))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Stack("the notifier exited at once".into()))?;
        Ok(Self {
            child,
            pid,
            addr,
            log: log.to_path_buf(),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn proc_file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.pid)).ok()
    }

    /// Wait until `/readyz` says it has read the seat events up to where they ended at
    /// its start. Returns how long that took.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<Duration, BenchError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Stack(format!(
                    "the notifier exited ({status}) before it was ready; see {}",
                    self.log.display()
                )));
            }
            if let Ok(r) = http
                .get(self.url("/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BenchError::Stack(format!(
                    "the notifier was not ready within {READY_TIMEOUT:?}; see {}",
                    self.log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let comm = self.proc_file("comm").unwrap_or_default();
        if comm.trim() != "seatq-notifier" {
            return Err(BenchError::Stack(format!(
                "pid {} is {:?}, not the notifier",
                self.pid,
                comm.trim()
            )));
        }
        Ok(started.elapsed())
    }

    pub fn rss_kb(&self) -> Option<u64> {
        vm_rss_kb(&self.proc_file("status")?)
    }

    /// Open descriptors.
    pub fn fds(&self) -> Option<usize> {
        Some(
            std::fs::read_dir(format!("/proc/{}/fd", self.pid))
                .ok()?
                .count(),
        )
    }

    /// The soft `RLIMIT_NOFILE` it runs with, and the hard one.
    pub fn fd_limit(&self) -> Option<(u64, u64)> {
        max_open_files(&self.proc_file("limits")?)
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs_of(self.pid)
    }

    pub async fn stats(&self, http: &reqwest::Client) -> Result<HubStats, BenchError> {
        let r = http
            .get(self.url("/v1/notifier/stats"))
            .timeout(STATS_TIMEOUT)
            .send()
            .await?;
        Ok(
            crate::pipeline::api::expect(r, reqwest::StatusCode::OK, "notifier stats")
                .await?
                .json()
                .await?,
        )
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, as an orchestrator stops it; SIGKILL if it has not exited in 20 s.
    pub async fn stop(mut self) -> Stopped {
        let started = Instant::now();
        if let Ok(Some(status)) = self.child.try_wait() {
            return Stopped {
                after_ms: 0.0,
                killed: false,
                exit: format!("had already exited: {status}"),
            };
        }
        // Our own child, not reaped yet: the pid is still its.
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        let (killed, exit) = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => (false, status.to_string()),
            Ok(Err(e)) => (false, format!("wait failed: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                (true, "killed after 20 s".to_string())
            }
        };
        Stopped {
            after_ms: crate::results::millis(started.elapsed()),
            killed,
            exit,
        }
    }
}

/// `VmRSS` of a `/proc/<pid>/status`, in kB.
pub fn vm_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (soft, hard) "Max open files" of a `/proc/<pid>/limits`.
pub fn max_open_files(limits: &str) -> Option<(u64, u64)> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut values = rest.split_whitespace();
    let soft = values.next()?.parse().ok()?;
    let hard = values.next()?.parse().ok()?;
    Some((soft, hard))
}

/// utime + stime (clock ticks) of a `/proc/<pid>/stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is the first after the name; utime and stime are 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux).
pub fn ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU time (user + system) of any process so far, in seconds.
pub fn cpu_secs_of(pid: u32) -> Option<f64> {
    let ticks = cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(ticks as f64 / ticks_per_sec())
}

/// VmRSS of any process, in kB.
pub fn rss_kb_of(pid: u32) -> Option<u64> {
    vm_rss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        let status =
            "Name:\tseatq-notifier\nVmPeak:\t  120000 kB\nVmRSS:\t   31732 kB\nThreads:\t8\n";
        assert_eq!(vm_rss_kb(status), Some(31_732));
        assert_eq!(vm_rss_kb("Name: x\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax processes             unlimited            unlimited            processes \nMax open files            20000                20000                files     \n";
        assert_eq!(max_open_files(limits), Some((20_000, 20_000)));
        let stat = "1226 (seatq notif) S 1 1226 1226 0 -1 4194560 5000 0 0 0 120 35 0 0 20 0 8 0 400000 1159916 7933 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(155));
        assert_eq!(cpu_ticks("garbage"), None);
    }
}
