//! What the waiting-room run reads back from PostgreSQL: who joined when and was let in
//! when (`queue_tickets.joined_at`, `admitted_at` — the gateway's and the scheduler's
//! clocks), the admission batches, the hold decisions, and the order checks.
//!
//! Every admission tick admits its batch in one `UPDATE`, so a batch shares one
//! `admitted_at` (the tick transaction's `now()`): admission order is (`admitted_at`,
//! then `sort_key` within a batch, the order the scheduler picks them in).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use crate::error::BenchError;
use crate::pipeline::invariants::count;
use crate::results::{nth_quantile, round};

/// count, p50, p90, p99 and max of a duration, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub count: u64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

/// Queue waits of admitted users.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct QueueWait {
    /// Everyone admitted: join → admitted.
    pub all: Spread,
    /// Joined before the sale opened: join → admitted (includes the wait for the sale).
    pub presale_from_join: Spread,
    /// Joined before the sale opened: sale opening → admitted (the lottery's spread).
    pub presale_from_sale: Spread,
    /// Joined after it opened: join → admitted.
    pub after_sale_from_join: Spread,
}

fn spread_sql(from: &str, filter: &str) -> String {
    format!(
        "SELECT count(s), percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY s), max(s)
         FROM (SELECT extract(epoch FROM admitted_at - {from})::float8 AS s FROM queue_tickets
               WHERE event_id = $1 AND status = 'admitted' AND {filter}) AS w"
    )
}

async fn spread(
    pool: &PgPool,
    event: Uuid,
    sale: DateTime<Utc>,
    from: &str,
    filter: &str,
) -> Result<Spread, BenchError> {
    let (n, q, max): (i64, Option<Vec<f64>>, Option<f64>) =
        sqlx::query_as(&spread_sql(from, filter))
            .bind(event)
            .bind(sale)
            .fetch_one(pool)
            .await?;
    Ok(Spread {
        count: count(n),
        p50_s: nth_quantile(q.as_deref(), 0),
        p90_s: nth_quantile(q.as_deref(), 1),
        p99_s: nth_quantile(q.as_deref(), 2),
        max_s: round(max.unwrap_or(0.0), 3),
    })
}

pub async fn queue_wait(
    pool: &PgPool,
    event: Uuid,
    sale: DateTime<Utc>,
) -> Result<QueueWait, BenchError> {
    Ok(QueueWait {
        all: spread(pool, event, sale, "joined_at", "$2 = $2").await?,
        presale_from_join: spread(pool, event, sale, "joined_at", "joined_at < $2").await?,
        presale_from_sale: spread(pool, event, sale, "$2", "joined_at < $2").await?,
        after_sale_from_join: spread(pool, event, sale, "joined_at", "joined_at >= $2").await?,
    })
}

/// The line when admissions stopped: the waiting tickets, removed so that the scheduler
/// stops admitting for this event (a bench event must not keep the scheduler busy after
/// the run).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ClosedLine {
    pub waiting: u64,
    /// Of those, joined before the sale opened.
    pub waiting_presale: u64,
    /// The front of the line then (lowest `sort_key`), if anyone waited.
    #[serde(skip)]
    pub front: Option<f64>,
    /// First and last join among them.
    #[serde(skip)]
    pub first_join: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub last_join: Option<DateTime<Utc>>,
}

const CLOSE_LINE: &str = "WITH gone AS (
        DELETE FROM queue_tickets WHERE event_id = $1 AND status = 'waiting'
        RETURNING sort_key, joined_at)
    SELECT count(*), count(*) FILTER (WHERE joined_at < $2), min(sort_key), min(joined_at),
        max(joined_at) FROM gone";

/// Remove the event's waiting tickets (a tick admitting some of them at that moment
/// keeps them: the `DELETE` waits for its row locks and then skips rows no longer
/// waiting) and its Redis line.
pub async fn close_line(
    pool: &PgPool,
    redis_url: &str,
    event: Uuid,
    sale: DateTime<Utc>,
) -> Result<ClosedLine, BenchError> {
    type Row = (
        i64,
        i64,
        Option<f64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let (waiting, presale, front, first_join, last_join): Row = sqlx::query_as(CLOSE_LINE)
        .bind(event)
        .bind(sale)
        .fetch_one(pool)
        .await?;
    let client = redis::Client::open(redis_url)?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    redis::cmd("DEL")
        .arg(format!("wr:{event}"))
        .query_async::<()>(&mut redis)
        .await?;
    Ok(ClosedLine {
        waiting: count(waiting),
        waiting_presale: count(presale),
        front,
        first_join,
        last_join,
    })
}

/// The tickets of the event (all admitted once the line is closed).
#[derive(Debug, Clone, Copy, Default, Serialize, sqlx::FromRow)]
pub struct Tickets {
    pub admitted: i64,
    pub admitted_presale: i64,
    /// Admitted before the sale opened (must be 0).
    pub admitted_before_sale: i64,
    pub first_join: Option<DateTime<Utc>>,
    pub last_join: Option<DateTime<Utc>>,
    pub first_admission: Option<DateTime<Utc>>,
    pub last_admission: Option<DateTime<Utc>>,
}

const TICKETS: &str = "SELECT count(*) FILTER (WHERE status = 'admitted') AS admitted,
        count(*) FILTER (WHERE status = 'admitted' AND joined_at < $2) AS admitted_presale,
        count(*) FILTER (WHERE admitted_at < $2) AS admitted_before_sale,
        min(joined_at) AS first_join, max(joined_at) AS last_join,
        min(admitted_at) AS first_admission, max(admitted_at) AS last_admission
    FROM queue_tickets WHERE event_id = $1";

pub async fn tickets(
    pool: &PgPool,
    event: Uuid,
    sale: DateTime<Utc>,
) -> Result<Tickets, BenchError> {
    Ok(sqlx::query_as(TICKETS)
        .bind(event)
        .bind(sale)
        .fetch_one(pool)
        .await?)
}

/// One admission batch (one tick's `UPDATE`): when, how many.
pub type Batch = (DateTime<Utc>, i64);

const BATCHES: &str = "SELECT admitted_at, count(*) FROM queue_tickets
    WHERE event_id = $1 AND status = 'admitted' GROUP BY admitted_at ORDER BY admitted_at";

pub async fn batches(pool: &PgPool, event: Uuid) -> Result<Vec<Batch>, BenchError> {
    Ok(sqlx::query_as(BATCHES).bind(event).fetch_all(pool).await?)
}

/// The lottery and first come, first served, checked on the admission order.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct OrderChecks {
    /// Admitted users who joined before the sale opened.
    pub lottery_admitted: u64,
    /// Spearman's rank correlation of their join order and admission order (0: unrelated;
    /// 1: first come, first served).
    pub lottery_rank_correlation: Option<f64>,
    /// Of the first tenth of them to join, the share that were in the first tenth
    /// admitted (0.1 if unrelated, 1 if FIFO).
    pub lottery_first_tenth_share: Option<f64>,
    /// Admitted users who joined after it opened...
    pub fifo_admitted: u64,
    /// ...admitted in an earlier batch than someone who joined before them (0, or a few
    /// within a join's own commit time: the gateway stamps the place in line before its
    /// `INSERT` commits, and a tick lets in the tickets committed by then)...
    pub fifo_violations: u64,
    /// ...and the largest such inversion: how much later than the one passed over the
    /// passer joined, ms (against the join latency; not recorded by earlier runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo_max_inversion_ms: Option<f64>,
    /// Admitted users let in after (in a later batch than) someone behind them in line
    /// (higher `sort_key`), or ahead of someone still waiting when admissions stopped
    /// (0, or the same commit-time inversions as `fifo_violations`).
    pub line_order_violations: u64,
    /// Post-sale joiners admitted while a pre-sale joiner still waited (must be 0).
    pub after_sale_before_lottery: u64,
}

const LOTTERY: &str = "WITH r AS (
    SELECT count(*) OVER () AS n,
           row_number() OVER (ORDER BY joined_at, id) AS j,
           row_number() OVER (ORDER BY admitted_at, sort_key, id) AS a
    FROM queue_tickets WHERE event_id = $1 AND status = 'admitted' AND joined_at < $2)
SELECT count(*), corr(j::float8, a::float8),
       (count(*) FILTER (WHERE j * 10 <= n AND a * 10 <= n))::float8
           / nullif(count(*) FILTER (WHERE j * 10 <= n), 0)
FROM r";

/// Peers (same join time, same line place) are not ordered against each other: the
/// frame is the groups strictly before the row's.
const FIFO: &str = "SELECT count(*), count(*) FILTER (WHERE before > admitted_at) FROM (
    SELECT admitted_at, max(admitted_at) OVER (ORDER BY joined_at
               GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM queue_tickets WHERE event_id = $1 AND status = 'admitted' AND joined_at >= $2) AS f";

/// The largest join-time gap between a ticket and the latest joiner let in in an
/// earlier batch than it.
const FIFO_INVERSION: &str =
    "SELECT coalesce(max(extract(epoch FROM passer - joined_at)::float8 * 1000), 0)
    FROM (SELECT joined_at, max(joined_at) OVER (ORDER BY admitted_at
                     GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS passer
          FROM queue_tickets WHERE event_id = $1 AND status = 'admitted' AND joined_at >= $2) AS p
    WHERE passer > joined_at";

const LINE_ORDER: &str =
    "SELECT count(*) FILTER (WHERE before > admitted_at OR sort_key > $2) FROM (
    SELECT admitted_at, sort_key, max(admitted_at) OVER (ORDER BY sort_key
               GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM queue_tickets WHERE event_id = $1 AND status = 'admitted') AS l";

const AFTER_SALE_FIRST: &str = "SELECT count(*) FROM queue_tickets q
    WHERE q.event_id = $1 AND q.status = 'admitted' AND q.joined_at >= $2
      AND (q.admitted_at < (SELECT max(admitted_at) FROM queue_tickets
                            WHERE event_id = $1 AND status = 'admitted' AND joined_at < $2)
           OR $3)";

pub async fn order(
    pool: &PgPool,
    event: Uuid,
    sale: DateTime<Utc>,
    closed: &ClosedLine,
) -> Result<OrderChecks, BenchError> {
    let (lottery_n, rho, tenth): (i64, Option<f64>, Option<f64>) = sqlx::query_as(LOTTERY)
        .bind(event)
        .bind(sale)
        .fetch_one(pool)
        .await?;
    let (fifo_n, fifo_bad): (i64, i64) = sqlx::query_as(FIFO)
        .bind(event)
        .bind(sale)
        .fetch_one(pool)
        .await?;
    let inversion_ms: f64 = sqlx::query_scalar(FIFO_INVERSION)
        .bind(event)
        .bind(sale)
        .fetch_one(pool)
        .await?;
    let line_bad: i64 = sqlx::query_scalar(LINE_ORDER)
        .bind(event)
        .bind(closed.front.unwrap_or(f64::INFINITY))
        .fetch_one(pool)
        .await?;
    let after_first: i64 = sqlx::query_scalar(AFTER_SALE_FIRST)
        .bind(event)
        .bind(sale)
        .bind(closed.waiting_presale > 0)
        .fetch_one(pool)
        .await?;
    Ok(OrderChecks {
        lottery_admitted: count(lottery_n),
        lottery_rank_correlation: rho.map(|r| round(r, 4)),
        lottery_first_tenth_share: tenth.map(|t| round(t, 4)),
        fifo_admitted: count(fifo_n),
        fifo_violations: count(fifo_bad),
        fifo_max_inversion_ms: Some(round(inversion_ms, 1)),
        line_order_violations: count(line_bad),
        after_sale_before_lottery: count(after_first),
    })
}

/// Hold decisions of the run's accepted requests, per second (or per `bucket` seconds)
/// of `decided_at` since the sale opened.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, sqlx::FromRow)]
pub struct DecidedIn {
    /// Start of the bucket, seconds since the sale opened.
    pub t: i32,
    pub decided: i64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Decisions by outcome (`held`, or the rejection reason).
pub type Outcomes = Vec<(String, i64)>;

const CREATE_ACCEPTED: &str =
    "CREATE TEMP TABLE bench_accepted (request_id uuid PRIMARY KEY) ON COMMIT DROP";
const INSERT_ACCEPTED: &str = "INSERT INTO bench_accepted SELECT DISTINCT unnest($1::uuid[])";
const DECIDED_IN: &str =
    "SELECT (floor(extract(epoch FROM r.decided_at - $1)::float8 / $2) * $2)::int AS t,
        count(*) AS decided,
        (percentile_disc(0.5) WITHIN GROUP (ORDER BY ms))::float8 AS p50_ms,
        (percentile_disc(0.99) WITHIN GROUP (ORDER BY ms))::float8 AS p99_ms,
        max(ms)::float8 AS max_ms
    FROM (SELECT r.decided_at, extract(epoch FROM r.decided_at - r.issued_at)::float8 * 1000 AS ms
          FROM bench_accepted a JOIN requests r ON r.request_id = a.request_id
          WHERE r.decided_at IS NOT NULL) AS r
    GROUP BY 1 ORDER BY 1";
const OUTCOMES: &str = "SELECT CASE WHEN r.status = 'held' THEN 'held'
            ELSE 'rejected: ' || coalesce(r.reason, '?') END, count(*)
    FROM bench_accepted a JOIN requests r ON r.request_id = a.request_id
    GROUP BY 1 ORDER BY 2 DESC";

/// Decisions per second, per `bucket` seconds, and by outcome.
pub async fn decided(
    pool: &PgPool,
    accepted: &[Uuid],
    sale: DateTime<Utc>,
    bucket: i32,
) -> Result<(Vec<DecidedIn>, Vec<DecidedIn>, Outcomes), BenchError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(CREATE_ACCEPTED).execute(&mut *tx).await?;
    sqlx::query(INSERT_ACCEPTED)
        .bind(accepted)
        .execute(&mut *tx)
        .await?;
    let per_second = sqlx::query_as(DECIDED_IN)
        .bind(sale)
        .bind(1.0f64)
        .fetch_all(&mut *tx)
        .await?;
    let per_bucket = sqlx::query_as(DECIDED_IN)
        .bind(sale)
        .bind(f64::from(bucket.max(1)))
        .fetch_all(&mut *tx)
        .await?;
    let outcomes = sqlx::query_as(OUTCOMES).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok((per_second, per_bucket, outcomes))
}

/// Holds of the event by a user who had not been admitted when the hold was made (the
/// gateway must refuse their requests: must be 0).
const HOLDS_WITHOUT_ADMISSION: &str = "SELECT count(*) FROM holds h WHERE h.event_id = $1
    AND NOT EXISTS (SELECT 1 FROM queue_tickets q WHERE q.event_id = $1 AND q.user_id = h.user_id
                    AND q.status = 'admitted' AND q.admitted_at <= h.created_at)";

pub async fn holds_without_admission(pool: &PgPool, event: Uuid) -> Result<u64, BenchError> {
    let n: i64 = sqlx::query_scalar(HOLDS_WITHOUT_ADMISSION)
        .bind(event)
        .fetch_one(pool)
        .await?;
    Ok(count(n))
}
