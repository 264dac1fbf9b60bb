//! Seat waitlists: a released seat goes to the first person in line in the same step as
//! its release (a storm of requests for that seat cannot take it in between), the next in
//! line gets it when an offer is given up, and the waitlists survive a Redis flush.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use seatq_common::record;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_common::testkit::{eventually, read_topic};
use seatq_system_tests::stack::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_released_seat_goes_to_the_first_in_line_with_no_gap() {
    let stack = Arc::new(Stack::start(|_| {}).await);
    let event = stack.event(json!({})).await;
    let (alice, bob, carol, dave) = (
        stack.token("alice").await,
        stack.token("bob").await,
        stack.token("carol").await,
        stack.token("dave").await,
    );
    let seat = "A-1-5";
    let hold = stack.hold(&alice, &event, &[seat]).await;
    let hold = hold["hold_id"].as_str().expect("hold id").to_owned();

    // Joining: in order, once each, only for a taken seat, not for your own.
    for (i, token) in [&bob, &carol, &dave].into_iter().enumerate() {
        let (status, place) = stack.waitlist(Method::POST, token, &event, seat).await;
        assert_eq!(status, 201, "{place}");
        assert_eq!(place["position"], i as i64 + 1, "{place}");
        assert_eq!(place["status"], "waiting");
    }
    let (status, again) = stack.waitlist(Method::POST, &bob, &event, seat).await;
    assert_eq!(
        (status.as_u16(), again["code"].as_str()),
        (409, Some("already_waiting"))
    );
    let (status, own) = stack.waitlist(Method::POST, &alice, &event, seat).await;
    assert_eq!(
        (status.as_u16(), own["code"].as_str()),
        (409, Some("seat_is_yours"))
    );
    let (status, free) = stack.waitlist(Method::POST, &bob, &event, "A-1-6").await;
    assert_eq!(
        (status.as_u16(), free["code"].as_str()),
        (409, Some("seat_available"))
    );
    let (status, place) = stack.waitlist(Method::GET, &carol, &event, seat).await;
    assert_eq!(status, 200, "{place}");
    assert_eq!(
        (place["position"].as_i64(), place["length"].as_i64()),
        (Some(2), Some(3))
    );
    // The seat's hold has ~10 minutes left and one person is ahead.
    let wait = place["estimated_wait_secs"].as_i64().expect("an estimate");
    assert!((500..=900).contains(&wait), "estimate {wait}");

    // Only its owner (or an admin) can give a hold up; to anyone else it does not exist.
    let (status, problem) = stack.cancel_hold(&bob, &hold).await;
    assert_eq!(
        (status.as_u16(), problem["code"].as_str()),
        (404, Some("hold_not_found"))
    );

    // A storm of people requesting the seat while alice lets it go.
    let stop = Arc::new(AtomicBool::new(false));
    let mut storm = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (stack, event, stop) = (stack.clone(), event.clone(), stop.clone());
        storm.spawn(async move {
            let token = stack.token(&format!("storm{i}")).await;
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, reply) = stack.request_hold(&token, &event, &[seat]).await;
                assert!(status == 200 || status == 202, "{reply}");
                outcomes.push(reply["status"].as_str().unwrap_or("").to_owned());
            }
            outcomes
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, cancelled) = stack.cancel_hold(&alice, &hold).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let offer = stack.wait_offer(&bob, &event, seat).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tries = 0;
    while let Some(outcomes) = storm.join_next().await {
        let outcomes = outcomes.expect("storm task");
        tries += outcomes.len();
        assert!(
            outcomes.iter().all(|o| o != "held"),
            "a storm request took the seat: {outcomes:?}"
        );
    }
    assert!(tries > 20, "the storm ran ({tries} requests)");
    assert_eq!(
        stack.seat(&event, seat).await,
        ("held".into(), Some(stack.user("bob")))
    );
    let view = stack.hold_view(&bob, &offer).await;
    assert_eq!(
        (view["status"].as_str(), view["from_waitlist"].as_bool()),
        (Some("active"), Some(true))
    );
    // Carol and dave moved up.
    let (_, place) = stack.waitlist(Method::GET, &dave, &event, seat).await;
    assert_eq!(place["position"], 2, "{place}");

    // Bob does not want it after all: carol is next, with no gap either.
    let (status, _) = stack.cancel_hold(&bob, &offer).await;
    assert_eq!(status, 200);
    let offer = stack.wait_offer(&carol, &event, seat).await;
    assert_eq!(
        stack.seat(&event, seat).await,
        ("held".into(), Some(stack.user("carol")))
    );
    // Dave leaves the line; carol's offer lapses to nobody and the seat is free.
    let (status, _) = stack.waitlist(Method::DELETE, &dave, &event, seat).await;
    assert_eq!(status, 204);
    let (status, gone) = stack.waitlist(Method::GET, &dave, &event, seat).await;
    assert_eq!(
        (status.as_u16(), gone["code"].as_str()),
        (404, Some("not_waiting"))
    );
    stack.cancel_hold(&carol, &offer).await;
    eventually("the seat to be free", Duration::from_secs(10), || async {
        (stack.seat(&event, seat).await.0 == "available").then_some(())
    })
    .await;
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// A waitlist offer is an ordinary hold with its own window: unpaid, it expires and goes
/// to the next in line; someone at the per-user limit is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offer_expires_to_the_next_in_line_and_skips_users_at_their_limit() {
    let stack = Stack::start(|s| s.waitlist.offer_ttl_secs = 2).await;
    let event = stack.event(json!({"max_seats_per_user": 1})).await;
    let (alice, bob, carol, dave) = (
        stack.token("alice").await,
        stack.token("bob").await,
        stack.token("carol").await,
        stack.token("dave").await,
    );
    let seat = "A-2-2";
    let hold = stack.hold(&alice, &event, &[seat]).await;
    for token in [&bob, &carol, &dave] {
        let (status, place) = stack.waitlist(Method::POST, token, &event, seat).await;
        assert_eq!(status, 201, "{place}");
    }
    // Carol holds her one allowed seat elsewhere: she will be skipped.
    stack.hold(&carol, &event, &["A-1-1"]).await;
    let (status, _) = stack
        .cancel_hold(&alice, hold["hold_id"].as_str().expect("hold"))
        .await;
    assert_eq!(status, 200);
    let bobs = stack.wait_offer(&bob, &event, seat).await;
    let offered = stack.hold_view(&bob, &bobs).await;
    let window = offered["expires_at"]
        .as_str()
        .expect("expiry")
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("time")
        - offered["created_at"]
            .as_str()
            .expect("created")
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("time");
    assert_eq!(window.num_seconds(), 2, "the offer window");
    // Bob lets it lapse: the scheduler expires it, carol is skipped, dave gets it.
    stack
        .wait_hold(
            &bob,
            &bobs,
            "bob's offer to expire",
            Duration::from_secs(30),
            |h| h["status"] == "expired",
        )
        .await;
    stack.wait_offer(&dave, &event, seat).await;
    assert_eq!(
        stack.seat(&event, seat).await,
        ("held".into(), Some(stack.user("dave")))
    );
    let (status, skipped) = stack.waitlist(Method::GET, &carol, &event, seat).await;
    assert_eq!(
        (status.as_u16(), skipped["code"].as_str()),
        (404, Some("not_waiting"))
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM waitlist_entries WHERE status = 'skipped'")
            .await,
        1
    );
    // Carol is told why she was passed over.
    let carol_id = stack.user("carol");
    let told = |records: &[Vec<u8>]| {
        records.iter().any(|r| {
            record::decode_all::<SeatEventEnvelope>(r)
                .unwrap_or_default()
                .iter()
                .any(|e| {
                    matches!(&e.payload, SeatEvent::WaitlistUpdated { user_id, status, .. }
                    if user_id.0 == carol_id && status == "skipped_at_limit")
                })
        })
    };
    read_topic(&stack.env, &stack.env.topics.seat_events, 2, told);
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waitlists_are_rebuilt_from_postgres_after_redis_loses_them() {
    // A Redis database of this test's own, so flushing it touches no other test.
    let stack = Stack::start(|s| {
        s.redis.url = format!(
            "{}9",
            s.redis.url.trim_end_matches(|c: char| c.is_ascii_digit())
        );
        s.scheduler.sweep_interval_ms = 300;
    })
    .await;
    let redis_url = stack.env.settings.redis.url.clone();
    assert!(redis_url.ends_with("/9"), "{redis_url}");
    let redis = redis::Client::open(redis_url).expect("redis");
    let redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let flush = || {
        let mut redis = redis.clone();
        async move {
            redis::cmd("FLUSHDB")
                .query_async::<()>(&mut redis)
                .await
                .expect("FLUSHDB")
        }
    };
    let event = stack.event(json!({})).await;
    let (alice, bob, carol) = (
        stack.token("alice").await,
        stack.token("bob").await,
        stack.token("carol").await,
    );
    let seat = "A-1-9";
    let hold = stack.hold(&alice, &event, &[seat]).await;
    for token in [&bob, &carol] {
        let (status, place) = stack.waitlist(Method::POST, token, &event, seat).await;
        assert_eq!(status, 201, "{place}");
    }
    let key = format!("waitlist:{event}:{}", seat_no(seat));
    let mirror = || {
        let mut redis = redis.clone();
        let key = key.clone();
        async move {
            redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async::<Vec<String>>(&mut redis)
                .await
                .expect("LRANGE")
        }
    };
    let line = vec![stack.user("bob"), stack.user("carol")];
    eventually("the mirror", Duration::from_secs(10), || async {
        (mirror().await == line).then_some(())
    })
    .await;

    // Lost: a position read rebuilds the list from PostgreSQL.
    flush().await;
    let (status, place) = stack.waitlist(Method::GET, &carol, &event, seat).await;
    assert_eq!(status, 200, "{place}");
    assert_eq!(
        (place["position"].as_i64(), place["length"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(mirror().await, line);
    // Lost again, nobody reads: the scheduler's sweeper reconciles it.
    flush().await;
    eventually(
        "the sweeper to rebuild the mirror",
        Duration::from_secs(10),
        || async { (mirror().await == line).then_some(()) },
    )
    .await;
    // And the hand-off never depended on Redis.
    flush().await;
    let (status, _) = stack
        .cancel_hold(&alice, hold["hold_id"].as_str().expect("hold"))
        .await;
    assert_eq!(status, 200);
    stack.wait_offer(&bob, &event, seat).await;
    eventually(
        "the mirror after the offer",
        Duration::from_secs(10),
        || async { (mirror().await == vec![stack.user("carol")]).then_some(()) },
    )
    .await;
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// `GET /v1/me/waitlists` lists every place of the caller across seats, with positions,
/// and shows a place that became an offer with its hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn my_waitlists_lists_places_and_offers() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let (alice, bob, carol) = (
        stack.token("alice").await,
        stack.token("bob").await,
        stack.token("carol").await,
    );
    let first = stack.hold(&alice, &event, &["A-1-9"]).await;
    stack.hold(&alice, &event, &["A-1-10"]).await;
    for seat in ["A-1-9", "A-1-10"] {
        let (status, place) = stack.waitlist(Method::POST, &bob, &event, seat).await;
        assert_eq!(status, 201, "{place}");
    }
    let (status, place) = stack.waitlist(Method::POST, &carol, &event, "A-1-9").await;
    assert_eq!(status, 201, "{place}");
    let mine = |token: String| {
        let api = &stack.api;
        async move {
            let (status, view) = api.get("/v1/me/waitlists", Some(&token)).await;
            assert_eq!(status, 200, "{view}");
            view["places"]
                .as_array()
                .expect("places")
                .iter()
                .map(|p| {
                    (
                        p["seat_id"].as_str().expect("seat").to_owned(),
                        p["status"].as_str().expect("status").to_owned(),
                        p["position"].as_i64().expect("position"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let waiting = |seat: &str, position| (seat.to_owned(), "waiting".to_owned(), position);
    assert_eq!(
        mine(bob.clone()).await,
        [waiting("A-1-9", 1), waiting("A-1-10", 1)]
    );
    assert_eq!(mine(carol.clone()).await, [waiting("A-1-9", 2)]);
    assert_eq!(mine(alice.clone()).await, []);

    // Alice lets A-1-9 go: Bob's place there becomes his offer, Carol moves up.
    let (status, cancelled) = stack
        .cancel_hold(&alice, first["hold_id"].as_str().expect("hold id"))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let offer = stack.wait_offer(&bob, &event, "A-1-9").await;
    assert_eq!(
        mine(bob.clone()).await,
        [
            ("A-1-9".to_owned(), "offered".to_owned(), 0),
            waiting("A-1-10", 1)
        ]
    );
    let (_, view) = stack.api.get("/v1/me/waitlists", Some(&bob)).await;
    assert_eq!(view["places"][0]["hold_id"], offer.as_str());
    assert_eq!(mine(carol).await, [waiting("A-1-9", 1)]);
}
