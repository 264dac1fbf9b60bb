//! The waiting-room gauges, per partition (events are not bounded, partitions are): how
//! many wait, and the admission controllers' current rates. The admitted counter is
//! recorded as admissions happen; these are set once per admission pass, the length
//! sampled every few seconds (one count over the waiting rows' partial index).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use seatq_common::metrics;
use sqlx::PgPool;

use crate::admission::Tick;

const LENGTH_EVERY: Duration = Duration::from_secs(5);
const WAITING: &str = "SELECT e.kafka_partition, count(*) FROM queue_tickets q \
     JOIN events e ON e.id = q.event_id WHERE q.status = 'waiting' GROUP BY e.kafka_partition";

#[derive(Default)]
pub struct WaitingRoomGauges {
    /// This pass's controller rates, summed per partition.
    rates: BTreeMap<i32, f64>,
    /// Partitions reported last pass (set to 0 once nothing waits there).
    rated: BTreeSet<i32>,
    lengths: BTreeSet<i32>,
    last_length: Option<Instant>,
}

impl WaitingRoomGauges {
    /// One event's tick on `partition`.
    pub fn ticked(&mut self, partition: i32, tick: &Tick) {
        *self.rates.entry(partition).or_default() += tick.rate;
        if tick.admitted > 0 {
            metrics::waiting_room_admitted(partition, tick.admitted);
        }
    }

    /// End of an admission pass: publish the rates, and the lengths when due.
    pub async fn publish(&mut self, pool: &PgPool) {
        let rates = std::mem::take(&mut self.rates);
        for p in self.rated.iter().filter(|p| !rates.contains_key(p)) {
            metrics::waiting_room_rate(*p, 0.0);
        }
        for (p, rate) in &rates {
            metrics::waiting_room_rate(*p, *rate);
        }
        self.rated = rates.into_keys().collect();
        if self
            .last_length
            .is_some_and(|at| at.elapsed() < LENGTH_EVERY)
        {
            return;
        }
        self.last_length = Some(Instant::now());
        let lengths: Vec<(i32, i64)> = match sqlx::query_as(WAITING).fetch_all(pool).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "waiting-room length not sampled");
                return;
            }
        };
        for p in self.lengths.iter() {
            if !lengths.iter().any(|(q, _)| q == p) {
                metrics::waiting_room_length(*p, 0);
            }
        }
        for (p, n) in &lengths {
            metrics::waiting_room_length(*p, *n);
        }
        self.lengths = lengths.into_iter().map(|(p, _)| p).collect();
    }
}
