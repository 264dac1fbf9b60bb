//! SSE fan-out: many `GET /v1/events/{id}/stream` clients on ONE standalone notifier
//! while a storm of seat changes runs on the event they follow.
//!
//! 1. Start `seatq-notifier` on its own port with the local stack's settings
//!    ([`notifier`]); note its memory and descriptors once it is ready.
//! 2. A fresh event ([`crate::lifecycle::plan::venue`], 2,000 seats by default).
//! 3. Worker processes ([`worker`]) hold the streams, each opened from the seat map's
//!    `position.next_offset` and counted open once it received `ready`.
//! 4. For each phase (e.g. 1,000 streams, then 20,000): open streams up to its size,
//!    measure the notifier's and the workers' memory, run the storm ([`storm`]: holds and
//!    cancels through the gateway), wait until the consumer has applied everything and
//!    every stream has received the last change, then read the changes' decision times
//!    (SQL) and their deltas' publish times (the seat-events topic), and ask each worker
//!    for latencies, counts and the check of every stream's seat map against
//!    `GET /v1/events/{id}/seats`.
//!
//! Latencies (all on one machine's clock, µs; [`measure`]):
//! - decided → received: a change is a hold granted or cancelled, decided by the
//!   consumer at `requests.decided_at` (stamped when its batch starts, before the
//!   transaction commits); a stream has it when it receives the first message whose id
//!   (`next_offset`) is past the command's offset. One sample per (stream, change).
//! - published → received: a `seat_status_changed` delta's record timestamp in the seat
//!   events (the relay's producer stamps it, ms precision) to the first message whose id
//!   is at least its `next_offset`. One sample per (stream, delta).
//! - first → each: a message's receipt by each stream minus its first receipt by any
//!   stream: the spread of one fan-out.

pub mod events;
pub mod measure;
pub mod notifier;
pub mod parse;
pub mod protocol;
pub mod sockets;
pub mod storm;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use uuid::Uuid;

use crate::error::BenchError;
use crate::machine::Machine;
use crate::pipeline::api::{EventRules, Tokens};
use crate::pipeline::{self, decisions};
use crate::results::{round, FdCap, SseNotifier, SsePhase, SseResult};
use crate::runner::new_histogram;
use crate::stack::Stack;

use events::{SeatEvents, SeatMap};
use measure::{Percentiles, Unattributed};
use notifier::{HubStats, NotifierProcess};
use protocol::{Done, Opened, Progress, Reply, ReportRequest, Request, StateCheck, WorkerReport};
use storm::Storm;

/// Descriptors kept free on the notifier for the bench's own requests to it.
const FD_RESERVE: usize = 16;
/// How long a stream may take to get `ready` while opening.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long every stream may take to receive the last change after the storm.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// How one SSE run is shaped (validated by the command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// Streams open in each phase (cumulative, increasing).
    pub streams: Vec<usize>,
    pub storm_secs: f64,
    /// Seat changes per second asked of the storm.
    pub rate: f64,
    pub actors: usize,
    pub seats: i32,
    pub streams_per_worker: usize,
    /// Streams each worker opens at a time.
    pub open_concurrency: usize,
    pub notifier_bin: Option<PathBuf>,
    /// Open as many streams as asked even past the notifier's descriptor limit.
    pub no_fd_cap: bool,
    /// Streams per HTTP/2 connection for phases past the notifier's descriptors over
    /// HTTP/1.1; 0: cap those phases instead.
    pub http2_per_connection: usize,
    pub seed: u64,
    pub stall: Duration,
}

/// One stream-holding worker process.
struct Worker {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    streams: usize,
}

impl Worker {
    async fn spawn(addr: &str, event: Uuid) -> Result<Self, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::io("finding the bench executable", e))?;
        // A stream is a descriptor: raise the soft limit to the hard one, as for the
        // notifier.
        let mut child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" && exec "$0" "$@""#)
            .arg(exe)
            .args(["sse-worker", "--addr", addr])
            .arg("--path")
            .arg(format!("/v1/events/{event}/stream"))
            .arg("--event")
            .arg(event.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io("starting an sse worker", e))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| stack_err("worker stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| stack_err("worker stdout"))?;
        Ok(Self {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            streams: 0,
        })
    }

    async fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, BenchError> {
        let line = serde_json::to_string(request)? + "\n";
        let failed = |what: String| BenchError::Stack(format!("sse worker {}: {what}", self.pid));
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| failed(format!("sending a request: {e}")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| failed(format!("sending a request: {e}")))?;
        let answer = self
            .stdout
            .next_line()
            .await
            .map_err(|e| failed(format!("reading its answer: {e}")))?
            .ok_or_else(|| failed("exited".into()))?;
        match serde_json::from_str::<Reply<T>>(&answer)? {
            Reply::Ok { ok } => Ok(ok),
            Reply::Err { error } => Err(failed(error)),
        }
    }

    fn rss_kb(&self) -> u64 {
        notifier::rss_kb_of(self.pid).unwrap_or(0)
    }
}

fn stack_err(what: &str) -> BenchError {
    BenchError::Stack(format!("no {what}"))
}

/// Ask every worker the same thing at once.
async fn all<T: DeserializeOwned>(
    workers: &mut [Worker],
    request: &Request,
) -> Result<Vec<T>, BenchError> {
    futures::future::try_join_all(workers.iter_mut().map(|w| w.call::<T>(request))).await
}

fn workers_rss_kb(workers: &[Worker]) -> u64 {
    workers.iter().map(Worker::rss_kb).sum()
}

fn workers_cpu_secs(workers: &[Worker]) -> f64 {
    workers
        .iter()
        .filter_map(|w| notifier::cpu_secs_of(w.pid))
        .sum()
}

/// Samples of the streams' socket queues every 2 s until `finish`.
struct QueueSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<sockets::Sample>>,
}

fn sample_queues(port: u16) -> QueueSampler {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await; // the first tick is now: start a period in
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {
                    if let Ok(Some(s)) = tokio::task::spawn_blocking(move || sockets::read(port)).await {
                        samples.push(s);
                    }
                }
            }
        }
        samples
    });
    QueueSampler { stop, task }
}

impl QueueSampler {
    async fn finish(self) -> sockets::Queues {
        let _ = self.stop.send(());
        sockets::Queues::of(&self.task.await.unwrap_or_default())
    }
}

/// Gaps between consecutive first receipts (µs since the epoch, any order).
fn gaps(firsts: &HashMap<i64, i64>) -> Percentiles {
    let mut at: Vec<i64> = firsts.values().copied().collect();
    at.sort_unstable();
    let mut h = new_histogram();
    for w in at.windows(2) {
        h.saturating_record((w[1] - w[0]).max(0) as u64);
    }
    Percentiles::of(&h)
}

/// The notifier binary: the one given, or a release build made now (cargo does nothing
/// if it is current).
async fn notifier_bin(root: &Path, given: Option<&Path>) -> Result<PathBuf, BenchError> {
    if let Some(bin) = given {
        return Ok(bin.to_path_buf());
    }
    println!("sse: building seatq-notifier (cargo build --release -p seatq-notifier)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = tokio::process::Command::new(cargo)
        .args(["build", "--release", "-p", "seatq-notifier"])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| BenchError::io("running cargo", e))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(BenchError::Stack(format!(
            "building seatq-notifier failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(root.join("target/release/seatq-notifier"))
}

fn modified(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
        .unwrap_or_else(|_| "unknown".into())
}

/// One phase: the streams open in it, and whether the ones it adds share HTTP/2
/// connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PhasePlan {
    streams: usize,
    http2: bool,
}

/// The streams each phase can have. Over HTTP/1.1 a stream is a connection, one of the
/// notifier's descriptors; a phase past them adds its streams over HTTP/2 connections
/// (`http2` streams each) or, with `http2` 0, is cut to what the descriptors allow (unless
/// told to try anyway).
fn plan_streams(
    asked: &[usize],
    fd_limit: u64,
    baseline_fds: usize,
    no_cap: bool,
    http2: usize,
) -> (Vec<PhasePlan>, Option<FdCap>) {
    let budget = (fd_limit as usize).saturating_sub(baseline_fds + FD_RESERVE);
    let max = asked.iter().copied().max().unwrap_or(0);
    let plan = |streams: usize, http2: bool| PhasePlan { streams, http2 };
    if no_cap || max <= budget {
        return (asked.iter().map(|&n| plan(n, false)).collect(), None);
    }
    if http2 > 0 {
        return (asked.iter().map(|&n| plan(n, n > budget)).collect(), None);
    }
    let mut planned: Vec<PhasePlan> = asked.iter().map(|&n| plan(n.min(budget), false)).collect();
    planned.dedup();
    let cap = FdCap {
        requested: max,
        capped_to: budget,
        fd_limit,
        baseline_fds,
        reserve: FD_RESERVE,
    };
    (planned, Some(cap))
}

/// Split `count` new streams over workers with room, fewest streams first.
fn deal(workers: &[usize], per_worker: usize, count: usize) -> Vec<usize> {
    let mut have = workers.to_vec();
    let mut out = vec![0; workers.len()];
    for _ in 0..count {
        let Some((i, _)) = have
            .iter()
            .enumerate()
            .filter(|(_, n)| **n < per_worker)
            .min_by_key(|(_, n)| **n)
        else {
            break;
        };
        have[i] += 1;
        out[i] += 1;
    }
    out
}

/// Warnings and errors in the notifier's log since byte `from`: how many, and the first.
fn log_warnings(log: &Path, from: u64) -> (u64, Option<String>) {
    let Ok(text) = std::fs::read(log) else {
        return (0, None);
    };
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    let mut count = 0;
    let mut first = None;
    for line in text.lines() {
        let plain = strip_ansi(line);
        if plain.contains(" WARN ") || plain.contains(" ERROR ") {
            count += 1;
            first.get_or_insert(plain);
        }
    }
    (count, first)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub async fn run(stack: &Stack, root: &Path, o: &Options) -> Result<SseResult, BenchError> {
    let started = Instant::now();
    let bin = notifier_bin(root, o.notifier_bin.as_deref()).await?;
    let http = pipeline::http_client()?;
    let limits = &stack.settings.rate_limits;
    let actors = storm::actors_for(
        o.actors,
        o.rate,
        limits.enabled.then_some(limits.holds.user_rate),
    );
    let tokens = Arc::new(Tokens::mint(
        &stack.settings.auth.jwt_secret,
        actors as u32,
    )?);
    let venue = crate::lifecycle::plan::venue(o.seats);
    let rules = EventRules::FLASH_SALE;
    let event = pipeline::new_event(stack, &http, &tokens, &venue, "sse fan-out", rules).await?;
    println!(
        "sse: event {} ({} seats, partition {})",
        event.id,
        venue.seat_count(),
        event.partition
    );

    let log = root.join(".dev/logs/bench-sse-notifier.log");
    let log_from = std::fs::metadata(&log).map_or(0, |m| m.len());
    let mut notifier = NotifierProcess::start(root, &bin, &log).await?;
    let ready = notifier.wait_ready(&http).await?;
    let (fd_soft, fd_hard) = notifier.fd_limit().unwrap_or((0, 0));
    let baseline_fds = notifier.fds().unwrap_or(0);
    let baseline_rss = notifier.rss_kb().unwrap_or(0);
    let n = &stack.settings.notifier;
    let notifier_info = SseNotifier {
        bin: bin.display().to_string(),
        bin_modified: modified(&bin),
        addr: notifier.addr.clone(),
        log: log.display().to_string(),
        fd_limit: (fd_soft, fd_hard),
        baseline_fds,
        baseline_rss_kb: baseline_rss,
        ready_s: round(ready.as_secs_f64(), 3),
        coalesce_ms: n.coalesce_ms,
        client_buffer: n.client_buffer,
        socket_send_buffer: n.socket_send_buffer,
        max_clients: n.max_clients,
        heartbeat_secs: n.heartbeat_secs,
    };
    println!(
        "sse: notifier pid {} on {} ready in {:.1} s; {} kB RSS, {} of {} descriptors (hard {}); log {}",
        notifier.pid,
        notifier.addr,
        ready.as_secs_f64(),
        baseline_rss,
        baseline_fds,
        fd_soft,
        fd_hard,
        log.display()
    );
    let (planned, fd_cap) = plan_streams(
        &o.streams,
        fd_soft,
        baseline_fds,
        o.no_fd_cap,
        o.http2_per_connection,
    );
    if let Some(cap) = &fd_cap {
        println!(
            "sse: the notifier may open {} descriptors (RLIMIT_NOFILE, hard limit {}) and uses {} already: {} streams asked, {} planned (--sse-no-fd-cap to try anyway)",
            cap.fd_limit, fd_hard, cap.baseline_fds, cap.requested, cap.capped_to
        );
    }

    let max = planned.iter().map(|p| p.streams).max().unwrap_or(0);
    let worker_count = max.div_ceil(o.streams_per_worker.max(1)).max(1);
    let mut workers = Vec::with_capacity(worker_count);
    for _ in 0..worker_count {
        workers.push(Worker::spawn(&notifier.addr, event.id).await?);
    }
    // Let them start (the runtime, the stdin reader) before taking their baseline.
    let _: Vec<Progress> = all(&mut workers, &Request::Progress).await?;
    let workers_baseline = workers_rss_kb(&workers);

    let seat_events = SeatEvents::new(stack)?;
    let storm = Arc::new(Storm::new(
        pipeline::user_clients()?,
        &stack.gateway,
        event.id,
        Arc::clone(&tokens),
        Arc::new(venue.clone()),
        storm::Cast {
            actors,
            max_seats_per_user: rules.max_seats_per_user as usize,
            seed: o.seed,
        },
    ));

    let mut result = SseResult {
        event_id: event.id,
        seats: venue.seat_count(),
        notifier: notifier_info,
        requested_streams: o.streams.clone(),
        fd_cap,
        http2_streams_per_connection: o.http2_per_connection,
        workers: worker_count,
        streams_per_worker: o.streams_per_worker,
        storm_secs: o.storm_secs,
        storm_rate: o.rate,
        actors,
        phases: Vec::new(),
        stopped: None,
        notifier_log_warnings: 0,
        first_notifier_warning: None,
        problems: Vec::new(),
        wall_s: 0.0,
    };
    let mut env = Env {
        stack,
        http: &http,
        event,
        notifier: &mut notifier,
        workers: &mut workers,
        seat_events: &seat_events,
        storm: &storm,
        o,
        baseline_rss,
        workers_baseline,
        next_map: 0,
        last: None,
        http2_streams: 0,
        http2_connections: 0,
    };
    for (phase, &plan) in planned.iter().enumerate() {
        let target = plan.streams;
        match env.phase(phase as u32, plan).await {
            Ok(p) => {
                print_phase(&p);
                result.phases.push(p);
            }
            Err(e) => {
                eprintln!("sse: phase with {target} streams failed: {e}");
                result
                    .problems
                    .push(format!("phase with {target} streams: {e}"));
                break;
            }
        }
        if !env.notifier.alive() {
            result
                .problems
                .push("the notifier exited during the run".into());
            break;
        }
    }
    for w in workers.iter_mut() {
        let _ = w.call::<Done>(&Request::Close).await;
    }
    for mut w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await;
    }
    let stopped = notifier.stop().await;
    let (warnings, first) = log_warnings(&log, log_from);
    result.stopped = Some(stopped);
    result.notifier_log_warnings = warnings;
    result.first_notifier_warning = first;
    result.wall_s = round(started.elapsed().as_secs_f64(), 3);
    Ok(result)
}

fn print_phase(p: &SsePhase) {
    println!(
        "sse: {} streams: notifier {:.1} kB/stream, client {:.1} kB/stream; {} messages, {:.0}/s; decided→received p50 {:.0} p99 {:.0} ms; published→received p50 {:.0} p99 {:.0} ms; first→each p99 {:.0} ms; dropped {}, disconnects {}; state {}/{} match",
        p.streams,
        p.notifier_kb_per_stream,
        p.client_kb_per_stream,
        p.messages,
        p.messages_per_s,
        p.decided_to_received.p50_ms,
        p.decided_to_received.p99_ms,
        p.published_to_received.p50_ms,
        p.published_to_received.p99_ms,
        p.first_to_each.p99_ms,
        p.dropped_slow,
        p.disconnects,
        p.state.matching,
        p.state.checked,
    );
}

/// Everything a phase needs.
struct Env<'a> {
    stack: &'a Stack,
    http: &'a reqwest::Client,
    event: pipeline::Event,
    notifier: &'a mut NotifierProcess,
    workers: &'a mut Vec<Worker>,
    seat_events: &'a SeatEvents,
    storm: &'a Arc<Storm>,
    o: &'a Options,
    baseline_rss: u64,
    workers_baseline: u64,
    next_map: u32,
    /// The notifier's VmRSS after the last phase's storm, and its streams.
    last: Option<(u64, usize)>,
    /// Streams opened over HTTP/2 so far, and the connections they share.
    http2_streams: usize,
    http2_connections: usize,
}

impl Env<'_> {
    /// A fresh seat map, sent to every worker; returns it with its id.
    async fn map(&mut self) -> Result<(SeatMap, u32), BenchError> {
        let map =
            events::seat_map(self.stack, self.http, self.event.id, self.event.partition).await?;
        let id = self.next_map;
        self.next_map += 1;
        let request = Request::Map {
            id,
            sections: map.sections.clone(),
        };
        let _: Vec<Done> = all(self.workers, &request).await?;
        Ok((map, id))
    }

    async fn stats(&self) -> Option<HubStats> {
        match self.notifier.stats(self.http).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("sse: notifier stats: {e}");
                None
            }
        }
    }

    async fn phase(&mut self, phase: u32, plan: PhasePlan) -> Result<SsePhase, BenchError> {
        let o = self.o;
        let target = plan.streams;
        let http2 = if plan.http2 {
            o.http2_per_connection
        } else {
            0
        };
        let load = Machine::detect("").load_avg_1m_at_start;
        let _: Vec<Done> = all(self.workers, &Request::Phase { phase }).await?;

        // Open streams up to `target`, from a map that reflects everything applied.
        let have: usize = self.workers.iter().map(|w| w.streams).sum();
        let mut opened = Opened::default();
        if target > have {
            let (map, map_id) = self.map().await?;
            let counts: Vec<usize> = self.workers.iter().map(|w| w.streams).collect();
            let deal = deal(&counts, o.streams_per_worker, target - have);
            println!(
                "sse: opening {} streams (to {target}) from offset {} over {} workers{}",
                target - have,
                map.next_offset,
                self.workers.len(),
                if http2 > 0 {
                    format!(", over HTTP/2 with {http2} streams per connection")
                } else {
                    String::new()
                }
            );
            let started = Instant::now();
            let results = futures::future::try_join_all(self.workers.iter_mut().zip(deal).map(
                |(w, count)| async move {
                    let r: Opened = w
                        .call(&Request::Open {
                            count,
                            since: map.next_offset,
                            map: map_id,
                            concurrency: o.open_concurrency,
                            timeout_ms: OPEN_TIMEOUT.as_millis() as u64,
                            http2,
                        })
                        .await?;
                    w.streams += r.opened;
                    Ok::<_, BenchError>(r)
                },
            ))
            .await?;
            for r in results {
                if http2 > 0 {
                    self.http2_streams += r.opened;
                }
                self.http2_connections += r.http2_connections;
                opened.opened += r.opened;
                opened.failed += r.failed;
                if opened.first_error.is_none() {
                    opened.first_error = r.first_error;
                }
            }
            opened.secs = round(started.elapsed().as_secs_f64(), 3);
            if opened.failed > 0 {
                eprintln!(
                    "sse: {} of {} streams did not open; first: {}",
                    opened.failed,
                    target - have,
                    opened.first_error.as_deref().unwrap_or("?")
                );
            }
        }
        let streams: usize = self.workers.iter().map(|w| w.streams).sum();
        // Memory with the streams open and idle (heartbeats only).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let notifier_rss = self.notifier.rss_kb().unwrap_or(0);
        let notifier_fds = self.notifier.fds().unwrap_or(0);
        let client_rss = workers_rss_kb(self.workers);
        let stats_before = self.stats().await;

        // The storm.
        let ends_before = {
            let se = self.seat_events;
            tokio::task::block_in_place(|| se.ends())?
        };
        let from_offset = self.stack.log_end(self.event.partition).await?;
        let cpu_before = self.notifier.cpu_secs().unwrap_or(0.0);
        let client_cpu_before = workers_cpu_secs(self.workers);
        let storm_started = Instant::now();
        println!(
            "sse: storm for {:.0} s at up to {:.0} changes/s with {} streams open",
            o.storm_secs, o.rate, streams
        );
        let sampler = sample_queues(self.notifier.port());
        let tally = self.storm.run(o.storm_secs, o.rate).await;
        let storm_s = storm_started.elapsed();
        let storm_over = Instant::now();
        if let Some(e) = &tally.first_error {
            eprintln!("sse: {} storm requests failed; first: {e}", tally.errors);
        }
        decisions::wait_applied(self.stack, self.event.partition, "sse storm", o.stall).await?;
        let changes =
            events::changes(self.stack, self.event.id, self.event.partition, from_offset).await?;
        let last_cover = changes.iter().map(|(offset, _)| offset + 1).max();
        let (caught_up, catch_up) = self.wait_caught_up(last_cover, storm_over).await?;
        let queues = sampler.finish().await;
        let cpu_s = self.notifier.cpu_secs().unwrap_or(0.0) - cpu_before;
        let client_cpu_s = workers_cpu_secs(self.workers) - client_cpu_before;
        let cpu_wall = storm_started.elapsed().as_secs_f64();
        let notifier_rss_after = self.notifier.rss_kb().unwrap_or(0);
        let client_rss_after = workers_rss_kb(self.workers);
        let stats_after = self.stats().await;

        // What should have been received, and what was.
        let (_, final_map) = self.map().await?;
        let published = {
            let se = self.seat_events;
            let event = self.event.id;
            tokio::task::block_in_place(|| se.read(&ends_before, event, Duration::from_secs(30)))?
        };
        let mut firsts: HashMap<i64, i64> = HashMap::new();
        let per_worker: Vec<Vec<(i64, i64)>> =
            all(self.workers, &Request::Firsts { phase }).await?;
        for (id, at) in per_worker.into_iter().flatten() {
            let e = firsts.entry(id).or_insert(at);
            *e = (*e).min(at);
        }
        let tick_gap = gaps(&firsts);
        let seat_changes = changes.len() as u64;
        let request = Request::Report(ReportRequest {
            phase,
            changes: measure::marks(changes.into_iter().map(|(o, at)| (o + 1, at)).collect()),
            published: measure::marks(published.deltas.clone()),
            firsts: firsts.into_iter().collect(),
            final_map,
        });
        let reports: Vec<WorkerReport> = all(self.workers, &request).await?;
        let merged = merge(&reports);

        let delivered_s = if merged.last_us > merged.first_us {
            (merged.last_us - merged.first_us) as f64 / 1e6
        } else {
            0.0
        };
        let per_s = |x: f64| {
            if delivered_s > 0.0 {
                x / delivered_s
            } else {
                0.0
            }
        };
        let per_stream = |kb: u64, base: u64| {
            if streams > 0 {
                round(kb.saturating_sub(base) as f64 / streams as f64, 2)
            } else {
                0.0
            }
        };
        let per_added = self.last.and_then(|(rss, before)| {
            (streams > before).then(|| {
                round(
                    notifier_rss.saturating_sub(rss) as f64 / (streams - before) as f64,
                    2,
                )
            })
        });
        self.last = Some((notifier_rss_after, streams));
        let dropped_slow = match (stats_before, stats_after) {
            (Some(b), Some(a)) => a.dropped_slow.saturating_sub(b.dropped_slow),
            _ => 0,
        };
        Ok(SsePhase {
            streams_target: target,
            streams,
            http2_streams: self.http2_streams,
            http2_connections: self.http2_connections,
            opened: opened.opened,
            open_failed: opened.failed,
            first_open_error: opened.first_error,
            open_s: opened.secs,
            load_avg_1m: load,
            notifier_rss_kb: notifier_rss,
            notifier_rss_kb_after_storm: notifier_rss_after,
            notifier_kb_per_stream: per_stream(notifier_rss, self.baseline_rss),
            notifier_kb_per_added_stream: per_added,
            notifier_fds,
            client_rss_kb: client_rss,
            client_rss_kb_after_storm: client_rss_after,
            client_kb_per_stream: per_stream(client_rss, self.workers_baseline),
            stats_before,
            stats_after,
            dropped_slow,
            storm: tally,
            storm_s: round(storm_s.as_secs_f64(), 3),
            seat_changes,
            seat_changes_per_s: round(seat_changes as f64 / storm_s.as_secs_f64().max(1e-9), 1),
            deltas_published: published.deltas.len() as u64,
            published_complete: published.complete,
            timestamp_type: published.timestamp_type,
            messages: merged.messages,
            messages_per_s: round(per_s(merged.messages as f64), 1),
            messages_per_stream_per_s: round(
                per_s(merged.messages as f64) / streams.max(1) as f64,
                3,
            ),
            delivered_s: round(delivered_s, 3),
            data_mb_per_s: round(per_s(merged.data_bytes as f64) / 1e6, 3),
            seats_per_message: round(merged.seats as f64 / merged.messages.max(1) as f64, 1),
            decided_to_received: merged.decided,
            published_to_received: merged.published,
            first_to_each: merged.spread,
            changes_missed: merged.decided_unattributed.missed,
            deltas_missed: merged.published_unattributed.missed,
            negative_latencies: merged.decided_unattributed.negative
                + merged.published_unattributed.negative,
            caught_up,
            catch_up_ms: crate::results::millis(catch_up),
            notifier_cpu_s: round(cpu_s, 2),
            notifier_cpu_share: round(cpu_s / cpu_wall.max(1e-9), 3),
            client_cpu_share: round(client_cpu_s / cpu_wall.max(1e-9), 3),
            tick_gap,
            queues,
            disconnects: merged.disconnects,
            reconnects: merged.reconnects,
            ready_mismatches: merged.ready_mismatches,
            bad_messages: merged.bad_messages,
            first_bad: merged.first_bad,
            heartbeats: merged.heartbeats,
            state: merged.state,
        })
    }

    /// Wait until every stream (not told to resync) has received a message covering
    /// `last` (the last change's offset + 1). Returns whether they did and when, from
    /// `since`.
    async fn wait_caught_up(
        &mut self,
        last: Option<i64>,
        since: Instant,
    ) -> Result<(bool, Duration), BenchError> {
        let Some(last) = last else {
            return Ok((true, since.elapsed()));
        };
        let started = Instant::now();
        loop {
            let progress: Vec<Progress> = all(self.workers, &Request::Progress).await?;
            if progress
                .iter()
                .all(|p| p.streams == 0 || p.min_cursor >= last)
            {
                return Ok((true, since.elapsed()));
            }
            if started.elapsed() > CATCH_UP_TIMEOUT {
                let behind: Vec<i64> = progress.iter().map(|p| p.min_cursor).collect();
                eprintln!(
                    "sse: streams still behind offset {last} after {CATCH_UP_TIMEOUT:?} (lowest cursor per worker: {behind:?})"
                );
                return Ok((false, since.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The workers' reports together.
struct Merged {
    messages: u64,
    data_bytes: u64,
    seats: u64,
    first_us: i64,
    last_us: i64,
    decided: Percentiles,
    published: Percentiles,
    spread: Percentiles,
    decided_unattributed: Unattributed,
    published_unattributed: Unattributed,
    disconnects: u64,
    reconnects: u64,
    ready_mismatches: u64,
    bad_messages: u64,
    first_bad: Option<String>,
    heartbeats: u64,
    state: StateCheck,
}

fn merge(reports: &[WorkerReport]) -> Merged {
    let (mut decided, mut published, mut spread) =
        (new_histogram(), new_histogram(), new_histogram());
    let mut m = Merged {
        messages: 0,
        data_bytes: 0,
        seats: 0,
        first_us: i64::MAX,
        last_us: 0,
        decided: Percentiles::default(),
        published: Percentiles::default(),
        spread: Percentiles::default(),
        decided_unattributed: Unattributed::default(),
        published_unattributed: Unattributed::default(),
        disconnects: 0,
        reconnects: 0,
        ready_mismatches: 0,
        bad_messages: 0,
        first_bad: None,
        heartbeats: 0,
        state: StateCheck::default(),
    };
    for r in reports {
        m.messages += r.messages;
        m.data_bytes += r.data_bytes;
        m.seats += r.seats;
        if r.messages > 0 {
            m.first_us = m.first_us.min(r.first_us);
            m.last_us = m.last_us.max(r.last_us);
        }
        measure::add_pairs(&mut decided, &r.decided_to_received);
        measure::add_pairs(&mut published, &r.published_to_received);
        measure::add_pairs(&mut spread, &r.spread);
        for (a, b) in [
            (&mut m.decided_unattributed, r.decided_unattributed),
            (&mut m.published_unattributed, r.published_unattributed),
        ] {
            a.missed += b.missed;
            a.negative += b.negative;
        }
        m.disconnects += r.disconnects;
        m.reconnects += r.reconnects;
        m.ready_mismatches += r.ready_mismatches;
        m.bad_messages += r.bad_messages;
        if m.first_bad.is_none() {
            m.first_bad.clone_from(&r.first_bad);
        }
        m.heartbeats += r.heartbeats;
        let s = &r.state;
        m.state.checked += s.checked;
        m.state.matching += s.matching;
        m.state.mismatching += s.mismatching;
        m.state.resynced += s.resynced;
        m.state.distinct_sequences = m.state.distinct_sequences.max(s.distinct_sequences);
        if m.state.first_mismatch.is_none() {
            m.state.first_mismatch.clone_from(&s.first_mismatch);
        }
    }
    if m.first_us == i64::MAX {
        m.first_us = 0;
    }
    m.decided = Percentiles::of(&decided);
    m.published = Percentiles::of(&published);
    m.spread = Percentiles::of(&spread);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_by_the_notifiers_descriptors_unless_told_not_to() {
        let sizes = |plans: Vec<PhasePlan>| -> Vec<usize> {
            assert!(plans.iter().all(|p| !p.http2), "{plans:?}");
            plans.iter().map(|p| p.streams).collect()
        };
        let (planned, cap) = plan_streams(&[1_000, 20_000], 20_000, 20, false, 0);
        assert_eq!(sizes(planned), [1_000, 19_964]);
        let cap = cap.expect("capped");
        assert_eq!((cap.requested, cap.capped_to), (20_000, 19_964));
        let (planned, cap) = plan_streams(&[1_000, 20_000], 20_000, 20, true, 0);
        assert_eq!(sizes(planned), [1_000, 20_000]);
        assert!(cap.is_none());
        let (planned, cap) = plan_streams(&[100, 300], 20_000, 20, false, 100);
        assert_eq!(sizes(planned), [100, 300]);
        assert!(cap.is_none());
        // Both phases over the budget become one.
        let (planned, _) = plan_streams(&[30_000, 40_000], 20_000, 20, false, 0);
        assert_eq!(sizes(planned), [19_964]);
    }

    #[test]
    fn phases_past_the_descriptors_add_their_streams_over_http2() {
        let (planned, cap) = plan_streams(&[1_000, 5_000, 20_000], 20_000, 20, false, 100);
        assert!(cap.is_none());
        let http2: Vec<(usize, bool)> = planned.iter().map(|p| (p.streams, p.http2)).collect();
        assert_eq!(http2, [(1_000, false), (5_000, false), (20_000, true)]);
    }

    #[test]
    fn new_streams_go_to_the_emptiest_workers_with_room() {
        assert_eq!(deal(&[0, 0, 0], 10, 7), [3, 2, 2]);
        assert_eq!(deal(&[5, 0, 2], 10, 6), [0, 4, 2]);
        assert_eq!(deal(&[10, 9], 10, 5), [0, 1], "no room beyond per-worker");
    }

    #[test]
    fn log_lines_are_read_without_their_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m accept failed"),
            "2026  WARN accept failed"
        );
    }
}
