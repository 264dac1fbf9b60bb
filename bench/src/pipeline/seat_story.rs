//! After the flash sale: how fast the control room answers "why did they get it and not
//! me?" on the storm's event — every seat's story, a refused buyer's receipt and the unmet
//! demand aggregate — timed through the gateway's own functions
//! (`seatq_gateway::seat_history`, `seatq_gateway::control_room`) on the run's database,
//! one query after another (no other load from the bench).
//!
//! Seats: the most contested ones (the longest stories) and a random sample. Receipts: a
//! random sample of requests refused `seats_unavailable`.

use std::time::{Duration, Instant};

use seatq_common::catalog::Catalog;
use seatq_common::ids::{EventId, RequestId};
use seatq_gateway::seat_history::{self, Page};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::BenchError;
use crate::results::round;

const HOTTEST: i64 = 20;
const SAMPLE: i64 = 180;
const RECEIPTS: i64 = 200;

const REQUESTS: &str = "SELECT count(*) FROM requests WHERE event_id = $1";
const HOT_SEATS: &str =
    "SELECT s.no FROM requests r CROSS JOIN LATERAL unnest(r.seat_nos) AS s(no) \
     WHERE r.event_id = $1 AND cardinality(r.seat_nos) > 0 \
     GROUP BY s.no ORDER BY count(*) DESC LIMIT $2";
const SAMPLE_SEATS: &str =
    "SELECT seat_no FROM seats WHERE event_id = $1 ORDER BY random() LIMIT $2";
const REFUSED: &str = "SELECT request_id, seat_nos FROM requests \
     WHERE event_id = $1 AND reason = 'seats_unavailable' AND cardinality(seat_nos) > 0 \
     ORDER BY random() LIMIT $2";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeatStoryTiming {
    /// Decided requests of the event.
    pub requests: i64,
    /// Commands naming the most contested seat (its story's length).
    pub longest_story: usize,
    /// `GET …/seats/{seat}/history` (first page of 50), all seats timed.
    pub history_p50_ms: f64,
    pub history_p99_ms: f64,
    pub history_max_ms: f64,
    /// The same for the most contested seats only.
    pub hottest_history_p50_ms: f64,
    pub hottest_history_max_ms: f64,
    /// A refused request's receipt.
    pub receipt_p50_ms: f64,
    pub receipt_p99_ms: f64,
    /// The unmet-demand aggregate over the whole event (at most every 15 s per watched
    /// event).
    pub demand_ms: f64,
    pub seats_timed: usize,
    pub receipts_timed: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    round(sorted[i.min(sorted.len() - 1)], 2)
}

pub async fn measure(pool: &PgPool, event: Uuid) -> Result<SeatStoryTiming, BenchError> {
    let catalog = Catalog::new(pool.clone(), Duration::from_secs(60));
    let entry = catalog
        .event(EventId(event))
        .await?
        .ok_or_else(|| BenchError::Stack(format!("event {event} not found")))?;
    // Fresh statistics, as autovacuum would give a table that just grew by a storm.
    sqlx::query("ANALYZE requests, holds").execute(pool).await?;
    let requests: i64 = sqlx::query_scalar(REQUESTS)
        .bind(event)
        .fetch_one(pool)
        .await?;
    let hottest: Vec<i32> = sqlx::query_scalar(HOT_SEATS)
        .bind(event)
        .bind(HOTTEST)
        .fetch_all(pool)
        .await?;
    let sample: Vec<i32> = sqlx::query_scalar(SAMPLE_SEATS)
        .bind(event)
        .bind(SAMPLE)
        .fetch_all(pool)
        .await?;
    let page = Page {
        after: (-1, -1),
        limit: seat_history::DEFAULT_LIMIT,
    };
    let mut all = Vec::new();
    let mut hot = Vec::new();
    let mut longest_story = 0;
    for (i, seat_no) in hottest.iter().chain(&sample).enumerate() {
        let label = entry
            .layout
            .seat_label(*seat_no)
            .ok_or_else(|| BenchError::Stack(format!("seat {seat_no} has no label")))?;
        let started = Instant::now();
        let story = seat_history::seat_history(pool, &entry, &label, page)
            .await
            .map_err(|e| BenchError::Stack(format!("seat history: {}", e.detail)))?;
        let took = ms(started.elapsed());
        longest_story = longest_story.max(story.commands.len());
        all.push(took);
        if i < hottest.len() {
            hot.push(took);
        }
    }
    let refused: Vec<(Uuid, Vec<i32>)> = sqlx::query_as(REFUSED)
        .bind(event)
        .bind(RECEIPTS)
        .fetch_all(pool)
        .await?;
    let mut receipts = Vec::new();
    for (request_id, seat_nos) in &refused {
        let started = Instant::now();
        seat_history::receipt(pool, &entry, RequestId(*request_id), seat_nos)
            .await
            .map_err(|e| BenchError::Stack(format!("receipt: {}", e.detail)))?;
        receipts.push(ms(started.elapsed()));
    }
    let started = Instant::now();
    seatq_gateway::control_room::refused_per_seat(pool, EventId(event)).await?;
    let demand_ms = round(ms(started.elapsed()), 1);
    for v in [&mut all, &mut hot, &mut receipts] {
        v.sort_by(f64::total_cmp);
    }
    Ok(SeatStoryTiming {
        requests,
        longest_story,
        history_p50_ms: quantile(&all, 0.5),
        history_p99_ms: quantile(&all, 0.99),
        history_max_ms: quantile(&all, 1.0),
        hottest_history_p50_ms: quantile(&hot, 0.5),
        hottest_history_max_ms: quantile(&hot, 1.0),
        receipt_p50_ms: quantile(&receipts, 0.5),
        receipt_p99_ms: quantile(&receipts, 0.99),
        demand_ms,
        seats_timed: all.len(),
        receipts_timed: receipts.len(),
    })
}
