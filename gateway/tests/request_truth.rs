//! What a client is told about a hold request agrees with what becomes of it, through the
//! real gateway and consumer: a request that got a 202 answers `pending` or its decision,
//! never 404, even when Redis lost its entry — and still only to its owner.

mod support;

use std::time::Duration;

use seatq_common::testkit::TestEnv;
use serde_json::json;
use support::{assert_problem, gateway, sections};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_stays_pending_for_its_owner_when_redis_forgets_it() {
    let env = TestEnv::new(1).await;
    // No consumer yet: the request stays undecided as long as the test needs.
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let alice = api.token("alice", "user").await;
    let bob = api.token("bob", "user").await;

    let (status, body) = api
        .hold(&alice, &event, &json!({"seat_ids": ["A-1-1"]}), "", &[])
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["request_id"].as_str().expect("request id").to_owned();
    let path = format!("/v1/hold-requests/{id}");
    let (status, pending) = api.get(&path, Some(&alice)).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["event_id"], event.as_str());
    assert!(pending["ahead"].is_i64(), "{pending}");

    // Redis forgets it (this request's key only: other tests share this Redis).
    let redis = redis::Client::open(env.settings.redis.url.as_str()).expect("redis url");
    let mut redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let removed: i64 = redis::cmd("DEL")
        .arg(format!("seatq:req:{id}"))
        .query_async(&mut redis)
        .await
        .expect("DEL");
    assert_eq!(removed, 1, "the accepted request's entry");

    let (status, pending) = api.get(&path, Some(&alice)).await;
    assert_eq!(
        status, 200,
        "a request that got a 202 is not unknown: {pending}"
    );
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["request_id"], id.as_str());
    assert!(
        pending.get("ahead").is_none(),
        "no queue position: {pending}"
    );
    // Still only to its owner; a made-up id is unknown to anyone.
    assert_problem(&api.get(&path, Some(&bob)).await, 404, "request_not_found");
    let made_up = format!("/v1/hold-requests/{}", uuid::Uuid::now_v7());
    assert_problem(
        &api.get(&made_up, Some(&alice)).await,
        404,
        "request_not_found",
    );

    // Once the consumer runs, the decision.
    let _consumer = support::consumer(&env.settings);
    let decided = api.decision(&alice, &id, Duration::from_secs(60)).await;
    assert_eq!(decided["status"], "held", "{decided}");
    assert_eq!(decided["seat_ids"], json!(["A-1-1"]));
    assert_problem(&api.get(&path, Some(&bob)).await, 404, "request_not_found");
}
