//! Shared by the pipeline tests: start a gateway and a consumer on an isolated
//! environment, build events, and check the invariants in SQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use seatq_common::command::{Command, CommandEnvelope, HoldSeats};
use seatq_common::ids::{EventId, RequestId, UserId};
use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::{Api, TestEnv};
use serde_json::json;
use sqlx::PgPool;

pub struct Pipeline {
    pub env: TestEnv,
    pub api: Api,
    pub gateway_stop: Shutdown,
    pub consumer_stop: Option<Shutdown>,
}

impl Pipeline {
    /// Gateway and consumer in this process.
    pub async fn start(partitions: i32) -> Self {
        let env = TestEnv::new(partitions).await;
        Self::start_on(env, true).await
    }

    pub async fn start_on(env: TestEnv, with_consumer: bool) -> Self {
        let gateway_stop = Shutdown::new();
        let (addr, _) = seatq_gateway::app::spawn(env.settings.clone(), gateway_stop.clone())
            .await
            .expect("gateway starts");
        let consumer_stop = with_consumer.then(|| start_consumer(&env));
        Self {
            api: Api::new(addr),
            env,
            gateway_stop,
            consumer_stop,
        }
    }

    pub fn stop_consumer(&mut self) {
        if let Some(stop) = self.consumer_stop.take() {
            stop.cancel();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.gateway_stop.cancel();
        self.stop_consumer();
    }
}

pub fn start_consumer(env: &TestEnv) -> Shutdown {
    let stop = Shutdown::new();
    let settings = env.settings.clone();
    let token = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = seatq_consumer::run(settings, token).await {
            panic!("consumer failed: {e}");
        }
    });
    stop
}

/// One reserved section "A" of `rows` x `per_row` seats (seat ids "A-{row}-{seat}").
pub fn section_a(rows: i32, per_row: i32) -> serde_json::Value {
    json!([{"kind": "reserved", "code": "A", "name": "Section A", "rows": rows,
            "seats_per_row": per_row, "price_cents": 5000}])
}

pub fn seat_id(seat_no: i32, per_row: i32) -> String {
    format!("A-{}-{}", seat_no / per_row + 1, seat_no % per_row + 1)
}

#[allow(unused_imports)]
pub use seatq_common::testkit::invariants::{violations, Violations};

/// Kafka order of a decided command: record offset, place in the record.
pub type Position = (i64, i32);

type DecisionRow = (uuid::Uuid, String, i64, i32, Option<Vec<i32>>);

/// request_id -> (status, Kafka position, hold seat_nos), of the consumer's decisions: not
/// the requests a gateway abandoned after a failed produce (offset -1, no place in Kafka
/// order; `gateway::commands::abandon`), which it answered 503 and nobody decided.
pub async fn decisions(pool: &PgPool) -> HashMap<String, (String, Position, Vec<i32>)> {
    let rows: Vec<DecisionRow> = sqlx::query_as(
        "SELECT r.request_id, r.status, r.kafka_offset, r.kafka_seq, h.seat_nos FROM requests r \
         LEFT JOIN holds h ON h.id = r.hold_id WHERE r.kafka_offset >= 0",
    )
    .fetch_all(pool)
    .await
    .expect("decisions");
    rows.into_iter()
        .map(|(id, status, offset, seq, seats)| {
            (
                id.to_string(),
                (status, (offset, seq), seats.unwrap_or_default()),
            )
        })
        .collect()
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Wait until the consumer decided `n` requests (abandoned ones do not count).
pub async fn wait_decided(pool: &PgPool, n: i64, timeout: Duration) {
    seatq_common::testkit::eventually(&format!("{n} decisions"), timeout, || async {
        let decided = count(
            pool,
            "SELECT count(*) FROM requests WHERE kafka_offset >= 0",
        )
        .await;
        (decided >= n).then_some(())
    })
    .await
}

/// Deterministic pseudo-random numbers (xorshift64*), so a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Mint a user token directly (as the gateway would), to fire thousands of requests fast.
/// User ids are scoped to the test's database name: Redis (idempotency keys) is shared
/// by every test and every run.
pub fn user_token(env: &TestEnv, user: &str) -> String {
    seatq_gateway::auth::JwtKeys::new(&env.settings.auth.jwt_secret)
        .issue(
            &format!("{}-{user}", env.database),
            seatq_gateway::auth::Role::User,
            3600,
        )
        .expect("token")
        .0
}

/// What FIFO order says must have happened: replay the requests (seat_nos per request id)
/// in Kafka offset order against empty seats and a per-user limit.
pub fn replay_fifo(
    requests: &HashMap<String, (String, Vec<i32>)>,
    decided: &HashMap<String, (String, Position, Vec<i32>)>,
    max_per_user: usize,
) -> Vec<String> {
    let mut order: Vec<(&String, Position)> = requests
        .keys()
        .map(|id| (id, decided.get(id).map(|d| d.1).unwrap_or((i64::MAX, 0))))
        .collect();
    order.sort_by_key(|(_, position)| *position);
    let mut taken = std::collections::HashSet::new();
    let mut per_user: HashMap<&String, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for (id, _) in order {
        let (user, seats) = &requests[id];
        let fits = per_user.get(user).copied().unwrap_or(0) + seats.len() <= max_per_user;
        let expect_held = fits && seats.iter().all(|s| !taken.contains(s));
        if expect_held {
            taken.extend(seats.iter().copied());
            *per_user.entry(user).or_default() += seats.len();
        }
        let actual = decided.get(id).map(|d| d.0.as_str()).unwrap_or("undecided");
        let actual_held = actual == "held";
        if actual_held != expect_held || (actual_held && decided[id].2 != *seats) {
            wrong.push(format!("{id}: expected held={expect_held}, got {actual}"));
        }
    }
    wrong
}

/// Requests accepted so far: request id -> (user, seat_nos).
pub type Accepted = Arc<tokio::sync::Mutex<HashMap<String, (String, Vec<i32>)>>>;

/// A storm of single-seat requests, each from its own user, for random seats of section A.
pub struct Storm {
    pub requests: usize,
    pub concurrency: usize,
    pub seats: i32,
    pub per_row: i32,
    pub seed: u64,
}

/// Fire the storm; every answer must be 202 (recorded in `accepted` as it comes) or
/// 503 `broker_unavailable`. Returns how many were accepted.
pub async fn storm(
    api: Arc<Api>,
    env: Arc<TestEnv>,
    event: String,
    s: Storm,
    accepted: Accepted,
) -> usize {
    let limit = Arc::new(tokio::sync::Semaphore::new(s.concurrency));
    let mut rng = Rng::new(s.seed);
    let mut tasks = Vec::with_capacity(s.requests);
    for i in 0..s.requests {
        let seat = rng.below(s.seats as u64) as i32;
        let user = format!("u{}-{i}", s.seed);
        let token = user_token(&env, &user);
        let body = json!({"seat_ids": [seat_id(seat, s.per_row)]});
        let (api, event, limit, accepted) =
            (api.clone(), event.clone(), limit.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let (status, reply) = api.hold(&token, &event, &body, "", &[]).await;
            match status.as_u16() {
                202 => {
                    let id = reply["request_id"].as_str().expect("id").to_owned();
                    accepted.lock().await.insert(id, (user, vec![seat]));
                    1
                }
                503 => {
                    assert_eq!(reply["code"], "broker_unavailable", "{reply}");
                    0
                }
                other => panic!("unexpected {other}: {reply}"),
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("task");
    }
    ok
}

/// A hold command for `seats` from `user`, not waited for.
pub fn hold_command(event: EventId, user: &str, seats: Vec<i32>) -> CommandEnvelope {
    CommandEnvelope {
        request_id: RequestId::new(),
        event_id: event,
        user_id: UserId(user.into()),
        issued_at: Utc::now(),
        command: Command::HoldSeats(HoldSeats::seats(seats)),
        reply: false,
    }
}

/// An event with section A of `rows` x `per_row`, and the partition it is pinned to.
pub async fn new_event(p: &Pipeline, rows: i32, per_row: i32) -> (EventId, i32) {
    let id = p
        .api
        .create_event(section_a(rows, per_row), json!({}))
        .await;
    let event: EventId = id.parse().expect("event id");
    let partition = sqlx::query_scalar("SELECT kafka_partition FROM events WHERE id = $1")
        .bind(event)
        .fetch_one(&p.env.pool)
        .await
        .expect("event partition");
    (event, partition)
}

/// The gateway's command producer (packing into records) on this environment's topic.
pub fn command_producer(env: &TestEnv) -> Arc<seatq_common::command_producer::CommandProducer> {
    let producer = seatq_common::kafka::producer(&env.settings.kafka).expect("producer");
    seatq_common::command_producer::CommandProducer::new(
        producer,
        env.topics.commands.clone(),
        env.settings.kafka.batch_limits(),
    )
}
