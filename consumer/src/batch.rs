//! One batch of commands, applied in one PostgreSQL transaction.
//!
//! 1. **Fence**: lock this partition's row in `consumer_offsets` and check it still says
//!    the offset this worker expects. If another consumer moved it (a rebalance briefly gave
//!    the partition to two of us), roll back and let the caller re-seek. The lock also
//!    serialises two such consumers, so a batch commits at most once.
//! 2. **Decode and dedupe**: split packed records into commands in Kafka order; malformed
//!    ones and those the [`Plan`] quarantines are refused (rejected, dead-lettered); skip
//!    commands whose request_id is already decided (redelivery).
//! 3. **Load**: lock the rows the batch touches (in one fixed order) and read them into a
//!    [`Ledger`]: holds, bookings, seats, general-admission counters, waitlists, users'
//!    seat counts.
//! 4. **Decide** every command in Kafka order (offset, then place in the record), in memory.
//! 5. **Write** set-based (`unnest`): holds, seats, counters, decisions, dead letters, outbox
//!    rows; advance the offset; `NOTIFY` waiting gateways; commit.
//!
//! This module is the order of the steps; the SQL is in `store`, the rules in `decide`
//! and `lifecycle`, the data they share in `ledger`.
//!
//! A batch may also be *tried* (`Plan::trial`): steps 1–5 for some of its commands only,
//! then rolled back. That is how `poison` finds the commands that make a batch fail.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use seatq_common::catalog::Catalog;
use seatq_common::command::{Command, CommandEnvelope, HoldSeats};
use seatq_common::ids::{EventId, RequestId, SectionId, UserId};
use seatq_common::message::SeatStatus;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::input::{decode, Incoming, Input, Plan, Quarantine};
use crate::ledger::{Decided, EventRules, HoldRequest, Ledger, Outcome, Position, Rejection};
use crate::lifecycle::LifecycleConfig;
use crate::outbox::{collect_messages, Outbox};
use crate::store::{decisions, inventory, lifecycle as lifecycle_store, offsets};

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

/// The named-seat hold requests of a batch by request id: their seats, and whether the
/// buyer needs an accessible space.
pub(crate) type NamedSeats<'a> = HashMap<RequestId, (&'a [i32], bool)>;

pub(crate) fn named_seat_requests(commands: &[(Position, CommandEnvelope)]) -> NamedSeats<'_> {
    commands
        .iter()
        .filter_map(|(_, c)| match &c.command {
            Command::HoldSeats(HoldSeats::Seats {
                seat_nos,
                accessible,
            }) => Some((c.request_id, (seat_nos.as_slice(), *accessible))),
            _ => None,
        })
        .collect()
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
        if let Some(stored) =
            offsets::fence(&mut tx, &self.topic, partition, expected, &self.owner).await?
        {
            tx.rollback().await?;
            return Ok(BatchResult::Fenced { stored });
        }
        // 2. Decode, and drop what is already decided.
        let mut input = decode(messages, plan, now);
        let duplicates = self.drop_decided(&mut tx, &mut input).await?;
        watch.mark("dedupe");
        // 3. Load and lock what the batch touches.
        let rules = self.rules(&input.commands).await?;
        let mut ledger = inventory::load_ledger(&mut tx, &input.commands, &rules).await?;
        watch.mark("load");
        // 4. Decide in Kafka order.
        let mut decided = self.decide_all(&mut ledger, &input, &rules, partition, now);
        // Both kinds of advice look up what a refused named-seat request asked for.
        let named = named_seat_requests(&input.commands);
        self.suggest_alternatives(&mut tx, &mut decided, &ledger, &rules, &named)
            .await?;
        crate::seating::suggest_instead(&mut tx, &mut decided, &ledger, &rules, &named).await?;
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
        let mut seen: HashSet<Uuid> = decisions::decided_ids(tx, &ids)
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
            let seat_nos = match &outcome {
                Outcome::Held(h) if !h.seat_nos.is_empty() => h.seat_nos.clone(),
                _ => c.command.named_seats().to_vec(),
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
                seat_nos,
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
                outcome: Outcome::Rejected(Rejection::new(r.reason)),
                seat_nos: Vec::new(),
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
        inventory::write_seats(tx, ledger).await?;
        lifecycle_store::write_rest(tx, ledger, now).await?;
        let raced = decisions::write_requests(tx, partition, decided, rules, now).await?;
        if raced > 0 {
            return Err(BatchError::Raced(raced));
        }
        let dead_letters = decisions::write_dead_letters(tx, &self.topic, partition, input).await?;
        let mut outbox = Outbox::default();
        collect_messages(&mut outbox, decided, ledger, rules, next_offset, now)?;
        decisions::write_outbox(tx, partition, &outbox).await?;
        offsets::advance(tx, &self.topic, partition, next_offset, &self.owner).await?;
        decisions::notify_waiting(tx, decided).await?;
        Ok(dead_letters)
    }

    /// For requests rejected because their seats were taken, suggest as many free seats
    /// nearby (same section), as free after this batch.
    async fn suggest_alternatives(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        decided: &mut [Decided],
        ledger: &Ledger,
        rules: &HashMap<EventId, EventRules>,
        requested: &NamedSeats<'_>,
    ) -> Result<(), sqlx::Error> {
        let mut wanted: Vec<Wanted> = Vec::new();
        for (i, d) in decided.iter().enumerate() {
            let Outcome::Rejected(rej) = &d.outcome else {
                continue;
            };
            if rej.reason != "seats_unavailable" {
                continue;
            }
            let (Some(&(seats, _)), Some(r)) =
                (requested.get(&d.request_id), rules.get(&d.event_id))
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
        let mut near = inventory::NearArrays::default();
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
            let rows = inventory::free_near(tx, &near).await?;
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
                rej.alternatives = crate::decide::nearest(set, w.anchor, w.count);
            }
        }
        Ok(())
    }
}
