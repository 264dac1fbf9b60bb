//! `seatq-gateway [serve|seed-demo|openapi]`
//!
//! - `serve` (default): run the HTTP API.
//! - `seed-demo`: create the demo venues and events (idempotent), print their ids as JSON.
//! - `openapi`: print the OpenAPI document.

use anyhow::Context;
use seatq_common::config::Settings;
use seatq_common::topics::Topics;
use seatq_gateway::{app, demo, openapi, state::AppState};

/// Under load glibc's allocator took about a quarter of the gateway's CPU (many small,
/// short-lived allocations moving between tokio's worker threads); mimalloc's per-thread
/// heaps make them cheap. Measured in bench/results/README.md ("Fair fight, item 5").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if command == "openapi" {
        print!("{}", openapi::json());
        return Ok(());
    }
    let settings = Settings::load().context("loading configuration")?;
    seatq_common::telemetry::init(&settings.log);
    match command.as_str() {
        "serve" => serve(settings).await,
        "seed-demo" => seed_demo(settings).await,
        other => anyhow::bail!("unknown command {other:?}; use serve, seed-demo or openapi"),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    seatq_common::secrets::check(&settings, seatq_common::secrets::Service::Gateway)?;
    let shutdown = seatq_common::shutdown::on_signal();
    let topics = Topics::new(&settings.kafka.topic_prefix);
    if let Err(e) = seatq_common::kafka::ensure_topics(
        &settings.kafka,
        &topics.all(),
        settings.kafka.partitions,
    )
    .await
    {
        tracing::warn!(error = %e, "cannot ensure topics; hold requests will fail until the broker is back");
    }
    let (_addr, server) = app::spawn(settings, shutdown)
        .await
        .context("starting the gateway")?;
    server.await??;
    Ok(())
}

async fn seed_demo(settings: Settings) -> anyhow::Result<()> {
    let shutdown = seatq_common::shutdown::Shutdown::new();
    let state = AppState::connect(settings, shutdown.clone())
        .await
        .context("connecting to dependencies")?;
    let events = demo::seed(&state.pool, state.event_limits())
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.detail))?;
    shutdown.cancel();
    println!("{}", serde_json::to_string(&events)?);
    Ok(())
}
