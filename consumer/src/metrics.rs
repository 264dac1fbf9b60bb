//! The consumer's sampled gauges: lag and outbox backlog of the partitions this process
//! owns (see `seatq_common::metrics` for the names).
//!
//! Sampled every few seconds rather than measured per batch, because both must move
//! while the worker is stuck or idle, which is when an operator looks. Lag is computed
//! as `seatq-ctl lag` computes it (log end − the offset stored in
//! PostgreSQL, the authoritative position), with watermarks asked of the broker, not the
//! fetcher's cached ones (those stop moving when the fetch queue is full, i.e. exactly
//! under a backlog). A partition given up reads 0 here: its new owner reports it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, Producer};
use seatq_common::metrics;
use seatq_common::shutdown::Shutdown;
use sqlx::PgPool;

use crate::assignment::Assignment;

const EVERY: Duration = Duration::from_secs(2);
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);

const STORED: &str = "SELECT kafka_partition, next_offset FROM consumer_offsets \
     WHERE topic = $1 AND kafka_partition = ANY($2)";
const BACKLOG: &str = "SELECT source_partition, count(*) FROM outbox \
     WHERE source_partition = ANY($1) GROUP BY source_partition";

pub struct Sampler {
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub topic: String,
    pub assignment: Arc<Assignment>,
}

impl Sampler {
    /// Sample until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let mut reported: BTreeSet<i32> = BTreeSet::new();
        loop {
            if !seatq_common::shutdown::pause(&shutdown, EVERY).await {
                return;
            }
            let owned = self.assignment.partitions();
            for gone in reported.iter().filter(|p| !owned.contains(p)) {
                metrics::consumer_lag(*gone, 0);
                metrics::outbox_backlog(*gone, 0);
            }
            reported = owned.iter().copied().collect();
            if owned.is_empty() {
                continue;
            }
            if let Err(e) = self.sample(&owned).await {
                tracing::debug!(error = %e, "metrics sample failed");
            }
        }
    }

    async fn sample(&self, owned: &[i32]) -> Result<(), sqlx::Error> {
        let backlog: HashMap<i32, i64> = sqlx::query_as(BACKLOG)
            .bind(owned)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        for p in owned {
            metrics::outbox_backlog(*p, backlog.get(p).copied().unwrap_or(0));
        }
        let stored: HashMap<i32, i64> = sqlx::query_as(STORED)
            .bind(&self.topic)
            .bind(owned)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        let (producer, topic, partitions) =
            (self.producer.clone(), self.topic.clone(), owned.to_vec());
        let marks = tokio::task::spawn_blocking(move || {
            partitions
                .into_iter()
                .filter_map(|p| {
                    let marks = producer
                        .client()
                        .fetch_watermarks(&topic, p, BROKER_TIMEOUT);
                    marks.ok().map(|m| (p, m))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (p, (low, high)) in marks {
            // Nothing stored yet: the consumer starts at the log start, so all of it.
            let next = stored.get(&p).copied().unwrap_or(low).max(low);
            metrics::consumer_lag(p, (high - next).max(0));
        }
        Ok(())
    }
}
