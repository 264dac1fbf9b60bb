//! The worker of one partition: gathers messages into batches (up to `batch_max`
//! messages, or `batch_wait_ms` after the first) and applies them in order.
//!
//! It keeps `expected`, the next offset to apply, which starts as the offset stored in
//! PostgreSQL. Messages below it are redeliveries and are skipped; a gap above it means
//! the fetch position is off (the broker's group offset is only a hint), so the worker
//! asks the poll thread to seek back. A fenced batch (another consumer applied first)
//! moves `expected` to the stored offset and seeks there.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer;
use seatq_common::shutdown::Shutdown;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

use crate::batch::{BatchApplier, BatchResult};
use crate::input::{Incoming, Plan, Quarantine};
use crate::poison::{self, Isolation};
use crate::relay::Relay;

/// Requests from workers to the thread that owns the Kafka consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Move the fetch position of `partition` to `offset`; messages fetched after it carry
    /// `epoch`, so the worker can tell them from stale ones still in its channel.
    Seek {
        partition: i32,
        offset: i64,
        epoch: u64,
    },
    /// Commit `next_offset` to the broker (for lag reporting only).
    Commit { partition: i32, next_offset: i64 },
}

/// What every worker shares.
pub struct WorkerShared {
    pub applier: BatchApplier,
    pub relay: Arc<Relay>,
    pub control: std::sync::mpsc::Sender<Control>,
    pub batch_max: usize,
    pub batch_wait: Duration,
}

const RESET_OFFSET: &str =
    "UPDATE consumer_offsets SET next_offset = $4, owner = $5, updated_at = now() \
     WHERE topic = $1 AND kafka_partition = $2 AND next_offset = $3";

/// A message with the seek epoch it was fetched in.
pub type Routed = (u64, Incoming);

pub async fn run(
    shared: Arc<WorkerShared>,
    partition: i32,
    rx: mpsc::Receiver<Routed>,
    stop: Shutdown,
) {
    let span = tracing::info_span!("partition_worker", partition);
    async move {
        tracing::info!("partition assigned");
        let wake = Arc::new(Notify::new());
        let relay_stop = stop.child_token();
        let relay = tokio::spawn(shared.relay.clone().run(
            partition,
            wake.clone(),
            relay_stop.clone(),
        ));
        Worker {
            shared,
            partition,
            rx,
            stop,
            wake,
            expected: None,
            epoch: 0,
            seeking: false,
            last_end_check: None,
        }
        .consume()
        .await;
        relay_stop.cancel();
        let _ = relay.await;
        tracing::info!("partition released");
    }
    .instrument(span)
    .await
}

struct Worker {
    shared: Arc<WorkerShared>,
    partition: i32,
    rx: mpsc::Receiver<Routed>,
    stop: Shutdown,
    wake: Arc<Notify>,
    expected: Option<i64>,
    /// Seeks requested so far; messages of older epochs predate the last seek.
    epoch: u64,
    /// A seek was requested and the first message at or after `expected` is awaited.
    seeking: bool,
    /// When the log end was last compared with `expected` (see `check_log_end`).
    last_end_check: Option<tokio::time::Instant>,
}

impl Worker {
    async fn consume(&mut self) {
        // Start from what PostgreSQL says was applied, whatever the broker's group offset.
        let stored = loop {
            let applier = &self.shared.applier;
            match seatq_common::db::next_offset(&applier.pool, &applier.topic, self.partition).await
            {
                Ok(stored) => break stored,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the stored offset; retrying");
                    if !seatq_common::shutdown::pause(&self.stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        if let Some(offset) = stored {
            let offset = self.check_log_end(offset).await;
            self.seek(offset);
        }
        while let Some(batch) = self.next_batch().await {
            if !self.apply(batch).await {
                return;
            }
        }
    }

    /// A stored offset beyond the end of the log means the broker lost records or the
    /// topic was recreated: new commands would get offsets below it and be skipped as
    /// redeliveries, never decided. Restart from the log start instead (compare-and-set,
    /// so a concurrent owner is not overridden); request-id dedupe keeps anything that
    /// survived from being applied twice.
    async fn check_log_end(&self, stored: i64) -> i64 {
        let relay = self.shared.relay.clone();
        let topic = self.shared.applier.topic.clone();
        let partition = self.partition;
        let marks = tokio::task::spawn_blocking(move || {
            relay
                .producer
                .client()
                .fetch_watermarks(&topic, partition, Duration::from_secs(5))
        })
        .await;
        let (low, high) = match marks {
            Ok(Ok(marks)) => marks,
            _ => return stored, // cannot tell now; a later assignment checks again
        };
        if stored <= high {
            return stored;
        }
        tracing::error!(
            stored,
            low,
            high,
            "stored offset is beyond the end of the log: the broker lost records or the topic \
             was recreated; restarting from the log start (decided requests are skipped by id)"
        );
        let applier = &self.shared.applier;
        match sqlx::query(RESET_OFFSET)
            .bind(&applier.topic)
            .bind(self.partition)
            .bind(stored)
            .bind(low)
            .bind(&applier.owner)
            .execute(&applier.pool)
            .await
        {
            Ok(_) => low,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reset the stored offset");
                stored
            }
        }
    }

    fn seek(&mut self, offset: i64) {
        self.expected = Some(offset);
        self.seeking = true;
        self.epoch += 1;
        let _ = self.shared.control.send(Control::Seek {
            partition: self.partition,
            offset,
            epoch: self.epoch,
        });
    }

    /// The next run of consecutive messages starting at `expected`; None when stopped.
    async fn next_batch(&mut self) -> Option<Vec<Incoming>> {
        loop {
            let (epoch, first) = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                m = self.rx.recv() => m?,
            };
            if epoch < self.epoch {
                continue; // fetched before the last seek
            }
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.shared.batch_wait;
            while batch.len() < self.shared.batch_max {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some((epoch, m))) if epoch >= self.epoch => batch.push(m),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
            let all_below = self
                .expected
                .is_some_and(|e| batch.iter().all(|m| m.offset < e));
            if let Some(batch) = self.accept(batch) {
                return Some(batch);
            }
            // Only old offsets: normal after a seek, or the log restarted below us.
            let due = self
                .last_end_check
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if let (true, true, Some(expected)) = (all_below, due, self.expected) {
                self.last_end_check = Some(tokio::time::Instant::now());
                let restart = self.check_log_end(expected).await;
                if restart != expected {
                    self.seek(restart);
                }
            }
        }
    }

    /// Keep the messages that continue from `expected`.
    fn accept(&mut self, batch: Vec<Incoming>) -> Option<Vec<Incoming>> {
        let expected = *self.expected.get_or_insert(batch[0].offset);
        let mut kept: Vec<Incoming> = batch.into_iter().filter(|m| m.offset >= expected).collect();
        let first = kept.first()?.offset;
        if first > expected {
            if !self.seeking {
                tracing::warn!(
                    expected,
                    first,
                    "gap before the fetched messages; seeking back"
                );
                self.seek(expected);
                return None;
            }
            // Even after seeking the log starts later (retention removed the records):
            // nothing can be done about those, continue from what exists.
            tracing::error!(
                expected,
                first,
                "records before this offset no longer exist"
            );
            self.expected = Some(first);
        }
        self.seeking = false;
        // Stop at the first discontinuity (a stale message after a seek).
        let mut next = kept[0].offset;
        let len = kept.iter().take_while(|m| {
            let ok = m.offset == next;
            next += 1;
            ok
        });
        let n = len.count();
        kept.truncate(n);
        Some(kept)
    }

    /// Apply a batch; false when stopped meanwhile. Passing failures are retried with a
    /// capped backoff; a lasting one isolates the commands that cause it (`poison`), which
    /// are then refused while the rest applies.
    async fn apply(&mut self, batch: Vec<Incoming>) -> bool {
        let mut backoff = Duration::from_millis(50);
        let expected = batch[0].offset;
        let mut quarantine = Quarantine::new();
        let shared = self.shared.clone();
        let applier = &shared.applier;
        loop {
            let plan = Plan {
                quarantine: &quarantine,
                trial: None,
            };
            match poison::apply_guarded(applier, self.partition, expected, &batch, &plan).await {
                Ok(BatchResult::Applied {
                    next_offset,
                    decided,
                    duplicates,
                }) => {
                    tracing::debug!(
                        offset = expected,
                        next_offset,
                        decided,
                        duplicates,
                        dead_lettered = quarantine.len(),
                        "batch applied"
                    );
                    self.expected = Some(next_offset);
                    let _ = self.shared.control.send(Control::Commit {
                        partition: self.partition,
                        next_offset,
                    });
                    self.wake.notify_one();
                    return true;
                }
                Ok(BatchResult::Fenced { stored }) => {
                    tracing::warn!(
                        expected,
                        stored,
                        "another consumer applied this partition; re-seeking"
                    );
                    self.seek(stored);
                    return true;
                }
                Ok(BatchResult::Tried) => {
                    tracing::error!("a batch meant to commit was only tried; trying again");
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "batch failed; retrying");
                }
                Err(e) => {
                    tracing::error!(error = %e, offset = expected,
                        "batch cannot be applied as it is; isolating the commands that fail");
                    seatq_common::metrics::poison_isolation(self.partition);
                    match poison::isolate(applier, self.partition, expected, &batch, &quarantine)
                        .await
                    {
                        Isolation::Found(found) => {
                            for ((offset, seq), error) in &found {
                                tracing::error!(offset, seq, %error,
                                    "this command cannot be applied: it will be rejected and dead-lettered");
                            }
                            quarantine.extend(found);
                            continue;
                        }
                        Isolation::Fenced(stored) => {
                            self.seek(stored);
                            return true;
                        }
                        Isolation::NotTheCommands(e) => {
                            // Not one command's fault: rejecting them would lose requests.
                            tracing::error!(error = %e, offset = expected,
                                "the batch fails even without its commands; retrying slowly");
                            backoff = backoff.max(Duration::from_secs(1));
                        }
                        Isolation::Interrupted(e) => {
                            tracing::warn!(error = %e, "isolating the failing commands was interrupted; retrying");
                        }
                        Isolation::NotReproduced => {
                            tracing::warn!(
                                offset = expected,
                                "the failure did not come back on trial; retrying"
                            );
                        }
                    }
                }
            }
            if !seatq_common::shutdown::pause(&self.stop, backoff).await {
                return false;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
