//! The seating rules through the whole stack (gateway → broker → consumer → PostgreSQL):
//!
//! - no hold, named seats or best available, leaves a lone free seat (against a taken seat,
//!   the row's end or an aisle); a refused buyer is offered the nearest selection that
//!   strands none; two requests decided in one batch cannot strand a seat between them;
//! - a buyer who needs a wheelchair space holds it with its companion seats in one
//!   all-or-nothing hold, online; until the organiser's release time nobody else can hold
//!   those seats, after it anyone can;
//! - price categories set each seat's price, the hold's total and the checkout amount.

use std::time::Duration;

use chrono::Utc;
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

/// Section S: 2 rows of 8 seats with an aisle between seats 4 and 5; wheelchair spaces
/// S-2-1 and S-2-8 with companion seats S-2-2 and S-2-7, and S-1-8; row 1 in the
/// "FRONT" price category (90.00; the section's price is 50.00).
fn venue() -> Value {
    json!([{
        "kind": "reserved", "code": "S", "name": "Stalls", "rows": 2, "seats_per_row": 8,
        "price_cents": 5000,
        "seat_ranges": [
            {"rows": [1, 2], "seats": [4, 5], "attributes": ["aisle"]},
            {"rows": [2, 2], "seats": [1, 1], "attributes": ["accessible"]},
            {"rows": [2, 2], "seats": [8, 8], "attributes": ["accessible"]},
            {"rows": [1, 1], "seats": [8, 8], "attributes": ["accessible"]},
            {"rows": [2, 2], "seats": [2, 2], "attributes": ["companion"]},
            {"rows": [2, 2], "seats": [7, 7], "attributes": ["companion"]},
            {"rows": [1, 1], "seats": [1, 8], "price_category": "FRONT"}
        ]
    }])
}

async fn event(stack: &Stack, extra: Value) -> String {
    let admin = stack.admin_token().await;
    let (status, created) = stack
        .api
        .post(
            "/v1/admin/venues",
            Some(&admin),
            &json!({"name": "Rules Hall", "sections": venue(),
                    "price_categories": [{"code": "FRONT", "name": "Front row", "price_cents": 9000}]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let mut body = json!({
        "venue_id": created["id"],
        "title": "Rules Night",
        "starts_at": (Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
        "on_sale_at": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "no_single_seats": true,
    });
    if let (Some(obj), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        obj.extend(extra.clone());
    }
    let (status, ev) = stack
        .api
        .post("/v1/admin/events", Some(&admin), &body)
        .await;
    assert_eq!(status, 201, "{ev}");
    ev["id"].as_str().expect("event id").to_owned()
}

/// Send a hold request and wait for its decision.
async fn decide(stack: &Stack, token: &str, event: &str, body: Value) -> Value {
    let (status, reply) = stack.api.hold(token, event, &body, "", &[]).await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["request_id"].as_str().expect("request id");
    stack.api.decision(token, id, Duration::from_secs(30)).await
}

fn seats(ids: &[&str]) -> Value {
    json!({ "seat_ids": ids })
}

/// The free seats of section S with no free neighbour in their block (row ends and the
/// aisle between seats 4 and 5 count as taken), accessible and companion seats aside:
/// computed from the seats table, independently of the consumer.
async fn alone_seats(stack: &Stack, event: &str) -> Vec<String> {
    let rows: Vec<(i32, i32, String)> = sqlx::query_as(
        "SELECT row_no, seat_number, status FROM seats WHERE event_id = $1::uuid \
         ORDER BY row_no, seat_number",
    )
    .bind(event)
    .fetch_all(stack.pool())
    .await
    .expect("seats");
    let free = |r: i32, n: i32| {
        rows.iter()
            .any(|(row, seat, status)| (*row, *seat) == (r, n) && status == "available")
    };
    let exempt = [(2, 1), (2, 2), (2, 7), (2, 8), (1, 8)];
    let mut out = Vec::new();
    for &(r, n, _) in &rows {
        let left = n > 1 && n != 5 && free(r, n - 1);
        let right = n < 8 && n != 4 && free(r, n + 1);
        if free(r, n) && !left && !right && !exempt.contains(&(r, n)) {
            out.push(format!("S-{r}-{n}"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_that_would_strand_a_seat_is_refused_with_a_selection_that_does_not() {
    let stack = Stack::start(|_| {}).await;
    let event = event(&stack, json!({})).await;
    let alice = stack.token("alice").await;

    // S-1-2 and S-1-3 would leave S-1-1 alone at the row's end.
    let refused = decide(&stack, &alice, &event, seats(&["S-1-2", "S-1-3"])).await;
    assert_eq!(refused["reason"], "would_strand_seat", "{refused}");
    // ... and S-1-4 alone against the aisle.
    assert_eq!(
        refused["stranded_seats"],
        json!(["S-1-1", "S-1-4"]),
        "{refused}"
    );
    assert_eq!(
        refused["suggestion"],
        json!(["S-1-1", "S-1-2"]),
        "{refused}"
    );
    // Accepting the suggestion, as the web app does in one click.
    let held = decide(
        &stack,
        &alice,
        &event,
        json!({"seat_ids": refused["suggestion"]}),
    )
    .await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["total_cents"], 18_000, "two FRONT seats: {held}");

    // S-1-6 and S-1-7 would leave S-1-5 alone against the aisle and S-1-8 (a wheelchair
    // space, exempt) at the end.
    let bob = stack.token("bob").await;
    let refused = decide(&stack, &bob, &event, seats(&["S-1-6", "S-1-7"])).await;
    assert_eq!(refused["reason"], "would_strand_seat", "{refused}");
    assert_eq!(refused["stranded_seats"], json!(["S-1-5"]), "{refused}");
    assert_eq!(
        refused["suggestion"],
        json!(["S-1-5", "S-1-6"]),
        "{refused}"
    );

    // Best available for three never strands one: S-1-5..7 leaves only the wheelchair
    // space S-1-8 on its own, which does not count.
    let carol = stack.token("carol").await;
    let best = decide(
        &stack,
        &carol,
        &event,
        json!({"section": "S", "quantity": 3}),
    )
    .await;
    assert_eq!(
        best["seat_ids"],
        json!(["S-1-5", "S-1-6", "S-1-7"]),
        "{best}"
    );
    assert_eq!(alone_seats(&stack, &event).await, Vec::<String>::new());

    // Without the rule, the same request is held.
    let free_event = event_without_rule(&stack).await;
    let held = decide(&stack, &bob, &free_event, seats(&["S-1-6", "S-1-7"])).await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

async fn event_without_rule(stack: &Stack) -> String {
    event(stack, json!({"no_single_seats": false})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_requests_decided_together_cannot_strand_the_seat_between_them() {
    let mut stack = Stack::start(|_| {}).await;
    let event = event(&stack, json!({})).await;
    let (dan, erin) = (stack.token("dan").await, stack.token("erin").await);
    // Queued while the consumer is stopped, so one batch decides both, in queue order.
    // Each alone strands nothing (S-1-1..4 lie between the row's end and the aisle); dan's
    // S-1-3 + S-1-4 first, then erin's S-1-1 would leave S-1-2 alone between them.
    stack.pause_consumer().await;
    let mut ids = Vec::new();
    for (token, pick) in [(&dan, vec!["S-1-3", "S-1-4"]), (&erin, vec!["S-1-1"])] {
        let (status, reply) = stack.api.hold(token, &event, &seats(&pick), "", &[]).await;
        assert_eq!(status, 202, "{reply}");
        ids.push(reply["request_id"].as_str().expect("request id").to_owned());
    }
    stack.resume_consumer();
    let first = stack
        .api
        .decision(&dan, &ids[0], Duration::from_secs(30))
        .await;
    let second = stack
        .api
        .decision(&erin, &ids[1], Duration::from_secs(30))
        .await;
    assert_eq!(first["status"], "held", "{first}");
    assert_eq!(second["reason"], "would_strand_seat", "{second}");
    assert_eq!(second["stranded_seats"], json!(["S-1-2"]), "{second}");
    // The nearest single seat that strands none: S-1-5 (S-1-6 would leave S-1-5 alone
    // against the aisle; S-1-8 is a wheelchair space).
    assert_eq!(second["suggestion"], json!(["S-1-5"]), "{second}");
    assert_eq!(alone_seats(&stack, &event).await, Vec::<String>::new());
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accessible_spaces_are_held_with_companions_all_or_nothing_and_released_at_the_set_time() {
    let stack = Stack::start(|_| {}).await;
    let release_at = Utc::now() + chrono::Duration::seconds(12);
    let event = event(
        &stack,
        json!({"accessible_release_at": release_at.to_rfc3339()}),
    )
    .await;
    let (frank, gina, henry, ivy) = (
        stack.token("frank").await,
        stack.token("gina").await,
        stack.token("henry").await,
        stack.token("ivy").await,
    );

    // Kept for buyers who need them: someone who did not say so is refused.
    let refused = decide(&stack, &ivy, &event, seats(&["S-2-1", "S-2-2"])).await;
    assert_eq!(refused["reason"], "seats_reserved_for_access", "{refused}");
    assert_eq!(
        refused["unavailable_seats"],
        json!(["S-2-1", "S-2-2"]),
        "{refused}"
    );

    // The gateway checks what the layout alone can tell.
    for (pick, code) in [
        (vec!["S-2-3"], "accessible_space_required"),
        (vec!["S-2-1", "S-2-3"], "companions_not_together"),
    ] {
        let (status, reply) = stack
            .api
            .hold(
                &frank,
                &event,
                &json!({"seat_ids": pick, "accessible": true}),
                "",
                &[],
            )
            .await;
        assert_eq!(
            (status.as_u16(), &reply["code"]),
            (422, &json!(code)),
            "{reply}"
        );
    }

    // All or nothing: S-2-3 is taken, so the space and its companion stay free.
    let taken = decide(&stack, &gina, &event, seats(&["S-2-3", "S-2-4"])).await;
    assert_eq!(taken["status"], "held", "{taken}");
    let refused = decide(
        &stack,
        &frank,
        &event,
        json!({"seat_ids": ["S-2-1", "S-2-2", "S-2-3"], "accessible": true}),
    )
    .await;
    assert_eq!(refused["reason"], "seats_unavailable", "{refused}");
    for seat in [1, 2] {
        let status: String = sqlx::query_scalar(
            "SELECT status FROM seats WHERE event_id = $1::uuid AND row_no = 2 AND seat_number = $2",
        )
        .bind(&event)
        .bind(seat)
        .fetch_one(stack.pool())
        .await
        .expect("seat");
        assert_eq!(status, "available", "S-2-{seat}");
    }
    let held = decide(
        &stack,
        &frank,
        &event,
        json!({"seat_ids": ["S-2-1", "S-2-2"], "accessible": true}),
    )
    .await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(held["total_cents"], 10_000, "{held}");
    // Nobody can queue for a kept seat: a waitlist offer could not ask who needs it.
    let (status, reply) = stack
        .waitlist(reqwest::Method::POST, &ivy, &event, "S-2-1")
        .await;
    assert_eq!(
        (status.as_u16(), &reply["code"]),
        (409, &json!("seats_reserved_for_access")),
        "{reply}"
    );

    // Best available for someone who needs a space: the front-most space, with the seat
    // beside it.
    let best = decide(
        &stack,
        &henry,
        &event,
        json!({"section": "S", "quantity": 2, "accessible": true}),
    )
    .await;
    assert_eq!(best["status"], "held", "{best}");
    assert_eq!(best["seat_ids"], json!(["S-1-7", "S-1-8"]), "{best}");

    // After the organiser's time, anyone may have the last space and its companion seat.
    eventually(
        "the accessible seats' release",
        Duration::from_secs(30),
        || async {
            let (_, detail) = stack.api.get(&format!("/v1/events/{event}"), None).await;
            (detail["accessible_reserved"] == json!(false)).then_some(())
        },
    )
    .await;
    let held = decide(&stack, &ivy, &event, seats(&["S-2-7", "S-2-8"])).await;
    assert_eq!(held["status"], "held", "{held}");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_map_shows_attributes_and_prices_and_the_checkout_charges_each_seats_price() {
    let stack = Stack::start(|_| {}).await;
    let event = event(&stack, json!({"no_single_seats": false})).await;
    let (status, map) = stack
        .api
        .get(&format!("/v1/events/{event}/seats"), None)
        .await;
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["price_categories"][0]["code"], "FRONT", "{map}");
    assert_eq!(
        map["attribute_legend"]["accessible"], "Wheelchair space",
        "{map}"
    );
    assert_eq!(
        map["sections"][0]["seat_ranges"].as_array().map(Vec::len),
        Some(7),
        "{map}"
    );
    assert_eq!(map["accessible_reserved"], true, "{map}");

    let jo = stack.token("jo").await;
    let hold = stack.hold(&jo, &event, &["S-1-3", "S-2-3"]).await;
    assert_eq!(hold["total_cents"], 14_000, "9,000 + 5,000: {hold}");
    let hold_id = hold["hold_id"].as_str().expect("hold id");
    let checkout = stack.checkout(&jo, hold_id).await;
    assert_eq!(checkout["amount_cents"], 14_000, "{checkout}");

    // The organiser's mistakes are refused with stable codes.
    let admin = stack.admin_token().await;
    let bad = |ranges: Value, categories: Value| {
        json!({"name": "Bad", "price_categories": categories, "sections": [{
            "kind": "reserved", "code": "S", "name": "S", "rows": 2, "seats_per_row": 8,
            "price_cents": 100, "seat_ranges": ranges}]})
    };
    for (body, code) in [
        (
            bad(json!([{"rows": [1, 3], "seats": [1, 1]}]), json!([])),
            "invalid_seat_range",
        ),
        (
            bad(json!([{"rows": [2, 1], "seats": [1, 1]}]), json!([])),
            "invalid_seat_range",
        ),
        (
            bad(
                json!([{"rows": [1, 1], "seats": [1, 1], "price_category": "VIP"}]),
                json!([]),
            ),
            "unknown_price_category",
        ),
        (
            bad(
                json!([]),
                json!([{"code": "A", "name": "A", "price_cents": 1},
                       {"code": "A", "name": "B", "price_cents": 2}]),
            ),
            "duplicate_price_category",
        ),
    ] {
        let (status, reply) = stack
            .api
            .post("/v1/admin/venues", Some(&admin), &body)
            .await;
        assert_eq!(
            (status.as_u16(), &reply["code"]),
            (422, &json!(code)),
            "{reply}"
        );
    }
    let (status, reply) = stack
        .api
        .post(
            "/v1/admin/venues",
            Some(&admin),
            &bad(
                json!([{"rows": [1, 1], "seats": [1, 1], "attributes": ["vip"]}]),
                json!([]),
            ),
        )
        .await;
    assert!(status.is_client_error(), "{status}: {reply}");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
