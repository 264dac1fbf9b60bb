//! The sandbox payment provider behaves like a real one: idempotent sessions and refunds,
//! refunds that never exceed what was captured (even when sent concurrently), and signed
//! webhooks delivered at least once — duplicated on request and retried when the receiver
//! fails. Each test runs the sandbox router alone on its own fresh database (no broker or
//! Redis needed) and a small webhook receiver that checks every signature.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use seatq_common::config::Settings;
use seatq_common::payment_provider::{
    CreateSession, PaymentProvider, ProviderError, RefundRequest, WebhookEvent, WebhookKind,
};
use seatq_common::signing;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const POLL: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(10);

/// Poll `check` every 20 ms until it holds, for at most 10 s.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[derive(Default)]
struct Inbox {
    /// Every request, whatever we answered.
    attempts: usize,
    bad_signatures: usize,
    /// Accepted deliveries, in arrival order.
    events: Vec<(WebhookEvent, Instant)>,
}

/// The webhook endpoint: verifies the signature like seatq must, fails the first
/// `fail_next` deliveries with 500, and records the rest.
struct Receiver {
    secret: Vec<u8>,
    fail_next: AtomicUsize,
    inbox: Mutex<Inbox>,
}

impl Receiver {
    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("inbox lock")
    }

    /// Requests received, and how many of them had a bad signature.
    fn counts(&self) -> (usize, usize) {
        let inbox = self.inbox();
        (inbox.attempts, inbox.bad_signatures)
    }

    fn events(&self) -> Vec<WebhookEvent> {
        self.inbox().events.iter().map(|(e, _)| e.clone()).collect()
    }

    fn events_of(&self, payment_id: Uuid) -> Vec<WebhookEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.data.payment_id == payment_id)
            .collect()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = chrono::Utc::now().timestamp();
    let header = headers
        .get("payment-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut inbox = receiver.inbox();
    inbox.attempts += 1;
    if signing::verify(&receiver.secret, header, &body, now, 300).is_err() {
        inbox.bad_signatures += 1;
        return StatusCode::BAD_REQUEST;
    }
    let failing = receiver
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    match serde_json::from_slice::<WebhookEvent>(&body) {
        Ok(event) => {
            inbox.events.push((event, Instant::now()));
            StatusCode::OK
        }
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

struct Sandbox {
    base: String,
    settings: Settings,
    receiver: Arc<Receiver>,
    provider: PaymentProvider,
    http: reqwest::Client,
}

impl Sandbox {
    /// A fresh migrated database, the receiver, and the sandbox router pointed at both.
    async fn start() -> Self {
        let admin = seatq_common::testkit::admin_database_url();
        let database = format!("seatq_test_{}", &Uuid::new_v4().simple().to_string()[..16]);
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL (is it up? deploy/local/test)");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let (server, _) = admin.rsplit_once('/').expect("admin url has a database");
        let secret = "test-webhook-secret";
        let receiver = Arc::new(Receiver {
            secret: secret.as_bytes().to_vec(),
            fail_next: AtomicUsize::new(0),
            inbox: Mutex::new(Inbox::default()),
        });
        let receiver_url = serve(
            Router::new()
                .route("/webhook", post(receive))
                .with_state(receiver.clone()),
        )
        .await;
        // The sandbox's own address is only known once bound; the public URL only shapes
        // payment links, so a placeholder is enough here.
        let settings = Settings::load_with(
            None,
            &[
                ("database.url", format!("{server}/{database}")),
                ("database.max_connections", "20".into()),
                ("gateway.public_url", "http://tickets.example/".into()),
                ("payments.sandbox_enabled", "true".into()),
                ("payments.webhook_secret", secret.into()),
                (
                    "payments.sandbox_webhook_url",
                    format!("{receiver_url}/webhook"),
                ),
                ("log.filter", "warn".into()),
            ],
        )
        .expect("settings");
        let pool = seatq_common::db::connect(&settings.database)
            .await
            .expect("connect test database");
        seatq_common::db::migrate(&pool)
            .await
            .expect("migrate test database");
        let base = serve(seatq_gateway::sandbox::router(
            pool,
            Arc::new(settings.clone()),
        ))
        .await;
        let mut payments = settings.payments.clone();
        payments.provider_url = base.clone();
        Self {
            provider: PaymentProvider::new(&payments),
            base,
            settings,
            receiver,
            http: reqwest::Client::new(),
        }
    }

    fn api_key(&self) -> &str {
        &self.settings.payments.provider_api_key
    }

    async fn session(&self, amount_cents: i64) -> (Uuid, String) {
        let payment_id = Uuid::new_v4();
        let session = self
            .provider
            .create_session(&CreateSession {
                payment_id,
                amount_cents,
                currency: "EUR".into(),
                description: "2 seats, Test Night".into(),
                return_url: Some("http://tickets.example/#/holds/h1".into()),
            })
            .await
            .expect("create session");
        (payment_id, session.session_id)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.api_key());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn complete(&self, session_id: &str, body: Value) -> (u16, Value) {
        let path = format!("/sandbox/v1/sessions/{session_id}/complete");
        self.call(reqwest::Method::POST, &path, Some(body)).await
    }

    async fn payment(&self, payment_id: Uuid) -> Value {
        let path = format!("/sandbox/v1/payments/{payment_id}");
        let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A captured payment of `amount_cents`, its webhooks delivered.
    async fn captured(&self, amount_cents: i64) -> Uuid {
        let (payment_id, session_id) = self.session(amount_cents).await;
        let (status, body) = self
            .complete(&session_id, json!({"outcome": "succeed"}))
            .await;
        assert_eq!(status, 202, "{body}");
        wait_until("the outcome webhook", || {
            self.receiver
                .events_of(payment_id)
                .iter()
                .any(|e| e.kind == WebhookKind::Succeeded)
        })
        .await;
        payment_id
    }
}

fn assert_rejected(result: Result<impl std::fmt::Debug, ProviderError>, status: u16, code: &str) {
    match result {
        Err(ProviderError::Rejected { status: s, body }) => {
            assert_eq!(s, status, "{body}");
            let body: Value = serde_json::from_str(&body).expect("problem json");
            assert_eq!(body["code"], code, "{body}");
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_idempotent_by_payment_id() {
    let sandbox = Sandbox::start().await;
    let payment_id = Uuid::new_v4();
    let req = CreateSession {
        payment_id,
        amount_cents: 12_345,
        currency: "EUR".into(),
        description: "Row <A> & friends".into(),
        return_url: None,
    };
    let first = sandbox.provider.create_session(&req).await.expect("first");
    let again = sandbox.provider.create_session(&req).await.expect("again");
    assert_eq!(first, again);
    assert!(first.session_id.starts_with("cs_"));
    assert_eq!(
        first.payment_url,
        format!("http://tickets.example/sandbox/pay/{}", first.session_id)
    );
    let other = sandbox.session(100).await;
    assert_ne!(other.1, first.session_id);

    // The same payment id with another amount is a caller bug, not a new session.
    let changed = CreateSession {
        amount_cents: 1,
        ..req.clone()
    };
    assert_rejected(
        sandbox.provider.create_session(&changed).await,
        409,
        "idempotency_key_reused",
    );
    let bad = CreateSession {
        amount_cents: -1,
        payment_id: Uuid::new_v4(),
        ..req.clone()
    };
    assert_rejected(
        sandbox.provider.create_session(&bad).await,
        422,
        "invalid_amount",
    );

    let payment = sandbox.payment(payment_id).await;
    assert_eq!(payment["session_id"], first.session_id);
    assert_eq!(payment["status"], "open");
    assert_eq!(payment["amount_cents"], 12_345);
    assert_eq!(payment["captured_cents"], 0);
    assert_eq!(payment["refunded_cents"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_page_pays_once_and_links_back() {
    let sandbox = Sandbox::start().await;
    let (payment_id, session_id) = sandbox.session(123_456).await;
    let page_url = format!("{}/sandbox/pay/{session_id}", sandbox.base);

    let page = sandbox.http.get(&page_url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let html = page.text().await.expect("html");
    for needle in [
        "EUR 1,234.56",
        "2 seats, Test Night",
        "data-testid=\"pay-button\"",
        "data-testid=\"decline-button\"",
        "<label for=\"card\">",
        &format!("action=\"/sandbox/pay/{session_id}\""),
    ] {
        assert!(html.contains(needle), "{needle:?} missing from {html}");
    }

    let paid = sandbox
        .http
        .post(&page_url)
        .form(&[("card", "4242 4242 4242 4242"), ("outcome", "succeed")])
        .send()
        .await
        .expect("pay");
    assert_eq!(paid.status(), 200);
    let html = paid.text().await.expect("html");
    assert!(html.contains("Payment succeeded"), "{html}");
    assert!(
        html.contains("href=\"http://tickets.example/#/holds/h1\""),
        "the page links back to the return URL: {html}"
    );

    wait_until("processing and succeeded webhooks", || {
        sandbox.receiver.events_of(payment_id).len() == 2
    })
    .await;
    let kinds: Vec<_> = sandbox
        .receiver
        .events_of(payment_id)
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [WebhookKind::Processing, WebhookKind::Succeeded]);

    // Completed once: the page shows the result, a second submit and the API refuse.
    let again = sandbox
        .http
        .post(&page_url)
        .form(&[("outcome", "fail")])
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 409);
    assert!(again
        .text()
        .await
        .expect("html")
        .contains("Payment succeeded"));
    let (status, body) = sandbox
        .complete(&session_id, json!({"outcome": "fail"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "session_completed");
    let shown = sandbox.http.get(&page_url).send().await.expect("page");
    assert!(shown
        .text()
        .await
        .expect("html")
        .contains("already completed"));

    let missing = format!("{}/sandbox/pay/cs_nope", sandbox.base);
    let missing = sandbox.http.get(&missing).send().await.expect("missing");
    assert_eq!(missing.status(), 404);
    let payment = sandbox.payment(payment_id).await;
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["captured_cents"], 123_456);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_webhooks_share_one_event_id_and_are_all_signed() {
    let sandbox = Sandbox::start().await;
    let (payment_id, session_id) = sandbox.session(5000).await;
    let (status, body) = sandbox
        .complete(&session_id, json!({"outcome": "succeed", "duplicates": 5}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "succeeded");
    let event_id = body["event_id"].as_str().expect("event id").to_owned();

    wait_until("1 processing + 5 succeeded webhooks", || {
        sandbox.receiver.events_of(payment_id).len() == 6
    })
    .await;
    let events = sandbox.receiver.events_of(payment_id);
    assert_eq!(events[0].kind, WebhookKind::Processing);
    assert_ne!(events[0].id, event_id);
    let outcome: Vec<_> = events[1..].iter().collect();
    assert!(outcome.iter().all(|e| e.kind == WebhookKind::Succeeded));
    assert!(outcome.iter().all(|e| e.id == event_id), "{outcome:?}");
    assert!(event_id.starts_with("evt_"));
    for e in &events {
        assert_eq!(e.data.payment_id, payment_id);
        assert_eq!(e.data.session_id, session_id);
        assert_eq!(e.data.amount_cents, 5000);
    }
    let (attempts, bad_signatures) = sandbox.receiver.counts();
    assert_eq!(bad_signatures, 0);
    assert_eq!(attempts, 6, "every delivery accepted first time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_until_accepted() {
    let sandbox = Sandbox::start().await;
    sandbox.receiver.fail_next.store(2, Ordering::SeqCst);
    let (payment_id, session_id) = sandbox.session(700).await;
    let (status, body) = sandbox
        .complete(
            &session_id,
            json!({"outcome": "fail", "skip_processing": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "failed");

    wait_until("the failed webhook after two 500s", || {
        !sandbox.receiver.events_of(payment_id).is_empty()
    })
    .await;
    let events = sandbox.receiver.events_of(payment_id);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, WebhookKind::Failed);
    assert_eq!(events[0].id, body["event_id"]);
    let (attempts, bad_signatures) = sandbox.receiver.counts();
    assert_eq!(attempts, 3, "two refused attempts, then the delivery");
    assert_eq!(bad_signatures, 0);

    let payment = sandbox.payment(payment_id).await;
    assert_eq!(payment["status"], "failed");
    assert_eq!(payment["captured_cents"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_wait_for_the_requested_delay() {
    let sandbox = Sandbox::start().await;
    let (payment_id, session_id) = sandbox.session(900).await;
    let asked = Instant::now();
    let (status, body) = sandbox
        .complete(
            &session_id,
            json!({"outcome": "succeed", "delay_ms": 300, "skip_processing": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_until("the delayed webhook", || {
        !sandbox.receiver.events_of(payment_id).is_empty()
    })
    .await;
    let arrived = sandbox.receiver.inbox().events[0].1;
    assert!(arrived.duration_since(asked) >= Duration::from_millis(300));

    for (body, code) in [
        (
            json!({"outcome": "succeed", "delay_ms": 60_001}),
            "invalid_delay",
        ),
        (
            json!({"outcome": "succeed", "duplicates": 0}),
            "invalid_duplicates",
        ),
        (
            json!({"outcome": "succeed", "duplicates": 201}),
            "invalid_duplicates",
        ),
        (json!({"outcome": "maybe"}), "invalid_body"),
    ] {
        let (_, open) = sandbox.session(1).await;
        let (status, reply) = sandbox.complete(&open, body).await;
        assert_eq!(status, 422, "{reply}");
        assert_eq!(reply["code"], code);
    }
    let (status, reply) = sandbox
        .complete("cs_unknown", json!({"outcome": "succeed"}))
        .await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["code"], "session_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_are_idempotent_and_never_exceed_the_capture() {
    let sandbox = Sandbox::start().await;
    let payment_id = sandbox.captured(5000).await;
    let refund = RefundRequest {
        refund_id: Uuid::new_v4(),
        payment_id,
        amount_cents: 3000,
    };
    let first = sandbox.provider.refund(&refund).await.expect("refund");
    assert_eq!(first.amount_cents, 3000);
    assert!(first.provider_refund_id.starts_with("re_"));
    let retried = sandbox.provider.refund(&refund).await.expect("retry");
    assert_eq!(retried, first, "same refund id, same receipt");

    // 3000 + 3000 > 5000: refused; the rest (2000) is fine.
    let too_much = RefundRequest {
        refund_id: Uuid::new_v4(),
        ..refund.clone()
    };
    assert_rejected(
        sandbox.provider.refund(&too_much).await,
        400,
        "refund_exceeds_capture",
    );
    let reused = RefundRequest {
        amount_cents: 1,
        ..refund.clone()
    };
    assert_rejected(
        sandbox.provider.refund(&reused).await,
        409,
        "idempotency_key_reused",
    );
    let rest = RefundRequest {
        refund_id: Uuid::new_v4(),
        payment_id,
        amount_cents: 2000,
    };
    sandbox.provider.refund(&rest).await.expect("the rest");

    let payment = sandbox.payment(payment_id).await;
    assert_eq!(payment["captured_cents"], 5000);
    assert_eq!(payment["refunded_cents"], 5000);
    assert_eq!(
        payment["refunds"],
        json!([
            {"id": first.provider_refund_id, "amount_cents": 3000},
            {"id": payment["refunds"][1]["id"], "amount_cents": 2000},
        ])
    );

    let unknown = RefundRequest {
        refund_id: Uuid::new_v4(),
        payment_id: Uuid::new_v4(),
        amount_cents: 1,
    };
    assert_rejected(
        sandbox.provider.refund(&unknown).await,
        404,
        "payment_not_found",
    );
    let (open_payment, _) = sandbox.session(1000).await;
    let not_captured = RefundRequest {
        refund_id: Uuid::new_v4(),
        payment_id: open_payment,
        amount_cents: 1,
    };
    assert_rejected(
        sandbox.provider.refund(&not_captured).await,
        409,
        "payment_not_captured",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_full_refunds_pay_back_exactly_once() {
    let sandbox = Arc::new(Sandbox::start().await);
    let payment_id = sandbox.captured(5000).await;
    let attempts = (0..10).map(|_| {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .provider
                .refund(&RefundRequest {
                    refund_id: Uuid::new_v4(),
                    payment_id,
                    amount_cents: 5000,
                })
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let mut issued = 0;
    for result in results {
        match result.expect("task") {
            Ok(receipt) => {
                assert_eq!(receipt.amount_cents, 5000);
                issued += 1;
            }
            refused => assert_rejected(refused, 400, "refund_exceeds_capture"),
        }
    }
    assert_eq!(issued, 1, "exactly one full refund");
    let payment = sandbox.payment(payment_id).await;
    assert_eq!(payment["refunded_cents"], 5000);
    assert_eq!(payment["refunds"].as_array().map(Vec::len), Some(1));
}

/// The controls tests use to make money go wrong: a declined session paid again (a second
/// outcome webhook, `payment.succeeded` after `payment.failed`), a capture of another
/// amount or currency (reported as captured by the webhook and the payment view), and a
/// payment whose refunds are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_other_captures_and_refused_refunds_on_request() {
    let sandbox = Sandbox::start().await;
    let outcome_of = |payment_id: Uuid, kind: WebhookKind| {
        sandbox
            .receiver
            .events_of(payment_id)
            .into_iter()
            .find(|e| e.kind == kind)
    };

    let (declined, session) = sandbox.session(5000).await;
    let (status, body) = sandbox
        .complete(
            &session,
            json!({"outcome": "fail", "skip_processing": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // A failed session is completed; only an explicit retry with a success reopens it.
    let (status, body) = sandbox
        .complete(&session, json!({"outcome": "succeed"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_completed"))
    );
    let (status, body) = sandbox
        .complete(&session, json!({"outcome": "fail", "retry": true}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_completed"))
    );
    let (status, body) = sandbox
        .complete(
            &session,
            json!({"outcome": "succeed", "retry": true, "skip_processing": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_until("failed, then succeeded", || {
        outcome_of(declined, WebhookKind::Succeeded).is_some()
    })
    .await;
    let kinds: Vec<_> = sandbox
        .receiver
        .events_of(declined)
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [WebhookKind::Failed, WebhookKind::Succeeded]);
    assert_eq!(sandbox.payment(declined).await["captured_cents"], 5000);

    // Another amount, another currency: the webhook and the view say what was captured.
    let (short, session) = sandbox.session(5000).await;
    let (status, body) = sandbox
        .complete(
            &session,
            json!({"outcome": "succeed", "capture_cents": 4000, "capture_currency": "usd"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_until("the short capture reported", || {
        outcome_of(short, WebhookKind::Succeeded).is_some()
    })
    .await;
    let reported = outcome_of(short, WebhookKind::Succeeded).expect("webhook");
    assert_eq!(
        (reported.data.amount_cents, reported.data.currency.as_str()),
        (4000, "USD")
    );
    let view = sandbox.payment(short).await;
    assert_eq!(
        (
            view["amount_cents"].as_i64(),
            view["currency"].as_str(),
            view["captured_cents"].as_i64(),
            view["captured_currency"].as_str()
        ),
        (Some(5000), Some("EUR"), Some(4000), Some("USD"))
    );
    let (_, open) = sandbox.session(5000).await;
    for (body, code) in [
        (
            json!({"outcome": "succeed", "capture_cents": 5001}),
            "invalid_capture",
        ),
        (
            json!({"outcome": "succeed", "capture_cents": -1}),
            "invalid_capture",
        ),
        (
            json!({"outcome": "succeed", "capture_currency": "EURO"}),
            "invalid_currency",
        ),
    ] {
        let (status, reply) = sandbox.complete(&open, body).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (422, Some(code)),
            "{reply}"
        );
    }

    // Refunds refused: every try is declined, none is made.
    let (disputed, session) = sandbox.session(5000).await;
    let (status, body) = sandbox
        .complete(
            &session,
            json!({"outcome": "succeed", "refuse_refunds": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let refund = RefundRequest {
        refund_id: Uuid::new_v4(),
        payment_id: disputed,
        amount_cents: 5000,
    };
    for _ in 0..2 {
        assert_rejected(
            sandbox.provider.refund(&refund).await,
            402,
            "refund_declined",
        );
    }
    assert_eq!(sandbox.payment(disputed).await["refunded_cents"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_requires_the_api_key() {
    let sandbox = Sandbox::start().await;
    let (payment_id, session_id) = sandbox.session(100).await;
    let routes = [
        (
            reqwest::Method::POST,
            "/sandbox/v1/sessions".to_owned(),
            Some(json!({"payment_id": Uuid::new_v4(), "amount_cents": 1,
                "currency": "EUR", "description": "x"})),
        ),
        (
            reqwest::Method::POST,
            format!("/sandbox/v1/sessions/{session_id}/complete"),
            Some(json!({"outcome": "succeed"})),
        ),
        (
            reqwest::Method::POST,
            "/sandbox/v1/refunds".to_owned(),
            Some(
                json!({"refund_id": Uuid::new_v4(), "payment_id": payment_id,
                "amount_cents": 1}),
            ),
        ),
        (
            reqwest::Method::GET,
            format!("/sandbox/v1/payments/{payment_id}"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        for key in [Some("wrong-key"), None] {
            let mut req = sandbox
                .http
                .request(method.clone(), format!("{}{path}", sandbox.base));
            if let Some(key) = key {
                req = req.bearer_auth(key);
            }
            if let Some(body) = &body {
                req = req.json(body);
            }
            let response = req.send().await.expect("request");
            assert_eq!(response.status(), 401, "{method} {path} with {key:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            let problem: Value = response.json().await.expect("problem");
            assert_eq!(problem["code"], "unauthorized");
        }
    }
    let mut wrong = sandbox.settings.payments.clone();
    wrong.provider_url = sandbox.base.clone();
    wrong.provider_api_key = "wrong-key".into();
    assert_rejected(
        PaymentProvider::new(&wrong)
            .create_session(&CreateSession {
                payment_id: Uuid::new_v4(),
                amount_cents: 1,
                currency: "EUR".into(),
                description: "x".into(),
                return_url: None,
            })
            .await,
        401,
        "unauthorized",
    );
    // Nothing was completed by the refused calls.
    assert_eq!(sandbox.payment(payment_id).await["status"], "open");
}

#[tokio::test]
async fn nothing_is_served_unless_enabled() {
    let settings = Settings::load_with(None, &[("payments.sandbox_enabled", "false".into())])
        .expect("settings");
    // Never connected: a disabled sandbox must not touch the database at all.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    let base = serve(seatq_gateway::sandbox::router(pool, Arc::new(settings))).await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base}/sandbox/v1/sessions"))
        .bearer_auth("sandbox-api-key")
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let page = http
        .get(format!("{base}/sandbox/pay/cs_1"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 404);
}
