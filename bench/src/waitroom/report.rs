//! The waiting-room section of the README and of the terminal summary.

use std::fmt::Write as _;

use crate::waitroom::measure::Spread;
use crate::waitroom::result::{Millis, WaitroomResult};

/// Around the section, like the README's other parts (nothing reads them: they show
/// where the section is).
const BEGIN: &str =
    "<!-- waiting room: written by `bench all` and by a full-size `bench waitroom` -->";
const END: &str = "<!-- end of waiting room -->";

/// How each number is measured.
pub const NOTES: &[&str] = &[
    "Setup: a fresh 50,000-seat event (the flash sale's stadium) with `waiting_room_enabled` and `pow_difficulty` 0, on sale `presale_secs` after the first join. The users (JWTs minted with the gateway's secret) join in two closed-loop bursts (`POST /v1/events/{id}/queue`, `join_concurrency` in flight): a share before the sale opens (they get lottery places), the rest from the moment it opens (first come, first served). They come from `source_ips` loopback addresses (127.1.x.y), one connection pool each, as the gateway limits requests per client IP; 429s are waited out per `Retry-After` and counted.",
    "Admission news: a sample of users (`pollers`) reads its ticket every `poll_ms` like the web app; everyone else is told as the user stream's `admitted` message would tell them: the bench reads `queue_tickets` every 250 ms for newly admitted tickets (200,000 polling browsers would be 50,000 requests/s, and 200,000 streams exceed the notifier's descriptor limit). An admitted buyer thinks for a random 0..`think_ms`, reads its ticket for the admission token (as the web app does after `admitted`), then sends one hold request with `X-Admission-Token` (the flash sale's mix: 80% one named seat, 10% 2–4 adjacent, 10% best available 1–4; mostly the central lower sections), at most `buyers_in_flight` at a time.",
    "Joins/s: tickets (the gateway's `joined_at`) over the time the bursts lasted (first to last join, minus the pause until on-sale when the pre-sale burst ended early); the pre-sale burst's rate is its joins over its wall time. Join latency: the round trip of each answered join, at the client.",
    "Admissions: every scheduler tick admits its batch in one `UPDATE` with the transaction's `now()`, so `admitted_at` groups the batches; admitted/s = admitted over sale opening → last batch; batch gaps show the admission loop's real period (`tick_ms` when on time). The controller's rate and readings are its `admission_control` row, read every second; consumer lag = broker log end − the consumer's applied offset, read by the bench.",
    "Hold decisions: `requests.issued_at` (gateway, at accept) → `decided_at` (consumer batch) of every accepted hold request, as in the flash sale; per second and per 10 s of `decided_at`. The controller's own signal is the p99 over its last `latency_window_secs`.",
    "Queue wait: `admitted_at − joined_at` of admitted tickets (pre-sale joiners also from the sale opening). Lottery: Spearman's rank correlation between pre-sale joiners' join order and admission order (batch, then place in line), and the share of the first tenth to join that was in the first tenth let in (0.1 if unrelated). FIFO: post-sale joiners let in in an earlier batch than someone who joined before them, and the largest such inversion in join time (the gateway stamps the place in line before its `INSERT` commits, and a tick admits the tickets committed by then, so a join passed over by one that committed sooner is let in one batch later: inversions up to a join's commit time are that race, not queue-jumping). Line order: anyone let in in a later batch than someone behind them in line, or ahead of someone still waiting at the stop.",
    "Stop: when everyone who joined was let in, or `max_secs` after on-sale. Then the bench closes the line: it deletes the event's waiting tickets and its Redis line (a tick admitting at that moment keeps its batch), so the scheduler stops working for this event; they count as still waiting. Then it waits for the buyers and for the consumer to apply everything, and checks the invariants: the flash sale's (`oversold`, `double_held`, `undecided`, Kafka-order FIFO) and the waiting room's (nobody admitted before the sale, no hold by a user not admitted before it, every `201` a ticket, no admitted buyer refused `403`).",
    "CPU: each process's user + system time from `/proc/<pid>/stat` (PostgreSQL: every `postgres` process, which includes other people's test databases on the same cluster), the machine's busy time from `/proc/stat`; `other` is the rest (other people's builds and tests on a shared machine), in cores.",
];

fn ms4(m: &Millis) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1}",
        m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms
    )
}

fn s4(s: &Spread) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ({})",
        s.p50_s, s.p90_s, s.p99_s, s.max_s, s.count
    )
}

fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn joined<T: std::fmt::Display>(items: impl Iterator<Item = T>, sep: &str) -> String {
    items.map(|x| x.to_string()).collect::<Vec<_>>().join(sep)
}

/// What the run was, in lines above its tables.
pub fn setup(r: &WaitroomResult) -> Vec<String> {
    let c = &r.controller;
    vec![
        format!(
            "Event `{}` ({} seats), on sale at {} ({:.0} s after the first join); {} users: {} in a burst before the sale opened, {} after, {} joins in flight, from {} source addresses; {} polling users (every {} ms); buyers think 0–{} ms, at most {} at a time.",
            r.event_id,
            r.seats,
            r.on_sale_at.format("%H:%M:%S%.3f"),
            r.presale_secs,
            r.users,
            r.presale_users,
            r.users - r.presale_users,
            r.join_concurrency,
            r.source_ips,
            r.polls.pollers,
            r.poll_ms,
            r.think_ms,
            r.buyers_in_flight,
        ),
        format!(
            "Controller (the scheduler's settings): tick {} ms, first rate {}/s, +{}/s per healthy tick, ×{} when the consumer lag > {} or the decision p99 over {} s > {} ms, within {}–{}/s{}; positions pushed every {} s. {}",
            c.tick_ms,
            c.initial_rate,
            c.rate_step,
            c.backoff,
            c.target_lag,
            c.latency_window_secs,
            c.target_decision_p99_ms,
            c.min_rate,
            c.max_rate,
            if c.max_unconverted > 0 {
                format!(", at most {} admitted without a hold", c.max_unconverted)
            } else {
                String::new()
            },
            c.position_update_secs,
            if c.scheduler_overrides.is_empty() {
                "The scheduler ran with the stack's configuration (no overrides).".to_string()
            } else {
                format!(
                    "The scheduler ran with `{}`.",
                    c.scheduler_overrides.join(" ")
                )
            },
        ),
        format!(
            "Admissions stopped {:.1} s after the sale opened: {}.",
            r.stopped_after_s, r.stop_reason
        ),
    ]
}

/// (measure, value, expected) rows.
pub fn rows(r: &WaitroomResult) -> Vec<(String, String, String)> {
    let (j, a, h, d, q, o, i, w) = (
        &r.joins,
        &r.admission,
        &r.holds,
        &r.decisions,
        &r.queue_wait,
        &r.order,
        &r.invariants,
        &r.waitroom_invariants,
    );
    let row = |m: &str, v: String, t: &str| (m.to_string(), v, t.to_string());
    let refused = if h.refused.is_empty() {
        "0".to_string()
    } else {
        joined(h.refused.iter().map(|(k, n)| format!("{n} {k}")), ", ")
    };
    let outcomes = joined(d.outcomes.iter().map(|(k, n)| format!("{n} {k}")), ", ");
    let solves = joined(
        r.pow.solves.iter().map(|s| {
            format!(
                "{} bits {:.1} ms ({:.0} hashes, {} solves)",
                s.difficulty, s.mean_ms, s.mean_hashes, s.solves
            )
        }),
        "; ",
    );
    let gate = joined(
        r.gate.iter().map(|g| format!("{}: {}", g.what, g.got)),
        "; ",
    );
    let gate_expected = joined(r.gate.iter().map(|g| g.expected.clone()), "; ");
    let mut rows = vec![
        row(
            "**joins accepted/s** (pre-sale burst alone)",
            format!("{:.0} ({:.0})", j.per_s, j.presale_per_s),
            "",
        ),
        row("join latency p50 / p90 / p99 / max ms", ms4(&j.latency), ""),
        row(
            "joined before / after on-sale (first to last join, s); told a provisional place; again; errors",
            format!(
                "{} / {} ({:.1}); {}; {}; {}",
                j.before_sale, j.after_sale, j.span_s, j.provisional, j.joined_again, j.errors
            ),
            "-; the pre-sale joins; 0; 0",
        ),
        row(
            "**admitted** (of joined); still waiting when stopped (of them pre-sale)",
            format!(
                "{} ({:.1} %); {} ({})",
                a.admitted,
                100.0 * a.admitted as f64 / (j.before_sale + j.after_sale).max(1) as f64,
                a.waiting_at_stop,
                a.waiting_presale_at_stop
            ),
            "",
        ),
        row(
            "**admitted/s**: on-sale → last batch / best 10 s",
            format!("{:.0} / {:.0}", a.per_s, a.peak_10s_per_s),
            "",
        ),
        row(
            "first / last admission after on-sale s; batches (largest)",
            format!(
                "{} / {}; {} ({})",
                opt(a.first_after_sale_s.map(|x| format!("{x:.1}"))),
                opt(a.last_after_sale_s.map(|x| format!("{x:.1}"))),
                a.batches,
                a.largest_batch
            ),
            "",
        ),
        row(
            "gap between admission batches p50 / p90 / p99 / max ms",
            ms4(&a.batch_gap),
            &format!("{} (tick_ms)", r.controller.tick_ms),
        ),
        row(
            "controller: highest rate chosen /s; times it cut the rate",
            format!("{:.0}; {}", a.max_rate_seen, a.rate_cuts),
            &format!("max_rate {}", r.controller.max_rate),
        ),
        row(
            "hold requests: buyers / sent / accepted (202) / refused / errors",
            format!(
                "{} / {} / {} / {refused} / {}",
                h.buyers, h.sent, h.accepted, h.errors
            ),
            "",
        ),
        row(
            "**hold decisions p50 / p95 / p99 / max ms** (decided/s)",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ({:.0})",
                d.p50_ms, d.p95_ms, d.p99_ms, d.max_ms, d.per_s
            ),
            &format!("p99 ≤ {:.0}", d.target_p99_ms),
        ),
        row(
            "seconds whose decisions' p99 > target (of seconds with decisions); worst 10 s p99 ms",
            format!(
                "{} ({}); {:.1}",
                d.seconds_over_target, d.seconds_with_decisions, d.worst_10s_p99_ms
            ),
            "",
        ),
        row(
            "decisions (undecided)",
            format!("{outcomes} ({})", d.undecided),
            "",
        ),
        row(
            "**queue wait join → admitted** p50 / p90 / p99 / max s (n)",
            s4(&q.all),
            "",
        ),
        row(
            "pre-sale joiners: join → admitted; on-sale → admitted",
            format!("{}; {}", s4(&q.presale_from_join), s4(&q.presale_from_sale)),
            "",
        ),
        row(
            "post-sale joiners: join → admitted",
            s4(&q.after_sale_from_join),
            "",
        ),
        row(
            "**lottery**: rank correlation join vs admission order (n); first tenth's share",
            format!(
                "{} ({}); {}",
                opt(o.lottery_rank_correlation.map(|x| format!("{x:.4}"))),
                o.lottery_admitted,
                opt(o.lottery_first_tenth_share.map(|x| format!("{x:.3}")))
            ),
            "≈ 0; ≈ 0.1",
        ),
        row(
            "**FIFO after on-sale** violations (of n), largest inversion ms; line order violations; post-sale let in before the lottery",
            format!(
                "{} ({}), {}; {}; {}",
                o.fifo_violations,
                o.fifo_admitted,
                opt(o.fifo_max_inversion_ms.map(|x| format!("{x:.0}"))),
                o.line_order_violations,
                o.after_sale_before_lottery
            ),
            "0, or inversions within a join's commit time (≪ join latency); same; 0",
        ),
        row(
            "invariants: oversold / double held / undecided / Kafka-order FIFO (contested seats)",
            format!(
                "{} / {} / {} / {} ({})",
                i.oversold, i.double_held, i.undecided, i.fifo_violations, i.contested_seats
            ),
            "all 0",
        ),
        row(
            "waiting room: admitted before sale / holds without admission / tickets ≠ 201s / admitted buyers refused 403",
            format!(
                "{} / {} / {} / {}",
                w.admitted_before_sale,
                w.holds_without_admission,
                w.tickets_mismatch,
                w.admitted_refused
            ),
            "all 0",
        ),
        row("gate checks", gate, &gate_expected),
        row(
            "ticket polls (polling users): polls, p50 / p90 / p99 / max ms",
            format!("{}, {}", r.polls.polls, ms4(&r.polls.latency)),
            "",
        ),
        row(
            "admitted → seen: by a poller (how many saw it first) / by the watcher, p50 / p99 ms",
            format!(
                "{:.0} / {:.0} ({}); {:.0} / {:.0}",
                r.polls.admitted_to_polled.p50_ms,
                r.polls.admitted_to_polled.p99_ms,
                r.polls.saw_admission,
                r.polls.admitted_to_watched.p50_ms,
                r.polls.admitted_to_watched.p99_ms
            ),
            "",
        ),
        row(
            "token read / hold 202 p50 / p99 ms",
            format!(
                "{:.1} / {:.1}; {:.1} / {:.1}",
                h.token_latency.p50_ms,
                h.token_latency.p99_ms,
                h.accept_latency.p50_ms,
                h.accept_latency.p99_ms
            ),
            "",
        ),
        row(
            "429 / 503 answers waited out; errors",
            format!(
                "{} / {}; {}",
                r.rate_limited,
                r.unavailable,
                j.errors + h.errors + r.polls.errors
            ),
            "",
        ),
        row(
            "proof of work: server verify µs (verifies per core-second); native solve",
            format!(
                "{:.2} ({:.0}); {solves}",
                r.pow.verify_us, r.pow.verifies_per_core_s
            ),
            "",
        ),
        row(
            "seats held at the end; whole run s",
            format!("{}; {:.0}", r.seats_taken, r.wall_s),
            "",
        ),
    ];
    if let Some(e) = &r.first_error {
        rows.push(row("first error", e.clone(), ""));
    }
    for p in &r.problems {
        rows.push(row("problem", p.clone(), ""));
    }
    rows
}

/// The CPU table (markdown).
pub fn cpu_table(r: &WaitroomResult) -> String {
    let mut out = String::new();
    let Some(first) = r.cpu.first() else {
        return out;
    };
    let _ = write!(out, "| phase (cores) | s |");
    for (name, _) in &first.cores {
        let _ = write!(out, " {name} |");
    }
    let _ = write!(out, "\n|---|---:|");
    for _ in &first.cores {
        out.push_str("---:|");
    }
    out.push('\n');
    for p in &r.cpu {
        let _ = write!(out, "| {} | {:.0} |", p.phase, p.wall_s);
        for (_, c) in &p.cores {
            let _ = write!(out, " {c:.2} |");
        }
        out.push('\n');
    }
    out
}

/// The trajectory table (markdown), every 10 s.
pub fn trajectory_table(r: &WaitroomResult) -> String {
    let mut out = String::from(
        "| t s | admitted/s | rate /s | its lag / p99 ms | consumer lag | holds/s | decided/s | decision p99 ms | buyers pending | joined |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for b in &r.trajectory {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} / {} | {} | {:.0} | {:.0} | {} | {} | {} |",
            b.t,
            b.admitted_per_s,
            opt(b.rate.map(|x| format!("{x:.0}"))),
            opt(b.control_lag),
            opt(b.control_p99_ms.map(|x| format!("{x:.0}"))),
            opt(b.consumer_lag),
            b.holds_per_s,
            b.decided_per_s,
            opt(b.decision_p99_ms.map(|x| format!("{x:.0}"))),
            b.buyers_pending,
            b.joined
        );
    }
    out
}

/// The README section, markers included; `run` says when and where it ran, `reading` is
/// what was written by hand about that run (as it is, right after the notes).
pub fn markdown(r: &WaitroomResult, run: &str, reading: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}\n### On-sale with the waiting room\n");
    let _ = writeln!(out, "{run}\n");
    for line in setup(r) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\n| measure | value | expected |\n|---|---|---|");
    for (m, v, t) in rows(r) {
        let _ = writeln!(out, "| {m} | {v} | {t} |");
    }
    let _ = writeln!(out, "\n{}", cpu_table(r));
    let _ = writeln!(out, "{}", trajectory_table(r));
    for note in NOTES {
        let _ = writeln!(out, "- {note}");
    }
    if let Some(text) = reading {
        let _ = writeln!(out, "{}", text.trim_end());
    }
    let _ = writeln!(out, "{END}");
    out
}

/// The terminal summary.
pub fn summary(r: &WaitroomResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "waiting room (event {}):", r.event_id);
    for line in setup(r) {
        let _ = writeln!(out, "  {line}");
    }
    for (m, v, t) in rows(r) {
        let t = if t.is_empty() {
            String::new()
        } else {
            format!("  (expected {t})")
        };
        let _ = writeln!(out, "  {:<66} {v}{t}", m.replace("**", ""));
    }
    for p in &r.cpu {
        let cores = joined(p.cores.iter().map(|(n, c)| format!("{n} {c:.2}")), ", ");
        let _ = writeln!(out, "  cpu, {} ({:.0} s): {cores}", p.phase, p.wall_s);
    }
    let _ = writeln!(
        out,
        "  {:>5} {:>10} {:>7} {:>16} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8}",
        "t s",
        "admitted/s",
        "rate",
        "lag / p99 ms",
        "c.lag",
        "holds/s",
        "decided/s",
        "p99 ms",
        "pending",
        "joined"
    );
    for b in &r.trajectory {
        let lag_p99 = format!(
            "{} / {}",
            opt(b.control_lag),
            opt(b.control_p99_ms.map(|x| format!("{x:.0}")))
        );
        let _ = writeln!(
            out,
            "  {:>5} {:>10.0} {:>7} {:>16} {:>8} {:>7.0} {:>9.0} {:>8} {:>8} {:>8}",
            b.t,
            b.admitted_per_s,
            opt(b.rate.map(|x| format!("{x:.0}"))),
            lag_p99,
            opt(b.consumer_lag),
            b.holds_per_s,
            b.decided_per_s,
            opt(b.decision_p99_ms.map(|x| format!("{x:.0}"))),
            b.buyers_pending,
            b.joined
        );
    }
    out
}
