//! The fence: each partition's applied offset, stored in `consumer_offsets` and moved in
//! the same transaction as the decisions it covers.
//!
//! Locking the row first serialises every writer of a partition (two consumers briefly
//! sharing it during a rebalance included), and comparing it with the offset the worker
//! expects tells a batch whether someone else already applied it. Kafka's own committed
//! offsets are only a hint for where to start reading; this row is the truth.

use sqlx::{Postgres, Transaction};

const INSERT_OFFSET_IF_MISSING: &str =
    "INSERT INTO consumer_offsets (topic, kafka_partition, next_offset, owner) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const LOCK_OFFSET: &str = "SELECT next_offset FROM consumer_offsets \
     WHERE topic = $1 AND kafka_partition = $2 FOR UPDATE";
const UPDATE_OFFSET: &str =
    "UPDATE consumer_offsets SET next_offset = $3, owner = $4, updated_at = now() \
     WHERE topic = $1 AND kafka_partition = $2";

/// Lock `partition`'s stored offset (creating it at `expected` the first time); `Some(stored)`
/// if it is not `expected`: another consumer moved it, and nothing may be written.
pub async fn fence(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    partition: i32,
    expected: i64,
    owner: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(INSERT_OFFSET_IF_MISSING)
        .bind(topic)
        .bind(partition)
        .bind(expected)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    let stored: i64 = sqlx::query_scalar(LOCK_OFFSET)
        .bind(topic)
        .bind(partition)
        .fetch_one(&mut **tx)
        .await?;
    Ok((stored != expected).then_some(stored))
}

/// Move `partition`'s offset past the batch (the row is locked by `fence`).
pub async fn advance(
    tx: &mut Transaction<'static, Postgres>,
    topic: &str,
    partition: i32,
    next_offset: i64,
    owner: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(UPDATE_OFFSET)
        .bind(topic)
        .bind(partition)
        .bind(next_offset)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
