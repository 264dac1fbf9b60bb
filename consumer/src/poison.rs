//! Poison isolation: a command that cannot be applied must not stop its partition.
//!
//! One writer per partition means one stuck batch stops every event on the partition:
//! hold requests already answered 202, expiries, payments. So a batch that fails for a
//! lasting reason (a constraint, a data error, a panic in the rules — anything
//! [`BatchError::is_transient`] does not forgive) is never retried as it is. Instead:
//!
//! 1. Try the batch with none of its commands (fence, offset, nothing else). If that fails
//!    too, the commands are not the cause (a broken schema, a full disk): say so and let the
//!    worker retry slowly; rejecting every command would turn an outage into lost requests.
//! 2. Otherwise split: try, in Kafka order, growing prefixes of the commands known to be good
//!    plus the next chunk; a chunk that fails is halved until the failing commands are single.
//!    Every try is its own transaction, rolled back (`Plan::trial`). With k bad commands
//!    among n this takes about 2·k·log₂(n) tries.
//! 3. The worker then applies the whole batch, the bad commands refused as
//!    `internal_error` and kept in `dead_letters`; the rest is decided in order as if the
//!    bad ones had never been sent. FIFO and the offset fence are those of any batch.
//!
//! A panic anywhere in applying a batch is caught here and counts as a lasting failure, so
//! a bug in the rules cannot crash-loop the process on the same offset.

use std::collections::{BTreeSet, VecDeque};
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::batch::{BatchApplier, BatchError, BatchResult};
use crate::input::{Incoming, Plan, Quarantine};
use crate::ledger::Position;

/// What isolating a failing batch found.
#[derive(Debug)]
pub enum Isolation {
    /// These commands fail the batch; with them refused, it went through on trial.
    Found(Quarantine),
    /// The batch fails even without its commands: they are not the cause.
    NotTheCommands(BatchError),
    /// A passing failure (lost connection…) interrupted the search; start again later.
    Interrupted(BatchError),
    /// Another consumer applied the partition meanwhile.
    Fenced(i64),
    /// Every try went through: the failure did not come back.
    NotReproduced,
}

/// [`BatchApplier::apply_plan`], with a panic anywhere inside turned into an error (the
/// transaction is dropped, which rolls it back).
pub async fn apply_guarded(
    applier: &BatchApplier,
    partition: i32,
    expected: i64,
    messages: &[Incoming],
    plan: &Plan<'_>,
) -> Result<BatchResult, BatchError> {
    AssertUnwindSafe(applier.apply_plan(partition, expected, messages, plan))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(BatchError::Panicked(panic_message(panic.as_ref()))))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Find the commands of `messages` that make it fail, beyond those already in
/// `quarantine` (the module doc says how).
pub async fn isolate(
    applier: &BatchApplier,
    partition: i32,
    expected: i64,
    messages: &[Incoming],
    quarantine: &Quarantine,
) -> Isolation {
    let candidates: Vec<Position> = BatchApplier::positions(messages)
        .into_iter()
        .filter(|at| !quarantine.contains_key(at))
        .collect();
    let attempt = |trial: BTreeSet<Position>| async move {
        let plan = Plan {
            quarantine,
            trial: Some(&trial),
        };
        apply_guarded(applier, partition, expected, messages, &plan).await
    };
    match attempt(BTreeSet::new()).await {
        Ok(BatchResult::Fenced { stored }) => return Isolation::Fenced(stored),
        Ok(_) => {}
        Err(e) if e.is_transient() => return Isolation::Interrupted(e),
        Err(e) => return Isolation::NotTheCommands(e),
    }
    let mut good: BTreeSet<Position> = BTreeSet::new();
    let mut found = Quarantine::new();
    let mut chunks: VecDeque<Vec<Position>> = VecDeque::from([candidates]);
    while let Some(chunk) = chunks.pop_front() {
        if chunk.is_empty() {
            continue;
        }
        let trial: BTreeSet<Position> = good.iter().chain(&chunk).copied().collect();
        match attempt(trial).await {
            Ok(BatchResult::Fenced { stored }) => return Isolation::Fenced(stored),
            Ok(_) => good.extend(chunk),
            Err(e) if e.is_transient() => return Isolation::Interrupted(e),
            Err(e) if chunk.len() == 1 => {
                found.insert(chunk[0], e.to_string());
            }
            Err(_) => {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                chunks.push_front(second);
                chunks.push_front(first);
            }
        }
    }
    if found.is_empty() {
        Isolation::NotReproduced
    } else {
        Isolation::Found(found)
    }
}
