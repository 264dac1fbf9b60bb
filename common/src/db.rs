//! PostgreSQL: the pool every service uses and the embedded migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::DatabaseSettings;

/// The migrations under `migrations/`, compiled into every binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = settings
        .url
        .parse::<PgConnectOptions>()?
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Apply pending migrations (idempotent; sqlx takes an advisory lock so concurrent
/// services starting together do not race).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// LISTEN/NOTIFY channel on which the consumer announces, at commit, the request ids
/// whose senders wait for their decision (comma-separated).
pub const DECISIONS_CHANNEL: &str = "seatq_decisions";

const SELECT_NEXT_OFFSET: &str =
    "SELECT next_offset FROM consumer_offsets WHERE topic = $1 AND kafka_partition = $2";

/// The next offset the consumer will apply on `partition` of `topic` (everything before
/// it is applied); None before the partition's first batch.
pub async fn next_offset<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(SELECT_NEXT_OFFSET)
        .bind(topic)
        .bind(partition)
        .fetch_optional(executor)
        .await
}
