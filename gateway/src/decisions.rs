//! Waiting for a decision inline (`?wait_ms=`).
//!
//! The consumer sends `NOTIFY seatq_decisions` with the ids of decided requests whose
//! sender waits, inside the batch transaction, so the notification arrives exactly when
//! the decision is visible. One listener connection per gateway fans it out to waiters.
//! Notifications can be lost while the listener reconnects, so a waiter also re-checks
//! the database now and then and once more at its deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seatq_common::ids::RequestId;
use seatq_common::shutdown::Shutdown;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::time::Instant;

const RECHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct DecisionWaiters {
    waiting: Mutex<HashMap<RequestId, Vec<oneshot::Sender<()>>>>,
}

impl DecisionWaiters {
    /// Start the listener task; it stops with `shutdown`.
    pub fn start(pool: PgPool, shutdown: Shutdown) -> Arc<Self> {
        let waiters = Arc::new(Self::default());
        let fan_out = waiters.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = fan_out.listen(pool) => {}
            }
        });
        waiters
    }

    async fn listen(&self, pool: PgPool) {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "decision listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(seatq_common::db::DECISIONS_CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            loop {
                match listener.recv().await {
                    Ok(note) => self.wake(note.payload()),
                    Err(e) => {
                        tracing::warn!(error = %e, "decision listener lost its connection");
                        break;
                    }
                }
            }
        }
    }

    fn wake(&self, payload: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for id in payload
            .split(',')
            .filter_map(|s| s.parse::<RequestId>().ok())
        {
            for tx in waiting.remove(&id).unwrap_or_default() {
                let _ = tx.send(());
            }
        }
    }

    /// Register interest in `id` before the command is produced, so a fast decision is not
    /// missed.
    pub fn subscribe(&self, id: RequestId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .push(tx);
        rx
    }

    pub fn unsubscribe(&self, id: RequestId) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = waiting.get_mut(&id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiting.remove(&id);
            }
        }
    }

    /// Wait until `check` finds the decision or `deadline` passes.
    pub async fn wait_for<T, E, F, Fut>(
        &self,
        id: RequestId,
        mut signal: oneshot::Receiver<()>,
        deadline: Instant,
        mut check: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let result = loop {
            if let Some(found) = check().await? {
                break Some(found);
            }
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            let nap = (deadline - now).min(RECHECK_EVERY);
            tokio::select! {
                res = &mut signal => {
                    if res.is_ok() {
                        // Notified: the decision is committed; the next check reads it.
                        signal = self.subscribe(id);
                    } else {
                        tokio::time::sleep(nap).await;
                    }
                }
                _ = tokio::time::sleep(nap) => {}
            }
        };
        self.unsubscribe(id);
        Ok(result)
    }
}
