//! Organisers watching the on-sale: control-room streams open through the whole storm.
//!
//! Each watcher is one `GET /v1/admin/events/{id}/control-room` (SSE) counting the `stats`
//! updates it receives and the bytes; the longest gap between two updates says whether the
//! page stayed live while the storm ran. The gateway's cost of serving them comes from its
//! own metrics, read before and after: how many pictures it computed and how long they
//! took (`seatq_control_room_frame_duration_seconds`) — one per second per event however
//! many watch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::BenchError;
use crate::results::round;

const FRAME_METRIC: &str = "seatq_control_room_frame_duration_seconds";

/// What the watchers saw, and what the gateway spent on them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlRoomLoad {
    pub watchers: usize,
    pub watched_secs: f64,
    /// `stats` updates per second, the slowest watcher's and the mean.
    pub updates_per_s_min: f64,
    pub updates_per_s_mean: f64,
    /// The longest time any watcher went without an update.
    pub max_gap_ms: f64,
    pub bytes_per_s_per_watcher: f64,
    /// Pictures the gateway computed per second (for every watcher together).
    pub frames_per_s: f64,
    /// Mean time to compute one picture, and the share of one core that is per second.
    pub frame_mean_ms: f64,
    pub frame_core_share: f64,
    /// Watchers whose stream broke before the end.
    pub broken: usize,
}

struct Seen {
    updates: AtomicU64,
    bytes: AtomicU64,
    max_gap: Mutex<Duration>,
    broken: AtomicBool,
}

pub struct Watchers {
    started: Instant,
    seen: Vec<Arc<Seen>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics_url: String,
    http: reqwest::Client,
    before: Option<(f64, f64)>,
}

/// (sum of seconds, count) of the frame histogram, from the gateway's `/metrics`.
async fn frame_totals(http: &reqwest::Client, url: &str) -> Option<(f64, f64)> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    let value = |suffix: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{FRAME_METRIC}{suffix}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((value("_sum").unwrap_or(0.0), value("_count").unwrap_or(0.0)))
}

impl Watchers {
    /// Open `n` control-room streams of `event` as `admin`.
    pub async fn open(
        gateway: &str,
        event: Uuid,
        admin: &str,
        n: usize,
    ) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder().build()?;
        let metrics_url = format!("{gateway}/metrics");
        let before = frame_totals(&http, &metrics_url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut seen = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let url = format!("{gateway}/v1/admin/events/{event}/control-room?access_token={admin}");
        for _ in 0..n {
            let s = Arc::new(Seen {
                updates: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                max_gap: Mutex::new(Duration::ZERO),
                broken: AtomicBool::new(false),
            });
            seen.push(Arc::clone(&s));
            let (http, url, stop) = (http.clone(), url.clone(), Arc::clone(&stop));
            tasks.push(tokio::spawn(async move {
                let Ok(response) = http.get(&url).send().await else {
                    s.broken.store(true, Ordering::Relaxed);
                    return;
                };
                let mut body = response.bytes_stream();
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let chunk = tokio::time::timeout(Duration::from_millis(500), body.next()).await;
                    let bytes = match chunk {
                        Err(_) => continue,
                        Ok(Some(Ok(bytes))) => bytes,
                        Ok(_) => {
                            s.broken.store(true, Ordering::Relaxed);
                            return;
                        }
                    };
                    s.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    let updates = bytes
                        .windows(b"event: stats".len())
                        .filter(|w| *w == b"event: stats")
                        .count();
                    if updates > 0 {
                        let now = Instant::now();
                        let mut gap = s.max_gap.lock().unwrap_or_else(|e| e.into_inner());
                        *gap = (*gap).max(now - last);
                        last = now;
                        s.updates.fetch_add(updates as u64, Ordering::Relaxed);
                    }
                }
            }));
        }
        Ok(Self {
            started: Instant::now(),
            seen,
            stop,
            tasks,
            metrics_url,
            http,
            before,
        })
    }

    pub async fn finish(self) -> ControlRoomLoad {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let after = frame_totals(&self.http, &self.metrics_url).await;
        let rates: Vec<f64> = self
            .seen
            .iter()
            .map(|s| s.updates.load(Ordering::Relaxed) as f64 / secs)
            .collect();
        let n = rates.len().max(1) as f64;
        let (frames, frame_secs) = match (self.before, after) {
            (Some(b), Some(a)) => (a.1 - b.1, a.0 - b.0),
            _ => (0.0, 0.0),
        };
        ControlRoomLoad {
            watchers: self.seen.len(),
            watched_secs: round(secs, 1),
            updates_per_s_min: round(
                rates.iter().copied().fold(f64::INFINITY, f64::min).min(1e9),
                2,
            ),
            updates_per_s_mean: round(rates.iter().sum::<f64>() / n, 2),
            max_gap_ms: round(
                self.seen
                    .iter()
                    .map(|s| s.max_gap.lock().map_or(0.0, |g| g.as_secs_f64() * 1000.0))
                    .fold(0.0, f64::max),
                0,
            ),
            bytes_per_s_per_watcher: round(
                self.seen
                    .iter()
                    .map(|s| s.bytes.load(Ordering::Relaxed) as f64)
                    .sum::<f64>()
                    / n
                    / secs,
                0,
            ),
            frames_per_s: round(frames / secs, 2),
            frame_mean_ms: round(
                if frames > 0.0 {
                    frame_secs / frames * 1000.0
                } else {
                    0.0
                },
                1,
            ),
            frame_core_share: round(frame_secs / secs, 4),
            broken: self
                .seen
                .iter()
                .filter(|s| s.broken.load(Ordering::Relaxed))
                .count(),
        }
    }
}
