//! The Redis side of waiting rooms: each event's waiting line as a sorted set
//! `wr:{event}` of ticket ids scored by admission order, so a position is one `ZRANK`
//! however long the line is.
//!
//! PostgreSQL (`queue_tickets`) is the truth: the scheduler admits from it and the set is
//! only a fast copy. A set that lost a ticket (Redis restarted, flushed, failed over) is
//! rebuilt from PostgreSQL — on a read that misses a waiting ticket, and by the scheduler
//! when the set's size disagrees with the table.

use hmac::Mac;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::ids::EventId;

const WAITING: &str = "SELECT id, sort_key FROM queue_tickets \
     WHERE event_id = $1 AND status = 'waiting'";
const COUNT_WAITING: &str = "SELECT count(*) FROM queue_tickets \
     WHERE event_id = $1 AND status = 'waiting'";
const IS_WAITING: &str = "SELECT EXISTS (SELECT 1 FROM queue_tickets \
     WHERE id = $1 AND status = 'waiting')";

/// Members added per ZADD while rebuilding.
const CHUNK: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum WaitingRoomError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub fn key(event_id: EventId) -> String {
    format!("wr:{event_id}")
}

/// The lottery that orders everyone who joined before the sale opened, built so anyone
/// can check it afterwards (docs/lottery.md):
/// - the event's **seed** is a keyed hash of the event id under the deployment's secret,
///   fixed from the event's creation; its SHA-256, the **commitment**, is public from the
///   start, so the seed cannot be chosen after seeing who joined;
/// - each entrant is known by a **tag**, SHA-256 of `"{event_id}:{user_id}"` (hex):
///   their own to compute, nobody else's to read;
/// - an entrant's **draw** is the first 53 bits of HMAC-SHA256(seed, tag) over 2^53, a
///   number in [0, 1): the line is the entrants by draw, lowest first. A user cannot
///   re-roll it by joining again (same tag), and without the seed nobody can predict it.
///
/// Once the draw closes (the sale opens) the seed and the list of tags are published:
/// hashing the seed gives the commitment, and the draws give every entrant's place.
pub fn lottery_seed(secret: &[u8], event_id: EventId) -> [u8; 32] {
    crate::signing::keyed(secret, &[b"seatq-lottery-seed:", event_id.0.as_bytes()])
        .finalize()
        .into_bytes()
        .into()
}

/// The public commitment to an event's seed: SHA-256 of it, hex.
pub fn lottery_commitment(seed: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(seed))
}

/// The published form of a seed and of an entrant list's fingerprint: hex(SHA-256) of
/// the list exactly as served (sorted tags, each followed by a newline).
pub fn seed_hex(seed: &[u8; 32]) -> String {
    hex::encode(seed)
}

pub fn entrants_fingerprint(list: &str) -> String {
    hex::encode(Sha256::digest(list.as_bytes()))
}

/// An entrant's public pseudonym: SHA-256 of `"{event_id}:{user_id}"`, hex.
pub fn entrant_tag(event_id: EventId, user: &str) -> String {
    hex::encode(Sha256::digest(format!("{}:{user}", event_id.0).as_bytes()))
}

/// An entrant's draw in [0, 1): HMAC-SHA256(seed, tag), its first 53 bits over 2^53 (every
/// value exact in an f64).
pub fn lottery_draw(seed: &[u8; 32], tag: &str) -> f64 {
    let bytes = crate::signing::keyed(seed, &[tag.as_bytes()])
        .finalize()
        .into_bytes();
    let mut top = [0u8; 8];
    top.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(top) >> 11) as f64 / (1u64 << 53) as f64
}

/// The draw of `user` for the event's lottery (seed, tag and draw above).
pub fn lottery_key(secret: &[u8], event_id: EventId, user: &str) -> f64 {
    lottery_draw(
        &lottery_seed(secret, event_id),
        &entrant_tag(event_id, user),
    )
}

pub async fn add(
    redis: &mut ConnectionManager,
    event_id: EventId,
    ticket: Uuid,
    sort_key: f64,
) -> Result<(), WaitingRoomError> {
    redis::cmd("ZADD")
        .arg(key(event_id))
        .arg("NX")
        .arg(sort_key)
        .arg(ticket.to_string())
        .query_async::<()>(redis)
        .await?;
    Ok(())
}

pub async fn remove(
    redis: &mut ConnectionManager,
    event_id: EventId,
    tickets: &[Uuid],
) -> Result<(), WaitingRoomError> {
    if tickets.is_empty() {
        return Ok(());
    }
    let members: Vec<String> = tickets.iter().map(Uuid::to_string).collect();
    redis.zrem::<_, _, ()>(key(event_id), members).await?;
    Ok(())
}

/// Replace the event's set with the waiting tickets in PostgreSQL. Built under a temporary
/// key and renamed into place, so readers never see a half-built line.
pub async fn rebuild(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    event_id: EventId,
) -> Result<usize, WaitingRoomError> {
    let rows: Vec<(Uuid, f64)> = sqlx::query_as(WAITING)
        .bind(event_id)
        .fetch_all(pool)
        .await?;
    let target = key(event_id);
    if rows.is_empty() {
        redis.del::<_, ()>(&target).await?;
        return Ok(0);
    }
    let scratch = format!("{target}:rebuild:{}", Uuid::new_v4().simple());
    for chunk in rows.chunks(CHUNK) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&scratch);
        for (ticket, score) in chunk {
            zadd.arg(*score).arg(ticket.to_string());
        }
        zadd.query_async::<()>(redis).await?;
    }
    redis.rename::<_, _, ()>(&scratch, &target).await?;
    tracing::info!(%event_id, tickets = rows.len(), "waiting line rebuilt from PostgreSQL");
    Ok(rows.len())
}

/// Rebuild the set if its size disagrees with PostgreSQL; true if it did.
pub async fn reconcile(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    event_id: EventId,
) -> Result<bool, WaitingRoomError> {
    let waiting: i64 = sqlx::query_scalar(COUNT_WAITING)
        .bind(event_id)
        .fetch_one(pool)
        .await?;
    let cached: i64 = redis.zcard(key(event_id)).await?;
    if cached == waiting {
        return Ok(false);
    }
    rebuild(pool, redis, event_id).await?;
    Ok(true)
}

/// A waiting ticket's 1-based position and the line's length; None when it is not waiting.
pub async fn position(
    pool: &PgPool,
    redis: &mut ConnectionManager,
    event_id: EventId,
    ticket: Uuid,
) -> Result<Option<(i64, i64)>, WaitingRoomError> {
    let line = key(event_id);
    let member = ticket.to_string();
    let mut rank: Option<i64> = redis.zrank(&line, &member).await?;
    if rank.is_none() {
        let waiting: bool = sqlx::query_scalar(IS_WAITING)
            .bind(ticket)
            .fetch_one(pool)
            .await?;
        if !waiting {
            return Ok(None);
        }
        // Redis lost it: one reader rebuilds the line (the others wait on the lock's TTL).
        let lock = format!("{line}:rebuilding");
        let won: bool = redis::cmd("SET")
            .arg(&lock)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(10)
            .query_async::<Option<String>>(redis)
            .await?
            .is_some();
        if won {
            rebuild(pool, redis, event_id).await?;
            redis.del::<_, ()>(&lock).await?;
        }
        rank = redis.zrank(&line, &member).await?;
    }
    let length: i64 = redis.zcard(&line).await?;
    Ok(rank.map(|r| (r + 1, length.max(r + 1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lottery_keys_are_stable_uniform_and_below_one() {
        let event = EventId::new();
        let users: Vec<String> = (0..10_000).map(|i| format!("user{i}")).collect();
        let keys: Vec<f64> = users.iter().map(|u| lottery_key(b"s", event, u)).collect();
        assert!(keys.iter().all(|k| (0.0..1.0).contains(k)));
        assert_eq!(lottery_key(b"s", event, &users[0]), keys[0]);
        assert_ne!(lottery_key(b"other", event, &users[0]), keys[0]);
        assert_ne!(lottery_key(b"s", EventId::new(), &users[0]), keys[0]);
        let mean = keys.iter().sum::<f64>() / keys.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let below_tenth = keys.iter().filter(|k| **k < 0.1).count();
        assert!(
            (800..1200).contains(&below_tenth),
            "{below_tenth} below 0.1"
        );
    }
}
