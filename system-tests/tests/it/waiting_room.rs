//! The virtual waiting room through the whole stack: a lottery before the sale opens and
//! first come, first served after; admission tokens gate hold requests (forged, expired,
//! other-event and missing tokens are refused); proof of work is required and single use;
//! the line survives Redis being flushed; positions and admission reach the user's stream;
//! the admission rate backs off when decisions slow down; the lottery can be checked by
//! anyone from what it publishes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use seatq_common::ids::{EventId, UserId};
use seatq_common::pow;
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_common::testkit::sse::SseClient;
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// A waiting-room event without proof of work, on sale `opens_in_secs` from now.
async fn room(stack: &Stack, opens_in_secs: i64, extra: Value) -> String {
    let mut body = json!({
        "waiting_room_enabled": true,
        "pow_difficulty": 0,
        "on_sale_at": (Utc::now() + chrono::Duration::seconds(opens_in_secs)).to_rfc3339(),
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    stack.event(body).await
}

async fn join(stack: &Stack, token: &str, event: &str, body: Value) -> (u16, Value) {
    let (status, reply) = stack
        .api
        .post(&format!("/v1/events/{event}/queue"), Some(token), &body)
        .await;
    (status.as_u16(), reply)
}

async fn ticket(stack: &Stack, token: &str, event: &str, ticket: &str) -> Value {
    let (status, view) = stack
        .api
        .get(&format!("/v1/events/{event}/queue/{ticket}"), Some(token))
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Wait until the ticket is admitted; its admission token.
async fn admitted(stack: &Stack, token: &str, event: &str, id: &str) -> String {
    eventually("admission", WAIT, || async {
        let view = ticket(stack, token, event, id).await;
        view["admission_token"].as_str().map(str::to_owned)
    })
    .await
}

/// Spearman's rank correlation of two orderings of the same items.
fn rank_correlation(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

const LOTTERY_SECRET: &str = "fixed seed for the lottery test";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lottery_before_the_sale_opens_then_first_come_first_served() {
    // A fixed lottery secret: the draw (a keyed hash of event and user) is reproducible.
    let stack = Stack::start(|s| {
        s.waiting_room.secret = LOTTERY_SECRET.into();
        s.waiting_room.initial_rate = 2000.0;
        s.waiting_room.tick_ms = 200;
    })
    .await;
    // 600 requests must fit before the sale opens, on a loaded CI machine too.
    let event = room(&stack, 20, json!({})).await;
    let mut tokens = Vec::new();
    let mut tickets = Vec::new();
    // 300 people arrive one after another before the sale opens.
    for i in 0..300 {
        let token = stack.token(&format!("early{i:03}")).await;
        let (status, view) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["provisional"], true, "{view}");
        tickets.push(view["ticket"].as_str().expect("ticket").to_owned());
        tokens.push(token);
    }
    // Joining again gives the same ticket back.
    let (status, again) = join(&stack, &tokens[7], &event, json!({})).await;
    assert_eq!(
        (status, again["ticket"].as_str()),
        (200, Some(tickets[7].as_str()))
    );
    // Nobody is let in before the sale opens.
    assert!(ticket(&stack, &tokens[0], &event, &tickets[0]).await["admission_token"].is_null());
    assert_eq!(
        stack
            .count("SELECT count(*) FROM queue_tickets WHERE status = 'admitted'")
            .await,
        0
    );
    // After it opens, 50 more arrive in order.
    let pool = stack.pool().clone();
    let event_id: EventId = event.parse().expect("event id");
    eventually("the sale to open", WAIT, || async {
        (Utc::now()
            > sqlx::query_scalar::<_, chrono::DateTime<Utc>>(
                "SELECT on_sale_at FROM events WHERE id = $1",
            )
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .expect("on_sale_at"))
        .then_some(())
    })
    .await;
    let mut late = Vec::new();
    for i in 0..50 {
        let token = stack.token(&format!("late{i:02}")).await;
        let (status, view) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["provisional"], false);
        late.push(view["ticket"].as_str().expect("ticket").to_owned());
    }
    eventually("everyone admitted", WAIT, || async {
        (stack
            .count("SELECT count(*) FROM queue_tickets WHERE status = 'waiting'")
            .await
            == 0)
            .then_some(())
    })
    .await;
    // Admission order is the line's order (admitted in batches: order within by sort key).
    let order: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT id FROM queue_tickets WHERE event_id = $1 ORDER BY admitted_at, sort_key",
    )
    .bind(event_id)
    .fetch_all(stack.pool())
    .await
    .expect("order");
    let admitted: Vec<String> = order.into_iter().map(|(id,)| id.to_string()).collect();
    let place: HashMap<&str, usize> = admitted
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // The pre-queue first, shuffled: its admission order is unrelated to arrival order.
    let early_ranks: Vec<usize> = tickets.iter().map(|t| place[t.as_str()]).collect();
    assert!(
        early_ranks.iter().all(|r| *r < 300),
        "the pre-queue goes first"
    );
    // The draw is the keyed hash of (event, user) under the fixed secret, and the
    // pre-queue is admitted in the order of the draws: checked exactly, ticket by ticket.
    let keys: Vec<(uuid::Uuid, String, f64)> =
        sqlx::query_as("SELECT id, user_id, sort_key FROM queue_tickets WHERE event_id = $1")
            .bind(event_id)
            .fetch_all(stack.pool())
            .await
            .expect("sort keys");
    let key_of: HashMap<String, f64> = keys
        .iter()
        .map(|(id, _, key)| (id.to_string(), *key))
        .collect();
    for (id, user, key) in keys
        .iter()
        .filter(|(id, ..)| tickets.contains(&id.to_string()))
    {
        let draw =
            seatq_common::waiting_room::lottery_key(LOTTERY_SECRET.as_bytes(), event_id, user);
        assert_eq!(*key, draw, "ticket {id}");
    }
    let mut by_place = tickets.clone();
    by_place.sort_by_key(|t| place[t.as_str()]);
    let mut by_draw = tickets.clone();
    by_draw.sort_by(|a, b| key_of[a].total_cmp(&key_of[b]));
    assert_eq!(by_place, by_draw, "the pre-queue is admitted in draw order");
    // And the draws are unrelated to arrival order. The event id is new each run, so the
    // draws are too: under no relation, Spearman's rho over 300 has a standard deviation
    // of 1/sqrt(299) = 0.058, and 0.25 (4.3 of those) fails a fair lottery about once in
    // 60,000 runs, while a draw that followed arrival would give rho near 1.
    let arrival: Vec<usize> = (0..300).collect();
    let rho = rank_correlation(&arrival, &early_ranks);
    assert!(
        rho.abs() < 0.25,
        "admission order follows arrival order (rho = {rho:.3})"
    );
    // Then the late ones, strictly first come, first served.
    let late_ranks: Vec<usize> = late.iter().map(|t| place[t.as_str()]).collect();
    assert!(late_ranks.windows(2).all(|w| w[0] < w[1]), "{late_ranks:?}");
    assert_eq!(late_ranks[0], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_requests_need_a_valid_admission_token() {
    let stack = Stack::start(|s| s.waiting_room.tick_ms = 200).await;
    let event = room(&stack, -60, json!({})).await;
    let other = room(&stack, -60, json!({})).await;
    let alice = stack.token("alice").await;
    let hold = json!({"seat_ids": ["A-1-1"]});
    let try_hold = |admission: String| {
        let (stack, event, hold, alice) = (&stack, event.clone(), hold.clone(), alice.clone());
        async move {
            let headers: Vec<(&str, &str)> = if admission.is_empty() {
                Vec::new()
            } else {
                vec![("x-admission-token", admission.as_str())]
            };
            let (status, reply) = stack
                .api
                .hold(&alice, &event, &hold, "?wait_ms=5000", &headers)
                .await;
            (status.as_u16(), reply)
        }
    };
    let (status, refused) = try_hold(String::new()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("admission_required")),
        "{refused}"
    );

    let (status, view) = join(&stack, &alice, &event, json!({})).await;
    assert_eq!(status, 201, "{view}");
    let token = admitted(
        &stack,
        &alice,
        &event,
        view["ticket"].as_str().expect("ticket"),
    )
    .await;
    // Forged (another key), expired, and another event's tokens are refused.
    let keys = seatq_gateway::admission::AdmissionKeys::new("not the waiting room secret");
    let user = UserId(stack.user("alice"));
    let event_id: EventId = event.parse().expect("id");
    let forged = keys
        .issue(&user, event_id, uuid::Uuid::new_v4(), Utc::now(), 600)
        .expect("forged")
        .0;
    let (status, refused) = try_hold(forged).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("admission_invalid"))
    );
    let real =
        seatq_gateway::admission::AdmissionKeys::new(&stack.env.settings.waiting_room.secret);
    let expired = real
        .issue(
            &user,
            event_id,
            uuid::Uuid::new_v4(),
            Utc::now() - chrono::Duration::hours(3),
            600,
        )
        .expect("expired")
        .0;
    let (status, refused) = try_hold(expired).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("admission_expired"))
    );
    let (_, other_view) = join(&stack, &alice, &other, json!({})).await;
    let other_token = admitted(
        &stack,
        &alice,
        &other,
        other_view["ticket"].as_str().expect("ticket"),
    )
    .await;
    let (status, refused) = try_hold(other_token).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("admission_wrong_event"))
    );
    // Bob cannot use alice's token.
    let bob = stack.token("bob").await;
    let (status, refused) = stack
        .api
        .hold(
            &bob,
            &event,
            &hold,
            "",
            &[("x-admission-token", token.as_str())],
        )
        .await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (403, Some("admission_invalid"))
    );
    // Alice's own token works.
    let (status, held) = try_hold(token).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["status"], "held");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_takes_a_proof_of_work_used_once() {
    let stack = Stack::start(|_| {}).await;
    let event = room(&stack, -60, json!({"pow_difficulty": 10})).await;
    let elsewhere = room(&stack, -60, json!({"pow_difficulty": 10})).await;
    let (alice, bob) = (stack.token("alice").await, stack.token("bob").await);
    let (status, refused) = join(&stack, &alice, &event, json!({})).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("challenge_required"))
    );
    let (status, challenge) = stack
        .api
        .post(
            &format!("/v1/events/{event}/queue/challenge"),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{challenge}");
    assert_eq!(challenge["difficulty"], 10);
    let text = challenge["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    // A wrong nonce, then the right one.
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| pow::work(&text, n) < 10)
        .expect("a miss");
    let (status, refused) = join(
        &stack,
        &alice,
        &event,
        json!({"challenge": text, "nonce": wrong}),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("challenge_unsolved"))
    );
    let nonce = pow::solve(&text, 10);
    let solution = json!({"challenge": text, "nonce": nonce});
    let (status, view) = join(&stack, &alice, &event, solution.clone()).await;
    assert_eq!(status, 201, "{view}");
    // The same solution again (bob reusing it): refused. At another event: refused.
    let (status, refused) = join(&stack, &bob, &event, solution.clone()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("challenge_used"))
    );
    let (status, refused) = join(&stack, &bob, &elsewhere, solution).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("challenge_wrong_event"))
    );
    // Junk is a clear 4xx, never a 5xx.
    for body in [
        json!({"challenge": "!!!", "nonce": "1"}),
        json!({"challenge": "", "nonce": ""}),
        json!({"challenge": "a".repeat(10_000), "nonce": "1"}),
        json!({"nonce": 5}),
    ] {
        let (status, problem) = join(&stack, &bob, &event, body).await;
        assert!((400..500).contains(&status), "{status} {problem}");
        assert!(problem["code"].is_string(), "{problem}");
    }
    // A small event has no waiting room.
    let plain = stack.event(json!({})).await;
    let (status, off) = join(&stack, &bob, &plain, json!({})).await;
    assert_eq!(
        (status, off["code"].as_str()),
        (409, Some("waiting_room_off"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_line_survives_redis_losing_it() {
    let stack = Stack::start(|s| {
        s.redis.url = format!(
            "{}8",
            s.redis.url.trim_end_matches(|c: char| c.is_ascii_digit())
        );
        // Nobody is admitted: the sale opens in an hour.
        s.waiting_room.position_update_secs = 1;
        s.waiting_room.tick_ms = 200;
    })
    .await;
    assert!(stack.env.settings.redis.url.ends_with("/8"));
    let event = room(&stack, 3600, json!({})).await;
    let mut members = Vec::new();
    for i in 0..20 {
        let token = stack.token(&format!("fan{i}")).await;
        let (status, view) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201);
        members.push((
            token,
            view["ticket"].as_str().expect("ticket").to_owned(),
            view["position"].clone(),
        ));
    }
    let redis = redis::Client::open(stack.env.settings.redis.url.clone()).expect("redis");
    let mut redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let before: Vec<Value> = {
        let mut out = Vec::new();
        for (token, id, _) in &members {
            out.push(ticket(&stack, token, &event, id).await["position"].clone());
        }
        out
    };
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut redis)
        .await
        .expect("FLUSHDB");
    for ((token, id, _), position) in members.iter().zip(&before) {
        assert_eq!(
            &ticket(&stack, token, &event, id).await["position"],
            position
        );
    }
    let length: i64 = redis::cmd("ZCARD")
        .arg(format!("wr:{event}"))
        .query_async(&mut redis)
        .await
        .expect("ZCARD");
    assert_eq!(length, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_and_admission_reach_the_users_stream() {
    let stack = Stack::start(|s| {
        s.notifier.embedded = true;
        s.waiting_room.initial_rate = 1.0;
        s.waiting_room.rate_step = 0.0;
        s.waiting_room.min_rate = 1.0;
        s.waiting_room.tick_ms = 500;
        s.waiting_room.position_update_secs = 1;
    })
    .await;
    let event = room(&stack, -60, json!({})).await;
    let mut streams = Vec::new();
    for name in ["first", "second", "third"] {
        let token = stack.token(name).await;
        let mut sse = SseClient::connect(
            &reqwest::Client::new(),
            &format!("{}/v1/me/stream", stack.api.base),
            Some(&token),
            None,
        )
        .await
        .expect("stream");
        sse.until(WAIT, |e| e.event == "ready").await;
        let (status, _) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201);
        streams.push(sse);
    }
    let third = streams.last_mut().expect("third");
    let mut positions = Vec::new();
    loop {
        let e = third
            .until(WAIT, |e| {
                e.event == "queue_position" || e.event == "admitted"
            })
            .await;
        if e.event == "admitted" {
            assert!(e.json()["ticket"].is_string());
            break;
        }
        positions.push(e.json()["position"].as_i64().expect("position"));
    }
    // Told where they stood while waiting (last in line, moving up), then let in.
    assert!(!positions.is_empty(), "no queue_position before admission");
    assert!(
        positions.iter().all(|p| (1..=3).contains(p)),
        "{positions:?}"
    );
    assert!(positions.windows(2).all(|w| w[1] <= w[0]), "{positions:?}");
    // One per second: the three were let in over a couple of seconds, not at once.
    let spread: Vec<(chrono::DateTime<Utc>,)> =
        sqlx::query_as("SELECT admitted_at FROM queue_tickets ORDER BY admitted_at")
            .fetch_all(stack.pool())
            .await
            .expect("admitted");
    assert_eq!(spread.len(), 3);
    assert!(spread[2].0 - spread[0].0 >= chrono::Duration::milliseconds(900));
}

/// A lag target below zero makes every tick "behind" (as a backlog of commands would):
/// the rate halves each tick down to its floor while people are still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admission_rate_backs_off_when_the_pipeline_is_behind() {
    let stack = Stack::start(|s| {
        s.waiting_room.initial_rate = 400.0;
        s.waiting_room.rate_step = 100.0;
        s.waiting_room.min_rate = 10.0;
        s.waiting_room.tick_ms = 300;
        s.waiting_room.target_lag = -1;
    })
    .await;
    let event = room(&stack, 2, json!({})).await;
    for i in 0..300 {
        let token = stack.token(&format!("p{i}")).await;
        let (status, _) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201);
    }
    let rates = Arc::new(std::sync::Mutex::new(Vec::new()));
    eventually("the rate to fall to its floor", WAIT, || async {
        let rate: Option<f64> = sqlx::query_scalar("SELECT rate FROM admission_control")
            .fetch_optional(stack.pool())
            .await
            .expect("rate");
        if let Some(r) = rate {
            let mut seen = rates.lock().expect("rates");
            if seen.last() != Some(&r) {
                seen.push(r);
            }
        }
        (rate == Some(10.0)).then_some(())
    })
    .await;
    let seen = rates.lock().expect("rates").clone();
    assert!(
        seen.windows(2).all(|w| w[1] < w[0]),
        "only ever down: {seen:?}"
    );
    let admitted = stack
        .count("SELECT count(*) FROM queue_tickets WHERE status = 'admitted'")
        .await;
    assert!(
        admitted < 300,
        "people are still waiting ({admitted} admitted)"
    );
    let (lag,): (Option<i64>,) = sqlx::query_as("SELECT last_lag FROM admission_control")
        .fetch_one(stack.pool())
        .await
        .expect("lag");
    assert!(lag.is_some(), "the lag was measured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_admission_queues_again_with_the_same_ticket() {
    let stack = Stack::start(|s| {
        s.waiting_room.tick_ms = 200;
        s.waiting_room.admission_ttl_secs = 1;
    })
    .await;
    let event = room(&stack, -60, json!({})).await;
    let alice = stack.token("alice").await;
    let (status, first) = join(&stack, &alice, &event, json!({})).await;
    assert_eq!(status, 201);
    let id = first["ticket"].as_str().expect("ticket").to_owned();
    admitted(&stack, &alice, &event, &id).await;
    // Still admitted: joining again changes nothing.
    let (status, same) = join(&stack, &alice, &event, json!({})).await;
    assert_eq!((status, same["status"].as_str()), (200, Some("admitted")));
    // Once the admission has run out, joining puts the same ticket back in line...
    let again = eventually("the admission to expire", WAIT, || async {
        let (status, view) = join(&stack, &alice, &event, json!({})).await;
        (status == 201).then_some(view)
    })
    .await;
    assert_eq!(again["ticket"].as_str(), Some(id.as_str()));
    assert_eq!(again["status"], "waiting");
    // ...and it is let in again.
    admitted(&stack, &alice, &event, &id).await;
}

/// Issue 21: the pre-sale lottery is committed to before anyone joins and can be checked
/// afterwards from public data alone, by code that is not seatq's
/// (`docs/lottery/verify_lottery.py`, Python's standard library).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anyone_can_check_the_lottery_from_its_published_data() {
    let stack = Stack::start(|s| {
        s.waiting_room.tick_ms = 200;
    })
    .await;
    // 20 joins must fit before the sale opens, on a loaded CI machine too.
    let event = room(&stack, 12, json!({})).await;
    let path = format!("/v1/events/{event}/lottery");
    let (status, before) = stack.api.get(&path, None).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["revealed"], false);
    assert!(before["seed"].is_null() && before["entrants_url"].is_null());
    let commitment = before["commitment"]
        .as_str()
        .expect("commitment")
        .to_owned();
    let (status, hidden) = stack.api.get(&format!("{path}/entrants"), None).await;
    assert_eq!(
        (status.as_u16(), hidden["code"].as_str()),
        (409, Some("lottery_not_revealed"))
    );
    let mut users = Vec::new();
    for i in 0..20 {
        let user = stack.user(&format!("entrant{i:02}"));
        let token = stack.api.token(&user, "user").await;
        let (status, view) = join(&stack, &token, &event, json!({})).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["provisional"], true, "joined before the draw: {view}");
        users.push(user);
    }
    // Revealed once the sale has opened (and joins in flight landed): the same commitment.
    let after = eventually("the lottery revealed", WAIT, || async {
        let (_, view) = stack.api.get(&path, None).await;
        (view["revealed"] == true).then_some(view)
    })
    .await;
    assert_eq!(after["commitment"].as_str(), Some(commitment.as_str()));
    assert_eq!(after["entrants"], 20, "{after}");
    // Someone joining after the draw closed is not an entrant.
    let late = stack.token("late").await;
    let (status, _) = join(&stack, &late, &event, json!({})).await;
    assert_eq!(status, 201);

    let Some(python) = seatq_common::testkit::needed_tool("ensure_python3", "PYTHON3_BIN") else {
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/lottery/verify_lottery.py"
    );
    let checked = tokio::process::Command::new(python)
        .arg(script)
        .arg(&stack.api.base)
        .arg(&event)
        .arg(&users[7])
        .output()
        .await
        .expect("run verify_lottery.py");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{stderr}");
    let recomputed: Vec<String> = String::from_utf8_lossy(&checked.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    // The order recomputed outside is the order seatq lets the entrants in.
    let line: Vec<String> = sqlx::query_scalar(
        "SELECT lottery_tag FROM queue_tickets WHERE event_id = $1::uuid \
           AND lottery_tag IS NOT NULL ORDER BY sort_key",
    )
    .bind(&event)
    .fetch_all(stack.pool())
    .await
    .expect("line");
    assert_eq!(recomputed, line);
    let mine = seatq_common::waiting_room::entrant_tag(
        EventId(event.parse().expect("event id")),
        &users[7],
    );
    let place = line.iter().position(|t| *t == mine).expect("an entrant") + 1;
    assert!(stderr.contains(&format!("place {place} of 20")), "{stderr}");
}
