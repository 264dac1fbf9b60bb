//! `seatq-scheduler`: runs the hold-timer scheduler, the sweeper and the refund worker
//! until SIGINT/SIGTERM.

use anyhow::Context;
use seatq_common::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load().context("loading configuration")?;
    seatq_common::secrets::check(&settings, seatq_common::secrets::Service::Scheduler)?;
    seatq_common::telemetry::init(&settings.log);
    let shutdown = seatq_common::shutdown::on_signal();
    seatq_scheduler::run(settings, shutdown).await?;
    Ok(())
}
