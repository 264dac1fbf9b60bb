//! What the gateway's integration tests share: the real gateway (and, where a test needs
//! decisions, the consumer) spawned in this process, each stopped when its handle drops,
//! so a failing assertion cannot leave a server running into the next test.

use std::net::SocketAddr;

use seatq_common::config::Settings;
use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::{free_port, Api, Reply};
use serde_json::{json, Value};

/// The gateway on `settings.gateway.listen` (a random port in tests), until dropped.
pub struct TestGateway {
    pub api: Api,
    pub addr: SocketAddr,
    stop: Shutdown,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn gateway(settings: &Settings) -> TestGateway {
    let stop = Shutdown::new();
    let (addr, _) = seatq_gateway::app::spawn(settings.clone(), stop.clone())
        .await
        .expect("gateway starts");
    TestGateway {
        api: Api::new(addr),
        addr,
        stop,
    }
}

/// The consumer, in this process, until dropped.
pub struct TestConsumer(Shutdown);

impl Drop for TestConsumer {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub fn consumer(settings: &Settings) -> TestConsumer {
    let stop = Shutdown::new();
    let (settings, token) = (settings.clone(), stop.clone());
    tokio::spawn(async move {
        if let Err(e) = seatq_consumer::run(settings, token).await {
            panic!("consumer failed: {e}");
        }
    });
    TestConsumer(stop)
}

/// `settings` with the gateway on a port chosen now that also serves the sandbox payment
/// provider, whose API and webhooks point back at it: a checkout reaches a real provider.
pub fn with_sandbox(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    let base = format!("http://127.0.0.1:{}", free_port());
    settings.gateway.listen = base.trim_start_matches("http://").to_owned();
    settings.payments.sandbox_enabled = true;
    settings.payments.sandbox_webhook_url = format!("{base}/v1/payments/webhook");
    settings.payments.provider_url = base;
    settings
}

/// The sections most tests sell: a reserved block of 3 rows of 10 and a standing floor of 50.
pub fn sections() -> Value {
    json!([
        {"kind": "reserved", "code": "A", "name": "A", "rows": 3, "seats_per_row": 10, "price_cents": 5000},
        {"kind": "general_admission", "code": "FLOOR", "name": "Floor", "capacity": 50, "price_cents": 2500}
    ])
}

/// `reply` is a problem+json with this status and stable code.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.0.as_u16(), status, "{}", reply.1);
    assert_eq!(reply.1["code"], code, "{}", reply.1);
    assert_eq!(reply.1["status"], status, "{}", reply.1);
    assert!(reply.1["detail"].is_string(), "{}", reply.1);
}
