//! The invariants of a pipeline run, checked in SQL on the run's own event.
//!
//! - `oversold`: seats in more than one live (active or sold) hold, seats the `seats`
//!   table marks taken without a live hold listing them, and seats of a live hold that
//!   the `seats` table does not give to that hold.
//! - `double_held`: seats granted by more than one `held` decision in `requests` (what
//!   users were told, whatever became of the holds since).
//! - `fifo_violations`: contested seats whose winner was not the earliest request for
//!   them in Kafka order. Kafka order is (`kafka_partition`, `kafka_offset`,
//!   `kafka_seq`) — the seq orders commands packed into one record. Strict, checkable form: seat S won by request W is a violation if
//!   a request R before W in that order named S explicitly and was rejected
//!   `seats_unavailable` listing S among the unavailable seats (`requests.detail`). With
//!   no seat ever released during a run, S can only have been unavailable to R if it was
//!   already someone's — so W, later, cannot rightly have it. Rejections for other
//!   reasons (another seat of a multi-seat request taken, the per-user limit,
//!   best-available finding too few seats) do not make R a contender for S.
//!   `contested_seats` counts the seats at least one request was refused as unavailable.
//!
//! All queries are scoped to the event and, for `requests` (which has no event index),
//! to the event's partition from the log end taken before the run.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::BenchError;

const OVERSOLD: &str = "SELECT count(*) FROM (
    SELECT x.seat_no FROM holds h CROSS JOIN unnest(h.seat_nos) AS x(seat_no)
    WHERE h.event_id = $1 AND h.status IN ('active', 'sold')
    GROUP BY x.seat_no HAVING count(*) > 1
    UNION
    SELECT s.seat_no FROM seats s
    LEFT JOIN holds h ON h.id = s.hold_id AND h.status IN ('active', 'sold')
        AND s.seat_no = ANY (h.seat_nos)
    WHERE s.event_id = $1 AND s.status <> 'available' AND h.id IS NULL
    UNION
    SELECT x.seat_no FROM holds h CROSS JOIN unnest(h.seat_nos) AS x(seat_no)
    LEFT JOIN seats s ON s.event_id = h.event_id AND s.seat_no = x.seat_no
        AND s.hold_id = h.id AND s.status <> 'available'
    WHERE h.event_id = $1 AND h.status IN ('active', 'sold') AND s.seat_no IS NULL
) AS bad";

const DOUBLE_HELD: &str = "SELECT count(*) FROM (
    SELECT x.seat_no FROM holds h
    JOIN requests r ON r.request_id = h.request_id AND r.hold_id = h.id AND r.status = 'held'
    CROSS JOIN unnest(h.seat_nos) AS x(seat_no)
    WHERE h.event_id = $1
    GROUP BY x.seat_no HAVING count(*) > 1
) AS twice";

/// Linear on purpose: each seat's first refusal (in Kafka order) against its winner, one
/// hash join on seat_no, instead of every refusal against every win.
const FIFO: &str = "WITH r AS MATERIALIZED (
    SELECT status, reason, detail, hold_id, kafka_offset AS o, kafka_seq AS q FROM requests
    WHERE kafka_partition = $2 AND kafka_offset >= $3 AND event_id = $1
), label AS MATERIALIZED (
    SELECT s.seat_no, c.code || '-' || s.row_no || '-' || s.seat_number AS label
    FROM seats s JOIN sections c ON c.id = s.section_id WHERE s.event_id = $1
), won AS MATERIALIZED (
    SELECT x.seat_no, r.o, r.q FROM r JOIN holds h ON h.id = r.hold_id
    CROSS JOIN unnest(h.seat_nos) AS x(seat_no) WHERE r.status = 'held'
), first_refusal AS MATERIALIZED (
    SELECT DISTINCT ON (label.seat_no) label.seat_no, r.o, r.q FROM r
    CROSS JOIN jsonb_array_elements_text(r.detail -> 'unavailable') AS u(label)
    JOIN label ON label.label = u.label
    WHERE r.status = 'rejected' AND r.reason = 'seats_unavailable'
    ORDER BY label.seat_no, r.o, r.q
)
SELECT (SELECT count(*) FROM first_refusal),
       (SELECT count(DISTINCT won.seat_no) FROM won JOIN first_refusal f
            ON f.seat_no = won.seat_no AND (f.o, f.q) < (won.o, won.q))";

const ANALYZE_RUN_TABLES: &str = "ANALYZE seats, requests, holds";

const SEATS_TAKEN: &str =
    "SELECT count(*) FROM seats WHERE event_id = $1 AND status <> 'available'";

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Invariants {
    /// Seats held or sold at the end (not an invariant: context for the others).
    pub seats_taken: u64,
    pub oversold: u64,
    /// Accepted requests with no decision (filled in from the decision lookup).
    pub undecided: u64,
    pub double_held: u64,
    pub fifo_violations: u64,
    pub contested_seats: u64,
}

/// A SQL count as the unsigned number it is.
pub fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// Seats of `event` in more than one live hold, or where the `seats` table and the live
/// holds disagree (see the module docs); holds ending and seats changing hands during a
/// run do not matter to it, so the lifecycle scenario checks the same.
pub async fn oversold(pool: &PgPool, event: Uuid) -> Result<u64, BenchError> {
    let n: i64 = sqlx::query_scalar(OVERSOLD)
        .bind(event)
        .fetch_one(pool)
        .await?;
    Ok(count(n))
}

/// Check the event; `from_offset` is the log end of its partition before the run.
pub async fn check(
    pool: &PgPool,
    event: Uuid,
    partition: i32,
    from_offset: i64,
    undecided: u64,
) -> Result<Invariants, BenchError> {
    let oversold = oversold(pool, event).await?;
    let taken: i64 = sqlx::query_scalar(SEATS_TAKEN)
        .bind(event)
        .fetch_one(pool)
        .await?;
    let double_held: i64 = sqlx::query_scalar(DOUBLE_HELD)
        .bind(event)
        .fetch_one(pool)
        .await?;
    // Statistics first: the run just wrote the event's 50,000 seats and 500,000 requests,
    // and with the statistics from before it the planner joins them by nested loop (an
    // hour-long FIFO check instead of seconds).
    sqlx::query(ANALYZE_RUN_TABLES).execute(pool).await?;
    let (contested, violations): (i64, i64) = sqlx::query_as(FIFO)
        .bind(event)
        .bind(partition)
        .bind(from_offset)
        .fetch_one(pool)
        .await?;
    Ok(Invariants {
        seats_taken: count(taken),
        oversold,
        undecided,
        double_held: count(double_held),
        fifo_violations: count(violations),
        contested_seats: count(contested),
    })
}
