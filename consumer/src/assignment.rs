//! The partition workers of this process.
//!
//! When a partition is taken away, its worker is told to stop and the poll thread waits
//! (bounded) until it has finished or abandoned its in-flight batch, so a partition
//! changes hands between batches. Correctness does not depend on that wait: the offset
//! fence in PostgreSQL keeps a late batch from committing twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    revoke_timeout: Duration,
    workers: Mutex<HashMap<i32, WorkerHandle>>,
}

impl Assignment {
    pub fn new(runtime: Handle, shared: Arc<WorkerShared>, revoke_timeout: Duration) -> Self {
        Self {
            runtime,
            shared,
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

    /// Partitions with a running worker.
    pub fn partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self.workers().keys().copied().collect();
        partitions.sort_unstable();
        partitions
    }
}
