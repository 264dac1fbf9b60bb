//! One batch of commands, applied in one PostgreSQL transaction.
//!
//! 1. **Fence**: lock this partition's row in `consumer_offsets` and check it still says
//!    the offset this worker expects. If another consumer moved it (a rebalance briefly gave
//!    the partition to two of us), roll back and let the caller re-seek. The lock also
//!    serialises two such consumers, so a batch commits at most once.
//! 2. **Decode and dedupe**: split packed records into commands in Kafka order; malformed
//!    ones and those the [`Plan`] quarantines are refused (rejected, dead-lettered); skip
//!    commands whose request_id is already decided (redelivery).
//! 3. **Load**: lock the seat rows the batch touches (in key order), the general-admission
//!    counters, and read the users' current seat counts into a [`Ledger`].
//! 4. **Decide** every command in Kafka order (offset, then place in the record), in memory.
//! 5. **Write** set-based (`unnest`): holds, seats, counters, decisions, dead letters, outbox
//!    rows; advance the offset; `NOTIFY` waiting gateways; commit.
//!
//! A batch may also be *tried* (`Plan::trial`): steps 1–5 for some of its commands only,
//! then rolled back. That is how `poison` finds the commands that make a batch fail.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use seatq_common::catalog::Catalog;
use seatq_common::command::{Command, CommandEnvelope, Decoded, HoldSeats};
use seatq_common::ids::{EventId, HoldId, PaymentId, RequestId, SectionId, UserId};
use seatq_common::layout::SectionKind;
use seatq_common::message::{
    HoldTimer, SeatChange, SeatEvent, SeatEventEnvelope, SeatStatus, SectionAvailability,
};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::decide::{self, EventRules, GaSlot, HoldRequest, Ledger, Outcome, SeatSlot};
use crate::lifecycle::LifecycleConfig;
use crate::lifecycle_store;

/// A message as the worker received it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    /// Committed; the partition's next offset is now `next_offset`.
    Applied {
        next_offset: i64,
        decided: usize,
        duplicates: usize,
    },
    /// Another consumer has applied up to `stored`; nothing was written.
    Fenced { stored: i64 },
    /// A trial went through every step and was rolled back.
    Tried,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding a message: {0}")]
    Encode(#[from] serde_json::Error),
    /// Something in the rules panicked (a bug); the transaction was dropped.
    #[error("panicked: {0}")]
    Panicked(String),
    /// Requests were decided by someone else while this batch ran: the gateway recorded
    /// them as never accepted (its produce timed out). Trying again skips them.
    #[error("{0} request(s) were decided elsewhere while the batch ran")]
    Raced(u64),
}

impl BatchError {
    /// Will the same batch most likely go through if tried again as it is? Lost
    /// connections, serialization failures, deadlocks and a restarting server pass;
    /// a constraint, a data error or a panic come back every time.
    pub fn is_transient(&self) -> bool {
        match self {
            BatchError::Database(e) => is_transient(e),
            BatchError::Raced(_) => true,
            BatchError::Encode(_) | BatchError::Panicked(_) => false,
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exceptions; 40001 serialization failure, 40P01 deadlock;
            // class 53: insufficient resources; 57P01–57P03: shutdown, crash, cannot
            // connect now; 55P03 lock not available.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "55P03"
                )
        }),
        _ => false,
    }
}

/// Commands to refuse instead of deciding, by position, with what went wrong: they failed
/// their batch when applied (see `poison`).
pub type Quarantine = BTreeMap<Position, String>;

/// Which commands of a batch to apply, and how.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Refused as `internal_error` and dead-lettered.
    pub quarantine: &'a Quarantine,
    /// A trial: only these positions (the others are left out entirely), rolled back.
    pub trial: Option<&'a BTreeSet<Position>>,
}

/// Applies batches for the partitions of one topic.
pub struct BatchApplier {
    pub pool: PgPool,
    pub catalog: Arc<Catalog>,
    pub topic: String,
    /// Who holds the partition, recorded with the offset (for operators).
    pub owner: String,
    pub lifecycle: LifecycleConfig,
    /// Fire drills: commands from this user panic inside the rules.
    pub drill_panic_user: Option<UserId>,
}

/// A command's place in Kafka order: the record's offset, then its index in the record.
pub type Position = (i64, i32);

/// A decided command, ready to be written.
struct Decided {
    position: Position,
    request_id: RequestId,
    event_id: EventId,
    user_id: UserId,
    kind: String,
    issued_at: DateTime<Utc>,
    reply: bool,
    outcome: Outcome,
}

/// A command rejected without deciding: malformed, or quarantined.
struct Refused {
    position: Position,
    request_id: RequestId,
    event_id: EventId,
    user_id: UserId,
    kind: String,
    issued_at: DateTime<Utc>,
    reply: bool,
    reason: &'static str,
}

/// A command (or record) kept for operators in `dead_letters`.
struct DeadLetter {
    position: Position,
    request_id: Option<RequestId>,
    event_id: Option<EventId>,
    kind: Option<String>,
    reason: &'static str,
    error: String,
    payload: Vec<u8>,
}

/// A batch's messages, decoded and sorted out by the plan.
#[derive(Default)]
struct Input {
    commands: Vec<(Position, CommandEnvelope)>,
    refused: Vec<Refused>,
    dead: Vec<DeadLetter>,
    /// Payments whose `payment_succeeded` was quarantined: refunded unless booked.
    dead_payments: Vec<PaymentId>,
}

const INSERT_OFFSET_IF_MISSING: &str =
    "INSERT INTO consumer_offsets (topic, kafka_partition, next_offset, owner) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const LOCK_OFFSET: &str = "SELECT next_offset FROM consumer_offsets \
     WHERE topic = $1 AND kafka_partition = $2 FOR UPDATE";
const UPDATE_OFFSET: &str =
    "UPDATE consumer_offsets SET next_offset = $3, owner = $4, updated_at = now() \
     WHERE topic = $1 AND kafka_partition = $2";
const SELECT_DECIDED_IDS: &str = "SELECT request_id FROM requests WHERE request_id = ANY($1)";
const LOCK_SEATS: &str = "SELECT s.event_id, s.seat_no, s.status, s.hold_id FROM seats s \
     JOIN unnest($1::uuid[], $2::int[]) AS k(event_id, seat_no) \
       ON s.event_id = k.event_id AND s.seat_no = k.seat_no \
     ORDER BY s.event_id, s.seat_no FOR UPDATE OF s";
// Not locked: locking every free seat of a stadium section cost ~6,800 row locks per batch
// (the top statement under load). Only this partition's writer changes an event's seats, and
// SET_SEATS writes a seat read here only if it is still available.
const FREE_IN_SECTIONS: &str = "SELECT s.event_id, s.section_id, s.seat_no FROM seats s \
     JOIN unnest($1::uuid[], $2::uuid[]) AS k(event_id, section_id) \
       ON s.event_id = k.event_id AND s.section_id = k.section_id \
     WHERE s.status = 'available'";
/// A request refused because its seats were taken, to be offered alternatives.
struct Wanted {
    decision: usize,
    event_id: EventId,
    section_id: SectionId,
    /// The section's seat numbers, `[first, end)`.
    seat_nos: (i32, i32),
    /// Its first requested seat, and how many it asked for.
    anchor: i32,
    count: usize,
}

/// The columns of [`FREE_NEAR`]'s parameters.
#[derive(Default)]
struct NearArrays {
    events: Vec<Uuid>,
    sections: Vec<Uuid>,
    anchors: Vec<i32>,
    limits: Vec<i32>,
    lows: Vec<i32>,
    highs: Vec<i32>,
}

// Per (event, section, anchor): the `n` free seats just below the anchor and the `n` from
// it up, within the section's seat numbers (sections are contiguous ranges of seat_no, so
// each side is one short walk of the primary key, never the whole section).
const FREE_NEAR: &str = "SELECT k.event_id, k.section_id, f.seat_no \
     FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::int[], $6::int[]) \
       AS k(event_id, section_id, anchor, n, lo, hi) \
     CROSS JOIN LATERAL ( \
       (SELECT s.seat_no FROM seats s WHERE s.event_id = k.event_id AND s.seat_no >= k.lo \
          AND s.seat_no < k.anchor AND s.status = 'available' ORDER BY s.seat_no DESC LIMIT k.n) \
       UNION ALL \
       (SELECT s.seat_no FROM seats s WHERE s.event_id = k.event_id AND s.seat_no >= k.anchor \
          AND s.seat_no < k.hi AND s.status = 'available' ORDER BY s.seat_no LIMIT k.n)) f";
const LOCK_GA: &str =
    "SELECT g.event_id, g.section_id, g.capacity, g.held, g.sold FROM ga_inventory g \
     JOIN unnest($1::uuid[], $2::uuid[]) AS k(event_id, section_id) \
       ON g.event_id = k.event_id AND g.section_id = k.section_id \
     ORDER BY g.event_id, g.section_id FOR UPDATE OF g";
const USER_SEATS: &str = "SELECT h.event_id, h.user_id, sum(h.quantity)::int FROM holds h \
     JOIN unnest($1::uuid[], $2::text[]) AS k(event_id, user_id) \
       ON h.event_id = k.event_id AND h.user_id = k.user_id \
     WHERE h.status IN ('active', 'sold') GROUP BY h.event_id, h.user_id";
// The ledger decided the seats' final state. A seat it read without a lock (`was_free`) is
// written only if still available: a compare-and-set, so a writer the fence did not stop
// makes the row count fall short and the batch roll back, never a seat sold twice.
const SET_SEATS: &str = "UPDATE seats s SET status = u.status, hold_id = u.hold_id \
     FROM unnest($1::uuid[], $2::int[], $3::text[], $4::uuid[], $5::bool[]) \
       AS u(event_id, seat_no, status, hold_id, was_free) \
     WHERE s.event_id = u.event_id AND s.seat_no = u.seat_no \
       AND (NOT u.was_free OR s.status = 'available')";
const CHANGE_GA: &str = "UPDATE ga_inventory g SET held = g.held + u.held, sold = g.sold + u.sold \
     FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[]) AS u(event_id, section_id, held, sold) \
     WHERE g.event_id = u.event_id AND g.section_id = u.section_id";
// ON CONFLICT: the gateway may have recorded a request as never accepted meanwhile (its
// produce timed out); the caller compares the rows inserted with the decisions made.
const INSERT_REQUESTS: &str = "INSERT INTO requests (request_id, event_id, user_id, kind, status, reason, \
       detail, hold_id, kafka_partition, kafka_offset, kafka_seq, issued_at, decided_at) \
     SELECT request_id, event_id, user_id, kind, status, reason, detail::jsonb, hold_id, $10, kafka_offset, \
            kafka_seq, issued_at, $11 \
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::uuid[], $9::bigint[], $12::timestamptz[], $13::int[]) \
       AS u(request_id, event_id, user_id, kind, status, reason, detail, hold_id, kafka_offset, issued_at, \
            kafka_seq) \
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

/// The outbox rows of a batch.
#[derive(Default)]
struct Outbox {
    streams: Vec<&'static str>,
    keys: Vec<String>,
    payloads: Vec<String>,
}

impl Outbox {
    fn push(&mut self, stream: &'static str, key: EventId, payload: String) {
        self.streams.push(stream);
        self.keys.push(key.to_string());
        self.payloads.push(payload);
    }
}

/// Text as PostgreSQL can store it: no NUL characters, bounded.
fn storable(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .take(max_chars)
        .collect()
}

/// A time PostgreSQL can store (years 1–9999), else `now`.
fn storable_time(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    if (1..=9999).contains(&at.year()) {
        at
    } else {
        now
    }
}

/// Decode `messages` into commands in Kafka order, as `plan` says: malformed commands are
/// refused with their decoding reason, quarantined ones with `internal_error`, and both
/// are kept as dead letters, like records that are not commands at all.
fn decode(messages: &[Incoming], plan: &Plan<'_>, now: DateTime<Utc>) -> Input {
    let mut input = Input::default();
    for m in messages {
        let payload = m.payload.as_deref().unwrap_or_default();
        let elements = match seatq_common::record::messages(payload) {
            Ok(elements) => elements,
            // Not even an array of JSON values: one unreadable item, the whole record kept.
            Err(_) => vec![payload],
        };
        for (seq, element) in elements.into_iter().enumerate() {
            let at = (m.offset, seq as i32);
            if plan.trial.is_some_and(|t| !t.contains(&at)) {
                continue;
            }
            let decoded = CommandEnvelope::decode(element);
            if let Some(error) = plan.quarantine.get(&at) {
                input.quarantine(at, decoded, error, element, now);
                continue;
            }
            match decoded {
                Decoded::Command(cmd) => input.commands.push((at, cmd)),
                Decoded::Invalid(wire, err) => {
                    tracing::warn!(offset = at.0, seq = at.1, request_id = %wire.request_id,
                        error = %err, "rejecting a malformed command");
                    input.dead.push(DeadLetter {
                        position: at,
                        request_id: Some(wire.request_id),
                        event_id: Some(wire.event_id),
                        kind: Some(storable(&wire.kind, 64)),
                        reason: err.reason(),
                        error: storable(&err.to_string(), 2000),
                        payload: element.to_vec(),
                    });
                    input.refused.push(Refused {
                        position: at,
                        request_id: wire.request_id,
                        event_id: wire.event_id,
                        user_id: UserId(storable(&wire.user_id.0, 200)),
                        kind: storable(&wire.kind, 64),
                        issued_at: storable_time(wire.issued_at, now),
                        reply: wire.reply,
                        reason: err.reason(),
                    });
                }
                Decoded::Unreadable(err) => {
                    tracing::warn!(offset = at.0, seq = at.1, error = %err,
                        "dead-lettering an unreadable message");
                    input.dead.push(DeadLetter {
                        position: at,
                        request_id: None,
                        event_id: None,
                        kind: None,
                        reason: err.reason(),
                        error: storable(&err.to_string(), 2000),
                        // The whole record: the bad element cannot always be cut out of it
                        // reliably, and an operator wants to see what came with it.
                        payload: payload.to_vec(),
                    });
                }
            }
        }
    }
    input
}

impl Input {
    /// Refuse a command that failed its batch when applied: rejected as `internal_error`
    /// (if it has a request id to answer to), kept as a dead letter.
    fn quarantine(
        &mut self,
        at: Position,
        decoded: Decoded,
        error: &str,
        element: &[u8],
        now: DateTime<Utc>,
    ) {
        let (request_id, event_id, user_id, kind, issued_at, reply) = match decoded {
            Decoded::Command(cmd) => {
                if let Command::PaymentSucceeded(p) = &cmd.command {
                    self.dead_payments.push(p.payment_id);
                }
                let kind = cmd.command.kind().to_owned();
                (
                    Some(cmd.request_id),
                    Some(cmd.event_id),
                    cmd.user_id,
                    kind,
                    cmd.issued_at,
                    cmd.reply,
                )
            }
            Decoded::Invalid(wire, _) => (
                Some(wire.request_id),
                Some(wire.event_id),
                wire.user_id,
                wire.kind,
                wire.issued_at,
                wire.reply,
            ),
            Decoded::Unreadable(_) => {
                (None, None, UserId(String::new()), String::new(), now, false)
            }
        };
        let kind = storable(&kind, 64);
        self.dead.push(DeadLetter {
            position: at,
            request_id,
            event_id,
            kind: (!kind.is_empty()).then(|| kind.clone()),
            reason: "internal_error",
            error: storable(error, 2000),
            payload: element.to_vec(),
        });
        if let (Some(request_id), Some(event_id)) = (request_id, event_id) {
            self.refused.push(Refused {
                position: at,
                request_id,
                event_id,
                user_id: UserId(storable(&user_id.0, 200)),
                kind,
                issued_at: storable_time(issued_at, now),
                reply,
                reason: "internal_error",
            });
        }
    }
}

/// Where each phase of a batch's time went (logged at debug level).
struct Stopwatch {
    started: std::time::Instant,
    marks: Vec<(&'static str, std::time::Duration)>,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            started: std::time::Instant::now(),
            marks: Vec::with_capacity(5),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        self.marks.push((phase, self.started.elapsed()));
    }

    fn log(&self) {
        let mut last = std::time::Duration::ZERO;
        let phases: Vec<String> = self
            .marks
            .iter()
            .map(|(phase, at)| {
                let took = at.saturating_sub(last);
                last = *at;
                format!("{phase}={}ms", took.as_millis())
            })
            .collect();
        tracing::debug!(phases = %phases.join(" "), "batch timing");
    }
}

impl BatchApplier {
    /// Apply `messages` (consecutive, starting at `expected`) to `partition`, all of them.
    pub async fn apply(
        &self,
        partition: i32,
        expected: i64,
        messages: &[Incoming],
    ) -> Result<BatchResult, BatchError> {
        let none = Quarantine::new();
        let plan = Plan {
            quarantine: &none,
            trial: None,
        };
        self.apply_plan(partition, expected, messages, &plan).await
    }

    /// Every command's position in `messages`, in Kafka order.
    pub fn positions(messages: &[Incoming]) -> Vec<Position> {
        messages
            .iter()
            .flat_map(|m| {
                let payload = m.payload.as_deref().unwrap_or_default();
                let n = seatq_common::record::messages(payload).map_or(1, |e| e.len());
                (0..n).map(move |seq| (m.offset, seq as i32))
            })
            .collect()
    }

    /// Apply `messages` (consecutive, starting at `expected`) to `partition` as `plan`
    /// says: the steps of the module doc.
    #[tracing::instrument(skip_all, fields(partition = partition, offset = expected, count = messages.len(),
        trial = plan.trial.is_some()))]
    pub async fn apply_plan(
        &self,
        partition: i32,
        expected: i64,
        messages: &[Incoming],
        plan: &Plan<'_>,
    ) -> Result<BatchResult, BatchError> {
        let Some(last) = messages.last() else {
            return Ok(BatchResult::Applied {
                next_offset: expected,
                decided: 0,
                duplicates: 0,
            });
        };
        let next_offset = last.offset + 1;
        let now = Utc::now();
        let mut watch = Stopwatch::start();
        let mut tx = self.pool.begin().await?;

        // 1. The fence.
        if let Some(stored) = self.fence(&mut tx, partition, expected).await? {
            tx.rollback().await?;
            return Ok(BatchResult::Fenced { stored });
        }
        // 2. Decode, and drop what is already decided.
        let mut input = decode(messages, plan, now);
        let duplicates = self.drop_decided(&mut tx, &mut input).await?;
        watch.mark("dedupe");
        // 3. Load and lock what the batch touches.
        let rules = self.rules(&input.commands).await?;
        let mut ledger = self.load_ledger(&mut tx, &input.commands, &rules).await?;
        watch.mark("load");
        // 4. Decide in Kafka order.
        let mut decided = self.decide_all(&mut ledger, &input, &rules, partition, now);
        self.suggest_alternatives(&mut tx, &mut decided, &ledger, &rules, &input.commands)
            .await?;
        watch.mark("decide");
        // 5. Write.
        let dead_letters = self
            .write(
                &mut tx,
                partition,
                next_offset,
                &ledger,
                &decided,
                &input,
                &rules,
                now,
            )
            .await?;
        watch.mark("write");
        if plan.trial.is_some() {
            tx.rollback().await?;
            return Ok(BatchResult::Tried);
        }
        tx.commit().await?;
        watch.mark("commit");
        watch.log();
        let mut tally = [0u64; 3];
        for d in &decided {
            tally[match d.outcome {
                Outcome::Held(_) => 0,
                Outcome::Rejected(_) => 1,
                Outcome::Applied(_) => 2,
            }] += 1;
        }
        seatq_common::metrics::batch_applied(
            messages.len(),
            watch.started.elapsed(),
            tally[0],
            tally[1],
            tally[2],
        );
        seatq_common::metrics::dead_letters(partition, dead_letters);
        Ok(BatchResult::Applied {
            next_offset,
            decided: decided.len(),
            duplicates,
        })
    }

    /// Step 1: lock the partition's stored offset; `Some(stored)` if it is not `expected`.
    async fn fence(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        partition: i32,
        expected: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query(INSERT_OFFSET_IF_MISSING)
            .bind(&self.topic)
            .bind(partition)
            .bind(expected)
            .bind(&self.owner)
            .execute(&mut **tx)
            .await?;
        let stored: i64 = sqlx::query_scalar(LOCK_OFFSET)
            .bind(&self.topic)
            .bind(partition)
            .fetch_one(&mut **tx)
            .await?;
        Ok((stored != expected).then_some(stored))
    }

    /// Step 2: leave out commands already decided (and repeats within the batch); returns
    /// how many were left out.
    async fn drop_decided(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        input: &mut Input,
    ) -> Result<usize, sqlx::Error> {
        let ids: Vec<Uuid> = input
            .commands
            .iter()
            .map(|(_, c)| c.request_id.0)
            .chain(input.refused.iter().map(|r| r.request_id.0))
            .collect();
        let mut seen: HashSet<Uuid> = sqlx::query_scalar::<_, Uuid>(SELECT_DECIDED_IDS)
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        // Refusals were decoded before commands of the same position: keep Kafka order
        // when two share a request id, by deciding which one comes first.
        let mut order: Vec<(Position, bool, usize)> = input
            .commands
            .iter()
            .enumerate()
            .map(|(i, (at, _))| (*at, true, i))
            .chain(
                input
                    .refused
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.position, false, i)),
            )
            .collect();
        order.sort_unstable();
        let mut keep_command = vec![false; input.commands.len()];
        let mut keep_refused = vec![false; input.refused.len()];
        for (_, is_command, i) in order {
            let id = if is_command {
                input.commands[i].1.request_id.0
            } else {
                input.refused[i].request_id.0
            };
            if seen.insert(id) {
                if is_command {
                    keep_command[i] = true;
                } else {
                    keep_refused[i] = true;
                }
            }
        }
        let before = input.commands.len() + input.refused.len();
        let mut keep = keep_command.into_iter();
        input.commands.retain(|_| keep.next().unwrap_or(false));
        let mut keep = keep_refused.into_iter();
        input.refused.retain(|_| keep.next().unwrap_or(false));
        Ok(before - input.commands.len() - input.refused.len())
    }

    /// Step 3a: the rules of the events the commands are about (cached).
    async fn rules(
        &self,
        commands: &[(Position, CommandEnvelope)],
    ) -> Result<HashMap<EventId, EventRules>, sqlx::Error> {
        let mut rules = HashMap::new();
        let event_ids: BTreeSet<EventId> = commands.iter().map(|(_, c)| c.event_id).collect();
        for event_id in event_ids {
            if let Some(entry) = self.catalog.event(event_id).await? {
                rules.insert(
                    event_id,
                    EventRules {
                        info: entry.info.clone(),
                        layout: entry.layout.clone(),
                    },
                );
            }
        }
        Ok(rules)
    }

    /// Step 4: decide every command in Kafka order against the ledger; refusals join them.
    fn decide_all(
        &self,
        ledger: &mut Ledger,
        input: &Input,
        rules: &HashMap<EventId, EventRules>,
        partition: i32,
        now: DateTime<Utc>,
    ) -> Vec<Decided> {
        let mut decided: Vec<Decided> =
            Vec::with_capacity(input.commands.len() + input.refused.len());
        for (position, c) in &input.commands {
            if self.drill_panic_user.as_ref() == Some(&c.user_id) {
                panic!(
                    "fire drill: a command from {} at offset {} seq {}",
                    c.user_id, position.0, position.1
                );
            }
            let outcome = match &c.command {
                Command::HoldSeats(hold) => {
                    let req = HoldRequest {
                        request_id: c.request_id,
                        event_id: c.event_id,
                        user_id: c.user_id.clone(),
                        issued_at: c.issued_at,
                        hold: hold.clone(),
                    };
                    ledger.decide(&req, rules.get(&c.event_id), now)
                }
                _ => ledger.apply(c, rules.get(&c.event_id), &self.lifecycle, now),
            };
            decided.push(Decided {
                position: *position,
                request_id: c.request_id,
                event_id: c.event_id,
                user_id: c.user_id.clone(),
                kind: c.command.kind().to_owned(),
                issued_at: c.issued_at,
                reply: c.reply,
                outcome,
            });
        }
        for r in &input.refused {
            decided.push(Decided {
                position: r.position,
                request_id: r.request_id,
                event_id: r.event_id,
                user_id: r.user_id.clone(),
                kind: r.kind.clone(),
                issued_at: r.issued_at,
                reply: r.reply,
                outcome: Outcome::Rejected(decide::Rejection::new(r.reason)),
            });
        }
        decided.sort_by_key(|d| d.position);
        for d in &decided {
            let outcome = match &d.outcome {
                Outcome::Held(_) => "held",
                Outcome::Rejected(r) => r.reason,
                Outcome::Applied(_) => "applied",
            };
            tracing::debug!(request_id = %d.request_id, event_id = %d.event_id, partition,
                offset = d.position.0, seq = d.position.1, outcome, "decided");
        }
        decided
    }

    /// Step 5: write everything the batch decided, advance the offset, signal waiting
    /// gateways. Returns how many dead letters were recorded.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        partition: i32,
        next_offset: i64,
        ledger: &Ledger,
        decided: &[Decided],
        input: &Input,
        rules: &HashMap<EventId, EventRules>,
        now: DateTime<Utc>,
    ) -> Result<u64, BatchError> {
        lifecycle_store::write_holds(tx, ledger).await?;
        self.write_seats(tx, ledger).await?;
        lifecycle_store::write_rest(tx, ledger, now).await?;
        self.write_requests(tx, partition, decided, rules, now)
            .await?;
        let dead_letters = self.write_dead_letters(tx, partition, input).await?;
        let mut outbox = Outbox::default();
        collect_messages(&mut outbox, decided, ledger, rules, next_offset, now)?;
        if !outbox.streams.is_empty() {
            sqlx::query(INSERT_OUTBOX)
                .bind(partition)
                .bind(&outbox.streams)
                .bind(&outbox.keys)
                .bind(&outbox.payloads)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(UPDATE_OFFSET)
            .bind(&self.topic)
            .bind(partition)
            .bind(next_offset)
            .bind(&self.owner)
            .execute(&mut **tx)
            .await?;
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
        Ok(dead_letters)
    }

    async fn write_dead_letters(
        &self,
        tx: &mut Transaction<'static, Postgres>,
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
            .bind(&self.topic)
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

    async fn load_ledger(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        commands: &[(Position, CommandEnvelope)],
        rules: &HashMap<EventId, EventRules>,
    ) -> Result<Ledger, sqlx::Error> {
        let mut seat_keys: BTreeSet<(Uuid, i32)> = BTreeSet::new();
        let mut section_keys: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
        let mut ga_keys: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
        let mut user_keys: BTreeSet<(Uuid, String)> = BTreeSet::new();
        let mut ledger = Ledger::default();
        let life = lifecycle_store::load_holds(tx, commands, &mut ledger).await?;
        let joins = commands
            .iter()
            .filter(|(_, c)| matches!(c.command, Command::JoinWaitlist(_)))
            .count() as i64;
        // Waitlists are read for every reserved seat a lifecycle command may free.
        let waitlist_seats = life.seats.clone();
        seat_keys.extend(life.seats.iter().copied());
        ga_keys.extend(life.ga.iter().copied());
        user_keys.extend(life.users.iter().cloned());
        for (_, c) in commands {
            let Some(r) = rules.get(&c.event_id) else {
                continue;
            };
            let Command::HoldSeats(hold) = &c.command else {
                continue;
            };
            user_keys.insert((c.event_id.0, c.user_id.0.clone()));
            match hold {
                HoldSeats::Seats { seat_nos } => {
                    seat_keys.extend(seat_nos.iter().map(|s| (c.event_id.0, *s)));
                }
                HoldSeats::BestAvailable { section_id, .. } => {
                    match r.layout.section_by_id(*section_id).map(|s| s.kind) {
                        Some(SectionKind::Reserved) => {
                            section_keys.insert((c.event_id.0, section_id.0));
                        }
                        Some(SectionKind::GeneralAdmission) => {
                            ga_keys.insert((c.event_id.0, section_id.0));
                        }
                        None => {}
                    }
                }
            }
        }
        let (events, seat_nos): (Vec<Uuid>, Vec<i32>) = seat_keys.into_iter().unzip();
        let rows: Vec<(EventId, i32, String, Option<HoldId>)> = sqlx::query_as(LOCK_SEATS)
            .bind(&events)
            .bind(&seat_nos)
            .fetch_all(&mut **tx)
            .await?;
        for (event_id, seat_no, status, hold_id) in rows {
            let status = SeatStatus::from_db(&status).unwrap_or(SeatStatus::Sold);
            ledger
                .seats
                .insert((event_id, seat_no), SeatSlot { status, hold_id });
        }
        let (events, sections): (Vec<Uuid>, Vec<Uuid>) = section_keys.into_iter().unzip();
        if !events.is_empty() {
            for (e, s) in events.iter().zip(&sections) {
                ledger
                    .section_free
                    .insert((EventId(*e), SectionId(*s)), BTreeSet::new());
            }
            let rows: Vec<(EventId, SectionId, i32)> = sqlx::query_as(FREE_IN_SECTIONS)
                .bind(&events)
                .bind(&sections)
                .fetch_all(&mut **tx)
                .await?;
            for (event_id, section_id, seat_no) in rows {
                // A seat already locked by LOCK_SEATS keeps that (newer) state.
                if let Entry::Vacant(slot) = ledger.seats.entry((event_id, seat_no)) {
                    slot.insert(SeatSlot {
                        status: SeatStatus::Available,
                        hold_id: None,
                    });
                    ledger.unlocked_seats.insert((event_id, seat_no));
                }
                ledger
                    .section_free
                    .entry((event_id, section_id))
                    .or_default()
                    .insert(seat_no);
            }
        }
        // Explicitly requested seats that are free also count for best-available in
        // their section (the sets must agree with `seats`).
        let free_explicit: Vec<(EventId, i32)> = ledger
            .seats
            .iter()
            .filter(|(_, slot)| slot.status == SeatStatus::Available)
            .map(|(k, _)| *k)
            .collect();
        for (event_id, seat_no) in free_explicit {
            if let Some(section) = rules
                .get(&event_id)
                .and_then(|r| r.layout.section_of(seat_no))
            {
                if let Some(free) = ledger.section_free.get_mut(&(event_id, section.id)) {
                    free.insert(seat_no);
                }
            }
        }
        let (events, sections): (Vec<Uuid>, Vec<Uuid>) = ga_keys.into_iter().unzip();
        if !events.is_empty() {
            let rows: Vec<(EventId, SectionId, i32, i32, i32)> = sqlx::query_as(LOCK_GA)
                .bind(&events)
                .bind(&sections)
                .fetch_all(&mut **tx)
                .await?;
            for (event_id, section_id, capacity, held, sold) in rows {
                ledger.ga.insert(
                    (event_id, section_id),
                    GaSlot {
                        capacity,
                        held,
                        sold,
                    },
                );
            }
        }
        let waitlisted =
            lifecycle_store::load_waitlists(tx, &waitlist_seats, joins, &life.users, &mut ledger)
                .await?;
        // Waiting-room events: who may join a waitlist, or be offered a seat from one.
        let queued: BTreeSet<(Uuid, String)> = waitlisted
            .iter()
            .chain(&life.users)
            .filter(|(event, _)| {
                rules
                    .get(&EventId(*event))
                    .is_some_and(|r| r.info.waiting_room_enabled)
            })
            .cloned()
            .collect();
        lifecycle_store::load_admitted(tx, &queued, &mut ledger).await?;
        user_keys.extend(waitlisted);
        let (events, users): (Vec<Uuid>, Vec<String>) = user_keys.into_iter().unzip();
        if !events.is_empty() {
            let rows: Vec<(EventId, UserId, i32)> = sqlx::query_as(USER_SEATS)
                .bind(&events)
                .bind(&users)
                .fetch_all(&mut **tx)
                .await?;
            for (event_id, user_id, seats) in rows {
                ledger.user_seats.insert((event_id, user_id), seats);
            }
        }
        Ok(ledger)
    }

    /// For requests rejected because their seats were taken, suggest as many free seats
    /// nearby (same section), as free after this batch.
    async fn suggest_alternatives(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        decided: &mut [Decided],
        ledger: &Ledger,
        rules: &HashMap<EventId, EventRules>,
        commands: &[(Position, CommandEnvelope)],
    ) -> Result<(), sqlx::Error> {
        let requested: HashMap<RequestId, &Vec<i32>> = commands
            .iter()
            .filter_map(|(_, c)| match &c.command {
                seatq_common::command::Command::HoldSeats(HoldSeats::Seats { seat_nos }) => {
                    Some((c.request_id, seat_nos))
                }
                _ => None,
            })
            .collect();
        let mut wanted: Vec<Wanted> = Vec::new();
        for (i, d) in decided.iter().enumerate() {
            let Outcome::Rejected(rej) = &d.outcome else {
                continue;
            };
            if rej.reason != "seats_unavailable" {
                continue;
            }
            let (Some(seats), Some(r)) = (requested.get(&d.request_id), rules.get(&d.event_id))
            else {
                continue;
            };
            if let Some(section) = seats.first().and_then(|s| r.layout.section_of(*s)) {
                wanted.push(Wanted {
                    decision: i,
                    event_id: d.event_id,
                    section_id: section.id,
                    seat_nos: (
                        section.first_seat_no,
                        section.first_seat_no + section.capacity,
                    ),
                    anchor: seats[0],
                    count: seats.len(),
                });
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        // Seats of the ledger that are no longer free, per section: the free seats read
        // near an anchor must still leave `count` on each side once those are set aside.
        let mut taken_in: HashMap<(EventId, SectionId), i32> = HashMap::new();
        for (&(event_id, seat_no), slot) in &ledger.seats {
            if slot.status == SeatStatus::Available {
                continue;
            }
            if let Some(section) = rules
                .get(&event_id)
                .and_then(|r| r.layout.section_of(seat_no))
            {
                *taken_in.entry((event_id, section.id)).or_default() += 1;
            }
        }
        let mut free: HashMap<(EventId, SectionId), BTreeSet<i32>> = HashMap::new();
        let mut near = NearArrays::default();
        for w in &wanted {
            let key = (w.event_id, w.section_id);
            if ledger.section_free.contains_key(&key) {
                continue;
            }
            let taken = taken_in.get(&key).copied().unwrap_or(0);
            near.events.push(w.event_id.0);
            near.sections.push(w.section_id.0);
            near.anchors.push(w.anchor);
            near.limits.push(w.count as i32 + taken);
            near.lows.push(w.seat_nos.0);
            near.highs.push(w.seat_nos.1);
        }
        if !near.events.is_empty() {
            let rows: Vec<(EventId, SectionId, i32)> = sqlx::query_as(FREE_NEAR)
                .bind(&near.events)
                .bind(&near.sections)
                .bind(&near.anchors)
                .bind(&near.limits)
                .bind(&near.lows)
                .bind(&near.highs)
                .fetch_all(&mut **tx)
                .await?;
            for (event_id, section_id, seat_no) in rows {
                // Seats this batch just took are no longer free.
                let taken = ledger
                    .seats
                    .get(&(event_id, seat_no))
                    .is_some_and(|s| s.status != SeatStatus::Available);
                if !taken {
                    free.entry((event_id, section_id))
                        .or_default()
                        .insert(seat_no);
                }
            }
        }
        for w in wanted {
            let key = (w.event_id, w.section_id);
            let set = ledger.section_free.get(&key).or_else(|| free.get(&key));
            if let (Some(set), Outcome::Rejected(rej)) = (set, &mut decided[w.decision].outcome) {
                rej.alternatives = decide::nearest(set, w.anchor, w.count);
            }
        }
        Ok(())
    }

    async fn write_seats(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        ledger: &Ledger,
    ) -> Result<(), sqlx::Error> {
        let changed: BTreeSet<(EventId, i32)> = ledger.changed_seats.iter().copied().collect();
        if !changed.is_empty() {
            let mut events = Vec::with_capacity(changed.len());
            let mut seats = Vec::with_capacity(changed.len());
            let mut statuses = Vec::with_capacity(changed.len());
            let mut holds: Vec<Option<Uuid>> = Vec::with_capacity(changed.len());
            let mut was_free = Vec::with_capacity(changed.len());
            for key in &changed {
                let Some(slot) = ledger.seats.get(key) else {
                    continue;
                };
                events.push(key.0 .0);
                seats.push(key.1);
                statuses.push(slot.status.as_db());
                holds.push(slot.hold_id.map(|h| h.0));
                was_free.push(ledger.unlocked_seats.contains(key));
            }
            let updated = sqlx::query(SET_SEATS)
                .bind(&events)
                .bind(&seats)
                .bind(&statuses)
                .bind(&holds)
                .bind(&was_free)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if updated != seats.len() as u64 {
                // Only if the ledger is wrong or another writer took a seat read unlocked:
                // refuse to commit rather than sell a seat twice (the batch is retried).
                return Err(sqlx::Error::Protocol(format!(
                    "updated {updated} of {} seats: ledger out of step with the database",
                    seats.len()
                )));
            }
        }
        // (event, section, held delta, sold delta) of every counter that moved.
        let ga: Vec<(Uuid, Uuid, i32, i32)> = ledger
            .ga_changed
            .iter()
            .filter(|(_, d)| **d != (0, 0))
            .map(|((event, section), (held, sold))| (event.0, section.0, *held, *sold))
            .collect();
        if !ga.is_empty() {
            sqlx::query(CHANGE_GA)
                .bind(ga.iter().map(|g| g.0).collect::<Vec<_>>())
                .bind(ga.iter().map(|g| g.1).collect::<Vec<_>>())
                .bind(ga.iter().map(|g| g.2).collect::<Vec<_>>())
                .bind(ga.iter().map(|g| g.3).collect::<Vec<_>>())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn write_requests(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        partition: i32,
        decided: &[Decided],
        rules: &HashMap<EventId, EventRules>,
        now: DateTime<Utc>,
    ) -> Result<(), BatchError> {
        if decided.is_empty() {
            return Ok(());
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
        for d in decided {
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
                    let detail = (!rej.unavailable.is_empty() || !rej.alternatives.is_empty())
                        .then(|| {
                            serde_json::json!({
                                "unavailable": labels(&rej.unavailable),
                                "alternatives": labels(&rej.alternatives),
                            })
                            .to_string()
                        });
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
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // The batch checked none was decided; a missing row was decided meanwhile.
        let raced = decided.len() as u64 - inserted.min(decided.len() as u64);
        if raced > 0 {
            return Err(BatchError::Raced(raced));
        }
        Ok(())
    }
}

/// The messages a batch publishes: per decision a user notification, per hold a timer,
/// per event one seat-map delta with every seat the batch changed (in its final state),
/// and a Redis mirror rebuild for every waitlist it changed.
fn collect_messages(
    outbox: &mut Outbox,
    decided: &[Decided],
    ledger: &Ledger,
    rules: &HashMap<EventId, EventRules>,
    next_offset: i64,
    now: DateTime<Utc>,
) -> Result<(), serde_json::Error> {
    let label = |event: EventId, n: i32| rules.get(&event).and_then(|r| r.layout.seat_label(n));
    let publish = |outbox: &mut Outbox, event_id: EventId, payload: SeatEvent| {
        let envelope = SeatEventEnvelope {
            event_id,
            occurred_at: now,
            payload,
        };
        serde_json::to_string(&envelope).map(|json| outbox.push("seat_events", event_id, json))
    };
    for d in decided {
        let payload = match &d.outcome {
            Outcome::Held(h) => {
                let timer = HoldTimer {
                    hold_id: h.hold_id,
                    event_id: d.event_id,
                    expires_at: h.expires_at,
                };
                outbox.push("hold_timers", d.event_id, serde_json::to_string(&timer)?);
                SeatEvent::HoldCreated {
                    request_id: d.request_id,
                    hold_id: h.hold_id,
                    user_id: d.user_id.clone(),
                    seat_ids: h
                        .seat_nos
                        .iter()
                        .filter_map(|n| label(d.event_id, *n))
                        .collect(),
                    section: h.ga_section.and_then(|s| {
                        rules
                            .get(&d.event_id)
                            .and_then(|r| r.layout.section_by_id(s).map(|x| x.code.clone()))
                    }),
                    quantity: h.quantity,
                    expires_at: h.expires_at,
                }
            }
            Outcome::Rejected(rej) => SeatEvent::HoldRejected {
                request_id: d.request_id,
                user_id: d.user_id.clone(),
                reason: rej.reason.to_owned(),
            },
            // Lifecycle commands speak through `life.notices` below.
            Outcome::Applied(_) => continue,
        };
        publish(outbox, d.event_id, payload)?;
    }
    for timer in &ledger.life.timers {
        outbox.push("hold_timers", timer.event_id, serde_json::to_string(timer)?);
    }
    for armed in &ledger.life.rearmed_timers {
        outbox.push(
            "hold_timers",
            armed.timer.event_id,
            serde_json::to_string(armed)?,
        );
    }
    for (event_id, notice) in &ledger.life.notices {
        publish(outbox, *event_id, notice.clone())?;
    }
    let mut per_event: HashMap<EventId, (Vec<SeatChange>, Vec<SectionAvailability>)> =
        HashMap::new();
    let changed: BTreeSet<(EventId, i32)> = ledger.changed_seats.iter().copied().collect();
    for (event_id, seat_no) in changed {
        if let (Some(seat_id), Some(slot)) = (
            label(event_id, seat_no),
            ledger.seats.get(&(event_id, seat_no)),
        ) {
            per_event.entry(event_id).or_default().0.push(SeatChange {
                seat_id,
                status: slot.status,
            });
        }
    }
    for (event_id, section_id) in ledger.ga_changed.keys() {
        let (Some(slot), Some(code)) = (
            ledger.ga.get(&(*event_id, *section_id)),
            rules
                .get(event_id)
                .and_then(|r| r.layout.section_by_id(*section_id).map(|s| s.code.clone())),
        ) else {
            continue;
        };
        per_event
            .entry(*event_id)
            .or_default()
            .1
            .push(SectionAvailability {
                section: code,
                available: slot.capacity - slot.held - slot.sold,
            });
    }
    for (event_id, (seats, sections)) in per_event {
        publish(
            outbox,
            event_id,
            SeatEvent::SeatStatusChanged {
                seats,
                sections,
                next_offset,
            },
        )?;
    }
    for (event_id, seat_no) in &ledger.life.waitlist_sync {
        outbox.push("waitlist_sync", *event_id, seat_no.to_string());
    }
    Ok(())
}
