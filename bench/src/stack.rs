//! The running local stack that the pipeline scenarios drive (`deploy/local/up`).
//!
//! The bench talks to it the way its users and operators do: HTTP to the gateway,
//! SQL to read back decisions, the broker for log positions, and the
//! `deploy/local/service` script to stop, start and kill -9 its services — so a crash
//! here is the same crash an operator would cause, not a simulation inside the process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use seatq_common::config::Settings;
use seatq_common::topics::Topics;
use sqlx::PgPool;

use crate::error::BenchError;

const WATERMARK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Consumer,
    Broker,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Consumer => "consumer",
            Service::Broker => "broker",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL.
    Kill9,
    /// Start from the existing release build and wait until it is up.
    Start,
    /// SIGTERM: let it finish what it is doing.
    Stop,
}

impl Action {
    fn arg(self) -> &'static str {
        match self {
            Action::Kill9 => "kill9",
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }
}

/// Configuration and connections of the local stack.
#[derive(Clone)]
pub struct Stack {
    pub settings: Settings,
    pub topics: Topics,
    /// Base URL of the gateway, without a trailing slash.
    pub gateway: String,
    pub pool: PgPool,
    root: PathBuf,
    /// Only asks the broker for log positions (never joins its group).
    positions: Arc<BaseConsumer>,
}

impl Stack {
    /// Load the stack's configuration (`SEATQ_CONFIG`, else `deploy/local/seatq.toml`,
    /// then `SEATQ_*` variables: the same layers the services use) and connect.
    pub async fn connect(root: &Path, gateway: Option<String>) -> Result<Self, BenchError> {
        let settings = Self::settings(root)?;
        let pool = seatq_common::db::connect(&settings.database).await?;
        let positions: BaseConsumer =
            seatq_common::kafka::consumer_config(&settings.kafka, "seatq-bench-positions")
                .create()?;
        let gateway = gateway
            .unwrap_or_else(|| settings.gateway.public_url.clone())
            .trim_end_matches('/')
            .to_string();
        Ok(Self {
            topics: Topics::new(&settings.kafka.topic_prefix),
            settings,
            gateway,
            pool,
            root: root.to_path_buf(),
            positions: Arc::new(positions),
        })
    }

    /// The stack's configuration (`SEATQ_CONFIG`, else `deploy/local/seatq.toml` under
    /// `root`, then `SEATQ_*` variables: the same layers the services use).
    pub fn settings(root: &Path) -> Result<Settings, BenchError> {
        let file = std::env::var("SEATQ_CONFIG").unwrap_or_else(|_| {
            root.join("deploy/local/seatq.toml")
                .to_string_lossy()
                .into_owned()
        });
        Settings::load_with(Some(&file), &[])
            .map_err(|e| BenchError::Stack(format!("loading {file}: {e}")))
    }

    /// The repository the stack runs from (its `.dev/` and `deploy/local/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `deploy/local/service ACTION SERVICE`, waiting for it to finish.
    pub async fn service(&self, action: Action, service: Service) -> Result<(), BenchError> {
        let script = self.root.join("deploy/local/service");
        let failed = |detail: String| BenchError::Service {
            action: action.arg(),
            service: service.name(),
            detail,
        };
        let out = tokio::process::Command::new(&script)
            .args([action.arg(), service.name()])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| failed(format!("running {}: {e}", script.display())))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failed(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The end of the commands topic's log on `partition` (the offset the next record
    /// will get).
    pub async fn log_end(&self, partition: i32) -> Result<i64, BenchError> {
        let positions = Arc::clone(&self.positions);
        let topic = self.topics.commands.clone();
        let (_low, high) = tokio::task::spawn_blocking(move || {
            positions.fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
        })
        .await??;
        Ok(high)
    }

    /// The next offset the consumer will apply on `partition` (0 before its first batch).
    pub async fn applied(&self, partition: i32) -> Result<i64, BenchError> {
        Ok(
            seatq_common::db::next_offset(&self.pool, &self.topics.commands, partition)
                .await?
                .unwrap_or(0),
        )
    }
}
