//! Design (c): decide in Redis, write PostgreSQL behind — and crash Redis mid-storm.
//!
//! This is the design that looks fastest and is wrong: once Redis loses its memory
//! (here: SIGKILL and an empty restart after a share of the attempts) the script happily
//! promises seats that were already promised, and PostgreSQL only finds out afterwards
//! when the writer's insert conflicts. The run counts those double promises.

pub mod client;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use sqlx::Connection;

use crate::error::BenchError;
use crate::pg::BenchDatabase;
use crate::redis_server::PrivateRedis;
use crate::results::{self, RedisFirstResult, RedisRestart, Timing};
use crate::runner;
use crate::verify;
use crate::workload::{Attempt, Stadium};

use client::RedisFirst;

pub const NAME: &str = "redis_first";

/// Run design (c). `restart_at`: share of attempts (0..1) after which Redis is killed
/// and restarted empty; `None` for no crash.
pub async fn run(
    db: &BenchDatabase,
    stadium: &Stadium,
    attempts: Arc<Vec<Attempt>>,
    concurrency: usize,
    restart_at: Option<f64>,
) -> Result<RedisFirstResult, BenchError> {
    db.reset(stadium).await?;
    let redis = PrivateRedis::start().await?;
    let (writer, writer_task) = writer::spawn(db.connect().await?);
    let resent = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(RedisFirst::connect(&redis.url(), writer.clone(), Arc::clone(&resent)).await?);
    }
    // From here only the clients hold senders: the writer stops when they are all done.
    drop(writer);

    let total = attempts.len() as u64;
    let bar = runner::progress_bar(NAME, total);
    let restart_after = restart_at.map(|share| (total as f64 * share) as u64);
    let chaos = tokio::spawn(restart_when(redis, bar.clone(), restart_after));
    let outcome = match runner::run(clients, attempts, bar).await {
        Ok(outcome) => outcome,
        Err(e) => {
            chaos.abort();
            return Err(e);
        }
    };
    let storm_over = Instant::now();
    let writer_stats = writer_task.await??;
    let drain = storm_over.elapsed();
    let (redis, restart) = chaos.await??;
    drop(redis);

    let mut conn = db.connect().await?;
    verify::load_promises(&mut conn, &outcome.promises).await?;
    let check = verify::check_claims_table(&mut conn).await?;
    conn.close().await?;
    Ok(RedisFirstResult {
        timing: Timing::from(&outcome),
        held: outcome.promises.len() as u64,
        double_promised_after_redis_restart: check.promised_to_another,
        writer_conflicts: writer_stats.conflicts,
        pg_claims: check.claim_rows,
        promises_without_claim: check.promises_without_claim,
        redis_restart: restart,
        resent_scripts: resent.load(Ordering::Relaxed),
        writer_batches: writer_stats.batches,
        writer_max_backlog: writer_stats.max_backlog,
        writer_drain_ms: results::millis(drain),
    })
}

/// Kill Redis (SIGKILL) once `after` attempts were answered and start it again empty on
/// the same port. Hands the server back (to be stopped by the caller) when done or when
/// the run finished first.
pub async fn restart_when(
    mut redis: PrivateRedis,
    bar: ProgressBar,
    after: Option<u64>,
) -> Result<(PrivateRedis, Option<RedisRestart>), BenchError> {
    let Some(after) = after else {
        return Ok((redis, None));
    };
    loop {
        let answered = bar.position();
        if answered >= after {
            let killed = Instant::now();
            redis.restart().await?;
            let restart = RedisRestart {
                after_attempts: answered,
                outage_ms: results::millis(killed.elapsed()),
            };
            bar.println(format!(
                "  redis killed (SIGKILL) after {answered} attempts, back empty in {:.0} ms",
                restart.outage_ms
            ));
            return Ok((redis, Some(restart)));
        }
        if bar.is_finished() {
            return Ok((redis, None));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
