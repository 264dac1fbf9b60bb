//! The README's generated part, built from the parts' results alone; and the rows the
//! terminal summary shares with it.
//!
//! Each section is a function of its part's file ([`Part`]); the flash sale's rows that
//! a section compares with (the lifecycle's `hold_seats` latencies, the fair fight's
//! raw-SQL floor) appear only when both parts come from the same run, as they did when
//! one run wrote the whole README. The marker comments around the sections are no longer
//! read by anything: they stay so the README reads as it did and each part's section is
//! easy to find.

use std::fmt::Write as _;

use super::files::{Part, ResultSet};
use super::{Report, RunInfo};
use crate::fair::result::FairFight;
use crate::results::{Latency, LifecycleResult, PipelineRun, SsePhase, SseResult, Timing};
use crate::sse::measure::Percentiles;

/// Around the fair fight's section (first in the generated part).
const FAIR_BEGIN: &str =
    "<!-- fair fight: written by `bench all` and by a full-size `bench fair-fight` -->";
const FAIR_END: &str = "<!-- end of fair fight -->";

/// Around the hold lifecycle's section.
const LIFECYCLE_BEGIN: &str =
    "<!-- hold lifecycle: written by `bench all` and by a full-size `bench lifecycle` -->";
const LIFECYCLE_END: &str = "<!-- end of hold lifecycle -->";

/// Around the SSE fan-out's section.
const SSE_BEGIN: &str =
    "<!-- sse fan-out: written by `bench all` and by a full-size `bench sse` -->";
const SSE_END: &str = "<!-- end of sse fan-out -->";

/// The README's generated part (everything below [`super::files::MARKER`]): the fair
/// fight first, then the flash sale (its run, its tables), the lifecycle, SSE and
/// waiting-room sections; each part that has a result. The blank lines are those of the
/// README that `bench all` and the single-part runs used to splice together.
pub fn generated(set: &ResultSet) -> String {
    let flash = set.flash_sale.as_ref();
    let mut out = String::new();
    if let Some(part) = &set.fair_fight {
        let floor = same_run(flash, &part.run).map_or_else(Vec::new, raw_sql_floor);
        let _ = writeln!(out, "\n{}", fair_section(part, &floor));
    }
    if let Some(r) = flash {
        let _ = writeln!(out, "\nLatest run: {}\n", header(r));
        out.push_str(&flash_sale_tables(r));
    }
    if let Some(part) = &set.lifecycle {
        let _ = write!(
            out,
            "\n{}",
            lifecycle_section(part, same_run(flash, &part.run))
        );
    }
    if let Some(part) = &set.sse {
        let _ = write!(out, "\n{}", sse_section(part));
    }
    if let Some(part) = &set.waitroom {
        let run = run_line(&part.run, "");
        let reading = part.reading.as_deref();
        let _ = write!(
            out,
            "\n{}",
            crate::waitroom::report::markdown(&part.result, &run, reading)
        );
    }
    out
}

/// The flash sale, when it was measured by the run that measured `run`'s part.
fn same_run<'a>(flash: Option<&'a Report>, run: &RunInfo) -> Option<&'a Report> {
    flash.filter(|r| r.run() == *run)
}

/// The line under a part's heading: when and on what it ran (`extra` before the period).
fn run_line(run: &RunInfo, extra: &str) -> String {
    format!(
        "Run finished {} — git {}, machine: {}; load {:.2} at start{extra}.",
        run.finished_at,
        run.commit(),
        run.machine.note,
        run.machine.load_avg_1m_at_start,
    )
}

/// The flash sale's line above everything: workload, commit, machine.
pub(super) fn header(r: &Report) -> String {
    let workload = if r.attempts == 0 {
        "no flash-sale workload".to_string()
    } else {
        format!(
            "{} seats, {} attempts from {} users",
            r.seats, r.attempts, r.users
        )
    };
    format!(
        "{workload}, concurrency {}, seed {}{} — git {}, {} cores, {} GB ({}), load {:.2} at start — {}",
        r.concurrency,
        r.seed,
        if r.smoke { " (smoke)" } else { "" },
        super::short_commit(&r.git_sha, r.git_dirty),
        r.machine.cores,
        r.machine.mem_gb,
        r.machine.note,
        r.machine.load_avg_1m_at_start,
        r.finished_at,
    )
}

/// The raw-SQL runs of the naive designs (name, decisions/s, p99 ms): the fair
/// fight's floor.
fn raw_sql_floor(r: &Report) -> Vec<(&'static str, f64, f64)> {
    let mut floor = Vec::new();
    if let Some(n) = &r.naive_conditional_update {
        floor.push((
            "conditional_update",
            n.timing.decisions_per_s,
            n.timing.p99_ms,
        ));
    }
    if let Some(n) = &r.naive_for_update {
        floor.push(("for_update", n.timing.decisions_per_s, n.timing.p99_ms));
    }
    if let Some(n) = &r.redis_first {
        floor.push(("redis_first", n.timing.decisions_per_s, n.timing.p99_ms));
    }
    floor
}

/// The fair fight's section, markers included. (The run line ends right at the end
/// marker, as it always has.)
fn fair_section(part: &Part<FairFight>, floor: &[(&str, f64, f64)]) -> String {
    format!(
        "{FAIR_BEGIN}\n{}\n\n{}{}{FAIR_END}\n",
        part.result.markdown(floor),
        run_line(&part.run, ""),
        part.reading
            .as_deref()
            .map_or_else(String::new, |text| format!("\n{}\n", text.trim_end()))
    )
}

/// What was written by hand about the part's run, as it is, at the end of its section.
fn reading<T>(out: &mut String, part: &Part<T>) {
    if let Some(text) = &part.reading {
        let _ = writeln!(out, "{}", text.trim_end());
    }
}

/// The flash sale's designs table, its headline measures and its notes.
fn flash_sale_tables(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| design | decisions/s | p50 ms | p95 ms | p99 ms | seats held | errors | correctness |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for l in lines(r) {
        let _ = writeln!(
            out,
            "| `{}` | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            l.design, l.decisions_per_s, l.p50_ms, l.p95_ms, l.p99_ms, l.held, l.errors, l.wrong
        );
    }
    let headline = headline(r);
    if !headline.is_empty() {
        let _ = writeln!(out, "\n| measure | value | target |\n|---|---|---|");
    }
    for (measure, value, target) in headline {
        let _ = writeln!(out, "| {measure} | {value} | {target} |");
    }
    out.push('\n');
    for note in &r.notes {
        let _ = writeln!(out, "- {note}");
    }
    out
}

/// Request → decision per command kind of the lifecycle run, and the flash sale's hold
/// requests when `flash` is the same run's (same pipeline, other load).
pub(super) fn command_rows(l: &LifecycleResult, flash: Option<&Report>) -> Vec<(String, Latency)> {
    let mut rows: Vec<(String, Latency)> = l
        .commands
        .iter()
        .map(|c| (format!("`{}`", c.kind), c.latency))
        .collect();
    let runs = [
        (
            "flash sale",
            flash.and_then(|r| r.pipeline.as_ref()).map(|r| &r.run),
        ),
        (
            "half load",
            flash
                .and_then(|r| r.pipeline_half_load.as_ref())
                .map(|r| &r.run),
        ),
    ];
    for (name, run) in runs {
        if let Some(run) = run {
            let d = &run.decisions;
            rows.push((
                format!("`hold_seats`, {name} (same run)"),
                Latency {
                    count: d.decided,
                    p50_ms: d.p50_ms,
                    p99_ms: d.p99_ms,
                    max_ms: d.max_ms,
                },
            ));
        }
    }
    rows
}

/// The hold lifecycle's section, markers included; `flash`: the same run's flash sale.
fn lifecycle_section(part: &Part<LifecycleResult>, flash: Option<&Report>) -> String {
    let l = &part.result;
    let mut out = String::new();
    let _ = writeln!(out, "{LIFECYCLE_BEGIN}\n### Hold lifecycle\n");
    let event = format!(", event `{}`", l.event_id);
    let _ = writeln!(out, "{}\n", run_line(&part.run, &event));
    let _ = writeln!(out, "| measure | value | expected |\n|---|---|---|");
    for (measure, value, target) in lifecycle_rows(l) {
        let _ = writeln!(out, "| {measure} | {value} | {target} |");
    }
    let _ = writeln!(
        out,
        "\n| command: request → decision | decided | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|"
    );
    for (kind, c) in command_rows(l, flash) {
        let _ = writeln!(
            out,
            "| {kind} | {} | {:.1} | {:.1} | {:.1} |",
            c.count, c.p50_ms, c.p99_ms, c.max_ms
        );
    }
    out.push('\n');
    for note in LIFECYCLE_NOTES {
        let _ = writeln!(out, "- {note}");
    }
    reading(&mut out, part);
    let _ = writeln!(out, "{LIFECYCLE_END}");
    out
}

/// The SSE fan-out's section, markers included.
fn sse_section(part: &Part<SseResult>) -> String {
    let r = &part.result;
    let mut out = String::new();
    let _ = writeln!(out, "{SSE_BEGIN}\n### SSE fan-out\n");
    let _ = writeln!(out, "{}\n", run_line(&part.run, ""));
    for line in sse_setup(r) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let mut header = "| measure |".to_string();
    let mut rule = "|---|".to_string();
    for p in &r.phases {
        let _ = write!(header, " {} streams |", p.streams);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (measure, values) in sse_rows(r) {
        let _ = writeln!(out, "| {measure} | {} |", values.join(" | "));
    }
    out.push('\n');
    for note in SSE_NOTES {
        let _ = writeln!(out, "- {note}");
    }
    reading(&mut out, part);
    let _ = writeln!(out, "{SSE_END}");
    out
}

/// One row of the designs table: the naive designs and the seatq pipeline runs.
pub(super) struct Line {
    pub(super) design: &'static str,
    pub(super) decisions_per_s: f64,
    pub(super) p50_ms: f64,
    pub(super) p95_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    /// Seats held at the end.
    pub(super) held: u64,
    pub(super) errors: u64,
    pub(super) wrong: String,
}

impl Line {
    fn naive(design: &'static str, t: &Timing, held: u64, wrong: String) -> Self {
        Self {
            design,
            decisions_per_s: t.decisions_per_s,
            p50_ms: t.p50_ms,
            p95_ms: t.p95_ms,
            p99_ms: t.p99_ms,
            max_ms: t.max_ms,
            held,
            errors: t.errors,
            wrong,
        }
    }

    fn pipeline(design: &'static str, run: &PipelineRun) -> Self {
        let d = &run.decisions;
        let i = &run.invariants;
        Self {
            design,
            decisions_per_s: d.decisions_per_s,
            p50_ms: d.p50_ms,
            p95_ms: d.p95_ms,
            p99_ms: d.p99_ms,
            max_ms: d.max_ms,
            held: i.seats_taken,
            errors: run.accept.errors,
            wrong: format!(
                "oversold {}, double held {}, undecided {}, fifo violations {}",
                i.oversold, i.double_held, i.undecided, i.fifo_violations
            ),
        }
    }
}

/// A measurement that may not have been taken, to `decimals` places.
fn opt(x: Option<f64>, decimals: usize, unit: &str) -> String {
    x.map_or_else(
        || "not run".to_string(),
        |x| format!("{x:.decimals$}{unit}"),
    )
}

/// p50 / p99 / max of a latency, in milliseconds.
fn p50_p99_max(l: &Latency) -> String {
    format!("{:.1} / {:.1} / {:.1}", l.p50_ms, l.p99_ms, l.max_ms)
}

/// How each number of the lifecycle section is measured.
const LIFECYCLE_NOTES: &[&str] = &[
    "Lifecycle: a fresh event, every user holds a pair of adjacent seats (2 seats per user allowed, so every holder is at the limit); buyers check out (`POST /v1/holds/{id}/checkout`) and pay at the sandbox provider (`POST /sandbox/v1/sessions/{id}/complete`, `succeed`); for the other pairs, other users join the seats' waitlists first, some waitlists led by a buyer at the seat limit, who must be passed over. The scheduler expires the holds; the bench waits until every hold has ended and every payment has its booking, then reads the database.",
    "Release → offer: the old hold's `ended_at` to the offer hold's `created_at` (the consumer writes both in one transaction). Due → offer: the old hold's `expires_at` to the offer's `created_at`, i.e. what the waiting user sees (timer, scheduler, broker, consumer). Expiry lateness: `ended_at − expires_at` of expired holds. Payment → booking: first `payment.succeeded` webhook `received_at` (gateway) to `bookings.created_at` (consumer). Command latencies: `requests.issued_at` → `decided_at` of this event's commands.",
    "Lifecycle invariants: seats held/sold by a hold that is not active/sold; sold + held + available = capacity and the seats table's sold/held = the seats of sold/active holds; each sold or paid hold has exactly one confirmed booking (a payment that came after its hold was released is refunded instead) with one ticket per seat; no hold active past `expires_at` + grace (the sweeper's grace + one sweep interval), none expired later than that; each waitlist offer went to the first eligible waiting user (nobody earlier left waiting, nobody earlier skipped while under the seat limit) and no seat was released past a waiting user without an offer.",
];

/// The designs table's rows: the naive designs, then the seatq pipeline's runs.
pub(super) fn lines(r: &Report) -> Vec<Line> {
    let mut lines = Vec::new();
    for (design, result) in [
        ("naive_conditional_update", &r.naive_conditional_update),
        ("naive_for_update", &r.naive_for_update),
    ] {
        if let Some(r) = result {
            lines.push(Line::naive(
                design,
                &r.timing,
                r.held,
                format!("oversold {}", r.oversold),
            ));
        }
    }
    if let Some(r) = &r.redis_first {
        lines.push(Line::naive(
            "redis_first",
            &r.timing,
            r.held,
            format!("double promised {}", r.double_promised_after_redis_restart),
        ));
    }
    if let Some(r) = &r.pipeline {
        lines.push(Line::pipeline("seatq_pipeline", &r.run));
    }
    if let Some(r) = &r.crash {
        lines.push(Line::pipeline("seatq_pipeline_kill9", &r.run));
    }
    lines
}

/// (measure, value, target) rows beyond the designs table.
pub(super) fn headline(r: &Report) -> Vec<(String, String, &'static str)> {
    let mut rows = Vec::new();
    let mut row = |m: &str, v: String, t: &'static str| rows.push((m.to_string(), v, t));
    if let Some(p) = &r.pipeline {
        let (a, d) = (&p.run.accept, &p.run.decisions);
        row(
            "pipeline accepted/s (202s)",
            format!("{:.0}", p.accepted_per_s),
            "",
        );
        row(
            "pipeline decisions/s",
            format!("{:.0}", p.decisions_per_s),
            "",
        );
        row(
            "pipeline accept p50 / p99 ms",
            format!("{:.2} / {:.2}", a.p50_ms, a.p99_ms),
            "",
        );
        row(
            "pipeline decision p50 / p95 / p99 ms",
            format!("{:.1} / {:.1} / {:.1}", d.p50_ms, d.p95_ms, d.p99_ms),
            "",
        );
        if let Some(s) = &p.seat_story {
            row(
                "seat story after the storm: history p50 / p99 / max ms (longest story), receipt p50 / p99 ms, demand ms",
                format!(
                    "{:.1} / {:.1} / {:.1} ({} commands), {:.1} / {:.1}, {:.0} (of {} requests)",
                    s.history_p50_ms,
                    s.history_p99_ms,
                    s.history_max_ms,
                    s.longest_story,
                    s.receipt_p50_ms,
                    s.receipt_p99_ms,
                    s.demand_ms,
                    s.requests
                ),
                "milliseconds",
            );
        }
        row(
            "ratio vs naive_for_update",
            opt(r.ratio_vs_for_update, 2, "x"),
            ">= 5x",
        );
        row(
            "ratio vs naive_conditional_update",
            opt(r.ratio_vs_conditional_update, 2, "x"),
            ">= 1.5x",
        );
    }
    if let Some(i) = &r.invariants {
        row(
            "invariants: oversold / undecided / double_held / fifo_violations",
            format!(
                "{} / {} / {} / {} (of {} contested seats)",
                i.oversold, i.undecided, i.double_held, i.fifo_violations, i.contested_seats,
            ),
            "all 0",
        );
    }
    if let Some(h) = &r.pipeline_half_load {
        row(
            "half load: arrival rate (answered)",
            format!("{:.0}/s ({:.0}/s)", h.target_per_s, h.completed_per_s),
            "",
        );
        row(
            "half load: decision p50 / p95 / p99 ms",
            format!(
                "{:.1} / {:.1} / {:.1}",
                h.decision_p50_ms, h.decision_p95_ms, h.decision_p99_ms
            ),
            "p99 < 250",
        );
        row(
            "half load: accept p99 ms",
            format!("{:.2}", h.accept_p99_ms),
            "< 20",
        );
    }
    if let Some(c) = &r.crash {
        let crashes: Vec<String> = c
            .crashes
            .iter()
            .map(|s| {
                format!(
                    "{} after {} ({:.0} ms down)",
                    s.service, s.after_attempts, s.down_ms
                )
            })
            .collect();
        row("kill -9", crashes.join(", "), "");
        row(
            "after kill -9: oversold / lost accepted / 503+429 retries",
            format!(
                "{} / {} / {}",
                r.pipeline_oversold_after_crashes.unwrap_or(0),
                c.lost_accepted,
                c.run.accept.broker_retries
            ),
            "0 / 0 / -",
        );
    }
    if let Some(s) = &r.stages {
        row(
            "stage: gateway accept/s (consumer stopped)",
            opt(s.gateway_accept_per_s, 0, ""),
            "",
        );
        row(
            "stage: consumer drain decisions/s (full topic, gateway idle)",
            opt(s.consumer_drain_per_s, 0, ""),
            ">= 50000",
        );
        let pack = s.broker.as_ref().map_or(1, |b| b.pack);
        row(
            &format!("stage: broker produce / fetch commands/s (x{pack} per record)"),
            format!(
                "{} / {}",
                opt(s.broker_produce_per_s, 0, ""),
                opt(s.broker_fetch_per_s, 0, "")
            ),
            "",
        );
    }
    rows
}

/// (measure, value, target) rows of the lifecycle section.
pub(super) fn lifecycle_rows(l: &LifecycleResult) -> Vec<(String, String, String)> {
    let i = &l.invariants;
    let mut rows = vec![
        (
            "event".to_string(),
            format!(
                "{} seats, hold window {} s, {} seats per user, offers held {} s; {} users",
                l.seats, l.hold_ttl_secs, l.max_seats_per_user, l.offer_ttl_secs, l.users
            ),
            String::new(),
        ),
        (
            "holds granted / refused (2 seats each)".to_string(),
            format!("{} / {}", l.holds, l.holds_rejected),
            format!("{} / 0", l.paid_planned + l.expiring_planned),
        ),
        (
            "payments completed → bookings (tickets)".to_string(),
            format!("{} → {} ({})", l.payments_completed, l.counts.bookings, l.counts.tickets),
            format!(
                "{} → {} ({})",
                l.paid_planned,
                l.paid_planned,
                l.paid_planned * l.max_seats_per_user.max(0) as u64
            ),
        ),
        (
            "holds expired (refunds)".to_string(),
            format!("{} ({})", l.counts.expired, l.counts.refunds),
            format!("{} (0)", l.expiring_planned),
        ),
        (
            "waitlist joins (by users at the seat limit)".to_string(),
            format!("{} ({})", l.waitlist_joins, l.joins_at_limit),
            String::new(),
        ),
        (
            "seats offered to the waitlist (offer holds) / passed over at the limit"
                .to_string(),
            format!("{} ({}) / {}", l.counts.offered_seats, l.counts.offers, l.counts.skipped),
            format!("{} / {}", l.expected_offered_seats, l.expected_skipped),
        ),
        (
            "seat release → waitlist offer p50 / p99 / max ms".to_string(),
            p50_p99_max(&l.release_to_offer),
            "0 (one transaction)".to_string(),
        ),
        (
            "expiry due → waitlist offer p50 / p99 / max ms".to_string(),
            p50_p99_max(&l.due_to_offer),
            String::new(),
        ),
        (
            "expiry lateness (ended − expires_at) p50 / p99 / max ms".to_string(),
            p50_p99_max(&l.expiry_lateness),
            format!("max < {} s", i.grace_secs),
        ),
        (
            "payment webhook → booking p50 / p99 / max ms".to_string(),
            p50_p99_max(&l.payment_to_booking),
            String::new(),
        ),
        (
            "seats sold + held + available = capacity".to_string(),
            format!(
                "{} + {} + {} = {} (capacity {})",
                i.sold_seats,
                i.held_seats,
                i.available_seats,
                i.sold_seats + i.held_seats + i.available_seats,
                i.capacity
            ),
            String::new(),
        ),
        (
            "invariants: oversold / non-live holder / capacity / paid ≠ 1 booking / tickets / overdue / expired late / offer not first / offer missed".to_string(),
            format!(
                "{} / {} / {} / {} / {} / {} / {} / {} / {}",
                i.oversold,
                i.non_live_holder,
                i.capacity_mismatch,
                i.paid_not_one_booking,
                i.ticket_mismatches,
                i.overdue_active,
                i.ended_late,
                i.offers_not_first,
                i.offers_missed
            ),
            "all 0".to_string(),
        ),
        (
            "users' requests / settling / whole run s".to_string(),
            format!(
                "{:.1} / {:.1} / {:.1}{}",
                l.users_s,
                l.settle_s,
                l.wall_s,
                if l.settled { "" } else { " (gave up waiting)" }
            ),
            String::new(),
        ),
        (
            "errors / 503+429 retries".to_string(),
            format!("{} / {}", l.errors, l.broker_retries),
            "0 / -".to_string(),
        ),
    ];
    if let Some(e) = &l.first_error {
        rows.push(("first error".to_string(), e.clone(), String::new()));
    }
    rows
}

/// How each number of the SSE section is measured.
const SSE_NOTES: &[&str] = &[
    "Setup: `bench sse` starts `seatq-notifier` on its own port (`bash -c 'source deploy/local/lib.sh; ulimit -n $(ulimit -Hn); exec target/release/seatq-notifier'` with `SEATQ_CONFIG=deploy/local/seatq.toml SEATQ_NOTIFIER__EMBEDDED=false SEATQ_NOTIFIER__LISTEN=127.0.0.1:<free port>`), creates a fresh event through the gateway, and opens the streams from worker processes of its own (`bench sse-worker`, one thread each; over HTTP/1.1 raw `TcpStream`s, request, chunked body and event-stream parsed by hand; over HTTP/2 the `h2` crate's client with h2c prior knowledge, 256 KiB stream and 16 MiB connection windows, event-stream parsed by hand) with `?since=` the seat map's `position.next_offset`; a stream counts as open once it received `ready` with exactly that id. Each phase adds streams to those already open, then runs its own storm.",
    "Storm: users each holding and cancelling their own seats through the gateway (`POST /v1/events/{id}/holds?wait_ms=5000`, `DELETE /v1/holds/{id}`), about half of each user's seats held at any time; seat changes = holds granted + holds cancelled in `requests`.",
    "Decided → received: per (stream, seat change), the receipt of the first `seat_status_changed` message whose id (`next_offset`) is past the command's offset, minus the command's `requests.decided_at` (the consumer stamps it when the batch starts, before its transaction commits). It includes the commit, the outbox relay, the broker, the notifier's read, the wait for the next coalescing tick (`notifier.coalesce_ms`) and the fan-out. Published → received: per (stream, delta), from the `seat_status_changed` record's timestamp in the seat events (set by the relay's producer, in ms) to the first message whose id is at least its `next_offset`: the notifier's part plus the broker's. First → each: a message's receipt by each stream minus its first receipt by any stream: one fan-out's spread. All receipt times are taken when the read returned, on the same machine's clock.",
    "Memory: VmRSS of the notifier process (`/proc/<pid>/status`) with the streams open and idle minus its VmRSS when ready with no stream, per stream; the same for the bench's worker processes together. Messages/s: `seat_status_changed` messages received by all streams between the first and the last receipt of the phase. Dropped: `dropped_slow` of `GET /v1/notifier/stats` (a client whose queue was full is disconnected). State: for every stream, the seat map it started from plus every message it received, seat by seat, against `GET /v1/events/{id}/seats` after the storm (streams that received the same messages are folded once).",
    "Socket queues: `/proc/net/tcp` read every 2 s from the storm's start to catch-up; per side of the notifier's port, the bytes the notifier wrote that the streams' receive windows had not taken (`tx_queue`) and the bytes that arrived but the bench had not read yet (`rx_queue`). Bytes waiting unread mean the bench read those streams late, and their latencies include that wait; none waiting on either side while messages arrive late means the delay is inside the notifier (its queues, its flush tick, its share of the CPU).",
];

/// A path as the README shows it: relative to the repository when inside it.
fn repo_path(path: &str) -> &str {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
    let root = root.trim_end_matches("bench/../");
    path.strip_prefix(root).unwrap_or(path)
}

/// What the SSE run was, in lines above its table.
pub(super) fn sse_setup(r: &SseResult) -> Vec<String> {
    let n = &r.notifier;
    let mut lines = vec![format!(
        "Event `{}` ({} seats); notifier `{}` built {}, `RLIMIT_NOFILE` {} (hard {}), {} descriptors and {} kB RSS when ready ({:.1} s), `coalesce_ms` {}, `client_buffer` {}, `socket_send_buffer` {}; storm per phase: {} users, {:.0} s, up to {:.0} changes/s; {} worker processes of at most {} streams.",
        r.event_id,
        r.seats,
        repo_path(&n.bin),
        n.bin_modified,
        n.fd_limit.0,
        n.fd_limit.1,
        n.baseline_fds,
        n.baseline_rss_kb,
        n.ready_s,
        n.coalesce_ms,
        n.client_buffer,
        n.socket_send_buffer,
        r.actors,
        r.storm_secs,
        r.storm_rate,
        r.workers,
        r.streams_per_worker,
    )];
    if r.phases.iter().any(|p| p.http2_streams > 0) {
        lines.push(format!(
            "\n**Phases past the notifier's descriptors add their streams over HTTP/2**, {} per connection (h2c with prior knowledge; `--sse-http2-streams`): over HTTP/1.1 every stream is a connection and a descriptor, and the notifier may hold {} (`RLIMIT_NOFILE`, not raisable here without `CAP_SYS_RESOURCE`). Many streams on one connection is what the notifier sees behind an HTTP/2 load balancer, or from a browser's tabs.",
            r.http2_streams_per_connection, n.fd_limit.0
        ));
    }
    if let Some(cap) = &r.fd_cap {
        lines.push(format!(
            "\n**{} streams were asked for; {} were planned**: the notifier may hold {} descriptors (`RLIMIT_NOFILE`, not raisable here without `CAP_SYS_RESOURCE`) and used {} before the first stream; {} are kept free for the bench's own requests to it.",
            cap.requested, cap.capped_to, cap.fd_limit, cap.baseline_fds, cap.reserve
        ));
    }
    if let Some(s) = &r.stopped {
        lines.push(format!(
            "\nAfter the run the notifier took {:.0} ms to exit on SIGTERM ({}{}); it logged {} warnings or errors{}.",
            s.after_ms,
            s.exit,
            if s.killed { ", killed" } else { "" },
            r.notifier_log_warnings,
            r.first_notifier_warning
                .as_deref()
                .map(|w| format!(", first: `{}`", w.replace('|', "/")))
                .unwrap_or_default()
        ));
    }
    for p in &r.problems {
        lines.push(format!("\n**Problem:** {p}"));
    }
    lines
}

fn p4(p: &Percentiles) -> String {
    format!(
        "{:.0} / {:.0} / {:.0} / {:.0}",
        p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
    )
}

/// (measure, one value per phase) rows of the SSE table.
pub(super) fn sse_rows(r: &SseResult) -> Vec<(String, Vec<String>)> {
    type Cell = fn(&SsePhase) -> String;
    let rows: &[(&str, Cell)] = &[
        (
            "streams open (failed to open); s to open the new ones",
            |p| format!("{} ({}); {:.1}", p.streams, p.open_failed, p.open_s),
        ),
        ("of which over HTTP/2 (connections)", |p| {
            format!("{} ({})", p.http2_streams, p.http2_connections)
        }),
        ("notifier RSS: streams open / after the storm (MB)", |p| {
            format!(
                "{:.1} / {:.1}",
                p.notifier_rss_kb as f64 / 1024.0,
                p.notifier_rss_kb_after_storm as f64 / 1024.0
            )
        }),
        (
            "**notifier memory per stream (kB)** (per stream added)",
            |p| match p.notifier_kb_per_added_stream {
                Some(added) => format!("{:.1} ({added:.1})", p.notifier_kb_per_stream),
                None => format!("{:.1}", p.notifier_kb_per_stream),
            },
        ),
        ("bench client memory per stream (kB)", |p| {
            format!("{:.1}", p.client_kb_per_stream)
        }),
        ("seat changes in the storm (per s)", |p| {
            format!("{} ({:.0})", p.seat_changes, p.seat_changes_per_s)
        }),
        ("deltas published / messages per stream", |p| {
            format!(
                "{} / {:.1}",
                p.deltas_published,
                p.messages as f64 / p.streams.max(1) as f64
            )
        }),
        ("**messages delivered per s** (per stream per s)", |p| {
            format!(
                "{:.0} ({:.2})",
                p.messages_per_s, p.messages_per_stream_per_s
            )
        }),
        ("data delivered MB/s; seats per message", |p| {
            format!("{:.2}; {:.1}", p.data_mb_per_s, p.seats_per_message)
        }),
        ("**decided → received p50 / p90 / p99 / max ms**", |p| {
            p4(&p.decided_to_received)
        }),
        ("published → received p50 / p90 / p99 / max ms", |p| {
            p4(&p.published_to_received)
        }),
        ("first → each stream p50 / p90 / p99 / max ms", |p| {
            p4(&p.first_to_each)
        }),
        (
            "every stream had the last change (ms after the storm)",
            |p| {
                format!(
                    "{}{:.0}",
                    if p.caught_up { "" } else { "NOT: gave up at " },
                    p.catch_up_ms
                )
            },
        ),
        ("flush tick gap as received p50 / p90 / p99 / max ms", |p| {
            p4(&p.tick_gap)
        }),
        (
            "socket queues, mean / max kB: notifier unsent; bench unread (most streams)",
            |p| {
                let q = &p.queues;
                format!(
                    "{:.0} / {:.0}; {:.0} / {:.0} ({})",
                    q.server_tx_kb_mean,
                    q.server_tx_kb_max,
                    q.client_rx_kb_mean,
                    q.client_rx_kb_max,
                    q.client_rx_streams_max
                )
            },
        ),
        (
            "CPU, cores (storm to catch-up): notifier / bench clients",
            |p| format!("{:.2} / {:.2}", p.notifier_cpu_share, p.client_cpu_share),
        ),
        ("**dropped as slow** / disconnects / reconnects", |p| {
            format!("{} / {} / {}", p.dropped_slow, p.disconnects, p.reconnects)
        }),
        (
            "**streams whose seat map = `GET /seats`** (mismatching)",
            |p| {
                format!(
                    "{} of {} ({})",
                    p.state.matching, p.state.checked, p.state.mismatching
                )
            },
        ),
        (
            "changes never received / bad messages / ready at the wrong id",
            |p| {
                format!(
                    "{} / {} / {}",
                    p.changes_missed, p.bad_messages, p.ready_mismatches
                )
            },
        ),
        ("storm errors / requests not decided in 5 s", |p| {
            format!("{} / {}", p.storm.errors, p.storm.pending)
        }),
        ("load average at the phase's start", |p| {
            format!("{:.2}", p.load_avg_1m)
        }),
    ];
    let mut out: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|(m, f)| (m.to_string(), r.phases.iter().map(f).collect()))
        .collect();
    if let Some(first) = r.phases.first() {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "-".to_string()
            }
        };
        out.push((
            "decided → received p50 / p99 vs the first phase".to_string(),
            r.phases
                .iter()
                .map(|p| {
                    format!(
                        "{} / {}",
                        ratio(
                            p.decided_to_received.p50_ms,
                            first.decided_to_received.p50_ms
                        ),
                        ratio(
                            p.decided_to_received.p99_ms,
                            first.decided_to_received.p99_ms
                        )
                    )
                })
                .collect(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::golden;

    /// The first line where `got` and `want` differ, for a readable failure.
    fn first_difference(got: &str, want: &str) -> Option<String> {
        let (mut g, mut w) = (got.split('\n'), want.split('\n'));
        for n in 1.. {
            match (g.next(), w.next()) {
                (None, None) => return None,
                (a, b) if a == b => continue,
                (a, b) => return Some(format!("line {n}:\n got: {a:?}\nwant: {b:?}")),
            }
        }
        None
    }

    #[test]
    fn renders_the_readme_the_previous_code_wrote() {
        let got = generated(&golden::set());
        if let Some(diff) = first_difference(&got, golden::README_GENERATED) {
            panic!("the generated part differs from the golden README's, {diff}");
        }
    }

    #[test]
    fn the_sections_come_in_the_readme_order() {
        let md = generated(&golden::set());
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s} missing"));
        let order = [
            at("### Fair fight"),
            at("Latest run: "),
            at("| design | decisions/s"),
            at("### Hold lifecycle"),
            at("### SSE fan-out"),
            at("### On-sale with the waiting room"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn a_part_from_another_run_shows_that_run_and_no_comparison_with_the_flash_sale() {
        // The golden parts each come from a run of their own.
        let mut set = golden::set();
        let md = generated(&set);
        assert!(!md.contains("(same run)") && !md.contains("(raw SQL)"));
        // From the flash sale's run, as after `bench all`: the same-run rows show.
        let own = set.flash_sale.as_ref().expect("flash sale").run();
        set.lifecycle.as_mut().expect("lifecycle").run = own.clone();
        set.fair_fight.as_mut().expect("fair fight").run = own.clone();
        let md = generated(&set);
        assert!(md.contains("| `hold_seats`, flash sale (same run) |"));
        assert!(md.contains("| `hold_seats`, half load (same run) |"));
        assert!(md.contains("- `for_update` (raw SQL): "));
        let line = format!("Run finished {} — git 3ecf2bb17450+dirty", own.finished_at);
        assert_eq!(md.matches(&line).count(), 2, "{line}");
    }

    #[test]
    fn without_a_flash_sale_the_other_parts_still_render() {
        let mut set = golden::set();
        set.flash_sale = None;
        let md = generated(&set);
        assert!(!md.contains("Latest run: ") && !md.contains("| design |"));
        for heading in ["### Fair fight", "### Hold lifecycle", "### SSE fan-out"] {
            assert!(md.contains(heading), "{heading}");
        }
        assert!(md.starts_with(&format!("\n{FAIR_BEGIN}\n")));
    }
}
