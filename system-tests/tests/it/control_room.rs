//! The on-sale control room through the whole stack: its live picture reaches every
//! watcher (sales, holds, lag, unmet demand); a pause and a resume take effect at
//! their place in the queue (FIFO intact around them, holds already made keep their
//! windows, the waiting room stops letting people in), ending is final; a contested seat's
//! story shows the earliest request won, and the buyer who lost gets a receipt saying how
//! far ahead the winner was.

use std::time::Duration;

use chrono::Utc;
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_common::testkit::sse::SseClient;
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Queue a hold request without waiting for its decision; its request id.
async fn queue_hold(stack: &Stack, token: &str, event: &str, seat: &str) -> String {
    let (status, reply) = stack
        .api
        .hold(token, event, &json!({"seat_ids": [seat]}), "", &[])
        .await;
    assert_eq!(status, 202, "{reply}");
    reply["request_id"].as_str().expect("request id").to_owned()
}

async fn set_sale(stack: &Stack, admin: &str, event: &str, state: &str) -> (u16, Value) {
    let (status, reply) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/sale"),
            Some(admin),
            &json!({"state": state, "note": format!("test: {state}")}),
        )
        .await;
    (status.as_u16(), reply)
}

/// The event's decided commands in queue order: (kind, status, reason).
async fn in_queue_order(stack: &Stack, event: &str) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT kind, status, reason FROM requests WHERE event_id = $1::uuid \
         ORDER BY kafka_offset, kafka_seq",
    )
    .bind(event)
    .fetch_all(stack.pool())
    .await
    .expect("requests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_takes_effect_at_its_place_in_the_queue() {
    let mut stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let admin = stack.admin_token().await;
    let early = stack.token("early").await;
    let kept = stack.hold(&early, &event, &["A-1-1"]).await;

    // With the consumer stopped, everything below queues up and is decided together, in
    // one batch or a few: the pause must split them by queue position, not by batch.
    stack.pause_consumer().await;
    let mut before = Vec::new();
    for i in 2..=7 {
        let token = stack.token(&format!("before{i}")).await;
        before.push((
            token.clone(),
            queue_hold(&stack, &token, &event, &format!("A-1-{i}")).await,
        ));
    }
    let (status, paused) = set_sale(&stack, &admin, &event, "paused").await;
    assert_eq!(status, 202, "queued behind the holds: {paused}");
    let mut during = Vec::new();
    for i in 1..=6 {
        let token = stack.token(&format!("during{i}")).await;
        during.push((
            token.clone(),
            queue_hold(&stack, &token, &event, &format!("A-2-{i}")).await,
        ));
    }
    let (status, resumed) = set_sale(&stack, &admin, &event, "open").await;
    assert_eq!(status, 202, "{resumed}");
    let late = stack.token("late").await;
    let late_request = queue_hold(&stack, &late, &event, "A-2-1").await;
    stack.resume_consumer();

    for (token, id) in &before {
        let d = stack.api.decision(token, id, WAIT).await;
        assert_eq!(d["status"], "held", "queued before the pause: {d}");
    }
    for (token, id) in &during {
        let d = stack.api.decision(token, id, WAIT).await;
        assert_eq!(
            (d["status"].as_str(), d["reason"].as_str()),
            (Some("rejected"), Some("sale_paused")),
            "queued during the pause: {d}"
        );
    }
    // After the resume the seat a paused request asked for is still there to take.
    let d = stack.api.decision(&late, &late_request, WAIT).await;
    assert_eq!(d["status"], "held", "queued after the resume: {d}");

    // By queue position: nothing between the pause and the resume was held, everything
    // outside it was decided as usual.
    let order = in_queue_order(&stack, &event).await;
    let mut state = "open";
    for (kind, status, reason) in &order {
        match kind.as_str() {
            "set_sale_state" => {
                assert_eq!(status, "applied");
                state = if state == "open" { "paused" } else { "open" };
            }
            "hold_seats" if state == "paused" => {
                assert_eq!(reason.as_deref(), Some("sale_paused"), "{order:?}")
            }
            "hold_seats" => assert_eq!(status, "held", "{order:?}"),
            other => panic!("unexpected command {other}"),
        }
    }
    // The hold made before the pause kept its window.
    let hold = stack
        .hold_view(&early, kept["hold_id"].as_str().expect("hold id"))
        .await;
    assert_eq!(
        (hold["status"].as_str(), &hold["expires_at"]),
        (Some("active"), &kept["expires_at"])
    );

    // Ending is final: the sale cannot be reopened, and holds are refused `sale_ended`.
    let (status, ended) = set_sale(&stack, &admin, &event, "ended").await;
    assert_eq!(
        (status, ended["detail"]["sale_state"].as_str()),
        (200, Some("ended")),
        "{ended}"
    );
    let (status, reopen) = set_sale(&stack, &admin, &event, "open").await;
    assert_eq!(
        (status, reopen["code"].as_str()),
        (409, Some("sale_ended")),
        "{reopen}"
    );
    let buyer = stack.token("after-end").await;
    let id = queue_hold(&stack, &buyer, &event, "A-2-9").await;
    let d = stack.api.decision(&buyer, &id, WAIT).await;
    assert_eq!(d["reason"], "sale_ended", "{d}");
    let (_, detail) = stack.api.get(&format!("/v1/events/{event}"), None).await;
    assert_eq!(
        (detail["sale_state"].as_str(), detail["sale_open"].as_bool()),
        (Some("ended"), Some(false))
    );
    let (_, status_view) = stack
        .api
        .get(&format!("/v1/admin/events/{event}/sale"), Some(&admin))
        .await;
    assert_eq!(status_view["sale_state"], "ended", "{status_view}");

    // Only organisers change a sale; a bad state is a 422 with a code.
    let (status, refused) = set_sale(&stack, &buyer, &event, "paused").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("admin_only"))
    );
    let (status, bad) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/sale"),
            Some(&admin),
            &json!({"state": "closed"}),
        )
        .await;
    assert_eq!(status.as_u16(), 422, "{bad}");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_sale_lets_nobody_in_from_its_waiting_room() {
    let stack = Stack::start(|s| {
        s.waiting_room.tick_ms = 200;
    })
    .await;
    let room = json!({"waiting_room_enabled": true, "pow_difficulty": 0,
        "on_sale_at": (Utc::now() - chrono::Duration::seconds(1)).to_rfc3339()});
    let paused = stack.event(room.clone()).await;
    let open = stack.event(room).await;
    let admin = stack.admin_token().await;
    let (status, reply) = set_sale(&stack, &admin, &paused, "paused").await;
    assert_eq!(status, 200, "{reply}");
    let fan = stack.token("fan").await;
    let join = |event: String| {
        let stack = &stack;
        let fan = fan.clone();
        async move {
            let (status, view) = stack
                .api
                .post(&format!("/v1/events/{event}/queue"), Some(&fan), &json!({}))
                .await;
            assert_eq!(status, 201, "{view}");
            view["ticket"].as_str().expect("ticket").to_owned()
        }
    };
    let in_paused = join(paused.clone()).await;
    let in_open = join(open.clone()).await;
    let admitted = |event: String, ticket: String| {
        let stack = &stack;
        let fan = fan.clone();
        async move {
            let (_, view) = stack
                .api
                .get(&format!("/v1/events/{event}/queue/{ticket}"), Some(&fan))
                .await;
            view["admission_token"].is_string()
        }
    };
    // The scheduler is running (the open event's line moves), and the paused one's not.
    eventually("admission to the open sale", WAIT, || async {
        admitted(open.clone(), in_open.clone()).await.then_some(())
    })
    .await;
    assert!(!admitted(paused.clone(), in_paused.clone()).await);
    let (status, reply) = set_sale(&stack, &admin, &paused, "open").await;
    assert_eq!(status, 200, "{reply}");
    eventually("admission once the sale resumed", WAIT, || async {
        admitted(paused.clone(), in_paused.clone())
            .await
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contested_seat_shows_the_earliest_request_won_and_the_loser_gets_a_receipt() {
    let mut stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let admin = stack.admin_token().await;
    // Eight buyers want A-1-5; others' requests for other seats queue in between.
    stack.pause_consumer().await;
    let mut contenders = Vec::new();
    for i in 0..8 {
        let token = stack.token(&format!("fan{i}")).await;
        let id = queue_hold(&stack, &token, &event, "A-1-5").await;
        contenders.push((token.clone(), id));
        let other = stack.token(&format!("other{i}")).await;
        queue_hold(&stack, &other, &event, &format!("A-2-{}", i + 1)).await;
    }
    stack.resume_consumer();
    let mut decisions = Vec::new();
    for (token, id) in &contenders {
        decisions.push(stack.api.decision(token, id, WAIT).await);
    }
    assert_eq!(decisions[0]["status"], "held", "{}", decisions[0]);
    for d in &decisions[1..] {
        assert_eq!(d["reason"], "seats_unavailable", "{d}");
    }

    // The seat's story: the eight commands in queue order, the first got the seat.
    let path = format!("/v1/admin/events/{event}/seats/A-1-5/history");
    let (status, story) = stack.api.get(&path, Some(&admin)).await;
    assert_eq!(status, 200, "{story}");
    let commands = story["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 8, "{story}");
    let ids: Vec<&str> = commands
        .iter()
        .map(|c| c["request_id"].as_str().expect("id"))
        .collect();
    let sent: Vec<&str> = contenders.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, sent, "queue order is the order they were accepted in");
    let positions: Vec<(i64, i64)> = commands
        .iter()
        .map(|c| {
            (
                c["position"]["offset"].as_i64().expect("offset"),
                c["position"]["seq"].as_i64().expect("seq"),
            )
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let winners: Vec<bool> = commands
        .iter()
        .map(|c| c["got_seat"].as_bool().expect("got_seat"))
        .collect();
    assert_eq!(
        winners,
        [true, false, false, false, false, false, false, false]
    );
    assert_eq!(story["status"], "held");
    assert_eq!(story["holds"].as_array().map(Vec::len), Some(1), "{story}");

    // Pages of 3 add up to the whole story.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = after
            .as_ref()
            .map_or("?limit=3".to_owned(), |a| format!("?limit=3&after={a}"));
        let (status, page) = stack.api.get(&format!("{path}{query}"), Some(&admin)).await;
        assert_eq!(status, 200, "{page}");
        for c in page["commands"].as_array().expect("commands") {
            paged.push(c["request_id"].as_str().expect("id").to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, sent);

    // The last loser's receipt: how far ahead the winner was, without saying who.
    let (loser_token, loser_id) = &contenders[7];
    let receipt = &decisions[7]["receipt"];
    let lost = receipt[0].clone();
    assert_eq!(lost["seat_id"], "A-1-5", "{}", decisions[7]);
    assert!(lost.get("user_id").is_none());
    let between: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM requests w, requests me, requests x \
         WHERE w.request_id = $1::uuid AND me.request_id = $2::uuid \
           AND x.kafka_partition = me.kafka_partition \
           AND (x.kafka_offset, x.kafka_seq) > (w.kafka_offset, w.kafka_seq) \
           AND (x.kafka_offset, x.kafka_seq) < (me.kafka_offset, me.kafka_seq)",
    )
    .bind(&contenders[0].1)
    .bind(loser_id)
    .fetch_one(stack.pool())
    .await
    .expect("count");
    assert_eq!(lost["places_ahead"].as_i64(), Some(between + 1), "{lost}");
    assert!(
        lost["ms_ahead"].as_i64().is_some_and(|ms| ms >= 0),
        "{lost}"
    );
    // The owner sees the same receipt when polling again.
    let (_, again) = stack
        .api
        .get(&format!("/v1/hold-requests/{loser_id}"), Some(loser_token))
        .await;
    assert_eq!(again["receipt"], *receipt);

    // What followed: a loser waits for the seat, the winner lets it go, the offer shows.
    let (waiter_token, _) = &contenders[1];
    let (status, place) = stack
        .waitlist(reqwest::Method::POST, waiter_token, &event, "A-1-5")
        .await;
    assert!(status == 201 || status == 202, "{place}");
    let winner_hold = decisions[0]["hold_id"].as_str().expect("hold");
    let (status, _) = stack.cancel_hold(&contenders[0].0, winner_hold).await;
    assert!(status.is_success());
    stack.wait_offer(waiter_token, &event, "A-1-5").await;
    let (_, story) = stack.api.get(&path, Some(&admin)).await;
    let holds = story["holds"].as_array().expect("holds");
    assert_eq!(holds.len(), 2, "{story}");
    assert_eq!(holds[0]["status"], "cancelled");
    assert_eq!(holds[1]["offered_from"].as_str(), Some(winner_hold));
    assert_eq!(story["waitlist"][0]["status"], "offered", "{story}");
    assert_eq!(story["commands"].as_array().map(Vec::len), Some(9));

    // Refusals: unknown seat, a bad cursor, a buyer.
    let (status, missing) = stack
        .api
        .get(
            &format!("/v1/admin/events/{event}/seats/Z-9-9/history"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (status.as_u16(), missing["code"].as_str()),
        (404, Some("seat_not_found"))
    );
    let (status, bad) = stack
        .api
        .get(&format!("{path}?after=x"), Some(&admin))
        .await;
    assert_eq!(
        (status.as_u16(), bad["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, _) = stack.api.get(&path, Some(loser_token)).await;
    assert_eq!(status.as_u16(), 403);
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_control_room_shows_every_watcher_the_sale_live() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let admin = stack.admin_token().await;
    let url = format!("{}/v1/admin/events/{event}/control-room", stack.api.base);
    let http = reqwest::Client::new();
    // Two organisers watch (one with the token in the query, as EventSource sends it).
    let mut first = SseClient::connect(&http, &url, Some(&admin), None)
        .await
        .expect("control room");
    let mut second = SseClient::connect(&http, &format!("{url}?access_token={admin}"), None, None)
        .await
        .expect("control room by query token");
    for room in [&mut first, &mut second] {
        let demand = room.until(WAIT, |e| e.event == "demand").await.json();
        assert_eq!(demand["refused"], 0, "{demand}");
        let stats = room.until(WAIT, |e| e.event == "stats").await.json();
        assert_eq!(stats["sale_state"], "open", "{stats}");
        assert_eq!(stats["holds_active"], 0);
        assert!(stats["pipeline"]["partitions"]
            .as_array()
            .is_some_and(|p| !p.is_empty()));
        assert!(stats["pipeline"]["suggested_consumers"].as_u64() >= Some(1));
    }
    // A hold and a refusal for the same seat show up within seconds, in both.
    let alice = stack.token("alice").await;
    stack.hold(&alice, &event, &["A-1-3"]).await;
    let bob = stack.token("bob").await;
    let id = queue_hold(&stack, &bob, &event, "A-1-3").await;
    let refused = stack.api.decision(&bob, &id, WAIT).await;
    assert_eq!(refused["reason"], "seats_unavailable");
    for room in [&mut first, &mut second] {
        room.until(WAIT, |e| {
            e.event == "stats" && e.json()["holds_active"] == 1
        })
        .await;
    }
    // Unmet demand is recomputed at most every 15 s; the endpoint and the stream agree.
    let demand = second
        .until(Duration::from_secs(40), |e| {
            e.event == "demand" && e.json()["refused"] == 1
        })
        .await
        .json();
    assert_eq!(demand["seats"]["seat_ids"], json!(["A-1-3"]), "{demand}");
    assert_eq!(demand["sections"][0]["section"], "A");
    assert_eq!(demand["sections"][0]["refused"], 1);
    let (status, same) = stack
        .api
        .get(&format!("/v1/admin/events/{event}/demand"), Some(&admin))
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["refused"], 1, "{same}");
    // Buyers cannot watch; an unknown event is a 404.
    let refused = SseClient::connect(&http, &url, Some(&alice), None).await;
    assert_eq!(refused.err().map(|e| e.0), Some(403));
    let missing = format!(
        "{}/v1/admin/events/{}/control-room",
        stack.api.base,
        uuid::Uuid::new_v4()
    );
    let missing = SseClient::connect(&http, &missing, Some(&admin), None).await;
    assert_eq!(missing.err().map(|e| e.0), Some(404));
}
