//! The errors a benchmark step can fail with.
//!
//! One enum for the whole crate keeps the scenario code free of `anyhow` (which is for
//! `main` only) while still saying which backend failed.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("private redis-server on port {port} did not accept connections within {waited:?}")]
    RedisStart { port: u16, waited: Duration },
    #[error("Redis stayed unreachable for {0:?}")]
    RedisUnreachable(Duration),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("gateway answered {status} to {what}: {body}")]
    Gateway {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("the broker stayed unavailable (503) for {0:?}")]
    BrokerUnavailable(Duration),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("JWT: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("`deploy/local/service {action} {service}` failed: {detail}")]
    Service {
        action: &'static str,
        service: &'static str,
        detail: String,
    },
    #[error("{0}")]
    Stack(String),
    #[error("results file {}: {source}", path.display())]
    ResultsJson {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl BenchError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            what: what.into(),
            source,
        }
    }
}
