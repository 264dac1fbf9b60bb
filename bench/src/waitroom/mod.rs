//! An on-sale with the virtual waiting room (issue 9 §6): a crowd joins a fresh
//! 50,000-seat event's waiting room in a burst, before the sale opens (a lottery decides
//! their order) and after (first come, first served); the scheduler lets them in at the
//! rate its controller chooses (AIMD on the consumer's lag and the hold decisions' p99);
//! every admitted user asks for seats with the admission token.
//!
//! 1. A micro-benchmark of proof of work ([`pow`]): the run's event asks for none (the
//!    work is the browsers', not the server's), so its server-side cost is measured apart.
//! 2. A fresh event with `waiting_room_enabled`, `pow_difficulty` 0, on sale
//!    `presale_secs` after the first join (plus the time allowed to create it).
//! 3. The pre-sale burst: `presale_share` of the users join as fast as the gateway
//!    answers; at on-sale (or when it ends, if later) the rest join in a second burst.
//! 4. Meanwhile ([`crowd`]): a sample of users polls its ticket as the browser app does;
//!    everyone else is told of their admission as by the user stream (the bench watches
//!    `queue_tickets`); each admitted user thinks, reads its ticket for the token and
//!    sends one hold request with `X-Admission-Token`. Every second ([`sample`]): the
//!    controller's row, the consumer's lag, the users' progress, CPU per process.
//! 5. Admissions stop when everyone who joined was let in, or `max_secs` after on-sale:
//!    then the line is closed (its waiting tickets removed, so the scheduler stops
//!    working for this event) and the bench waits for the buyers and the consumer.
//! 6. From PostgreSQL ([`measure`]): joins and admissions over time, queue waits, the
//!    lottery's rank correlation and FIFO after on-sale, hold decisions per second
//!    against the controller's target, and the invariants (the flash sale's checks plus
//!    the waiting room's own).

pub mod agents;
pub mod cpu;
pub mod crowd;
pub mod measure;
pub mod pow;
pub mod report;
pub mod result;
pub mod sample;
pub mod watchers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use seatq_common::config::{Settings, WaitingRoomSettings};

use crate::error::BenchError;
use crate::pipeline::api::{EventRules, Tokens};
use crate::pipeline::client::hold_body;
use crate::pipeline::{self, decisions, invariants};
use crate::results::round;
use crate::stack::Stack;
use crate::workload::{self, Stadium};

use agents::{Agents, HoldAnswer};
use cpu::{Cpu, PhaseCpu};
use crowd::{Crowd, Latencies};
use measure::{Batch, ClosedLine, DecidedIn, Tickets};
use result::{
    Admission, Bucket, Controller, Decisions, GateCheck, Holds, Joins, Millis, Polls,
    WaitroomInvariants, WaitroomResult,
};
use sample::Sample;

/// Time allowed to create the 50,000-seat event before the first join.
const CREATE_ALLOWANCE: Duration = Duration::from_secs(20);
/// Organisers with the event's control room open through the on-sale.
const CONTROL_ROOM_WATCHERS: usize = 20;
/// Give up when nobody was admitted this long after the sale opened.
const NO_ADMISSION_PATIENCE: f64 = 30.0;
/// How long buyers told of their admission may take to finish after admissions stop.
const BUYERS_PATIENCE: Duration = Duration::from_secs(120);
/// The trajectory's buckets, seconds.
const BUCKET_SECS: i32 = 10;
/// Holds outlive the run (nothing expires during it); up to 8 seats per user.
const RULES: EventRules = EventRules {
    hold_ttl_secs: 86_400,
    max_seats_per_user: 8,
};

/// How one run is shaped (validated by the command line).
#[derive(Debug, Clone)]
pub struct Options {
    pub users: u32,
    pub presale_share: f64,
    pub presale_secs: f64,
    pub max_secs: f64,
    pub join_concurrency: usize,
    pub pollers: usize,
    pub poll_ms: u64,
    pub think_ms: u64,
    pub buyers_in_flight: usize,
    pub source_ips: usize,
    /// Proof-of-work difficulties of the micro-benchmark (empty: the stack's default
    /// and 20).
    pub pow_difficulties: Vec<u32>,
    pub seed: u64,
    pub stall: Duration,
}

/// The running scheduler's waiting-room settings: the stack's configuration file with
/// the `SEATQ_WAITING_ROOM__*` variables of its environment (from `/proc`), the
/// variables, and whether it runs.
fn scheduler_settings(stack: &Stack) -> (WaitingRoomSettings, Vec<String>, bool) {
    let fallback = || stack.settings.waiting_room.clone();
    let pid = std::fs::read_to_string(stack.root().join(".dev/run/scheduler.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists());
    let Some(pid) = pid else {
        return (fallback(), Vec::new(), false);
    };
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
        .collect();
    let overrides: Vec<String> = vars
        .iter()
        .filter(|v| v.starts_with("SEATQ_WAITING_ROOM__"))
        .cloned()
        .collect();
    let config = vars
        .iter()
        .find_map(|v| v.strip_prefix("SEATQ_CONFIG=").map(str::to_string))
        .unwrap_or_else(|| {
            stack
                .root()
                .join("deploy/local/seatq.toml")
                .to_string_lossy()
                .into_owned()
        });
    let keys: Vec<(String, String)> = overrides
        .iter()
        .filter_map(|v| {
            let (name, value) = v.split_once('=')?;
            let key = name.strip_prefix("SEATQ_WAITING_ROOM__")?.to_lowercase();
            Some((format!("waiting_room.{key}"), value.to_string()))
        })
        .collect();
    let refs: Vec<(&str, String)> = keys.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let settings = Settings::load_with(Some(&config), &refs)
        .map(|s| s.waiting_room)
        .unwrap_or_else(|_| fallback());
    (settings, overrides, true)
}

/// Seconds from `sale` to `at`.
fn secs_after(sale: DateTime<Utc>, at: DateTime<Utc>) -> f64 {
    (at - sale).num_microseconds().unwrap_or(0) as f64 / 1e6
}

/// Sleep until `at` (wall clock).
async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(d) = (at - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// What the users' joining task reports when it ends.
struct JoinsEnd {
    presale_wall: Duration,
    ended_at: DateTime<Utc>,
}

pub async fn run(stack: &Stack, options: &Options) -> Result<WaitroomResult, BenchError> {
    let started = Instant::now();
    let mut problems = Vec::new();
    let (room, overrides, scheduler_runs) = scheduler_settings(stack);
    if !scheduler_runs {
        problems.push(
            "the scheduler is not running (no live process in .dev/run/scheduler.pid): nobody will be admitted".to_string(),
        );
    }
    let mut controller = Controller::from(&room);
    controller.scheduler_overrides = overrides;

    let difficulties = if options.pow_difficulties.is_empty() {
        let default = stack
            .settings
            .waiting_room
            .default_pow_difficulty
            .clamp(0, 32) as u32;
        vec![default, 20]
    } else {
        options.pow_difficulties.clone()
    };
    let secret = stack.settings.waiting_room.secret.clone();
    println!("waitroom: proof-of-work micro-benchmark (difficulties {difficulties:?})");
    let pow =
        tokio::task::spawn_blocking(move || pow::bench(secret.as_bytes(), &difficulties)).await?;

    let users = options.users;
    let presale_users = ((f64::from(users) * options.presale_share).round() as u32).min(users);
    let tokens = Arc::new(Tokens::mint(&stack.settings.auth.jwt_secret, users + 2)?);
    let stadium = Stadium::new();
    let bodies = workload::generate(&stadium, users as usize, users, options.seed)
        .iter()
        .map(|a| serde_json::to_vec(&hold_body(&stadium, a)))
        .collect::<Result<Vec<_>, _>>()?;
    let http = pipeline::http_client()?;
    let presale = Duration::from_secs_f64(options.presale_secs.max(0.0));
    let planned_sale =
        Utc::now() + chrono::Duration::from_std(presale + CREATE_ALLOWANCE).unwrap_or_default();
    let event = pipeline::new_event_with(
        stack,
        &http,
        &tokens,
        &stadium,
        "waiting room on-sale",
        RULES,
        serde_json::json!({
            "waiting_room_enabled": true,
            "pow_difficulty": 0,
            "on_sale_at": planned_sale,
        }),
    )
    .await?;
    let sale: DateTime<Utc> = sqlx::query_scalar("SELECT on_sale_at FROM events WHERE id = $1")
        .bind(event.id)
        .fetch_one(&stack.pool)
        .await?;
    let first_join = sale - chrono::Duration::from_std(presale).unwrap_or_default();
    if Utc::now() > first_join {
        problems.push(format!(
            "creating the event took longer than the {CREATE_ALLOWANCE:?} allowed: the pre-sale burst started {:.1} s late",
            secs_after(first_join, Utc::now())
        ));
    }
    println!(
        "waitroom: event {} ({} seats, partition {}), on sale at {sale}; {users} users ({presale_users} in the pre-sale burst, {} after), {} source addresses",
        event.id,
        stadium.seat_count(),
        event.partition,
        users - presale_users,
        options.source_ips,
    );
    // Organisers watch the whole on-sale in the control room.
    let watchers = watchers::Watchers::open(
        &stack.gateway,
        event.id,
        &tokens.admin,
        CONTROL_ROOM_WATCHERS,
    )
    .await?;
    sleep_until(first_join).await;

    let agents = Agents::new(
        &stack.gateway,
        event.id,
        Arc::clone(&tokens),
        options.source_ips,
    )?;
    let crowd = Arc::new(Crowd::new(
        agents,
        event.id,
        bodies,
        options.think_ms,
        options.buyers_in_flight,
        room.admission_ttl_secs,
        options.seed,
    ));
    let sampling_done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample::run(
        stack.clone(),
        Arc::clone(&crowd),
        event.id,
        event.partition,
        sale,
        Cpu::new(stack.root()),
        Arc::clone(&sampling_done),
    ));
    let watcher = tokio::spawn(Arc::clone(&crowd).watch(stack.pool.clone()));
    let every = Duration::from_millis(options.poll_ms.max(100));
    let pollers = options.pollers.min(users as usize);
    for i in 0..pollers {
        let user = (i as u64 * u64::from(users) / pollers as u64) as u32;
        let phase = every.mul_f64(i as f64 / pollers as f64);
        tokio::spawn(Arc::clone(&crowd).poll(user, every, phase));
    }
    let joining = {
        let crowd = Arc::clone(&crowd);
        let concurrency = options.join_concurrency;
        tokio::spawn(async move {
            let t0 = Instant::now();
            crowd.join_all(0, presale_users, concurrency).await;
            let presale_wall = t0.elapsed();
            while Utc::now() < sale && !crowd.stopped() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            crowd.join_all(presale_users, users, concurrency).await;
            JoinsEnd {
                presale_wall,
                ended_at: Utc::now(),
            }
        })
    };

    // Until everyone who joined is in, or time is up.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let mut last_print = Instant::now();
    let stop_reason = loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = &mut ctrl_c => {
                interrupted = true;
                break "interrupted".to_string();
            }
        }
        let t = secs_after(sale, Utc::now());
        let c = &crowd.counters;
        let (joined, seen) = (
            c.joined.load(Ordering::Relaxed),
            c.admitted_seen.load(Ordering::Relaxed),
        );
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  t={t:+6.0}s joined {joined}, admitted {seen}, holds accepted {}, buyers pending {}",
                c.holds_accepted.load(Ordering::Relaxed),
                crowd.buyers_pending(),
            );
        }
        if joining.is_finished() && joined > 0 && seen >= joined {
            break "everyone who joined was admitted".to_string();
        }
        if t > options.max_secs {
            break format!(
                "time limit: {:.0} s after the sale opened",
                options.max_secs
            );
        }
        if t > NO_ADMISSION_PATIENCE && seen == 0 && joined > 0 {
            problems.push(format!(
                "nobody was admitted {NO_ADMISSION_PATIENCE:.0} s after the sale opened (is the scheduler running a build with the waiting room?)"
            ));
            break "no admissions".to_string();
        }
    };
    let stopped_after_s = secs_after(sale, Utc::now());
    println!("waitroom: stopping at t={stopped_after_s:+.1}s: {stop_reason}");
    let control_room = watchers.finish().await;
    println!(
        "waitroom: control room: {} watchers, {:.2} updates/s (slowest {:.2}), longest gap {:.0} ms, \
         {:.2} pictures/s at {:.1} ms each",
        control_room.watchers,
        control_room.updates_per_s_mean,
        control_room.updates_per_s_min,
        control_room.max_gap_ms,
        control_room.frames_per_s,
        control_room.frame_mean_ms,
    );
    crowd.stop();
    let joins_end = joining.await?;
    let closed =
        measure::close_line(&stack.pool, &stack.settings.redis.url, event.id, sale).await?;
    if interrupted {
        sampling_done.store(true, Ordering::Relaxed);
        return Err(BenchError::Stack(format!(
            "interrupted (the line of event {} was closed: {} waiting tickets removed)",
            event.id, closed.waiting
        )));
    }
    watcher.await?;
    if !crowd.buyers_finished(BUYERS_PATIENCE).await {
        problems.push(format!(
            "{} admitted buyers had not finished {BUYERS_PATIENCE:?} after admissions stopped",
            crowd.buyers_pending()
        ));
    }
    let applied =
        decisions::wait_applied(stack, event.partition, "waitroom decisions", options.stall)
            .await?;
    if !applied.caught_up {
        problems.push("the consumer stopped making progress before deciding everything".into());
    }
    sampling_done.store(true, Ordering::Relaxed);
    let samples = sampler.await?;

    // Read it all back.
    let pool = &stack.pool;
    let accepted = crowd.accepted.lock().map(|a| a.clone()).unwrap_or_default();
    let stats = decisions::stats(stack, &accepted).await?;
    let (per_second, per_bucket, outcomes) =
        measure::decided(pool, &accepted, sale, BUCKET_SECS).await?;
    let tickets = measure::tickets(pool, event.id, sale).await?;
    let batches = measure::batches(pool, event.id).await?;
    let queue_wait = measure::queue_wait(pool, event.id, sale).await?;
    let order = measure::order(pool, event.id, sale, &closed).await?;
    let invariants = invariants::check(
        pool,
        event.id,
        event.partition,
        event.from_offset,
        stats.undecided,
    )
    .await?;
    let holds_without_admission = measure::holds_without_admission(pool, event.id).await?;
    let gate = gate_checks(&crowd, users).await;

    let c = &crowd.counters;
    let refused: Vec<(String, u64)> = crowd
        .refusals
        .lock()
        .map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    let joined_201 = c.joined.load(Ordering::Relaxed);
    let tickets_total = count(tickets.admitted) + closed.waiting;
    let waitroom_invariants = WaitroomInvariants {
        admitted_before_sale: count(tickets.admitted_before_sale),
        holds_without_admission,
        // A join the client saw fail may still have made its ticket (the answer was
        // lost): tickets between the 201s and the 201s plus the failed joins are fine.
        tickets_mismatch: joined_201.saturating_sub(tickets_total)
            + tickets_total.saturating_sub(joined_201 + c.join_errors.load(Ordering::Relaxed)),
        admitted_refused: refused
            .iter()
            .filter(|(k, _)| k.starts_with("403"))
            .map(|(_, v)| v)
            .sum(),
    };
    if waitroom_invariants.violations() + invariants.oversold + invariants.double_held > 0 {
        eprintln!("  waitroom: invariant violations on event {}", event.id);
    }
    let joins = joins_result(
        &crowd.latencies,
        c,
        &tickets,
        &closed,
        sale,
        &joins_end,
        presale_users,
    );
    let admission = admission_result(&tickets, &closed, &batches, &samples, sale);
    let lat = &crowd.latencies;
    let millis = |h: &std::sync::Mutex<hdrhistogram::Histogram<u64>>| {
        h.lock().map(|h| Millis::of(&h)).unwrap_or_default()
    };
    let polls = Polls {
        pollers,
        polls: c.polls.load(Ordering::Relaxed),
        errors: c.poll_errors.load(Ordering::Relaxed),
        latency: millis(&lat.poll),
        saw_admission: c.seen_by_poll.load(Ordering::Relaxed),
        admitted_to_polled: millis(&lat.admitted_to_polled),
        admitted_to_watched: millis(&lat.admitted_to_watched),
    };
    let holds = Holds {
        buyers: c.admitted_seen.load(Ordering::Relaxed),
        sent: c.holds_sent.load(Ordering::Relaxed),
        accepted: c.holds_accepted.load(Ordering::Relaxed),
        refused,
        errors: c.buy_errors.load(Ordering::Relaxed),
        token_latency: millis(&lat.token),
        accept_latency: millis(&lat.hold_accept),
        unfinished: crowd.buyers_pending(),
    };
    let target = room.target_decision_p99_ms;
    let decisions = Decisions {
        decided: stats.decided,
        held: stats.held,
        undecided: stats.undecided,
        outcomes,
        p50_ms: stats.p50_ms,
        p95_ms: stats.p95_ms,
        p99_ms: stats.p99_ms,
        max_ms: stats.max_ms,
        per_s: stats.decisions_per_s(),
        target_p99_ms: target,
        seconds_over_target: per_second.iter().filter(|s| s.p99_ms > target).count() as u64,
        seconds_with_decisions: per_second.len() as u64,
        worst_10s_p99_ms: round(per_bucket.iter().map(|b| b.p99_ms).fold(0.0, f64::max), 1),
    };
    let trajectory = trajectory(&samples, &batches, &per_bucket, sale);
    let joins_end_t = secs_after(sale, joins_end.ended_at);
    let cpu = cpu_phases(&samples, joins_end_t, stopped_after_s);
    let first_error = crowd.first_error.lock().ok().and_then(|e| e.clone());
    let retries = &crowd.agents.retries;
    Ok(WaitroomResult {
        control_room: Some(control_room),
        event_id: event.id,
        seats: stadium.seat_count(),
        users,
        presale_users,
        on_sale_at: sale,
        presale_secs: options.presale_secs,
        max_secs: options.max_secs,
        join_concurrency: options.join_concurrency,
        source_ips: crowd.agents.source_ips(),
        poll_ms: options.poll_ms,
        think_ms: options.think_ms,
        buyers_in_flight: options.buyers_in_flight,
        controller,
        joins,
        admission,
        polls,
        holds,
        decisions,
        queue_wait,
        order,
        seats_taken: invariants.seats_taken,
        invariants,
        waitroom_invariants,
        gate,
        rate_limited: retries.rate_limited.load(Ordering::Relaxed),
        unavailable: retries.unavailable.load(Ordering::Relaxed),
        first_error,
        pow,
        cpu,
        trajectory,
        decided_per_second: per_second,
        samples,
        stop_reason,
        stopped_after_s: round(stopped_after_s, 1),
        problems,
        wall_s: round(started.elapsed().as_secs_f64(), 1),
    })
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

fn joins_result(
    latencies: &Latencies,
    c: &crowd::Counters,
    tickets: &Tickets,
    closed: &ClosedLine,
    sale: DateTime<Utc>,
    end: &JoinsEnd,
    presale_users: u32,
) -> Joins {
    let before = count(tickets.admitted_presale) + closed.waiting_presale;
    let total = count(tickets.admitted) + closed.waiting;
    let span = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
        (Some(a), Some(b)) => secs_after(a, b).max(0.0),
        _ => 0.0,
    };
    // Joins of both the admitted and the tickets removed when the line closed.
    let first_join = [tickets.first_join, closed.first_join]
        .into_iter()
        .flatten()
        .min();
    let last_join = [tickets.last_join, closed.last_join]
        .into_iter()
        .flatten()
        .max();
    let whole = span(first_join, last_join);
    // The pause between the bursts: the pre-sale burst's end (its last join before the
    // sale, or its wall time if it ran past the sale) to the sale opening.
    let presale_end =
        first_join.map(|f| f + chrono::Duration::from_std(end.presale_wall).unwrap_or_default());
    let pause = presale_end.map_or(0.0, |e| secs_after(e, sale).max(0.0));
    let presale_span = end.presale_wall.as_secs_f64();
    let rate = |n: u64, s: f64| if s > 0.0 { round(n as f64 / s, 1) } else { 0.0 };
    Joins {
        joined: c.joined.load(Ordering::Relaxed),
        joined_again: c.joined_again.load(Ordering::Relaxed),
        provisional: c.provisional.load(Ordering::Relaxed),
        errors: c.join_errors.load(Ordering::Relaxed),
        before_sale: before,
        after_sale: total.saturating_sub(before),
        span_s: round(whole, 2),
        per_s: rate(total, whole - pause),
        presale_per_s: rate(u64::from(presale_users).min(total), presale_span),
        latency: latencies
            .join
            .lock()
            .map(|h| Millis::of(&h))
            .unwrap_or_default(),
    }
}

fn admission_result(
    tickets: &Tickets,
    closed: &ClosedLine,
    batches: &[Batch],
    samples: &[Sample],
    sale: DateTime<Utc>,
) -> Admission {
    let first = tickets.first_admission.map(|a| secs_after(sale, a));
    let last = tickets.last_admission.map(|a| secs_after(sale, a));
    let admitted = count(tickets.admitted);
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for (at, n) in batches {
        *per_second
            .entry(secs_after(sale, *at).floor() as i64)
            .or_default() += count(*n);
    }
    let peak = per_second
        .keys()
        .map(|&s| (s..s + 10).filter_map(|k| per_second.get(&k)).sum::<u64>())
        .max()
        .unwrap_or(0);
    let mut gaps = crate::runner::new_histogram();
    for w in batches.windows(2) {
        if let Ok(d) = (w[1].0 - w[0].0).to_std() {
            gaps.saturating_record(d.as_micros().max(1) as u64);
        }
    }
    let rates: Vec<f64> = samples.iter().filter_map(|s| s.rate).collect();
    Admission {
        admitted,
        waiting_at_stop: closed.waiting,
        waiting_presale_at_stop: closed.waiting_presale,
        first_after_sale_s: first.map(|f| round(f, 3)),
        last_after_sale_s: last.map(|l| round(l, 3)),
        per_s: last
            .filter(|l| *l > 0.0)
            .map_or(0.0, |l| round(admitted as f64 / l, 1)),
        peak_10s_per_s: round(peak as f64 / 10.0, 1),
        batches: batches.len() as u64,
        batch_gap: Millis::of(&gaps),
        largest_batch: batches.iter().map(|b| count(b.1)).max().unwrap_or(0),
        max_rate_seen: rates.iter().copied().fold(0.0, f64::max),
        rate_cuts: rates.windows(2).filter(|w| w[1] < w[0]).count() as u64,
    }
}

/// Ten-second buckets from the first sample to the last.
fn trajectory(
    samples: &[Sample],
    batches: &[Batch],
    decided: &[DecidedIn],
    sale: DateTime<Utc>,
) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    let b = f64::from(BUCKET_SECS);
    let start = (first.t / b).floor() as i32 * BUCKET_SECS;
    let end = (last.t / b).floor() as i32 * BUCKET_SECS;
    let mut out = Vec::new();
    let mut t = start;
    while t <= end {
        let (lo, hi) = (f64::from(t), f64::from(t + BUCKET_SECS));
        let admitted: i64 = batches
            .iter()
            .filter(|(at, _)| (lo..hi).contains(&secs_after(sale, *at)))
            .map(|(_, n)| *n)
            .sum();
        let inside: Vec<&Sample> = samples.iter().filter(|s| (lo..hi).contains(&s.t)).collect();
        let before = samples.iter().rev().find(|s| s.t < lo);
        let (Some(end_sample), Some(start_sample)) =
            (inside.last(), before.or(inside.first().copied()))
        else {
            t += BUCKET_SECS;
            continue;
        };
        let span = (end_sample.t - start_sample.t).max(1e-3);
        let d = decided.iter().find(|d| d.t == t);
        out.push(Bucket {
            t,
            admitted_per_s: round(admitted as f64 / b, 1),
            rate: end_sample.rate,
            control_lag: end_sample.control_lag,
            control_p99_ms: end_sample.control_p99_ms,
            consumer_lag: end_sample.consumer_lag,
            holds_per_s: round(
                end_sample
                    .holds_accepted
                    .saturating_sub(start_sample.holds_accepted) as f64
                    / span,
                1,
            ),
            decided_per_s: d.map_or(0.0, |d| round(d.decided as f64 / b, 1)),
            decision_p99_ms: d.map(|d| round(d.p99_ms, 1)),
            buyers_pending: end_sample.buyers_pending,
            joined: end_sample.joined,
        });
        t += BUCKET_SECS;
    }
    out
}

/// CPU by process in each phase of the run.
fn cpu_phases(samples: &[Sample], joins_end: f64, stopped: f64) -> Vec<PhaseCpu> {
    let at = |t: f64| {
        samples
            .iter()
            .find(|s| s.t >= t)
            .and_then(|s| s.cpu.as_ref())
    };
    let first = samples.first().and_then(|s| s.cpu.as_ref());
    let last = samples.last().and_then(|s| s.cpu.as_ref());
    let mut phases = Vec::new();
    let mut add = |name: &str, from: Option<&cpu::Snapshot>, to: Option<&cpu::Snapshot>| {
        if let (Some(from), Some(to)) = (from, to) {
            phases.extend(PhaseCpu::between(name, from, to));
        }
    };
    add("pre-sale: joins", first, at(0.0));
    if joins_end > 0.0 && joins_end < stopped {
        add("on sale: joins and admissions", at(0.0), at(joins_end));
        add("on sale: admissions", at(joins_end), at(stopped));
    } else {
        add("on sale: joins and admissions", at(0.0), at(stopped));
    }
    add("after admissions stopped", at(stopped), last);
    phases
}

/// Requests the gateway must refuse (or answer as it does for anyone), sent once each.
async fn gate_checks(crowd: &Crowd, users: u32) -> Vec<GateCheck> {
    let mut checks = Vec::new();
    let body = br#"{"section": "U220", "quantity": 1}"#;
    let answer = |r: Result<HoldAnswer, BenchError>| match r {
        Ok(HoldAnswer::Refused(why)) => why,
        Ok(HoldAnswer::Accepted { .. }) => "202 accepted".to_string(),
        Err(e) => format!("error: {e}"),
    };
    // A user who never joined, without a token.
    checks.push(GateCheck {
        what: "hold without an admission token".into(),
        expected: "403 admission_required".into(),
        got: answer(crowd.agents.hold(users, None, body).await),
    });
    if let Some((owner, token)) = crowd.a_token.get() {
        checks.push(GateCheck {
            what: "hold with another user's admission token".into(),
            expected: "403 admission_invalid".into(),
            got: answer(crowd.agents.hold(users + 1, Some(token), body).await),
        });
        let got = match crowd.agents.join(*owner).await {
            Ok(j) => format!(
                "{} {}",
                if j.created { "201" } else { "200" },
                if Some(j.view.ticket) == crowd.ticket(*owner) && j.view.status == "admitted" {
                    "the same admitted ticket"
                } else {
                    "another ticket"
                }
            ),
            Err(e) => format!("error: {e}"),
        };
        checks.push(GateCheck {
            what: "an admitted user joins again".into(),
            expected: "200 the same admitted ticket".into(),
            got,
        });
    }
    checks
}
