//! The summary printed at the end of a run, from the run's own report (every part it
//! ran is in memory; nothing is read back from the results directory).

use std::fmt::Write as _;

use super::markdown::{command_rows, header, headline, lifecycle_rows, lines, sse_rows, sse_setup};
use super::Report;

/// The summary of a run, all its parts in memory.
pub(super) fn summary(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}\n", header(r));
    if let Some(f) = &r.fair_fight {
        let _ = writeln!(out, "{}", f.summary());
    }
    let lines = lines(r);
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "{:<26} {:>11} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}  correctness",
            "design", "decisions/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "held", "errors"
        );
    }
    for l in &lines {
        let _ = writeln!(
            out,
            "{:<26} {:>11.0} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>8} {:>7}  {}",
            l.design,
            l.decisions_per_s,
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.max_ms,
            l.held,
            l.errors,
            l.wrong
        );
    }
    let headline = headline(r);
    if !headline.is_empty() {
        out.push('\n');
    }
    for (measure, value, target) in headline {
        let target = if target.is_empty() {
            String::new()
        } else {
            format!("  (target {target})")
        };
        let _ = writeln!(out, "{measure:<66} {value}{target}");
    }
    if let Some(l) = &r.lifecycle {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "hold lifecycle (event {}):", l.event_id);
        for (measure, value, target) in lifecycle_rows(l) {
            let target = if target.is_empty() {
                String::new()
            } else {
                format!("  (expected {target})")
            };
            let _ = writeln!(out, "  {measure:<64} {value}{target}");
        }
        let _ = writeln!(
            out,
            "  {:<42} {:>8} {:>9} {:>9} {:>9}",
            "command: request -> decision", "decided", "p50 ms", "p99 ms", "max ms"
        );
        for (kind, c) in command_rows(l, Some(r)) {
            let _ = writeln!(
                out,
                "  {kind:<42} {:>8} {:>9.1} {:>9.1} {:>9.1}",
                c.count, c.p50_ms, c.p99_ms, c.max_ms
            );
        }
    }
    if let Some(s) = &r.sse {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "sse fan-out (event {}):", s.event_id);
        for line in sse_setup(s) {
            let _ = writeln!(out, "  {}", line.trim_start());
        }
        let mut header = format!("  {:<64}", "measure");
        for p in &s.phases {
            let _ = write!(header, " {:>24}", format!("{} streams", p.streams));
        }
        let _ = writeln!(out, "{header}");
        for (measure, values) in sse_rows(s) {
            let mut line = format!("  {:<64}", measure.replace("**", ""));
            for v in values {
                let _ = write!(line, " {v:>24}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(w) = &r.waitroom {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&crate::waitroom::report::summary(w));
    }
    // The notes are about the flash-sale designs.
    if !lines.is_empty() {
        for note in &r.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    out
}
