//! Redis connection: a multiplexed, auto-reconnecting manager shared by all handlers.

use redis::aio::ConnectionManager;

use crate::config::RedisSettings;

pub async fn connect(settings: &RedisSettings) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(settings.url.as_str())?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(std::time::Duration::from_secs(2))
        .set_response_timeout(std::time::Duration::from_secs(2))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, config).await
}
