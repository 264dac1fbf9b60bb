//! Tracing setup: pretty logs for people, JSON for pipelines. Spans carry `request_id`,
//! `event_id`, `partition` and `offset`, so one request can be followed from the gateway
//! through Kafka to the consumer.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogSettings;

/// Install the global subscriber. `RUST_LOG` overrides the configured filter.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr: stdout stays clean for command output (e.g. `seed-demo`).
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests embedding several services) keeps the first.
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
