//! The Redis-first design's background writer: copies won holds into PostgreSQL.
//!
//! Clients answer users as soon as the Lua script says yes and hand the seats to this
//! task through a channel; it writes them in batches. `seat_claims` has one row per seat,
//! so a seat promised a second time (only possible once Redis has forgotten the first
//! promise) shows up here as an `ON CONFLICT DO NOTHING` conflict — after the user was
//! already told "yours".

use sqlx::PgConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::BenchError;
use crate::runner::Promise;
use crate::workload::holder;

const BATCH: usize = 2_000;
const INSERT_CLAIMS: &str = "INSERT INTO seat_claims (seat_no, holder)
    SELECT * FROM UNNEST($1::int[], $2::text[])
    ON CONFLICT (seat_no) DO NOTHING";

#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    pub written: u64,
    pub conflicts: u64,
    pub batches: u64,
    /// Longest backlog (promises not yet written) seen when starting a batch.
    pub max_backlog: usize,
}

/// Start the writer on `conn`; it ends when every sender has been dropped.
pub fn spawn(
    conn: PgConnection,
) -> (
    mpsc::UnboundedSender<Promise>,
    JoinHandle<Result<WriterStats, BenchError>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(write_loop(conn, rx)))
}

async fn write_loop(
    mut conn: PgConnection,
    mut rx: mpsc::UnboundedReceiver<Promise>,
) -> Result<WriterStats, BenchError> {
    let mut stats = WriterStats::default();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        stats.max_backlog = stats.max_backlog.max(rx.len());
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            break;
        }
        let seat_nos: Vec<i32> = batch.iter().map(|p| p.seat_no).collect();
        let holders: Vec<String> = batch.iter().map(|p| holder(p.user)).collect();
        let done = sqlx::query(INSERT_CLAIMS)
            .bind(seat_nos)
            .bind(holders)
            .execute(&mut conn)
            .await?;
        stats.written += done.rows_affected();
        stats.conflicts += batch.len() as u64 - done.rows_affected();
        stats.batches += 1;
        batch.clear();
    }
    Ok(stats)
}
