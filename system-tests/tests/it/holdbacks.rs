//! Holdbacks through the pipeline: an organiser takes seats off sale (a whole section, or
//! seats), buyers cannot hold them, they come back by hand or at their release time —
//! to the seat's waitlist first — and the event's stats count them apart.

use std::time::Duration;

use reqwest::Method;
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_system_tests::stack::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_back_seats_are_off_sale_until_released_by_hand_or_on_time() {
    let stack = Stack::start(|_| {}).await;
    // Before the sale opens, the organiser holds back row 2 and a press seat.
    let event = stack
        .event(
            json!({"on_sale_at": (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339()}),
        )
        .await;
    let admin = stack.admin_token().await;
    let press = json!({"seat_ids": ["A-1-1"], "note": "press"});
    let (status, press) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &press,
        )
        .await;
    assert_eq!(status, 201, "{press}");
    let release_at = chrono::Utc::now() + chrono::Duration::seconds(6);
    let row: Vec<String> = (1..=PER_ROW).map(|s| format!("A-2-{s}")).collect();
    let (status, wave) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"seat_ids": row, "note": "wave 2", "release_at": release_at.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{wave}");
    assert_eq!(
        wave["seat_ids"].as_array().map(Vec::len),
        Some(PER_ROW as usize)
    );
    // Taken seats cannot be held back twice; buyers and GA sections are refused clearly.
    let (status, taken) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"seat_ids": ["A-1-1", "A-1-2"]}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), taken["code"].as_str()),
        (409, Some("seats_unavailable")),
        "{taken}"
    );
    let alice = stack.token("alice").await;
    let (status, refused) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&alice),
            &json!({"section": "A"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (403, Some("admin_only"))
    );
    let (status, ga) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"section": "FLOOR"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), ga["code"].as_str()),
        (422, Some("general_admission_section"))
    );

    // On sale: buyers cannot hold what is held back, but may wait for it.
    eventually("the sale to open", Duration::from_secs(10), || async {
        let (status, _) = stack.request_hold(&alice, &event, &["A-1-5"]).await;
        (status == 200).then_some(())
    })
    .await;
    let (status, rejected) = stack.request_hold(&alice, &event, &["A-2-3"]).await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    let bob = stack.token("bob").await;
    let (status, place) = stack.waitlist(Method::POST, &bob, &event, "A-2-3").await;
    assert_eq!(status, 201, "{place}");
    let (_, stats) = stack
        .api
        .get(&format!("/v1/admin/events/{event}/stats"), Some(&admin))
        .await;
    assert_eq!(stats["seats"]["held_back"], 1 + PER_ROW as i64, "{stats}");
    assert_eq!(stats["seats"]["held"], 1, "{stats}");
    assert_eq!(stats["holds_active"], 1, "{stats}");
    assert_eq!(
        stats["seats"]["capacity"],
        2 * PER_ROW as i64 + 20,
        "{stats}"
    );

    // The press seat comes back by hand...
    let press_hold = press["hold_id"].as_str().expect("hold id");
    let (status, released) = stack
        .api
        .post(
            &format!("/v1/admin/holdbacks/{press_hold}/release"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(stack.seat(&event, "A-1-1").await.0, "available");
    // ...and row 2 at its release time, with A-2-3 going to bob first.
    let offer = stack.wait_offer(&bob, &event, "A-2-3").await;
    assert!(!offer.is_empty());
    assert!(chrono::Utc::now() >= release_at - chrono::Duration::seconds(2));
    assert_eq!(stack.seat(&event, "A-2-4").await.0, "available");
    let (_, list) = stack
        .api
        .get(&format!("/v1/admin/events/{event}/holdbacks"), Some(&admin))
        .await;
    let statuses: Vec<&str> = list["holdbacks"]
        .as_array()
        .expect("holdbacks")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["released", "released"], "{list}");
    assert_eq!(list["holdbacks"][0]["note"], "press");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// Issue 17's report: a holdback of a whole 200-seat section was written as one hold of
/// 200 seats, which the schema refused (1–100 seats per hold); the consumer retried the
/// batch forever and every event on the partition stopped being decided. Now it applies,
/// and the partition goes on deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_200_seat_section_is_held_back_and_the_partition_goes_on() {
    let stack = Stack::start(|_| {}).await;
    let event = stack
        .api
        .create_event(
            json!([
                {"kind": "reserved", "code": "A", "name": "Section A", "rows": 20,
                 "seats_per_row": 10, "price_cents": 5000},
                {"kind": "reserved", "code": "B", "name": "Section B", "rows": 5,
                 "seats_per_row": 10, "price_cents": 3000}
            ]),
            json!({}),
        )
        .await;
    let admin = stack.admin_token().await;
    let (status, press) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"section": "A", "note": "press"}),
        )
        .await;
    assert_eq!(status, 201, "{press}");
    assert_eq!(press["seat_ids"].as_array().map(Vec::len), Some(200));
    let held_back = stack
        .count(&format!(
            "SELECT count(*) FROM seats WHERE event_id = '{event}' AND status = 'held'"
        ))
        .await;
    assert_eq!(held_back, 200);
    // The next command on the partition is decided, not stuck behind the holdback.
    let alice = stack.token("alice").await;
    let (status, decided) = stack.request_hold(&alice, &event, &["B-1-1"]).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "held", "{decided}");
    let (status, refused) = stack.request_hold(&alice, &event, &["A-7-7"]).await;
    assert_eq!(
        (status.as_u16(), &refused["status"]),
        (200, &json!("rejected"))
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM dead_letters").await,
        0,
        "nothing was dead-lettered"
    );
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// A holdback whose release time passes while it waits in the queue: it must not break
/// the schema (an expiry before its creation) or stop the partition; it is refused with a
/// clear reason, its seats stay on sale, and the organiser learns it from the status URL
/// the 202 gave (never a 408).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_time_passing_in_the_queue_is_refused_clearly() {
    let mut stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let admin = stack.admin_token().await;
    stack.pause_consumer().await;
    let release_at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let (status, queued) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"seat_ids": ["A-1-1", "A-1-2"], "note": "wave 2",
                    "release_at": release_at.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "pending");
    let status_url = queued["status_url"]
        .as_str()
        .expect("status url")
        .to_owned();
    let (status, pending) = stack.api.get(&status_url, Some(&admin)).await;
    assert_eq!(
        (status.as_u16(), &pending["status"]),
        (200, &json!("pending"))
    );
    eventually(
        "the release time to pass",
        Duration::from_secs(10),
        || async { (chrono::Utc::now() > release_at).then_some(()) },
    )
    .await;
    stack.resume_consumer();
    let decided = eventually(
        "the holdback's decision",
        Duration::from_secs(30),
        || async {
            let (_, view) = stack.api.get(&status_url, Some(&admin)).await;
            (view["status"] != "pending").then_some(view)
        },
    )
    .await;
    assert_eq!(decided["status"], "rejected", "{decided}");
    assert_eq!(decided["reason"], "release_time_passed", "{decided}");
    assert_eq!(stack.seat(&event, "A-1-1").await.0, "available");
    let alice = stack.token("alice").await;
    let hold = stack.hold(&alice, &event, &["A-1-2"]).await;
    assert_eq!(hold["status"], "active");
    assert_eq!(stack.count("SELECT count(*) FROM dead_letters").await, 0);
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
