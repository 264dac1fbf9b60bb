//! The invariants every test checks at the end, counted in SQL: each count is a kind of
//! violation and must be zero.
//!
//! They read the database as the consumer left it, so they hold for any mix of hold
//! requests, expiries, cancels, waitlist offers, payments and booking cancellations.

use sqlx::PgPool;

/// Everything the invariants forbid, counted; all zero on a correct run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Violations {
    /// Seats held/sold whose hold does not exist, is not live, or does not list them.
    pub orphan_seats: i64,
    /// Active holds not holding every one of their seats.
    pub broken_holds: i64,
    /// sold + held + available != capacity, per event (reserved + GA).
    pub capacity_mismatch: i64,
    /// GA counters that disagree with the GA holds (held = active, sold = sold).
    pub ga_mismatch: i64,
    /// Held decisions without exactly one hold, or holds (other than waitlist offers)
    /// without the decision that made them (`held`; `applied` for holdbacks).
    pub decision_mismatch: i64,
    /// Waitlist offers of seats their original hold still has: it is active, or sold and
    /// still lists them (a booking cancelled in part gives back only some of its seats,
    /// and its hold stays sold with the rest), or it ended after the offer was made.
    pub offers_from_live_holds: i64,
    /// Sold holds without exactly one confirmed-or-cancelled booking, or bookings of holds
    /// that are not sold (a cancelled booking's hold is cancelled).
    pub booking_mismatch: i64,
    /// Holds with more than one captured payment that was not refunded or pending refund.
    pub captured_twice: i64,
    /// Whole refunds of the payment that bought a confirmed booking, or bookings refunded
    /// more than they cost (a booking cancelled in parts has one refund per part).
    pub refunded_sales: i64,
    /// Confirmed bookings whose valid tickets are not what their hold still holds.
    pub ticket_mismatch: i64,
    /// Holds (other than holdbacks) made before the event's sale opened, or, at an event
    /// with a waiting room, for a user it never let in.
    pub sale_gate_breaches: i64,
}

const ORPHAN_SEATS: &str = "SELECT count(*) FROM seats s LEFT JOIN holds h ON h.id = s.hold_id \
     WHERE s.status <> 'available' AND (h.id IS NULL OR NOT (s.seat_no = ANY (h.seat_nos)) \
       OR (s.status = 'held' AND h.status <> 'active') OR (s.status = 'sold' AND h.status <> 'sold'))";
const BROKEN_HOLDS: &str = "SELECT count(*) FROM holds h \
     WHERE h.status IN ('active', 'sold') AND h.ga_section_id IS NULL \
     AND (SELECT count(*) FROM seats s WHERE s.event_id = h.event_id AND s.seat_no = ANY (h.seat_nos) \
          AND s.hold_id = h.id AND s.status = CASE h.status WHEN 'active' THEN 'held' ELSE 'sold' END) \
         <> h.quantity";
const CAPACITY_MISMATCH: &str = "SELECT count(*) FROM events e WHERE \
     (SELECT count(*) FROM seats s WHERE s.event_id = e.id) + \
     (SELECT coalesce(sum(capacity), 0) FROM ga_inventory g WHERE g.event_id = e.id) <> \
     (SELECT coalesce(sum(capacity), 0) FROM sections x WHERE x.venue_id = e.venue_id)";
const GA_MISMATCH: &str = "SELECT count(*) FROM ga_inventory g WHERE \
     g.held <> (SELECT coalesce(sum(quantity), 0) FROM holds h WHERE h.event_id = g.event_id \
                AND h.ga_section_id = g.section_id AND h.status = 'active') \
     OR g.sold <> (SELECT coalesce(sum(quantity), 0) FROM holds h WHERE h.event_id = g.event_id \
                AND h.ga_section_id = g.section_id AND h.status = 'sold') \
     OR g.held + g.sold > g.capacity";
const DECISION_MISMATCH: &str = "SELECT \
     (SELECT count(*) FROM requests r WHERE r.status = 'held' AND NOT EXISTS \
       (SELECT 1 FROM holds h WHERE h.id = r.hold_id AND h.request_id = r.request_id)) + \
     (SELECT count(*) FROM holds h WHERE h.offered_from IS NULL AND NOT EXISTS \
       (SELECT 1 FROM requests r WHERE r.hold_id = h.id AND r.request_id = h.request_id \
          AND r.status = CASE WHEN h.user_id = 'system:holdback' THEN 'applied' ELSE 'held' END))";
const OFFERS_FROM_LIVE_HOLDS: &str =
    "SELECT count(*) FROM holds o JOIN holds h ON h.id = o.offered_from \
     WHERE h.status = 'active' OR (h.status = 'sold' AND h.seat_nos && o.seat_nos) \
       OR h.ended_at > o.created_at";
const BOOKING_MISMATCH: &str = "SELECT \
     (SELECT count(*) FROM holds h WHERE h.status = 'sold' AND \
       (SELECT count(*) FROM bookings b WHERE b.hold_id = h.id AND b.status = 'confirmed') <> 1) + \
     (SELECT count(*) FROM bookings b JOIN holds h ON h.id = b.hold_id WHERE \
       (b.status = 'confirmed' AND h.status <> 'sold') OR (b.status = 'cancelled' AND h.status <> 'cancelled'))";
const CAPTURED_TWICE: &str = "SELECT count(*) FROM (SELECT p.hold_id FROM payments p \
     WHERE p.status = 'paid' AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id) \
     GROUP BY p.hold_id HAVING count(*) > 1) twice";
const REFUNDED_SALES: &str = "SELECT \
     (SELECT count(*) FROM bookings b JOIN refunds r ON r.payment_id = b.payment_id \
       WHERE b.status = 'confirmed' AND r.reason <> 'booking_cancelled') + \
     (SELECT count(*) FROM bookings b WHERE b.amount_cents < \
       (SELECT coalesce(sum(r.amount_cents), 0) FROM refunds r WHERE r.payment_id = b.payment_id))";
const TICKET_MISMATCH: &str = "SELECT count(*) FROM bookings b JOIN holds h ON h.id = b.hold_id \
     WHERE b.status = 'confirmed' AND h.quantity <> \
       (SELECT count(*) FROM tickets t WHERE t.booking_id = b.id AND t.status = 'valid')";
const SALE_GATE_BREACHES: &str = "SELECT count(*) FROM holds h JOIN events e ON e.id = h.event_id \
     WHERE h.user_id <> 'system:holdback' AND (h.created_at < e.on_sale_at \
       OR (e.waiting_room_enabled AND NOT EXISTS (SELECT 1 FROM queue_tickets q \
             WHERE q.event_id = h.event_id AND q.user_id = h.user_id AND q.status = 'admitted')))";

pub async fn violations(pool: &PgPool) -> Violations {
    let q = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    Violations {
        orphan_seats: q(ORPHAN_SEATS).await,
        broken_holds: q(BROKEN_HOLDS).await,
        capacity_mismatch: q(CAPACITY_MISMATCH).await,
        ga_mismatch: q(GA_MISMATCH).await,
        decision_mismatch: q(DECISION_MISMATCH).await,
        offers_from_live_holds: q(OFFERS_FROM_LIVE_HOLDS).await,
        booking_mismatch: q(BOOKING_MISMATCH).await,
        captured_twice: q(CAPTURED_TWICE).await,
        refunded_sales: q(REFUNDED_SALES).await,
        ticket_mismatch: q(TICKET_MISMATCH).await,
        sale_gate_breaches: q(SALE_GATE_BREACHES).await,
    }
}

/// Active holds more than `grace_secs` past their expiry: a hold that never ended.
pub async fn overdue_holds(pool: &PgPool, grace_secs: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM holds WHERE status = 'active' \
         AND expires_at < now() - make_interval(secs => $1)",
    )
    .bind(grace_secs as f64)
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("overdue holds: {e}"))
}

/// Payments the provider captured (sandbox sessions) that have neither a booking nor a
/// refund: money taken for nothing. Meaningful once webhooks and decisions have settled.
pub async fn unsettled_payments(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM sandbox_sessions s WHERE s.captured_cents > 0 \
         AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.payment_id = s.payment_id) \
         AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = s.payment_id)",
    )
    .await
}

/// Refunds decided but not yet paid back by the provider.
pub async fn pending_refunds(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM refunds WHERE status <> 'issued'",
    )
    .await
}

/// Provider sessions that paid back more than they captured, or whose refunds disagree
/// with seatq's issued refunds for the payment.
pub async fn refund_mismatches(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM sandbox_sessions s \
         LEFT JOIN (SELECT session_id, sum(amount_cents) AS paid_back FROM sandbox_refunds \
                    GROUP BY session_id) x ON x.session_id = s.id \
         LEFT JOIN (SELECT payment_id, sum(amount_cents) AS issued FROM refunds \
                    WHERE status = 'issued' GROUP BY payment_id) r ON r.payment_id = s.payment_id \
         WHERE coalesce(x.paid_back, 0) > s.captured_cents \
            OR coalesce(x.paid_back, 0) <> coalesce(r.issued, 0)",
    )
    .await
}

/// Holds still active (held or offered, not expired, cancelled or sold).
pub async fn active_holds(pool: &PgPool) -> i64 {
    count(pool, "SELECT count(*) FROM holds WHERE status = 'active'").await
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Seats whose Redis waitlist mirror (`waitlist:{event}:{seat}`) differs from the line in
/// PostgreSQL, plus mirror lists of seats nobody waits for in PostgreSQL.
pub async fn waitlist_mirror_mismatches(
    pool: &PgPool,
    redis: &mut redis::aio::ConnectionManager,
) -> i64 {
    use std::collections::BTreeMap;
    let rows: Vec<(uuid::Uuid, i32, String)> = sqlx::query_as(
        "SELECT event_id, seat_no, user_id FROM waitlist_entries WHERE status = 'waiting' \
         ORDER BY event_id, seat_no, id",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("waitlist entries: {e}"));
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (event, seat, user) in rows {
        lines
            .entry(format!("waitlist:{event}:{seat}"))
            .or_default()
            .push(user);
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("waitlist:*")
        .query_async(redis)
        .await
        .unwrap_or_else(|e| panic!("redis KEYS: {e}"));
    let mut mismatches = keys.iter().filter(|k| !lines.contains_key(*k)).count() as i64;
    for (key, users) in &lines {
        let mirror: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(redis)
            .await
            .unwrap_or_else(|e| panic!("redis LRANGE {key}: {e}"));
        if &mirror != users {
            mismatches += 1;
        }
    }
    mismatches
}
