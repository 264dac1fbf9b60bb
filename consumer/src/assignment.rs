//! The partitions this process owns, and the rebalance callbacks that change them.
//!
//! librdkafka calls the callbacks on the poll thread. On revoke, the workers of the
//! revoked partitions are told to stop and the callback waits (bounded) until each has
//! finished or abandoned its in-flight batch, so a partition changes hands between
//! batches. Correctness does not depend on that wait: the offset fence in PostgreSQL
//! keeps a late batch from committing twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use seatq_common::shutdown::Shutdown;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::worker::{self, Routed, WorkerShared};

const CHANNEL_CAPACITY: usize = 20_000;

struct WorkerHandle {
    route: Route,
    stop: Shutdown,
    join: JoinHandle<()>,
}

/// Where the poll thread sends a partition's messages, and the seek epoch to tag them with.
#[derive(Clone)]
pub struct Route {
    pub tx: mpsc::Sender<Routed>,
    pub epoch: Arc<AtomicU64>,
}

impl Route {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

pub struct Assignment {
    runtime: Handle,
    shared: Arc<WorkerShared>,
    topic: String,
    revoke_timeout: Duration,
    workers: Mutex<HashMap<i32, WorkerHandle>>,
}

impl Assignment {
    pub fn new(
        runtime: Handle,
        shared: Arc<WorkerShared>,
        topic: String,
        revoke_timeout: Duration,
    ) -> Self {
        Self {
            runtime,
            shared,
            topic,
            revoke_timeout,
            workers: Mutex::default(),
        }
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<i32, WorkerHandle>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The route to `partition`'s worker, if this process owns it.
    pub fn route(&self, partition: i32) -> Option<Route> {
        self.workers().get(&partition).map(|w| w.route.clone())
    }

    /// The poll thread performed the worker's seek number `epoch`.
    pub fn seeked(&self, partition: i32, epoch: u64) {
        if let Some(w) = self.workers().get(&partition) {
            w.route.epoch.store(epoch, Ordering::Release);
        }
    }

    pub fn start(&self, partition: i32) {
        let mut workers = self.workers();
        if workers.contains_key(&partition) {
            return;
        }
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let stop = Shutdown::new();
        let join = self.runtime.spawn(worker::run(
            self.shared.clone(),
            partition,
            rx,
            stop.clone(),
        ));
        let route = Route {
            tx,
            epoch: Arc::new(AtomicU64::new(0)),
        };
        workers.insert(partition, WorkerHandle { route, stop, join });
    }

    /// Stop the workers of `partitions` and wait (bounded) for them. Blocks: call from the
    /// poll thread, never from the async runtime.
    pub fn stop(&self, partitions: &[i32]) {
        let handles: Vec<(i32, WorkerHandle)> = {
            let mut workers = self.workers();
            partitions
                .iter()
                .filter_map(|p| workers.remove(p).map(|h| (*p, h)))
                .collect()
        };
        for (_, h) in &handles {
            h.stop.cancel();
        }
        let timeout = self.revoke_timeout;
        for (partition, h) in handles {
            let finished = self
                .runtime
                .block_on(async { tokio::time::timeout(timeout, h.join).await.is_ok() });
            if !finished {
                tracing::warn!(
                    partition,
                    "worker did not stop in time; its batch is abandoned"
                );
            }
        }
    }

    pub fn stop_all(&self) {
        let partitions: Vec<i32> = self.workers().keys().copied().collect();
        self.stop(&partitions);
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

/// The consumer's librdkafka context: routes rebalances to the [`Assignment`].
pub struct RebalanceContext {
    pub assignment: Arc<Assignment>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = self.assignment.partitions_of(tpl);
            tracing::info!(?partitions, "partitions revoked");
            self.assignment.stop(&partitions);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions = self.assignment.partitions_of(tpl);
            tracing::info!(?partitions, "partitions assigned");
            for p in partitions {
                self.assignment.start(p);
            }
        }
    }
}
