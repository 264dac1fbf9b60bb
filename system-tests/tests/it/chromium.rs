//! Real headless Chromium for the browser suites (Debian's `chromium` and `chromedriver`,
//! over WebDriver): a chromedriver per browser, and the steps a person takes in the app,
//! each waiting on a condition with a deadline (an element there, an attribute or a text
//! that satisfies a check), never a fixed sleep. Shared by `browser` (buyers) and
//! `organiser` (organisers and the door).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use seatq_common::testkit::free_port;
use serde_json::json;

pub const WAIT: Duration = Duration::from_secs(20);

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
pub struct Browser {
    pub client: Client,
    pub base: String,
    _profile: std::path::PathBuf,
    _driver: Driver,
}

pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

impl Browser {
    pub async fn open(base: &str) -> Self {
        Self::open_with(base, &[]).await
    }

    /// A browser started with more command-line switches (e.g. a fake camera).
    pub async fn open_with(base: &str, extra_args: &[&str]) -> Self {
        let driver = Driver::start();
        let profile =
            std::env::temp_dir().join(format!("seatq-chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
            "--window-size=1280,900",
        ]
        .iter()
        .chain(extra_args)
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("SEATQ_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": args,
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

    pub async fn goto(&self, hash: &str) {
        self.client
            .goto(&format!("{}/{hash}", self.base))
            .await
            .expect("navigate");
    }

    /// The element with this test id, once it exists. Looked for again after any error, not
    /// only "no such element": a look-up sent while the page navigates (to the payment
    /// page, say) comes back "aborted by navigation".
    pub async fn el(&self, id: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(&testid(id))).await {
                Ok(e) => return e,
                Err(e) if Instant::now() >= deadline => panic!("no {id} within {WAIT:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, id: &str) {
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

    pub async fn type_into(&self, id: &str, text: &str) {
        let e = self.el(id).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Wait until the element's attribute satisfies `ok`; returns its value.
    pub async fn attr_until(
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
    pub async fn text_until(
        &self,
        id: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
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

    pub async fn login(&self, user: &str) {
        self.goto("#/").await;
        self.type_into("login-name", user).await;
        self.click("login-button").await;
        self.text_until("current-user", WAIT, |t| t == user).await;
    }

    /// Log in with "Organiser" ticked (a token with role admin): the organiser link shows.
    pub async fn login_organiser(&self, user: &str) {
        self.goto("#/").await;
        self.type_into("login-name", user).await;
        self.click("login-organiser").await;
        self.click("login-button").await;
        self.text_until("current-user", WAIT, |t| t == user).await;
        self.until_script(
            "the organiser link",
            WAIT,
            "const e = document.querySelector('[data-testid=\"nav-admin\"]'); return !!e && !e.hidden;",
        )
        .await;
    }

    /// Run `script` until it returns `true` (a page condition), or panic after `timeout`.
    pub async fn until_script(&self, what: &str, timeout: Duration, script: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.client.execute(script, vec![]).await.ok() == Some(json!(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} not within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Open the event and wait until its map is live on the stream.
    pub async fn open_event(&self, event: &str) {
        self.goto(&format!("#/events/{event}")).await;
        self.attr_until("live-indicator", "data-mode", WAIT, |m| m == "live")
            .await;
    }

    /// Hold one seat by its id through the "pick a seat by number" form.
    pub async fn hold_seat(&self, seat: &str) -> String {
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
    pub async fn screenshot(&self, name: &str) {
        if std::env::var_os("SEATQ_SCREENSHOTS").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(400)).await; // let transitions settle
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
