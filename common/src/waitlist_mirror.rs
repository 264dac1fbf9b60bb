//! The Redis mirror of the seats' waitlists: a list `waitlist:{event}:{seat}` of user ids,
//! first in line first.
//!
//! PostgreSQL (`waitlist_entries`) is the truth: joins, leaves and hand-offs are decided
//! by the consumer in its batch transaction, so a waitlist can never lose someone or hand a
//! seat to the wrong person, whatever happens to Redis. Redis serves what is read often
//! during an on-sale (a user's position, a queue's length) without touching PostgreSQL.
//! A list is rebuilt from PostgreSQL after every commit that changed it (the outbox relay),
//! when it is missing at read time, and by the scheduler's sweeper, so a flushed or
//! restarted Redis heals itself.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sqlx::PgPool;

use crate::ids::{EventId, UserId};

const WAITING_USERS: &str = "SELECT user_id FROM waitlist_entries \
     WHERE event_id = $1 AND seat_no = $2 AND status = 'waiting' ORDER BY id";
const SEATS_WITH_WAITERS: &str =
    "SELECT DISTINCT event_id, seat_no FROM waitlist_entries WHERE status = 'waiting'";

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub fn key(event_id: EventId, seat_no: i32) -> String {
    format!("waitlist:{event_id}:{seat_no}")
}

/// Replace the seat's list with what PostgreSQL says, atomically (MULTI/EXEC).
pub async fn rebuild(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    event_id: EventId,
    seat_no: i32,
) -> Result<Vec<String>, MirrorError> {
    let users: Vec<String> = sqlx::query_scalar(WAITING_USERS)
        .bind(event_id)
        .bind(seat_no)
        .fetch_all(pool)
        .await?;
    let key = key(event_id, seat_no);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&key).ignore();
    if !users.is_empty() {
        pipe.rpush(&key, &users).ignore();
    }
    pipe.query_async::<()>(redis).await?;
    Ok(users)
}

/// The user's 1-based position on the seat's waitlist and the list's length, from Redis;
/// a missing list is rebuilt first.
pub async fn position(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    event_id: EventId,
    seat_no: i32,
    user: &UserId,
) -> Result<(Option<i64>, i64), MirrorError> {
    let key = key(event_id, seat_no);
    let exists: bool = redis.exists(&key).await?;
    if !exists {
        let users = rebuild(pool, redis, event_id, seat_no).await?;
        let at = users
            .iter()
            .position(|u| *u == user.0)
            .map(|i| i as i64 + 1);
        return Ok((at, users.len() as i64));
    }
    // Place and length in one transaction: a rebuild (DEL + RPUSH, atomic) between two
    // separate reads gave a place with a length of 0.
    let (at, len): (Option<i64>, i64) = redis::pipe()
        .atomic()
        .cmd("LPOS")
        .arg(&key)
        .arg(&user.0)
        .llen(&key)
        .query_async(redis)
        .await?;
    Ok((at.map(|i| i + 1), len))
}

/// Rebuild every list that has someone waiting, and drop lists nobody waits on any more.
/// Returns how many lists were rebuilt.
pub async fn reconcile_all(
    pool: &PgPool,
    redis: &mut ConnectionManager,
) -> Result<usize, MirrorError> {
    let seats: Vec<(EventId, i32)> = sqlx::query_as(SEATS_WITH_WAITERS).fetch_all(pool).await?;
    let wanted: std::collections::HashSet<String> =
        seats.iter().map(|(e, s)| key(*e, *s)).collect();
    let mut stale = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("waitlist:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await?;
        stale.extend(keys.into_iter().filter(|k| !wanted.contains(k)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !stale.is_empty() {
        redis.del::<_, ()>(&stale).await?;
    }
    for (event_id, seat_no) in &seats {
        rebuild(pool, redis, *event_id, *seat_no).await?;
    }
    Ok(seats.len())
}
