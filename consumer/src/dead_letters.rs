//! Reading the dead letters back, for operators (`seatq-ctl dead-letters`).
//!
//! A dead letter is a command the consumer did not apply as it was: a record that is not
//! a command at all, a malformed command (unknown kind, bad body), or a command that made
//! its batch fail when applied (`internal_error`: a constraint, a data error, a panic in
//! the rules). Its request, if it had an id, was decided `rejected`; the rest of its batch
//! was applied in order. The row keeps what is needed to understand and, once the cause
//! is fixed, to ask the user to try again: where it was in the topic, who sent what, the
//! error, the raw bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

const LIST: &str = "SELECT topic, kafka_partition, kafka_offset, kafka_seq, request_id, event_id, \
       kind, reason, error, payload, recorded_at \
     FROM dead_letters WHERE recorded_at >= $1 \
     ORDER BY recorded_at DESC, kafka_partition, kafka_offset DESC, kafka_seq DESC LIMIT $2";

type Row = (
    String,
    i32,
    i64,
    i32,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
    String,
    Option<String>,
    Option<Vec<u8>>,
    DateTime<Utc>,
);

/// One dead letter as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Place within the record (packed records carry several commands).
    pub seq: i32,
    pub request_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub kind: Option<String>,
    /// `internal_error` (failed when applied), `unknown_command_kind`, `invalid_command`
    /// or `unreadable_command`.
    pub reason: String,
    pub error: Option<String>,
    /// The command as it was on the topic (the whole record when it could not be read).
    pub payload: String,
    pub recorded_at: DateTime<Utc>,
}

/// The newest `limit` dead letters recorded since `since`, newest first.
pub async fn list(
    pool: &PgPool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(LIST)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetter {
            topic: r.0,
            partition: r.1,
            offset: r.2,
            seq: r.3,
            request_id: r.4,
            event_id: r.5,
            kind: r.6,
            reason: r.7,
            error: r.8,
            payload: String::from_utf8_lossy(r.9.as_deref().unwrap_or_default()).into_owned(),
            recorded_at: r.10,
        })
        .collect())
}

fn clip(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut clipped: String = one_line.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// A table for a terminal, one dead letter per line (errors and payloads clipped; `--json`
/// has them whole).
pub fn render_table(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let mut out = format!(
        "{:<20} {:>9} {:>12} {:<36} {:<18} {:<20} {}\n",
        "recorded (UTC)", "partition", "offset:seq", "request_id", "kind", "reason", "error"
    );
    for d in letters {
        out.push_str(&format!(
            "{:<20} {:>9} {:>12} {:<36} {:<18} {:<20} {}\n",
            d.recorded_at.format("%Y-%m-%d %H:%M:%S"),
            d.partition,
            format!("{}:{}", d.offset, d.seq),
            d.request_id
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            clip(d.kind.as_deref().unwrap_or("-"), 18),
            d.reason,
            clip(d.error.as_deref().unwrap_or("-"), 80),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_clips_long_and_control_characters() {
        let letter = DeadLetter {
            topic: "t".into(),
            partition: 3,
            offset: 42,
            seq: 7,
            request_id: None,
            event_id: None,
            kind: Some("hold_seats".into()),
            reason: "internal_error".into(),
            error: Some(format!("line one\nline two {}", "x".repeat(200))),
            payload: "{}".into(),
            recorded_at: Utc::now(),
        };
        let table = render_table(&[letter]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[1].contains("42:7"));
        assert!(lines[1].contains("line one line two"));
        assert!(lines[1].ends_with('…'));
        assert_eq!(render_table(&[]), "no dead letters\n");
    }
}
