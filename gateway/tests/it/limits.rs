//! Limits at the gateway, against the real Redis, PostgreSQL and broker: rate limits per
//! user and per client IP (429 with Retry-After, recovery after it, X-Forwarded-For only
//! when trusted, fail open without Redis), and the per-user seat limit pre-check (409),
//! which never lets one user past `max_seats_per_user` nor refuses an honest request.
//!
//! Every test has its own limiter keys (the test settings prefix them with the test's
//! database name) and its user ids carry that name too: Redis is shared by all tests.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{consumer, gateway};
use seatq_common::config::RateLimitClass;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_common::testkit::{eventually, free_port, Api, TestEnv};
use serde_json::{json, Value};

/// Limits of one class: (rate per second, burst) per user and per IP; rate 0 = off.
fn class(user: (f64, u32), ip: (f64, u32)) -> RateLimitClass {
    RateLimitClass {
        user_rate: user.0,
        user_burst: user.1,
        ip_rate: ip.0,
        ip_burst: ip.1,
    }
}

/// A user token; the user id is scoped to the test's database.
fn token(env: &TestEnv, user: &str) -> String {
    seatq_gateway::auth::JwtKeys::new(&env.settings.auth.jwt_secret)
        .issue(
            &format!("{}-{user}", env.database),
            seatq_gateway::auth::Role::User,
            3600,
        )
        .expect("token")
        .0
}

fn user_id(env: &TestEnv, user: &str) -> String {
    format!("{}-{user}", env.database)
}

fn section_a(rows: i32, per_row: i32) -> Value {
    json!([{"kind": "reserved", "code": "A", "name": "Section A", "rows": rows,
            "seats_per_row": per_row, "price_cents": 5000}])
}

fn seat(n: i32, per_row: i32) -> String {
    format!("A-{}-{}", n / per_row + 1, n % per_row + 1)
}

/// An answer with what the limits put in it.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    content_type: String,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after").map(|v| {
        v.parse::<u64>()
            .unwrap_or_else(|_| panic!("Retry-After is whole seconds: {v:?}"))
    });
    let content_type = header("content-type").unwrap_or_default();
    Answer {
        status: response.status().as_u16(),
        retry_after,
        content_type,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

async fn hold(
    api: &Api,
    token: &str,
    event: &str,
    body: Value,
    query: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = api
        .http
        .post(format!("{}/v1/events/{event}/holds{query}", api.base))
        .bearer_auth(token)
        .json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(request).await
}

async fn hold_seat(api: &Api, token: &str, event: &str, seat: &str) -> Answer {
    hold(api, token, event, json!({"seat_ids": [seat]}), "", &[]).await
}

/// A `429 rate_limited` problem with a whole-second Retry-After (≥ 1) that the body repeats.
fn assert_rate_limited(a: &Answer, limit: &str, scope: &str) -> u64 {
    assert_eq!(a.status, 429, "{a:?}");
    assert_eq!(a.content_type, "application/problem+json", "{a:?}");
    assert_eq!(a.body["code"], "rate_limited", "{a:?}");
    assert_eq!(a.body["status"], 429);
    assert_eq!(a.body["limit"], limit, "{a:?}");
    assert_eq!(a.body["scope"], scope, "{a:?}");
    let secs = a.retry_after.expect("Retry-After");
    assert!(secs >= 1, "{a:?}");
    assert_eq!(a.body["retry_after_secs"], secs, "{a:?}");
    let ms = a.body["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(ms >= 1 && ms <= secs * 1000, "{a:?}");
    secs
}

/// A burst over the per-user limit is refused with Retry-After; after waiting that long
/// the user may hold again (and only as fast as the rate); other users are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_over_the_user_limit_gets_429_and_recovers_after_retry_after() {
    let mut env = TestEnv::new(1).await;
    // Three at once, then one every 2 s; no per-IP limit (every test client is 127.0.0.1).
    env.settings.rate_limits.holds = class((0.5, 3), (0.0, 0));
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(2, 20), json!({})).await;
    let alice = token(&env, "alice");

    for n in 0..3 {
        let a = hold_seat(&gw.api, &alice, &event, &seat(n, 20)).await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    let refused = hold_seat(&gw.api, &alice, &event, &seat(3, 20)).await;
    let retry = assert_rate_limited(&refused, "holds", "user");
    assert!(retry <= 2, "one request every 2 s: {refused:?}");
    // A refused request costs nothing: the wait is the same right after.
    let again = hold_seat(&gw.api, &alice, &event, &seat(3, 20)).await;
    assert!(assert_rate_limited(&again, "holds", "user") <= retry);

    let bob = token(&env, "bob");
    let a = hold_seat(&gw.api, &bob, &event, &seat(10, 20)).await;
    assert_eq!(
        a.status, 202,
        "another user has a limiter of his own: {a:?}"
    );

    // Waiting the advertised time is enough (no polling: the first try must pass), and
    // it buys one request.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let recovered = hold_seat(&gw.api, &alice, &event, &seat(3, 20)).await;
    assert_eq!(recovered.status, 202, "after Retry-After: {recovered:?}");
    let next = hold_seat(&gw.api, &alice, &event, &seat(4, 20)).await;
    assert_rate_limited(&next, "holds", "user");
}

/// POST and DELETE of the waitlist share one limiter per user (refused or not by the
/// waitlist itself); reading one's place is not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitlist_join_and_leave_are_rate_limited() {
    let mut env = TestEnv::new(1).await;
    env.settings.rate_limits.waitlist = class((0.2, 2), (0.0, 0));
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(1, 10), json!({})).await;
    let erin = token(&env, "erin");
    // An unknown seat: answered at once (no consumer needed), and counted all the same.
    let path = format!("{}/v1/events/{event}/seats/A-9-9/waitlist", gw.api.base);
    let join = || answer(gw.api.http.post(&path).bearer_auth(&erin));
    let leave = || answer(gw.api.http.delete(&path).bearer_auth(&erin));

    let a = join().await;
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (404, Some("seat_not_found"))
    );
    let a = leave().await;
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (404, Some("seat_not_found"))
    );
    assert_rate_limited(&join().await, "waitlist", "user");
    assert_rate_limited(&leave().await, "waitlist", "user");
    let place = answer(gw.api.http.get(&path).bearer_auth(&erin)).await;
    assert_eq!(
        place.body["code"], "seat_not_found",
        "reading is not limited: {place:?}"
    );
}

/// Joining the waiting room (and asking for its challenge) share one limiter per user;
/// polling a ticket has its own, looser one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_join_and_status_are_rate_limited() {
    let mut env = TestEnv::new(1).await;
    env.settings.rate_limits.queue = class((0.2, 2), (0.0, 0));
    env.settings.rate_limits.queue_status = class((0.2, 1), (0.0, 0));
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(1, 10), json!({})).await;
    let fay = token(&env, "fay");
    let base = format!("{}/v1/events/{event}/queue", gw.api.base);
    // This event has no waiting room: answered at once, and counted all the same.
    let a = answer(
        gw.api
            .http
            .post(format!("{base}/challenge"))
            .bearer_auth(&fay),
    )
    .await;
    assert_eq!(a.body["code"], "waiting_room_off", "{a:?}");
    let a = answer(gw.api.http.post(&base).bearer_auth(&fay)).await;
    assert_eq!(a.body["code"], "waiting_room_off", "{a:?}");
    assert_rate_limited(
        &answer(gw.api.http.post(&base).bearer_auth(&fay)).await,
        "queue",
        "user",
    );
    let status = format!("{base}/{}", uuid::Uuid::new_v4());
    let a = answer(gw.api.http.get(&status).bearer_auth(&fay)).await;
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (404, Some("ticket_not_found"))
    );
    assert_rate_limited(
        &answer(gw.api.http.get(&status).bearer_auth(&fay)).await,
        "queue_status",
        "user",
    );
}

/// Many users from one address share its limiter; X-Forwarded-For is ignored unless
/// trusted, so it cannot be used to get a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limit_holds_across_users_and_ignores_forwarded_for_by_default() {
    let mut env = TestEnv::new(1).await;
    assert!(
        !env.settings.rate_limits.trust_forwarded_for,
        "off by default"
    );
    // No per-user limit: five requests at once per address, then one every 5 s.
    env.settings.rate_limits.holds = class((0.0, 0), (0.2, 5));
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(2, 20), json!({})).await;

    for n in 0..5 {
        let user = token(&env, &format!("crowd-{n}"));
        let a = hold_seat(&gw.api, &user, &event, &seat(n, 20)).await;
        assert_eq!(a.status, 202, "{a:?}");
    }
    let sixth = token(&env, "crowd-5");
    let refused = hold_seat(&gw.api, &sixth, &event, &seat(5, 20)).await;
    assert_rate_limited(&refused, "holds", "ip");

    let spoofer = token(&env, "spoofer");
    for forwarded in ["198.51.100.7", "198.51.100.8, 127.0.0.1"] {
        let a = hold(
            &gw.api,
            &spoofer,
            &event,
            json!({"seat_ids": [seat(6, 20)]}),
            "",
            &[("x-forwarded-for", forwarded)],
        )
        .await;
        assert_rate_limited(&a, "holds", "ip");
    }
}

/// With `trust_forwarded_for`, the first X-Forwarded-For address is the client: each
/// has its own limiter, the proxies after it do not matter, and without the header (or
/// with an unreadable one) the socket peer is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_the_client_only_when_trusted() {
    let mut env = TestEnv::new(1).await;
    env.settings.rate_limits.trust_forwarded_for = true;
    env.settings.rate_limits.holds = class((0.0, 0), (0.1, 2));
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(2, 20), json!({})).await;
    let mut n = 0;
    let mut from = |forwarded: Option<&'static str>| {
        n += 1;
        let (api, event, user) = (&gw.api, event.clone(), token(&env, &format!("u{n}")));
        async move {
            let headers: Vec<(&str, &str)> = forwarded
                .map(|f| vec![("x-forwarded-for", f)])
                .unwrap_or_default();
            hold(
                api,
                &user,
                &event,
                json!({"seat_ids": [seat(n, 20)]}),
                "",
                &headers,
            )
            .await
        }
    };
    assert_eq!(from(Some("198.51.100.1")).await.status, 202);
    assert_eq!(from(Some("198.51.100.1, 10.0.0.1")).await.status, 202);
    assert_rate_limited(&from(Some("198.51.100.1, 10.0.0.2")).await, "holds", "ip");
    assert_eq!(from(Some("198.51.100.2")).await.status, 202);
    // No header, then an unreadable one: both the peer's (127.0.0.1) limiter.
    assert_eq!(from(None).await.status, 202);
    assert_eq!(from(Some("unknown")).await.status, 202);
    assert_rate_limited(&from(None).await, "holds", "ip");
}

/// 50 concurrent one-seat requests by one user at an event allowing 4 seats, with the
/// limiter and the pre-check on: exactly 4 seats end up held. Every request is either
/// accepted (and then decided by the consumer) or refused early with 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_user_seat_limit_holds_under_50_concurrent_requests() {
    let mut env = TestEnv::new(1).await;
    env.settings.rate_limits.seat_limit_precheck = true;
    let gw = gateway(&env.settings).await;
    let _consumer = consumer(&env.settings);
    let event = gw
        .api
        .create_event(section_a(5, 20), json!({"max_seats_per_user": 4}))
        .await;
    let greedy = token(&env, "greedy");
    let api = Arc::new(gw.api.clone_client());
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (api, event, greedy) = (api.clone(), event.clone(), greedy.clone());
            tokio::spawn(async move { hold_seat(&api, &greedy, &event, &seat(n, 20)).await })
        })
        .collect();
    let (mut accepted, mut refused_early) = (0i64, 0);
    for t in tasks {
        let a = t.await.expect("task");
        match a.status {
            202 => accepted += 1,
            409 => {
                assert_eq!(a.body["code"], "seat_limit_reached", "{a:?}");
                refused_early += 1;
            }
            _ => panic!("unexpected answer {a:?}"),
        }
    }
    assert_eq!(accepted + refused_early, 50);
    assert!(accepted >= 4, "{accepted} accepted");
    let pool = &env.pool;
    eventually(
        &format!("{accepted} decisions"),
        Duration::from_secs(60),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM requests")
                .fetch_one(pool)
                .await
                .expect("count");
            (n >= accepted).then_some(())
        },
    )
    .await;
    let held: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(quantity), 0) FROM holds WHERE user_id = $1 AND status = 'active'",
    )
    .bind(user_id(&env, "greedy"))
    .fetch_one(pool)
    .await
    .expect("held");
    assert_eq!(held, 4);
    let rejected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM requests WHERE reason = 'user_limit_exceeded'")
            .fetch_one(pool)
            .await
            .expect("rejected");
    assert_eq!(rejected, accepted - 4);
    assert_eq!(violations(pool).await, Violations::default());
}

/// The pre-check lets through every request that fits (up to exactly the limit), refuses
/// one more with a clear 409, answers a repeat of an accepted request (same
/// Idempotency-Key) as before, and counts only live holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_limit_precheck_refuses_a_user_at_the_limit() {
    let mut env = TestEnv::new(1).await;
    env.settings.rate_limits.seat_limit_precheck = true;
    let gw = gateway(&env.settings).await;
    let _consumer = consumer(&env.settings);
    let event = gw
        .api
        .create_event(section_a(2, 10), json!({"max_seats_per_user": 4}))
        .await;
    let api = &gw.api;
    let carol = token(&env, "carol");
    let wait = "?wait_ms=5000";

    let first = hold(
        api,
        &carol,
        &event,
        json!({"seat_ids": ["A-1-1", "A-1-2"]}),
        wait,
        &[],
    )
    .await;
    assert_eq!(
        (first.status, &first.body["status"]),
        (200, &json!("held")),
        "{first:?}"
    );
    let key = [("idempotency-key", "carol-second")];
    let body = json!({"seat_ids": ["A-1-3", "A-1-4"]});
    let second = hold(api, &carol, &event, body.clone(), wait, &key).await;
    assert_eq!(
        (second.status, &second.body["status"]),
        (200, &json!("held")),
        "up to the limit: {second:?}"
    );

    for over in [
        json!({"seat_ids": ["A-1-5"]}),
        json!({"section": "A", "quantity": 1}),
    ] {
        let refused = hold(api, &carol, &event, over, "", &[]).await;
        assert_eq!(refused.status, 409, "{refused:?}");
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(refused.body["code"], "seat_limit_reached");
        assert_eq!(refused.body["held"], 4);
        assert_eq!(refused.body["limit"], 4);
        assert_eq!(refused.body["requested"], 1);
        assert!(refused.body["detail"].as_str().unwrap_or("").contains("4"));
    }
    // A repeat of the accepted request gets its answer, not a refusal.
    let repeat = hold(api, &carol, &event, body, wait, &key).await;
    assert_eq!(repeat.status, 200, "{repeat:?}");
    assert_eq!(repeat.body["request_id"], second.body["request_id"]);
    // Others are not affected.
    let dave = token(&env, "dave");
    let theirs = hold(
        api,
        &dave,
        &event,
        json!({"seat_ids": ["A-1-5"]}),
        wait,
        &[],
    )
    .await;
    assert_eq!(
        (theirs.status, &theirs.body["status"]),
        (200, &json!("held")),
        "{theirs:?}"
    );
    // Once a hold is cancelled, its seats no longer count.
    let hold_id = first.body["hold_id"].as_str().expect("hold id");
    let cancelled = answer(
        api.http
            .delete(format!("{}/v1/holds/{hold_id}", api.base))
            .bearer_auth(&carol),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    let again = hold(
        api,
        &carol,
        &event,
        json!({"seat_ids": ["A-2-1", "A-2-2"]}),
        wait,
        &[],
    )
    .await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("held")),
        "{again:?}"
    );
    assert_eq!(violations(&env.pool).await, Violations::default());
}

/// A Redis server of the test's own, to take away.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (deploy/local installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Without Redis the limiter lets requests through, quickly; once Redis is back, it
/// limits again. (Waitlist requests for an unknown seat: nothing else on their way uses
/// Redis, so they show the limiter alone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_fails_open_without_redis_and_limits_again_when_it_is_back() {
    let mut env = TestEnv::new(1).await;
    let mut redis = PrivateRedis::start(free_port());
    env.settings.redis.url = format!("redis://127.0.0.1:{}/", redis.port);
    env.settings.rate_limits.waitlist = class((0.1, 1), (0.0, 0));
    env.settings.rate_limits.redis_timeout_ms = 200;
    env.settings.rate_limits.redis_retry_ms = 300;
    let gw = gateway(&env.settings).await;
    let event = gw.api.create_event(section_a(1, 10), json!({})).await;
    let frank = token(&env, "frank");
    let path = format!("{}/v1/events/{event}/seats/A-9-9/waitlist", gw.api.base);
    let join = || answer(gw.api.http.post(&path).bearer_auth(&frank));

    assert_eq!(join().await.status, 404);
    assert_rate_limited(&join().await, "waitlist", "user");

    redis.kill();
    for _ in 0..10 {
        let started = Instant::now();
        let a = join().await;
        assert_eq!(a.body["code"], "seat_not_found", "let through: {a:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }

    let _redis = PrivateRedis::start(redis.port);
    eventually(
        "the limiter to be back",
        Duration::from_secs(10),
        || async {
            let a = join().await;
            (a.status == 429).then(|| assert_rate_limited(&a, "waitlist", "user"))
        },
    )
    .await;
}
