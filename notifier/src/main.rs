//! `seatq-notifier`: serve seat updates and user notifications until SIGINT/SIGTERM.

use anyhow::Context;
use seatq_common::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load().context("loading configuration")?;
    seatq_common::secrets::check(&settings, seatq_common::secrets::Service::Notifier)?;
    seatq_common::telemetry::init(&settings.log);
    let shutdown = seatq_common::shutdown::on_signal();
    seatq_notifier::run(settings, shutdown).await
}
