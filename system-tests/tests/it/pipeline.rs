//! The core pipeline end to end: HTTP → gateway → Kafka → consumer → PostgreSQL, against
//! the real broker, database and Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use seatq_system_tests::pipeline::*;
use serde_json::json;

/// 2,000 concurrent single-seat requests from 2,000 users for 100 seats: exactly 100
/// held, every request decided once, and each seat went to its earliest request in
/// Kafka order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storm_of_requests_is_decided_first_come_first_served() {
    let p = Pipeline::start(3).await;
    let event = p.api.create_event(section_a(10, 10), json!({})).await;
    let accepted: Accepted = Arc::default();
    let storm_spec = Storm {
        requests: 2_000,
        concurrency: 200,
        seats: 100,
        per_row: 10,
        seed: 42,
    };
    let sent = storm(
        Arc::new(p.api.clone_client()),
        Arc::new(p.env.clone()),
        event,
        storm_spec,
        accepted.clone(),
    )
    .await;
    assert_eq!(sent, 2_000);
    let requests = accepted.lock().await.clone();
    wait_decided(&p.env.pool, 2_000, Duration::from_secs(120)).await;
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM seats WHERE status = 'held'"
        )
        .await,
        100
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM requests WHERE status = 'held'"
        )
        .await,
        100
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
    let decided = decisions(&p.env.pool).await;
    assert_eq!(decided.len(), 2_000);
    let wrong = replay_fifo(&requests, &decided, 8);
    assert!(
        wrong.is_empty(),
        "{} requests decided out of FIFO order: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// Overlapping two-seat requests: a request gets both seats or neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_seat_requests_are_all_or_nothing_under_contention() {
    let p = Pipeline::start(2).await;
    let event = p.api.create_event(section_a(1, 60), json!({})).await;
    let mut rng = Rng::new(7);
    let mut tasks = Vec::new();
    let api = Arc::new(p.api.clone_client());
    for i in 0..400 {
        let first = rng.below(59) as i32;
        let user = format!("pair-user-{i}");
        let token = user_token(&p.env, &user);
        let (api, event) = (api.clone(), event.clone());
        tasks.push(tokio::spawn(async move {
            let seats = json!([seat_id(first, 60), seat_id(first + 1, 60)]);
            let (status, body) = api
                .hold(&token, &event, &json!({"seat_ids": seats}), "", &[])
                .await;
            assert_eq!(status, 202, "{body}");
            (
                body["request_id"].as_str().expect("id").to_owned(),
                user,
                vec![first, first + 1],
            )
        }));
    }
    let mut requests = HashMap::new();
    for t in tasks {
        let (id, user, seats) = t.await.expect("task");
        requests.insert(id, (user, seats));
    }
    wait_decided(&p.env.pool, 400, Duration::from_secs(60)).await;
    assert_eq!(violations(&p.env.pool).await, Violations::default());
    let half_held = count(
        &p.env.pool,
        "SELECT count(*) FROM holds WHERE cardinality(seat_nos) <> 2",
    )
    .await;
    assert_eq!(half_held, 0);
    let decided = decisions(&p.env.pool).await;
    let wrong = replay_fifo(&requests, &decided, 8);
    assert!(wrong.is_empty(), "{:?}", &wrong[..wrong.len().min(5)]);
}

/// 50 concurrent requests by one user with a limit of 4 seats: exactly 4 held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_user_limit_holds_under_concurrent_requests() {
    let p = Pipeline::start(1).await;
    let event = p
        .api
        .create_event(section_a(5, 20), json!({"max_seats_per_user": 4}))
        .await;
    let token = user_token(&p.env, "greedy");
    let api = Arc::new(p.api.clone_client());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (api, event, token) = (api.clone(), event.clone(), token.clone());
            tokio::spawn(async move {
                let (status, body) = api
                    .hold(
                        &token,
                        &event,
                        &json!({"seat_ids": [seat_id(i, 20)]}),
                        "",
                        &[],
                    )
                    .await;
                assert_eq!(status, 202, "{body}");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    wait_decided(&p.env.pool, 50, Duration::from_secs(60)).await;
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM requests WHERE status = 'held'"
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM requests WHERE reason = 'user_limit_exceeded'"
        )
        .await,
        46
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

/// A repeat with the same Idempotency-Key is the same request, decided once; the same key
/// for a different request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_returns_the_same_request() {
    let p = Pipeline::start(1).await;
    let event = p.api.create_event(section_a(2, 10), json!({})).await;
    let token = user_token(&p.env, "careful");
    let body = json!({"seat_ids": ["A-1-1", "A-1-2"]});
    let key = [("idempotency-key", "order-123")];
    let (s1, first) = p.api.hold(&token, &event, &body, "", &key).await;
    let (s2, second) = p.api.hold(&token, &event, &body, "", &key).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (202, 202), "{first} {second}");
    assert_eq!(first["request_id"], second["request_id"]);
    let (s3, other) = p
        .api
        .hold(&token, &event, &json!({"seat_ids": ["A-2-1"]}), "", &key)
        .await;
    assert_eq!(s3, 422);
    assert_eq!(other["code"], "idempotency_key_reused");
    let id = first["request_id"].as_str().expect("id");
    let decision = p.api.decision(&token, id, Duration::from_secs(30)).await;
    assert_eq!(decision["status"], "held");
    // Asking again after the decision still answers with the same request, producing nothing.
    let (s4, again) = p
        .api
        .hold(&token, &event, &body, "?wait_ms=2000", &key)
        .await;
    assert_eq!(s4, 200, "{again}");
    assert_eq!(again["request_id"], first["request_id"]);
    assert_eq!(again["status"], "held");
    assert_eq!(count(&p.env.pool, "SELECT count(*) FROM requests").await, 1);
    assert_eq!(count(&p.env.pool, "SELECT count(*) FROM holds").await, 1);
    // Another user's key space is separate.
    let other_user = user_token(&p.env, "someone-else");
    let (s5, theirs) = p.api.hold(&other_user, &event, &body, "", &key).await;
    assert_eq!(s5, 202);
    assert_ne!(theirs["request_id"], first["request_id"]);
}

/// Best available gives adjacent seats; general admission is a counter; a taken seat is
/// rejected with nearby alternatives; `wait_ms` answers inline; the owner sees the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn best_available_general_admission_and_inline_decisions() {
    let p = Pipeline::start(1).await;
    let sections = json!([
        {"kind": "reserved", "code": "A", "name": "A", "rows": 3, "seats_per_row": 10, "price_cents": 5000},
        {"kind": "general_admission", "code": "FLOOR", "name": "Floor", "capacity": 5, "price_cents": 3000}
    ]);
    let event = p.api.create_event(sections, json!({})).await;
    let alice = user_token(&p.env, "alice");
    let bob = user_token(&p.env, "bob");

    let (status, best) = p
        .api
        .hold(
            &alice,
            &event,
            &json!({"section": "A", "quantity": 3}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{best}");
    assert_eq!(best["status"], "held");
    assert_eq!(best["seat_ids"], json!(["A-1-4", "A-1-5", "A-1-6"]));
    assert!(best["expires_at"].is_string());

    let (status, taken) = p
        .api
        .hold(
            &bob,
            &event,
            &json!({"seat_ids": ["A-1-5"]}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["status"], "rejected");
    assert_eq!(taken["reason"], "seats_unavailable");
    assert_eq!(taken["unavailable_seats"], json!(["A-1-5"]));
    assert_eq!(taken["alternatives"], json!(["A-1-3"]));

    let (status, ga) = p
        .api
        .hold(
            &bob,
            &event,
            &json!({"section": "FLOOR", "quantity": 3}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{ga}");
    assert_eq!(ga["status"], "held");
    assert_eq!(ga["section"], "FLOOR");
    let (_, ga2) = p
        .api
        .hold(
            &alice,
            &event,
            &json!({"section": "FLOOR", "quantity": 3}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(ga2["reason"], "insufficient_seats");

    // The hold is the owner's to see, nobody else's.
    let hold_path = format!("/v1/holds/{}", best["hold_id"].as_str().expect("hold id"));
    let (status, hold) = p.api.get(&hold_path, Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(hold["status"], "active");
    let (status, _) = p.api.get(&hold_path, Some(&bob)).await;
    assert_eq!(status, 404);
    let status_path = format!(
        "/v1/hold-requests/{}",
        best["request_id"].as_str().expect("id")
    );
    let (status, _) = p.api.get(&status_path, Some(&bob)).await;
    assert_eq!(status, 404);

    // The seat map shows it, and says which position it reflects.
    let (status, map) = p.api.get(&format!("/v1/events/{event}/seats"), None).await;
    assert_eq!(status, 200);
    let section = &map["sections"][0];
    assert_eq!(
        &section["status"].as_str().expect("status")[..10],
        "AAAHHHAAAA"
    );
    assert_eq!(map["sections"][1]["available"], 2);
    assert!(map["position"]["next_offset"].as_i64().expect("offset") >= 4);
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

/// A pending request reports how many commands are ahead of it; once the consumer runs
/// it is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_requests_are_reported_until_the_consumer_decides() {
    let env = seatq_common::testkit::TestEnv::new(1).await;
    let p = Pipeline::start_on(env, false).await;
    let event = p.api.create_event(section_a(1, 10), json!({})).await;
    let token = user_token(&p.env, "patient");
    let (status, accepted) = p
        .api
        .hold(
            &token,
            &event,
            &json!({"seat_ids": ["A-1-1"]}),
            "?wait_ms=300",
            &[],
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["request_id"].as_str().expect("id");
    let (status, pending) = p
        .api
        .get(&format!("/v1/hold-requests/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["ahead"], 0);
    let _consumer = start_consumer(&p.env);
    let decided = p.api.decision(&token, id, Duration::from_secs(30)).await;
    assert_eq!(decided["status"], "held");
}

/// Best available reads a section's free seats without locking them (locking a stadium
/// section's every free seat was the top cost under load). So a seat another writer takes
/// after that read must never be written over: the seat write is a compare-and-set, the
/// batch rolls back and is retried on what is really free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seat_taken_after_best_available_read_it_free_is_never_written_over() {
    let p = Pipeline::start(1).await;
    let sections = json!([
        {"kind": "reserved", "code": "A", "name": "A", "rows": 1, "seats_per_row": 4, "price_cents": 5000}
    ]);
    let event: seatq_common::ids::EventId = p
        .api
        .create_event(sections, json!({}))
        .await
        .parse()
        .expect("event id");
    let taken: i32 = sqlx::query_scalar("SELECT min(seat_no) FROM seats WHERE event_id = $1")
        .bind(event)
        .fetch_one(&p.env.pool)
        .await
        .expect("a seat");
    // Another writer (none exists today; a second consumer the fence missed, an operator's
    // SQL) holds a seat and keeps its transaction open.
    let box_office = uuid::Uuid::new_v4();
    let mut other = p.env.pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO holds (id, event_id, user_id, request_id, status, seat_nos, quantity, \
           created_at, expires_at) \
         VALUES ($3, $1, 'box-office', gen_random_uuid(), 'active', ARRAY[$2], 1, now(), \
           now() + interval '10 minutes')",
    )
    .bind(event)
    .bind(taken)
    .bind(box_office)
    .execute(&mut *other)
    .await
    .expect("a hold");
    sqlx::query(
        "UPDATE seats SET status = 'held', hold_id = $3 WHERE event_id = $1 AND seat_no = $2",
    )
    .bind(event)
    .bind(taken)
    .bind(box_office)
    .execute(&mut *other)
    .await
    .expect("take a seat");

    // All four seats are asked for: the batch reads the taken seat as free and wants it.
    let alice = user_token(&p.env, "alice");
    let (status, accepted) = p
        .api
        .hold(
            &alice,
            &event.to_string(),
            &json!({"section": "A", "quantity": 4}),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let pool = p.env.pool.clone();
    seatq_common::testkit::eventually(
        "the consumer waits on the taken seat's row",
        Duration::from_secs(30),
        || {
            let pool = pool.clone();
            async move {
                let waiting = count(
                    &pool,
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .await;
                (waiting > 0).then_some(())
            }
        },
    )
    .await;
    other.commit().await.expect("commit");

    wait_decided(&p.env.pool, 1, Duration::from_secs(30)).await;
    let (decision, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, reason FROM requests WHERE event_id = $1")
            .bind(event)
            .fetch_one(&p.env.pool)
            .await
            .expect("decision");
    assert_eq!(
        (decision.as_str(), reason.as_deref()),
        ("rejected", Some("insufficient_seats"))
    );
    let seat: (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT status, hold_id FROM seats WHERE event_id = $1 AND seat_no = $2")
            .bind(event)
            .bind(taken)
            .fetch_one(&p.env.pool)
            .await
            .expect("the taken seat");
    assert_eq!(
        seat,
        ("held".to_string(), Some(box_office)),
        "the other writer's seat is kept"
    );
    let held = count(
        &p.env.pool,
        "SELECT count(*) FROM seats WHERE status <> 'available'",
    )
    .await;
    assert_eq!(held, 1, "nothing else was taken");
    // The box office's hold was never a request, the one mismatch there is.
    assert_eq!(
        violations(&p.env.pool).await,
        Violations {
            decision_mismatch: 1,
            ..Violations::default()
        }
    );
}
