//! The whole stack for lifecycle tests: gateway (with the sandbox payment provider), consumer
//! and scheduler on an isolated environment, and the steps a buyer takes (hold, wait, pay,
//! join a waitlist), each through the public HTTP API.
//!
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seatq_common::config::Settings;
use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::{eventually, free_port, Api, Reply, TestEnv};
use serde_json::{json, Value};
use sqlx::PgPool;

/// The sandbox provider's API key (the default configuration's).
pub const PROVIDER_KEY: &str = "sandbox-api-key";
/// Seats per row of the test venue's section A.
pub const PER_ROW: i32 = 10;

pub struct Stack {
    pub env: TestEnv,
    pub api: Api,
    gateway: Shutdown,
    consumer: Shutdown,
    consumer_task: Option<tokio::task::JoinHandle<()>>,
    scheduler: Option<Shutdown>,
}

/// Where the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerMode {
    InProcess,
    /// Not started: the test runs a child process, or parts of the scheduler itself.
    None,
}

impl Stack {
    /// The stack with its scheduler, after `tune` adjusted the settings.
    pub async fn start(tune: impl FnOnce(&mut Settings)) -> Self {
        Self::start_with(SchedulerMode::InProcess, tune).await
    }

    pub async fn start_with(mode: SchedulerMode, tune: impl FnOnce(&mut Settings)) -> Self {
        let mut env = TestEnv::new(2).await;
        let base = format!("http://127.0.0.1:{}", free_port());
        {
            let s = &mut env.settings;
            s.gateway.listen = base.trim_start_matches("http://").to_owned();
            s.gateway.public_url = base.clone();
            s.gateway.min_hold_ttl_secs = 1;
            s.payments.sandbox_enabled = true;
            s.payments.provider_url = base.clone();
            s.payments.sandbox_webhook_url = format!("{base}/v1/payments/webhook");
            s.scheduler.group_id = format!("{}-scheduler", s.kafka.topic_prefix);
            s.scheduler.heartbeat_ms = 200;
            s.scheduler.refund_interval_ms = 200;
            s.scheduler.reminder_secs = 1;
            // Timers do the expiring; the sweeper only if a test asks for it.
            s.scheduler.sweep_interval_ms = 500;
            s.scheduler.sweep_grace_secs = 3600;
        }
        tune(&mut env.settings);
        let gateway = Shutdown::new();
        let (addr, _) = seatq_gateway::app::spawn(env.settings.clone(), gateway.clone())
            .await
            .expect("gateway starts");
        assert_eq!(format!("http://{addr}"), base);
        let consumer = Shutdown::new();
        let consumer_task = Some(spawn_consumer(&env.settings, &consumer));
        let scheduler = (mode == SchedulerMode::InProcess).then(|| start_scheduler(&env.settings));
        Self {
            api: Api::new(addr),
            env,
            gateway,
            consumer,
            consumer_task,
            scheduler,
        }
    }

    /// Stop the consumer and wait until it has let its partitions go: commands queue up.
    pub async fn pause_consumer(&mut self) {
        self.consumer.cancel();
        if let Some(task) = self.consumer_task.take() {
            task.await.expect("the consumer stops cleanly");
        }
    }

    /// Start a consumer again after [`Stack::pause_consumer`].
    pub fn resume_consumer(&mut self) {
        assert!(self.consumer_task.is_none(), "the consumer is running");
        self.consumer = Shutdown::new();
        self.consumer_task = Some(spawn_consumer(&self.env.settings, &self.consumer));
    }

    pub fn pool(&self) -> &PgPool {
        &self.env.pool
    }

    /// A user id unique to this test (Redis is shared by every test).
    pub fn user(&self, name: &str) -> String {
        format!("{}-{name}", self.env.database)
    }

    pub async fn token(&self, name: &str) -> String {
        self.api.token(&self.user(name), "user").await
    }

    pub async fn admin_token(&self) -> String {
        self.api.token(&self.user("admin"), "admin").await
    }

    /// An event at a venue with section A (2 rows of [`PER_ROW`] seats, 50.00 each) and a
    /// standing FLOOR of 20 places; `extra` sets event fields (e.g. `hold_ttl_secs`).
    pub async fn event(&self, extra: Value) -> String {
        self.api
            .create_event(
                json!([
                    {"kind": "reserved", "code": "A", "name": "Section A", "rows": 2,
                     "seats_per_row": PER_ROW, "price_cents": 5000},
                    {"kind": "general_admission", "code": "FLOOR", "name": "Floor",
                     "capacity": 20, "price_cents": 2500}
                ]),
                extra,
            )
            .await
    }

    /// Hold `seats` and wait for the decision; panics unless held. Returns the hold.
    pub async fn hold(&self, token: &str, event: &str, seats: &[&str]) -> Value {
        let (status, reply) = self.request_hold(token, event, seats).await;
        // 200: decided within the wait; 202: accepted, still pending.
        assert!(status == 200 || status == 202, "{status}: {reply}");
        let decision = if reply["status"] == "pending" {
            let id = reply["request_id"].as_str().expect("request id");
            self.api.decision(token, id, Duration::from_secs(30)).await
        } else {
            reply
        };
        assert_eq!(decision["status"], "held", "{decision}");
        let hold = decision["hold_id"].as_str().expect("hold id");
        self.hold_view(token, hold).await
    }

    /// POST a hold request with an inline wait (200 decided, 202 pending).
    pub async fn request_hold(&self, token: &str, event: &str, seats: &[&str]) -> Reply {
        self.api
            .hold(
                token,
                event,
                &json!({"seat_ids": seats}),
                "?wait_ms=5000",
                &[],
            )
            .await
    }

    pub async fn hold_view(&self, token: &str, hold: &str) -> Value {
        let (status, view) = self
            .api
            .get(&format!("/v1/holds/{hold}"), Some(token))
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Wait until the hold satisfies `done` (e.g. its status changed).
    pub async fn wait_hold(
        &self,
        token: &str,
        hold: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, timeout, || async {
            let view = self.hold_view(token, hold).await;
            done(&view).then_some(view)
        })
        .await
    }

    pub async fn cancel_hold(&self, token: &str, hold: &str) -> Reply {
        self.api
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/holds/{hold}"),
                Some(token),
                None,
            )
            .await
    }

    /// Wait for the hold to be sold; its booking as the owner sees it.
    pub async fn booking_of(&self, token: &str, hold: &str) -> Value {
        let sold = self
            .wait_hold(
                token,
                hold,
                "the hold to be sold",
                Duration::from_secs(30),
                |h| h["status"] == "sold",
            )
            .await;
        let booking = sold["booking_id"].as_str().expect("booking id");
        let (status, view) = self
            .api
            .get(&format!("/v1/bookings/{booking}"), Some(token))
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Start paying for a hold: the checkout (payment id, payment URL, amount).
    pub async fn checkout(&self, token: &str, hold: &str) -> Value {
        let (status, checkout) = self
            .api
            .post(
                &format!("/v1/holds/{hold}/checkout"),
                Some(token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{checkout}");
        checkout
    }

    /// Finish the checkout at the provider, the way the buyer's click on the payment page
    /// does, with the sandbox's knobs (`duplicates`, `delay_ms`).
    pub async fn pay(&self, checkout: &Value, outcome: &str, extra: Value) -> Value {
        let url = checkout["payment_url"].as_str().expect("payment url");
        let session = url.rsplit('/').next().expect("session id");
        let mut body = json!({"outcome": outcome});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, completed) = self
            .api
            .post(
                &format!("/sandbox/v1/sessions/{session}/complete"),
                Some(PROVIDER_KEY),
                &body,
            )
            .await;
        // 202: completed; the webhooks are on their way.
        assert_eq!(status, 202, "{completed}");
        completed
    }

    /// A payment that arrives after its hold was given up: hold `seat`, check out, cancel
    /// the hold, then pay (with the sandbox's knobs in `extra`). The consumer refunds it.
    /// Returns the checkout.
    pub async fn pay_after_release(
        &self,
        token: &str,
        event: &str,
        seat: &str,
        extra: Value,
    ) -> Value {
        let hold = self.hold(token, event, &[seat]).await;
        let hold = hold["hold_id"].as_str().expect("hold id").to_owned();
        let checkout = self.checkout(token, &hold).await;
        let (status, cancelled) = self.cancel_hold(token, &hold).await;
        // 200: cancelled; 202: not decided yet, but ahead of the payment on the partition.
        assert!(status == 200 || status == 202, "{status}: {cancelled}");
        self.pay(&checkout, "succeed", extra).await;
        checkout
    }

    /// The provider's view of a payment (captured and refunded amounts).
    pub async fn provider_payment(&self, payment_id: &str) -> Value {
        let (status, view) = self
            .api
            .get(
                &format!("/sandbox/v1/payments/{payment_id}"),
                Some(PROVIDER_KEY),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    pub async fn waitlist(
        &self,
        method: reqwest::Method,
        token: &str,
        event: &str,
        seat: &str,
    ) -> Reply {
        self.api
            .send(
                method,
                &format!("/v1/events/{event}/seats/{seat}/waitlist"),
                Some(token),
                None,
            )
            .await
    }

    /// Wait until the user's waitlist entry for the seat became an offer; its hold id.
    pub async fn wait_offer(&self, token: &str, event: &str, seat: &str) -> String {
        eventually(
            &format!("an offer of {seat}"),
            Duration::from_secs(30),
            || async {
                let (status, place) = self
                    .waitlist(reqwest::Method::GET, token, event, seat)
                    .await;
                (status == 200 && place["status"] == "offered")
                    .then(|| place["hold_id"].as_str().expect("hold id").to_owned())
            },
        )
        .await
    }

    /// The seat's status and the user holding it.
    pub async fn seat(&self, event: &str, seat: &str) -> (String, Option<String>) {
        sqlx::query_as(
            "SELECT s.status, h.user_id FROM seats s LEFT JOIN holds h ON h.id = s.hold_id \
             WHERE s.event_id = $1::uuid AND s.seat_no = $2",
        )
        .bind(event)
        .bind(seat_no(seat))
        .fetch_one(self.pool())
        .await
        .expect("seat")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.gateway.cancel();
        self.consumer.cancel();
        if let Some(s) = &self.scheduler {
            s.cancel();
        }
    }
}

fn spawn_consumer(settings: &Settings, stop: &Shutdown) -> tokio::task::JoinHandle<()> {
    let (settings, stop) = (settings.clone(), stop.clone());
    tokio::spawn(async move {
        if let Err(e) = seatq_consumer::run(settings, stop).await {
            panic!("consumer failed: {e}");
        }
    })
}

pub fn start_scheduler(settings: &Settings) -> Shutdown {
    let stop = Shutdown::new();
    let (settings, token) = (settings.clone(), stop.clone());
    tokio::spawn(async move {
        if let Err(e) = seatq_scheduler::run(settings, token).await {
            panic!("scheduler failed: {e}");
        }
    });
    stop
}

/// The sum of every series of a metric this process exports (services run in the test's
/// process share its recorder); `name` may include labels: `x_total{field="amount"}`.
pub fn metric(name: &str) -> f64 {
    seatq_common::metrics::render()
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `A-{row}-{seat}` of section A → seat number (section A's seats are numbered from 0).
pub fn seat_no(label: &str) -> i32 {
    let mut parts = label
        .split('-')
        .skip(1)
        .map(|p| p.parse::<i32>().expect("seat label"));
    let (row, seat) = (parts.next().expect("row"), parts.next().expect("seat"));
    (row - 1) * PER_ROW + seat - 1
}

/// The scheduler binary in a child process on the test's settings, SIGKILLed when dropped.
pub struct SchedulerProcess(Child);

impl SchedulerProcess {
    /// The workspace's `seatq-scheduler` binary (`cargo build --workspace --all-targets`).
    pub fn spawn(env: &TestEnv) -> Self {
        let binary = seatq_common::testkit::cluster::workspace_binary("seatq-scheduler");
        let s = &env.settings;
        let extra = [
            ("SEATQ_SCHEDULER__GROUP_ID", s.scheduler.group_id.clone()),
            (
                "SEATQ_SCHEDULER__HEARTBEAT_MS",
                s.scheduler.heartbeat_ms.to_string(),
            ),
            (
                "SEATQ_KAFKA__SESSION_TIMEOUT_MS",
                s.kafka.session_timeout_ms.to_string(),
            ),
            (
                "SEATQ_SCHEDULER__TIMERS_FETCH_WAIT_MS",
                s.scheduler.timers_fetch_wait_ms.to_string(),
            ),
            (
                "SEATQ_SCHEDULER__REMINDER_SECS",
                s.scheduler.reminder_secs.to_string(),
            ),
            (
                "SEATQ_SCHEDULER__SWEEP_INTERVAL_MS",
                s.scheduler.sweep_interval_ms.to_string(),
            ),
            (
                "SEATQ_SCHEDULER__SWEEP_GRACE_SECS",
                s.scheduler.sweep_grace_secs.to_string(),
            ),
            (
                "SEATQ_PAYMENTS__PROVIDER_URL",
                s.payments.provider_url.clone(),
            ),
        ];
        let child = Command::new(binary)
            .envs(env.child_env())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scheduler process");
        Self(child)
    }

    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
