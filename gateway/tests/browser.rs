//! The browser app, driven in real headless Chromium (Debian's `chromium` and
//! `chromedriver`, over WebDriver) against the whole stack: gateway with the embedded
//! notifier and the sandbox payment provider, consumer and scheduler.
//!
//! People use it as they would: two browsers on one event (one holds a seat, the other sees
//! it turn held within 2 s), hold → pay on the provider's page → ticket with its QR code,
//! a waitlist offer arriving live in the second browser when the first cancels, and the
//! 50,000-seat stadium map. `SEATQ_SCREENSHOTS=1` saves the main screens to
//! `docs/screenshots/` (the README shows them). Each test has its own database, so plain
//! user names cannot collide with other tests.

#[path = "../../scheduler/tests/support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use seatq_common::testkit::free_port;
use serde_json::json;
use support::Stack;

const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a port of its own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(
            std::env::var("SEATQ_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()),
        )
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver (deploy/local/test installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One person's browser.
struct Browser {
    client: Client,
    base: String,
    _profile: std::path::PathBuf,
    _driver: Driver,
}

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

impl Browser {
    async fn open(base: &str) -> Self {
        let driver = Driver::start();
        let profile =
            std::env::temp_dir().join(format!("seatq-chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("SEATQ_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-sync", "--disable-quic",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a Chromium session");
        Self {
            client,
            base: base.to_owned(),
            _profile: profile,
            _driver: driver,
        }
    }

    async fn goto(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .expect("navigate");
    }

    /// The element with this test id, once it exists.
    async fn el(&self, id: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&testid(id)))
            .await
            .unwrap_or_else(|e| panic!("no {id} within {WAIT:?}: {e}"))
    }

    async fn click(&self, id: &str) {
        // Visible and enabled: retried until the app has rendered it so.
        let deadline = Instant::now() + WAIT;
        loop {
            let e = self.el(id).await;
            match e.click().await {
                Ok(()) => return,
                Err(err) if Instant::now() < deadline => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("cannot click {id}: {err}"),
            }
        }
    }

    async fn type_into(&self, id: &str, text: &str) {
        let e = self.el(id).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Wait until the element's attribute satisfies `ok`; returns its value.
    async fn attr_until(
        &self,
        id: &str,
        attr: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(&testid(id))).await {
                last = e.attr(attr).await.ok().flatten();
                if let Some(v) = &last {
                    if ok(v) {
                        return v.clone();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{id}[{attr}] is {last:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the element's text satisfies `ok`; returns it.
    async fn text_until(&self, id: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.client.find(Locator::Css(&testid(id))).await {
                last = e.text().await.unwrap_or_default();
                if ok(&last) {
                    return last;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{id} reads {last:?} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn login(&self, user: &str) {
        self.goto("#/").await;
        self.type_into("login-name", user).await;
        self.click("login-button").await;
        self.text_until("current-user", WAIT, |t| t == user).await;
    }

    /// Open the event and wait until its map is live on the stream.
    async fn open_event(&self, event: &str) {
        self.goto(&format!("#/events/{event}")).await;
        self.attr_until("live-indicator", "data-mode", WAIT, |m| m == "live")
            .await;
    }

    /// Hold one seat by its id through the "pick a seat by number" form.
    async fn hold_seat(&self, seat: &str) -> String {
        self.type_into("seat-id-input", seat).await;
        self.click("seat-add").await;
        self.text_until("selection-count", WAIT, |t| t == "1").await;
        self.click("hold-button").await;
        self.attr_until("hold-status", "data-status", WAIT, |s| s == "held")
            .await;
        self.attr_until("hold-panel", "data-hold-id", WAIT, |id| !id.is_empty())
            .await
    }

    /// With `SEATQ_SCREENSHOTS` set, save the page as `docs/screenshots/{name}.png`.
    async fn screenshot(&self, name: &str) {
        if std::env::var_os("SEATQ_SCREENSHOTS").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(400)).await; // let transitions settle
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

async fn stack() -> (Stack, String) {
    let stack = Stack::start(|s| s.notifier.embedded = true).await;
    let base = stack.api.base.clone();
    (stack, base)
}

/// Counts the map shows: (available, held, sold).
fn counts(text: &str) -> (i64, i64, i64) {
    let numbers: Vec<i64> = text
        .split('·')
        .map(|part| {
            part.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(-1)
        })
        .collect();
    match numbers.as_slice() {
        [a, h, s] => (*a, *h, *s),
        _ => (-1, -1, -1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_in_one_browser_shows_in_another_within_two_seconds() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let (alice, bob) = (Browser::open(&base).await, Browser::open(&base).await);
    alice.login("alice").await;
    bob.login("bob").await;
    alice.open_event(&event).await;
    bob.open_event(&event).await;
    bob.text_until("map-counts", WAIT, |t| counts(t).1 == 0 && counts(t).0 > 0)
        .await;
    alice.screenshot("event-seat-map").await;

    alice.hold_seat("A-1-5").await;
    let held_at = Instant::now();
    bob.text_until("map-counts", Duration::from_secs(2), |t| counts(t).1 == 1)
        .await;
    let seen_after = held_at.elapsed();
    assert!(
        seen_after < Duration::from_secs(2),
        "seen after {seen_after:?}"
    );
    alice.screenshot("hold-countdown").await;
    // Bob looks at the seat: taken, and he may join its waitlist.
    bob.type_into("seat-id-input", "A-1-5").await;
    bob.click("seat-add").await;
    bob.text_until("seat-info-status", WAIT, |t| t.contains("held"))
        .await;
    bob.el("waitlist-join").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_pay_and_get_a_ticket_with_its_qr_code() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let alice = Browser::open(&base).await;
    alice.login("alice").await;
    alice.goto("#/").await;
    alice.el("event-card").await;
    alice.screenshot("events").await;
    alice.open_event(&event).await;
    let hold = alice.hold_seat("A-2-3").await;
    alice.el("hold-countdown").await;
    alice.click("hold-pay").await;
    // The provider's payment page.
    alice.el("pay-button").await;
    alice.screenshot("payment-page").await;
    alice.click("pay-button").await;
    alice
        .attr_until("result-status", "data-status", WAIT, |s| s == "succeeded")
        .await;
    alice.click("back-link").await;
    // Back in seatq on the hold, which becomes a booking with a ticket.
    assert!(alice
        .client
        .current_url()
        .await
        .expect("url")
        .as_str()
        .ends_with(&format!("#/holds/{hold}")));
    alice
        .attr_until("hold-panel", "data-status", WAIT, |s| s == "sold")
        .await;
    alice.click("hold-booking-link").await;
    alice
        .attr_until("booking", "data-status", WAIT, |s| s == "confirmed")
        .await;
    let qr = alice.el("ticket-qr").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let loaded = alice
            .client
            .execute(
                "return arguments[0].complete && arguments[0].naturalWidth > 0;",
                vec![serde_json::to_value(&qr).expect("element")],
            )
            .await
            .expect("script");
        if loaded == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the QR code image did not load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice
        .text_until("ticket-seat", WAIT, |t| t.contains("A-2-3"))
        .await;
    alice.screenshot("booking-ticket").await;
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waitlist_offer_arrives_live_when_the_holder_cancels() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let (alice, bob) = (Browser::open(&base).await, Browser::open(&base).await);
    alice.login("alice").await;
    bob.login("bob").await;
    alice.open_event(&event).await;
    let hold = alice.hold_seat("A-1-9").await;
    bob.open_event(&event).await;
    bob.type_into("seat-id-input", "A-1-9").await;
    bob.click("seat-add").await;
    bob.text_until("seat-info-status", WAIT, |t| t.contains("held"))
        .await;
    bob.click("waitlist-join").await;
    bob.text_until("waitlist-position", WAIT, |t| t.contains('1'))
        .await;
    bob.screenshot("waitlist").await;

    alice.click("hold-cancel").await;
    let offered = bob
        .attr_until("offer-banner", "data-hold-id", WAIT, |id| !id.is_empty())
        .await;
    assert_ne!(offered, hold, "a new hold for bob");
    bob.el("offer-pay").await;
    bob.screenshot("waitlist-offer").await;
    assert_eq!(
        stack.seat(&event, "A-1-9").await,
        ("held".to_owned(), Some("bob".to_owned()))
    );
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stadium_map_of_fifty_thousand_seats_renders_live() {
    let (stack, base) = stack().await;
    let demo = seatq_gateway::demo::seed(
        stack.pool(),
        seatq_gateway::inventory::EventLimits {
            partitions: 2,
            min_hold_ttl_secs: 30,
            waiting_room_min_capacity: 10_000,
            default_pow_difficulty: 0,
        },
    )
    .await
    .expect("demo events");
    let event = demo.stadium_event_id.to_string();
    let fan = Browser::open(&base).await;
    fan.login("fan").await;
    let started = Instant::now();
    fan.open_event(&event).await;
    let shown = fan
        .text_until("map-counts", WAIT, |t| counts(t).0 >= 50_000)
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stadium took {took:?} to show: {shown}"
    );
    fan.screenshot("stadium").await;
    // A hold elsewhere shows up on the big map too.
    let token = stack.token("someone").await;
    let (status, reply) = stack
        .api
        .hold(
            &token,
            &event,
            &json!({"section": "L101", "quantity": 2}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    fan.text_until("map-counts", Duration::from_secs(2), |t| counts(t).1 == 2)
        .await;
    fan.close().await;
}
