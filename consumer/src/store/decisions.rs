//! A batch's decisions as rows: one `requests` row per decided command (what its sender
//! polls), dead letters for what could not be decided, the outbox rows, and the `NOTIFY`
//! that wakes gateways waiting for a decision.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use seatq_common::ids::EventId;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::input::Input;
use crate::ledger::{Decided, EventRules, Outcome};
use crate::outbox::Outbox;

const SELECT_DECIDED_IDS: &str = "SELECT request_id FROM requests WHERE request_id = ANY($1)";
// ON CONFLICT: the gateway may have recorded a request as never accepted meanwhile (its
// produce timed out); the caller compares the rows inserted with the decisions made.
// The seats each command named travel as one text array of PostgreSQL array literals
// ('{3,4}'): unnest cannot take an array of arrays of different lengths.
const INSERT_REQUESTS: &str = "INSERT INTO requests (request_id, event_id, user_id, kind, status, reason, \
       detail, hold_id, kafka_partition, kafka_offset, kafka_seq, issued_at, decided_at, seat_nos) \
     SELECT request_id, event_id, user_id, kind, status, reason, detail::jsonb, hold_id, $10, kafka_offset, \
            kafka_seq, issued_at, $11, seat_nos::int[] \
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::uuid[], $9::bigint[], $12::timestamptz[], $13::int[], $14::text[]) \
       AS u(request_id, event_id, user_id, kind, status, reason, detail, hold_id, kafka_offset, issued_at, \
            kafka_seq, seat_nos) \
     ON CONFLICT (request_id) DO NOTHING";
const INSERT_DEAD_LETTERS: &str =
    "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, \
       kafka_seq, reason, payload, request_id, event_id, kind, error) \
     SELECT $1, $2, kafka_offset, kafka_seq, reason, payload, request_id, event_id, kind, error \
     FROM unnest($3::bigint[], $4::int[], $5::text[], $6::bytea[], $7::uuid[], $8::uuid[], \
                 $9::text[], $10::text[]) \
       AS u(kafka_offset, kafka_seq, reason, payload, request_id, event_id, kind, error) \
     ON CONFLICT DO NOTHING";
// A payment whose command could not be applied: its money goes back (unless it already
// became a booking), rather than staying with nobody's seat. What was captured, if the
// provider said (it may differ from what was asked: migration 0012).
const REFUND_DEAD_PAYMENTS: &str = "INSERT INTO refunds (id, payment_id, event_id, user_id, \
       amount_cents, reason, status) \
     SELECT gen_random_uuid(), p.id, p.event_id, p.user_id, \
       coalesce(p.captured_cents, p.amount_cents), 'dead_letter', 'pending' \
     FROM payments p WHERE p.id = ANY($1) \
       AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.payment_id = p.id) \
     ON CONFLICT DO NOTHING";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (source_partition, stream, message_key, payload) \
     SELECT $1, stream, message_key, payload::jsonb \
     FROM unnest($2::text[], $3::text[], $4::text[]) AS u(stream, message_key, payload)";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// Which of `ids` are decided already (a redelivered command).
pub async fn decided_ids(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar::<_, Uuid>(SELECT_DECIDED_IDS)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await
}

/// One `requests` row per decision. Returns how many were decided elsewhere meanwhile
/// (the gateway recorded them as never accepted): the batch must not commit then.
pub async fn write_requests(
    tx: &mut Transaction<'static, Postgres>,
    partition: i32,
    decided: &[Decided],
    rules: &HashMap<EventId, EventRules>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    if decided.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(decided.len());
    let mut events = Vec::with_capacity(decided.len());
    let mut users = Vec::with_capacity(decided.len());
    let mut kinds = Vec::with_capacity(decided.len());
    let mut statuses = Vec::with_capacity(decided.len());
    let mut reasons: Vec<Option<&str>> = Vec::with_capacity(decided.len());
    let mut details: Vec<Option<String>> = Vec::with_capacity(decided.len());
    let mut holds: Vec<Option<Uuid>> = Vec::with_capacity(decided.len());
    let mut offsets = Vec::with_capacity(decided.len());
    let mut seqs = Vec::with_capacity(decided.len());
    let mut issued = Vec::with_capacity(decided.len());
    let mut seats = Vec::with_capacity(decided.len());
    for d in decided {
        seats.push(int_array_literal(&d.seat_nos));
        ids.push(d.request_id.0);
        events.push(d.event_id.0);
        users.push(d.user_id.0.clone());
        kinds.push(d.kind.clone());
        offsets.push(d.position.0);
        seqs.push(d.position.1);
        issued.push(d.issued_at);
        match &d.outcome {
            Outcome::Held(h) => {
                statuses.push("held");
                reasons.push(None);
                details.push(None);
                holds.push(Some(h.hold_id.0));
            }
            Outcome::Applied(a) => {
                statuses.push("applied");
                reasons.push(None);
                details.push(Some(a.detail.to_string()));
                holds.push(a.hold_id.map(|h| h.0));
            }
            Outcome::Rejected(rej) => {
                statuses.push("rejected");
                reasons.push(Some(rej.reason));
                let labels = |nos: &[i32]| -> Vec<String> {
                    nos.iter()
                        .filter_map(|n| {
                            rules.get(&d.event_id).and_then(|r| r.layout.seat_label(*n))
                        })
                        .collect()
                };
                let mut detail = serde_json::Map::new();
                for (key, seats) in [
                    ("unavailable", &rej.unavailable),
                    ("alternatives", &rej.alternatives),
                    ("stranded", &rej.stranded),
                    ("suggestion", &rej.suggestion),
                ] {
                    if !seats.is_empty() {
                        detail.insert(key.into(), labels(seats).into());
                    }
                }
                let detail =
                    (!detail.is_empty()).then(|| serde_json::Value::Object(detail).to_string());
                details.push(detail);
                holds.push(None);
            }
        }
    }
    let inserted = sqlx::query(INSERT_REQUESTS)
        .bind(&ids)
        .bind(&events)
        .bind(&users)
        .bind(&kinds)
        .bind(&statuses)
        .bind(&reasons)
        .bind(&details)
        .bind(&holds)
        .bind(&offsets)
        .bind(partition)
        .bind(now)
        .bind(&issued)
        .bind(&seqs)
        .bind(&seats)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    // The batch checked none was decided; a missing row was decided meanwhile.
    Ok(decided.len() as u64 - inserted.min(decided.len() as u64))
}

/// `{3,4}`: PostgreSQL's text form of an int array.
fn int_array_literal(nos: &[i32]) -> String {
    let mut text = String::with_capacity(2 + nos.len() * 6);
    text.push('{');
    for (i, n) in nos.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&n.to_string());
    }
    text.push('}');
    text
}

/// Dead letters of the batch, and refunds of payments whose command is one of them.
/// Returns how many dead letters were recorded.
pub async fn write_dead_letters(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    partition: i32,
    input: &Input,
) -> Result<u64, sqlx::Error> {
    if !input.dead_payments.is_empty() {
        let ids: Vec<Uuid> = input.dead_payments.iter().map(|p| p.0).collect();
        let refunded = sqlx::query(REFUND_DEAD_PAYMENTS)
            .bind(&ids)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        tracing::error!(
            payments = ids.len(),
            refunded,
            "payments whose command could not be applied are refunded"
        );
    }
    if input.dead.is_empty() {
        return Ok(0);
    }
    let d = &input.dead;
    for letter in d {
        tracing::error!(offset = letter.position.0, seq = letter.position.1,
            request_id = ?letter.request_id, event_id = ?letter.event_id, kind = ?letter.kind,
            reason = letter.reason, error = %letter.error, "dead letter");
    }
    Ok(sqlx::query(INSERT_DEAD_LETTERS)
        .bind(topic)
        .bind(partition)
        .bind(d.iter().map(|x| x.position.0).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.position.1).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.reason).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.payload.clone()).collect::<Vec<_>>())
        .bind(
            d.iter()
                .map(|x| x.request_id.map(|r| r.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            d.iter()
                .map(|x| x.event_id.map(|e| e.0))
                .collect::<Vec<_>>(),
        )
        .bind(d.iter().map(|x| x.kind.clone()).collect::<Vec<_>>())
        .bind(d.iter().map(|x| x.error.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// The batch's outbox rows, for `relay` to publish once the batch commits.
pub async fn write_outbox(
    tx: &mut Transaction<'static, Postgres>,
    partition: i32,
    outbox: &Outbox,
) -> Result<(), sqlx::Error> {
    if outbox.streams.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_OUTBOX)
        .bind(partition)
        .bind(&outbox.streams)
        .bind(&outbox.keys)
        .bind(&outbox.payloads)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Wake the gateways waiting for these decisions (delivered on commit).
pub async fn notify_waiting(
    tx: &mut Transaction<'static, Postgres>,
    decided: &[Decided],
) -> Result<(), sqlx::Error> {
    let waiting: Vec<String> = decided
        .iter()
        .filter(|d| d.reply)
        .map(|d| d.request_id.to_string())
        .collect();
    // NOTIFY payloads are limited to 8000 bytes: 36-byte ids, 150 per message.
    for chunk in waiting.chunks(150) {
        sqlx::query(NOTIFY)
            .bind(seatq_common::db::DECISIONS_CHANNEL)
            .bind(chunk.join(","))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
