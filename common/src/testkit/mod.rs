//! Test helpers (feature `testkit`): every integration test gets its own database and
//! its own topic prefix on the shared local stack, so tests run in parallel without
//! seeing each other; a test that kills the broker starts a private one.
//!
//! The stack's addresses come from `SEATQ_TEST_*` variables (set by `deploy/local/test`),
//! defaulting to the local stack's ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection, PgPool};

use crate::config::Settings;
use crate::topics::Topics;

pub mod cluster;
pub mod invariants;
pub mod sse;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn admin_database_url() -> String {
    env_or(
        "SEATQ_TEST_DATABASE_URL",
        "postgres://seatq@127.0.0.1:55432/postgres",
    )
}

pub fn redis_url() -> String {
    env_or("SEATQ_TEST_REDIS_URL", "redis://127.0.0.1:56379/")
}

pub fn brokers() -> String {
    env_or("SEATQ_TEST_BROKERS", "127.0.0.1:59093")
}

/// The nisshi binary deploy/local installed.
pub fn nisshi_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SEATQ_NISSHI_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/seatq/nisshi-0.8.1/bin/nisshi")
}

/// `url` (a PostgreSQL URL) with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => format!("{url}/{database}"),
    }
}

/// Run one statement with `psql` against `url` (tests' synchronous set-up and teardown).
fn psql(url: &str, sql: &str) -> bool {
    Command::new("psql")
        .args([url, "-qtAc", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The workspace root (where deploy/ and docs/ live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A tool deploy/local/lib.sh installs into the machine cache: runs its `ensure` function
/// (installing on first use) and returns the path in its `bin_variable`, or None, having
/// said why, when it cannot be installed (no registry).
pub fn repo_tool(ensure: &str, bin_variable: &str) -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source deploy/local/lib.sh >/dev/null && {ensure} >&2 && echo \"${bin_variable}\""
        ))
        .current_dir(repo_root())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.is_file().then_some(bin)
}

/// A tool a test needs (`repo_tool`), or `None` for the test to skip: but only on a
/// developer's machine. Under `deploy/local/test` (the README's test command, so CI),
/// `SEATQ_REQUIRE_TOOLS=1` and a tool that cannot be installed fails the test instead of
/// letting it pass without having checked anything.
pub fn needed_tool(ensure: &str, bin_variable: &str) -> Option<PathBuf> {
    let tool = repo_tool(ensure, bin_variable);
    if tool.is_none() {
        let required = std::env::var("SEATQ_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "deploy/local/lib.sh {ensure} failed and SEATQ_REQUIRE_TOOLS=1: the tool is required"
        );
        eprintln!(
            "\n\n########## SKIPPED: deploy/local/lib.sh {ensure} failed \
             (set SEATQ_REQUIRE_TOOLS=1 to make this an error) ##########\n\n"
        );
    }
    tool
}

/// An isolated environment: a fresh migrated database, a unique topic prefix (topics
/// created) and settings pointing at them.
#[derive(Clone)]
pub struct TestEnv {
    pub settings: Settings,
    pub pool: PgPool,
    pub topics: Topics,
    pub database: String,
}

impl TestEnv {
    pub async fn new(partitions: i32) -> Self {
        Self::with_brokers(partitions, &brokers()).await
    }

    pub async fn with_brokers(partitions: i32, brokers: &str) -> Self {
        Self::with_endpoints(partitions, &admin_database_url(), &redis_url(), brokers).await
    }

    /// On a stack of the test's own (see `cluster`): its PostgreSQL (`admin`: a URL of
    /// any database there), Redis and broker.
    pub async fn with_endpoints(partitions: i32, admin: &str, redis: &str, brokers: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("seatq_test_{}", &id[..16]);
        let admin = admin.to_owned();
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL (is the stack up? deploy/local/test)");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{database}"),
            None => panic!("bad admin url {admin}"),
        };
        let prefix = format!("t{}", &id[16..28]);
        let mut settings = Settings::load_with(
            None,
            &[
                ("database.url", url),
                ("database.max_connections", "20".into()),
                ("redis.url", redis.to_owned()),
                ("kafka.brokers", brokers.to_owned()),
                ("kafka.topic_prefix", prefix.clone()),
                ("kafka.partitions", partitions.to_string()),
                ("kafka.produce_timeout_ms", "5000".into()),
                ("auth.dev_tokens", "true".into()),
                // Placeholder secrets, dev tokens and the sandbox are fine here.
                ("deployment.mode", "development".into()),
                ("gateway.listen", "127.0.0.1:0".into()),
                ("consumer.group_id", format!("{prefix}-consumer")),
                ("scheduler.group_id", format!("{prefix}-scheduler")),
                // A killed member's partitions move once its group session expires: sooner
                // than in production, where 6 s rides out a long pause.
                ("kafka.session_timeout_ms", "3000".into()),
                // Holds of 1-2 s: their timers must be read well within that.
                ("scheduler.timers_fetch_wait_ms", "500".into()),
                ("log.filter", "warn".into()),
            ],
        )
        .expect("test settings");
        // Limits generous and keys of this test only (gateway/tests/limits.rs sets its own).
        settings.rate_limits.for_tests(&database);
        let pool = crate::db::connect(&settings.database)
            .await
            .expect("connect test database");
        crate::db::migrate(&pool)
            .await
            .expect("migrate test database");
        let topics = Topics::new(&prefix);
        crate::kafka::ensure_topics(&settings.kafka, &topics.all(), partitions)
            .await
            .expect("create test topics");
        Self {
            settings,
            pool,
            topics,
            database,
        }
    }

    /// `SEATQ_*` variables that make a child process use this environment.
    pub fn child_env(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        vec![
            ("SEATQ_DATABASE__URL".into(), s.database.url.clone()),
            ("SEATQ_REDIS__URL".into(), s.redis.url.clone()),
            ("SEATQ_KAFKA__BROKERS".into(), s.kafka.brokers.clone()),
            (
                "SEATQ_KAFKA__TOPIC_PREFIX".into(),
                s.kafka.topic_prefix.clone(),
            ),
            (
                "SEATQ_KAFKA__PARTITIONS".into(),
                s.kafka.partitions.to_string(),
            ),
            (
                "SEATQ_CONSUMER__GROUP_ID".into(),
                s.consumer.group_id.clone(),
            ),
            (
                "SEATQ_SCHEDULER__GROUP_ID".into(),
                s.scheduler.group_id.clone(),
            ),
            (
                "SEATQ_KAFKA__SESSION_TIMEOUT_MS".into(),
                s.kafka.session_timeout_ms.to_string(),
            ),
            ("SEATQ_DEPLOYMENT__MODE".into(), "development".into()),
            (
                "SEATQ_LOG__FILTER".into(),
                std::env::var("SEATQ_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
    }
}

/// Poll `check` until it returns Some or `timeout` passes (then panic with `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free TCP port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// SIGKILL a child process of a test and reap it (no-op when it is not running).
pub(crate) fn kill_now(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A nisshi broker of the test's own, on a random port, keeping its log in a database of
/// its own (in the tests' PostgreSQL, or in a private cluster: then killing that cluster
/// takes the broker's storage down too, as in a deployment where they share one). It can
/// be killed with SIGKILL, paused, and restarted on the same data.
pub struct PrivateBroker {
    pub port: u16,
    /// The PostgreSQL URL of its log.
    storage: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateBroker {
    /// On the tests' PostgreSQL (`SEATQ_TEST_DATABASE_URL`).
    pub fn start() -> Self {
        Self::start_on(&admin_database_url())
    }

    /// On the cluster `admin_url` points at (any database of it; the broker gets its own).
    pub fn start_on(admin_url: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("seatq_test_broker_{id}");
        assert!(
            psql(admin_url, &format!("CREATE DATABASE {database}")),
            "create the private broker's database on {admin_url}"
        );
        let dir = std::env::temp_dir().join(format!("seatq-broker-{id}"));
        std::fs::create_dir_all(&dir).expect("broker dir");
        let mut broker = Self {
            port: free_port(),
            storage: with_database(admin_url, &database),
            dir,
            child: None,
        };
        broker.spawn();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nisshi.log"))
            .expect("broker log");
        let child = Command::new(nisshi_bin())
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .args(["broker", "--storage-engine", &self.storage])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            // Kafka's group.initial.rebalance.delay.ms is 3 s: a test's consumers start
            // together, and waiting for more members only slows every test down.
            .args(["--group-initial-rebalance-delay", "100ms"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nisshi (deploy/local/test installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "private broker did not start (see {})",
                self.dir.join("nisshi.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        kill_now(&mut self.child);
    }

    /// SIGSTOP: the broker stops answering while its sockets stay open and the kernel
    /// keeps taking what clients send (a hung broker, a long pause); see [`Self::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Self::pause`]: it reads what queued up meanwhile and carries on.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the broker is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} the broker");
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((_, database)) = self.storage.rsplit_once('/') {
            let admin = with_database(&self.storage, "postgres");
            psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            );
        }
    }
}

/// A small client for the HTTP API, for tests.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub type Reply = (reqwest::StatusCode, serde_json::Value);

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .expect("http client"),
        }
    }

    /// Another handle on the same server (the HTTP client is shared).
    pub fn clone_client(&self) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::reply(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn token(&self, user: &str, role: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/dev/token",
                None,
                &serde_json::json!({"user_id": user, "role": role}),
            )
            .await;
        assert_eq!(status, 200, "dev token: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A venue with the given sections and an event on sale now; returns the event id.
    /// The rule against stranding single seats is off unless `event` turns it on: most
    /// tests pick seats to exercise other rules; the rule's own tests set it.
    pub async fn create_event(
        &self,
        sections: serde_json::Value,
        event: serde_json::Value,
    ) -> String {
        let admin = self.token("organiser", "admin").await;
        let (status, venue) = self
            .post(
                "/v1/admin/venues",
                Some(&admin),
                &serde_json::json!({"name": "Test Arena", "city": "Testville", "sections": sections}),
            )
            .await;
        assert_eq!(status, 201, "create venue: {venue}");
        let mut body = serde_json::json!({
            "venue_id": venue["id"],
            "title": "Test Night",
            "starts_at": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
            "on_sale_at": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
            "no_single_seats": false,
        });
        if let (Some(obj), Some(extra)) = (body.as_object_mut(), event.as_object()) {
            obj.extend(extra.clone());
        }
        let (status, ev) = self.post("/v1/admin/events", Some(&admin), &body).await;
        assert_eq!(status, 201, "create event: {ev}");
        ev["id"].as_str().expect("event id").to_owned()
    }

    /// POST a hold request; `extra_headers` e.g. Idempotency-Key.
    pub async fn hold(
        &self,
        token: &str,
        event_id: &str,
        body: &serde_json::Value,
        query: &str,
        extra_headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/v1/events/{event_id}/holds{query}", self.base))
            .bearer_auth(token)
            .json(body);
        for (k, v) in extra_headers {
            req = req.header(*k, *v);
        }
        Self::reply(req.send().await.expect("hold request")).await
    }

    /// Poll a request until it is decided.
    pub async fn decision(
        &self,
        token: &str,
        request_id: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        let path = format!("/v1/hold-requests/{request_id}");
        eventually(&format!("decision of {request_id}"), timeout, || async {
            let (status, body) = self.get(&path, Some(token)).await;
            (status == 200 && body["status"] != "pending").then_some(body)
        })
        .await
    }
}

/// Every record of `topic` from the beginning, until `done` says enough or the deadline.
pub fn read_topic(
    env: &TestEnv,
    topic: &str,
    partitions: i32,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let reader: BaseConsumer =
        crate::kafka::consumer_config(&env.settings.kafka, &format!("{}-reader", env.database))
            .create()
            .expect("reader");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    reader.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while !done(&records) {
        assert!(
            Instant::now() < deadline,
            "{topic}: only {} records",
            records.len()
        );
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            records.push(m.payload().unwrap_or_default().to_vec());
        }
    }
    records
}
