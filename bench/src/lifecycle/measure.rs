//! What the lifecycle scenario reads back from PostgreSQL: when it is over, how long each
//! hand-off took, and whether the invariants held.
//!
//! The numbers come from the database, not from the client. A waiting user is not
//! connected when their seat is released, and a booking is made by a webhook the bench
//! never sees. The database holds the pipeline's own timestamps: `ended_at` of the old
//! hold, `created_at` of the offer and the booking (the consumer batch's clock), and
//! `received_at` of the webhook (the gateway's transaction).
//!
//! Every query is scoped to the scenario's event. `requests` has no event index, so it
//! is read through the event's partition from the log end taken before the run, like
//! the flash-sale invariants do.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::BenchError;
use crate::pipeline::invariants::{self, count};
use crate::pipeline::Event;
use crate::results::{CommandLatency, Latency, LifecycleCounts, LifecycleInvariants};
use crate::runner;

const POLL: Duration = Duration::from_millis(500);

/// Holds of the scenario (not offers): ended / still active; payments still open; paid
/// payments with neither a booking nor a refund yet.
const PROGRESS: &str = "SELECT
    (SELECT count(*) FROM holds WHERE event_id = $1 AND offered_from IS NULL AND status <> 'active'),
    (SELECT count(*) FROM holds WHERE event_id = $1 AND offered_from IS NULL AND status = 'active'),
    (SELECT count(*) FROM payments WHERE event_id = $1 AND status IN ('pending', 'processing')),
    (SELECT count(*) FROM payments p WHERE p.event_id = $1 AND p.status = 'paid'
        AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.payment_id = p.id)
        AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id))";
const LAST_EXPIRY: &str =
    "SELECT max(expires_at) FROM holds WHERE event_id = $1 AND offered_from IS NULL";

/// Wait until every hold of the scenario has ended and every payment has its outcome,
/// or until `grace` plus a margin after the last hold's expiry. Returns whether it
/// settled.
pub async fn wait_settled(pool: &PgPool, event: Uuid, grace: Duration) -> Result<bool, BenchError> {
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(LAST_EXPIRY)
        .bind(event)
        .fetch_one(pool)
        .await?;
    let left = last.map_or(Duration::ZERO, |at| {
        (at - Utc::now()).to_std().unwrap_or_default()
    });
    let deadline = Instant::now() + left + grace + Duration::from_secs(30);
    let mut bar = None;
    loop {
        let (ended, active, open, unbooked): (i64, i64, i64, i64) =
            sqlx::query_as(PROGRESS).bind(event).fetch_one(pool).await?;
        let bar = bar.get_or_insert_with(|| {
            runner::progress_bar("holds ended", (ended + active).max(0) as u64)
        });
        bar.set_position(ended.max(0) as u64);
        if active == 0 && open == 0 && unbooked == 0 {
            bar.finish();
            return Ok(true);
        }
        if Instant::now() > deadline {
            bar.suspend(|| {
                eprintln!(
                    "  lifecycle: gave up waiting: {active} holds active, {open} payments open, {unbooked} paid without booking or refund"
                )
            });
            bar.finish();
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `count`, median, 99th percentile and maximum of the `ms` column of `rows`.
fn summary(rows: &str) -> String {
    format!(
        "SELECT count(ms), percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms)
         FROM ({rows}) AS x"
    )
}

const RELEASE_TO_OFFER: &str =
    "SELECT (extract(epoch FROM o.created_at - h.ended_at) * 1000)::float8 AS ms
    FROM holds o JOIN holds h ON h.id = o.offered_from WHERE o.event_id = $1";
const DUE_TO_OFFER: &str =
    "SELECT (extract(epoch FROM o.created_at - h.expires_at) * 1000)::float8 AS ms
    FROM holds o JOIN holds h ON h.id = o.offered_from WHERE o.event_id = $1";
const EXPIRY_LATENESS: &str =
    "SELECT (extract(epoch FROM ended_at - expires_at) * 1000)::float8 AS ms
    FROM holds WHERE event_id = $1 AND status = 'expired'";
/// From the first `payment.succeeded` delivery that was received (duplicates carry the
/// same provider event id and are not recorded again) to the booking.
const PAYMENT_TO_BOOKING: &str = "SELECT (extract(epoch FROM b.created_at - min(w.received_at)) * 1000)::float8 AS ms
    FROM bookings b JOIN webhook_events w ON w.payment_id = b.payment_id AND w.kind = 'payment.succeeded'
    WHERE b.event_id = $1 GROUP BY b.id, b.created_at";
const COMMANDS: &str = "SELECT kind, count(ms), percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ms), max(ms)
    FROM (SELECT kind, (extract(epoch FROM decided_at - issued_at) * 1000)::float8 AS ms FROM requests
          WHERE kafka_partition = $2 AND kafka_offset >= $3 AND event_id = $1) AS r
    GROUP BY kind ORDER BY kind";
const COUNTS: &str = "SELECT
    (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed') AS bookings,
    (SELECT count(*) FROM tickets WHERE event_id = $1) AS tickets,
    (SELECT count(*) FROM holds WHERE event_id = $1 AND status = 'expired') AS expired,
    (SELECT count(*) FROM refunds WHERE event_id = $1) AS refunds,
    (SELECT count(*) FROM holds WHERE event_id = $1 AND offered_from IS NOT NULL) AS offers,
    (SELECT coalesce(sum(cardinality(seat_nos)), 0)::bigint FROM holds
        WHERE event_id = $1 AND offered_from IS NOT NULL) AS offered_seats,
    (SELECT count(*) FROM waitlist_entries WHERE event_id = $1 AND status = 'skipped') AS skipped";

type QuantileRow = (i64, Option<Vec<f64>>, Option<f64>);
type KindRow = (String, i64, Option<Vec<f64>>, Option<f64>);

async fn latency(pool: &PgPool, event: Uuid, rows: &str) -> Result<Latency, BenchError> {
    let (count, quantiles, max): QuantileRow = sqlx::query_as(&summary(rows))
        .bind(event)
        .fetch_one(pool)
        .await?;
    Ok(Latency::from_sql(count, quantiles.as_deref(), max))
}

/// The scenario's timings, read from the pipeline's own timestamps.
#[derive(Debug, Clone)]
pub struct Timings {
    pub release_to_offer: Latency,
    pub due_to_offer: Latency,
    pub expiry_lateness: Latency,
    pub payment_to_booking: Latency,
    pub commands: Vec<CommandLatency>,
}

pub async fn timings(pool: &PgPool, event: &Event) -> Result<Timings, BenchError> {
    let rows: Vec<KindRow> = sqlx::query_as(COMMANDS)
        .bind(event.id)
        .bind(event.partition)
        .bind(event.from_offset)
        .fetch_all(pool)
        .await?;
    Ok(Timings {
        release_to_offer: latency(pool, event.id, RELEASE_TO_OFFER).await?,
        due_to_offer: latency(pool, event.id, DUE_TO_OFFER).await?,
        expiry_lateness: latency(pool, event.id, EXPIRY_LATENESS).await?,
        payment_to_booking: latency(pool, event.id, PAYMENT_TO_BOOKING).await?,
        commands: rows
            .into_iter()
            .map(|(kind, count, q, max)| CommandLatency {
                kind,
                latency: Latency::from_sql(count, q.as_deref(), max),
            })
            .collect(),
    })
}

pub async fn counts(pool: &PgPool, event: Uuid) -> Result<LifecycleCounts, BenchError> {
    Ok(sqlx::query_as(COUNTS).bind(event).fetch_one(pool).await?)
}

/// Seats taken by a hold that is not live in the matching way: `held` needs an active
/// hold listing the seat, `sold` a sold one.
const NON_LIVE_HOLDER: &str = "SELECT count(*) FROM seats s LEFT JOIN holds h ON h.id = s.hold_id
    WHERE s.event_id = $1 AND s.status <> 'available'
      AND (h.id IS NULL OR NOT (s.seat_no = ANY (h.seat_nos))
           OR h.status <> CASE s.status WHEN 'held' THEN 'active' ELSE 'sold' END)";
const CAPACITY: &str = "SELECT
    count(*) FILTER (WHERE status = 'sold') AS sold, count(*) FILTER (WHERE status = 'held') AS held,
    count(*) FILTER (WHERE status = 'available') AS available,
    (SELECT coalesce(sum(c.capacity), 0)::bigint FROM sections c JOIN events e ON e.venue_id = c.venue_id
        WHERE e.id = $1 AND c.kind = 'reserved') AS capacity,
    (SELECT coalesce(sum(cardinality(seat_nos)), 0)::bigint FROM holds
        WHERE event_id = $1 AND status = 'sold') AS sold_in_holds,
    (SELECT coalesce(sum(cardinality(seat_nos)), 0)::bigint FROM holds
        WHERE event_id = $1 AND status = 'active') AS held_in_holds
    FROM seats WHERE event_id = $1";

/// The seats of the event by status, its capacity, and the seats of its sold and active
/// holds.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct SeatCounts {
    pub sold: i64,
    pub held: i64,
    pub available: i64,
    pub capacity: i64,
    pub sold_in_holds: i64,
    pub held_in_holds: i64,
}

impl SeatCounts {
    /// How far the counts are from adding up: `sold + held + available` against the
    /// capacity, and the seats table's sold / held against the seats of sold / active
    /// holds.
    pub fn mismatch(&self) -> u64 {
        (self.sold + self.held + self.available - self.capacity).unsigned_abs()
            + (self.sold - self.sold_in_holds).unsigned_abs()
            + (self.held - self.held_in_holds).unsigned_abs()
    }
}
/// Holds that are sold or have a kept (paid, not refunded) payment must have exactly one
/// confirmed booking; other holds none. A paid payment ends in a booking or a refund,
/// exactly one of them.
const PAID_NOT_ONE_BOOKING: &str = "WITH h AS MATERIALIZED (
    SELECT h.status,
        (SELECT count(*) FROM bookings b WHERE b.hold_id = h.id AND b.status = 'confirmed') AS bookings,
        EXISTS (SELECT 1 FROM payments p WHERE p.hold_id = h.id AND p.status = 'paid'
                AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id)) AS kept
    FROM holds h WHERE h.event_id = $1
)
SELECT (SELECT count(*) FROM h WHERE (status = 'sold' OR kept) AND bookings <> 1)
     + (SELECT count(*) FROM h WHERE status <> 'sold' AND bookings > 0)
     + (SELECT count(*) FROM payments p WHERE p.event_id = $1 AND p.status = 'paid'
          AND EXISTS (SELECT 1 FROM bookings b WHERE b.payment_id = p.id AND b.status = 'confirmed')
            = EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id))";
const TICKET_MISMATCHES: &str = "SELECT count(*) FROM bookings b JOIN holds h ON h.id = b.hold_id
    WHERE b.event_id = $1
      AND (SELECT count(*) FROM tickets t WHERE t.booking_id = b.id) <> h.quantity";
const OVERDUE: &str = "SELECT
    count(*) FILTER (WHERE status = 'active' AND expires_at < now() - make_interval(secs => $2)),
    count(*) FILTER (WHERE status = 'expired' AND ended_at > expires_at + make_interval(secs => $2))
    FROM holds WHERE event_id = $1";
/// An offer is wrong if its hold is not the entry's user's hold of that seat, made from
/// a released hold; or if an earlier entry for the seat was waiting at the hand-off
/// (joined by then, not ended before it) and was either left waiting (still waiting, or
/// ended later) or skipped although it was under the per-user limit then. Seats a user
/// had at time t are those of their holds created by t and sold, or not ended by t.
const OFFERS_NOT_FIRST: &str = "WITH offer AS MATERIALIZED (
    SELECT e.id, e.seat_no, e.user_id, o.created_at AS t, o.user_id AS offered_to,
           o.seat_nos, o.offered_from, h.user_id AS released_by
    FROM waitlist_entries e
    JOIN holds o ON o.id = e.offered_hold_id
    LEFT JOIN holds h ON h.id = o.offered_from
    WHERE e.event_id = $1 AND e.status = 'offered'
), passed AS MATERIALIZED (
    SELECT DISTINCT f.id FROM offer f
    JOIN waitlist_entries a ON a.event_id = $1 AND a.seat_no = f.seat_no AND a.id < f.id
    WHERE a.joined_at <= f.t AND (a.ended_at IS NULL OR a.ended_at >= f.t)
      AND (a.ended_at IS NULL OR a.ended_at > f.t
           OR (a.status = 'skipped' AND a.user_id IS DISTINCT FROM f.released_by
               AND (SELECT coalesce(sum(x.quantity), 0) FROM holds x
                    WHERE x.event_id = $1 AND x.user_id = a.user_id AND x.created_at <= f.t
                      AND (x.status = 'sold' OR x.ended_at IS NULL OR x.ended_at > f.t)) < $2))
)
SELECT (SELECT count(*) FROM offer
        WHERE offered_from IS NULL OR offered_to <> user_id OR NOT (seat_no = ANY (seat_nos)))
     + (SELECT count(*) FROM passed)";
/// A seat released (expired or cancelled hold) while someone else was waiting for it and
/// still waiting after the release, with no offer of that seat from that hold.
const OFFERS_MISSED: &str = "WITH released AS MATERIALIZED (
    SELECT h.id, h.user_id, h.ended_at AS t, s.seat_no
    FROM holds h CROSS JOIN unnest(h.seat_nos) AS s(seat_no)
    WHERE h.event_id = $1 AND h.status IN ('expired', 'cancelled')
), offered AS MATERIALIZED (
    SELECT o.offered_from, s.seat_no
    FROM holds o CROSS JOIN unnest(o.seat_nos) AS s(seat_no)
    WHERE o.event_id = $1 AND o.offered_from IS NOT NULL
)
SELECT count(DISTINCT (r.id, r.seat_no)) FROM released r
JOIN waitlist_entries a ON a.event_id = $1 AND a.seat_no = r.seat_no AND a.user_id <> r.user_id
    AND a.joined_at <= r.t AND (a.ended_at IS NULL OR a.ended_at > r.t)
LEFT JOIN offered o ON o.offered_from = r.id AND o.seat_no = r.seat_no
WHERE o.seat_no IS NULL";

async fn one(pool: &PgPool, sql: &str, event: Uuid) -> Result<u64, BenchError> {
    let x: i64 = sqlx::query_scalar(sql).bind(event).fetch_one(pool).await?;
    Ok(count(x))
}

/// Check the event's invariants; `grace_secs` is how late an expiry may be.
pub async fn invariants(
    pool: &PgPool,
    event: Uuid,
    max_seats_per_user: i32,
    grace_secs: i64,
) -> Result<LifecycleInvariants, BenchError> {
    let seats: SeatCounts = sqlx::query_as(CAPACITY).bind(event).fetch_one(pool).await?;
    let (overdue_active, ended_late): (i64, i64) = sqlx::query_as(OVERDUE)
        .bind(event)
        .bind(grace_secs as f64)
        .fetch_one(pool)
        .await?;
    let offers_not_first: i64 = sqlx::query_scalar(OFFERS_NOT_FIRST)
        .bind(event)
        .bind(max_seats_per_user)
        .fetch_one(pool)
        .await?;
    Ok(LifecycleInvariants {
        oversold: invariants::oversold(pool, event).await?,
        non_live_holder: one(pool, NON_LIVE_HOLDER, event).await?,
        capacity_mismatch: seats.mismatch(),
        sold_seats: count(seats.sold),
        held_seats: count(seats.held),
        available_seats: count(seats.available),
        capacity: count(seats.capacity),
        paid_not_one_booking: one(pool, PAID_NOT_ONE_BOOKING, event).await?,
        ticket_mismatches: one(pool, TICKET_MISMATCHES, event).await?,
        overdue_active: count(overdue_active),
        ended_late: count(ended_late),
        grace_secs,
        offers_not_first: count(offers_not_first),
        offers_missed: one(pool, OFFERS_MISSED, event).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats(
        [sold, held, available, capacity]: [i64; 4],
        [sold_in_holds, held_in_holds]: [i64; 2],
    ) -> SeatCounts {
        SeatCounts {
            sold,
            held,
            available,
            capacity,
            sold_in_holds,
            held_in_holds,
        }
    }

    #[test]
    fn capacity_adds_up_or_says_by_how_much_not() {
        assert_eq!(
            seats([1_200, 1_800, 0, 3_000], [1_200, 1_800]).mismatch(),
            0
        );
        // A seat missing from the table, and one sold seat the holds do not account for.
        assert_eq!(
            seats([1_200, 1_799, 0, 3_000], [1_199, 1_799]).mismatch(),
            2
        );
        assert_eq!(seats([0, 0, 3_001, 3_000], [0, 0]).mismatch(), 1);
    }
}
