//! Rules that a sequence of legitimate operations used to break (issue 17's review), each
//! through the whole stack:
//!
//! - a buyer who transferred a ticket could still cancel the booking: full refund, the new
//!   holder's ticket void, the seat back on sale;
//! - a checked-in ticket could be cancelled and its seat sold again: two people in on one
//!   seat;
//! - waitlists skipped the sale: joining one (and the offer it leads to) checked neither
//!   the sale's opening nor the waiting room.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use seatq_common::command::{Command, CommandEnvelope, WaitlistSeat};
use seatq_common::ids::{EventId, RequestId, UserId};
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

/// Hold `seats`, pay for them at the sandbox provider and wait for the booking.
async fn book(stack: &Stack, token: &str, event: &str, seats: &[&str]) -> Value {
    let hold = stack.hold(token, event, seats).await;
    let hold = hold["hold_id"].as_str().expect("hold id").to_owned();
    let checkout = stack.checkout(token, &hold).await;
    stack.pay(&checkout, "succeed", json!({})).await;
    stack.booking_of(token, &hold).await
}

fn ticket_of<'a>(booking: &'a Value, seat: &str) -> &'a Value {
    booking["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .find(|t| t["seat_id"] == seat)
        .unwrap_or_else(|| panic!("a ticket for {seat}: {booking}"))
}

async fn cancel(stack: &Stack, token: &str, booking: &Value) -> (u16, Value) {
    let id = booking["booking_id"].as_str().expect("booking id");
    let (status, reply) = stack
        .api
        .post(
            &format!("/v1/bookings/{id}/cancel"),
            Some(token),
            &json!({}),
        )
        .await;
    (status.as_u16(), reply)
}

/// Money the provider gave back for the booking's payment, once the refund worker ran.
async fn refunded(stack: &Stack, payment: &str, cents: i64) {
    eventually(
        "the refund at the provider",
        Duration::from_secs(30),
        || async {
            let view = stack.provider_payment(payment).await;
            (view["refunded_cents"].as_i64() == Some(cents)).then_some(())
        },
    )
    .await;
}

async fn payment_of(stack: &Stack, booking: &Value) -> String {
    let id: uuid::Uuid = booking["booking_id"]
        .as_str()
        .and_then(|b| b.parse().ok())
        .expect("booking id");
    let payment: uuid::Uuid = sqlx::query_scalar("SELECT payment_id FROM bookings WHERE id = $1")
        .bind(id)
        .fetch_one(stack.pool())
        .await
        .expect("payment");
    payment.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_buyer_cancels_only_the_tickets_still_theirs() {
    let stack = Stack::start(|_| {}).await;
    let event = stack
        .event(json!({"starts_at": (Utc::now() + chrono::Duration::days(30)).to_rfc3339()}))
        .await;
    let (alice, bob) = (stack.token("alice").await, stack.token("bob").await);
    let booking = book(&stack, &alice, &event, &["A-1-1", "A-1-2"]).await;
    let payment = payment_of(&stack, &booking).await;
    let given = ticket_of(&booking, "A-1-1")["ticket_id"]
        .as_str()
        .expect("ticket id")
        .to_owned();
    let kept = ticket_of(&booking, "A-1-2")["ticket_id"]
        .as_str()
        .expect("ticket id")
        .to_owned();
    let (status, moved) = stack
        .api
        .post(
            &format!("/v1/tickets/{given}/transfer"),
            Some(&alice),
            &json!({"to_user_id": stack.user("bob")}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");

    // Alice gives back what is still hers: A-1-2, half the money. Bob keeps A-1-1.
    let (status, cancelled) = cancel(&stack, &alice, &booking).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "partially_cancelled", "{cancelled}");
    assert_eq!(cancelled["refund_cents"], 5_000, "{cancelled}");
    assert_eq!(cancelled["cancelled_tickets"], json!([kept]), "{cancelled}");
    let (status, bobs) = stack
        .api
        .get(&format!("/v1/tickets/{given}"), Some(&bob))
        .await;
    assert_eq!(
        (status.as_u16(), &bobs["status"]),
        (200, &json!("valid")),
        "{bobs}"
    );
    assert_eq!(stack.seat(&event, "A-1-1").await.0, "sold");
    assert_eq!(stack.seat(&event, "A-1-2").await.0, "available");
    refunded(&stack, &payment, 5_000).await;
    // Nothing of hers is left to give back: refused with a clear code, nothing moves.
    let (status, refused) = cancel(&stack, &alice, &booking).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("tickets_transferred")),
        "{refused}"
    );
    // Bob's ticket gets him in.
    let admin = stack.admin_token().await;
    let (_, bobs) = stack
        .api
        .get(&format!("/v1/tickets/{given}"), Some(&bob))
        .await;
    let (status, admitted) = stack
        .api
        .post(
            "/v1/admin/checkins",
            Some(&admin),
            &json!({"code": bobs["code"], "event_id": event}),
        )
        .await;
    assert_eq!(status, 200, "{admitted}");
    let (_, view) = stack
        .api
        .get(
            &format!(
                "/v1/bookings/{}",
                booking["booking_id"].as_str().expect("id")
            ),
            Some(&alice),
        )
        .await;
    assert_eq!(view["status"], "confirmed", "{view}");
    assert_eq!(view["refund_cents"], 5_000, "{view}");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checked_in_ticket_cannot_be_cancelled() {
    let stack = Stack::start(|_| {}).await;
    let event = stack
        .event(json!({"starts_at": (Utc::now() + chrono::Duration::days(30)).to_rfc3339()}))
        .await;
    let other = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let booking = book(&stack, &alice, &event, &["A-2-5"]).await;
    let code = ticket_of(&booking, "A-2-5")["code"].clone();
    let admin = stack.admin_token().await;
    // The door of another event refuses it; a scan must say which door it is.
    let (status, refused) = stack
        .api
        .post(
            "/v1/admin/checkins",
            Some(&admin),
            &json!({"code": code, "event_id": other}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (409, Some("wrong_event"))
    );
    let (status, refused) = stack
        .api
        .post("/v1/admin/checkins", Some(&admin), &json!({"code": code}))
        .await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (422, Some("event_required"))
    );
    let (status, admitted) = stack
        .api
        .post(
            "/v1/admin/checkins",
            Some(&admin),
            &json!({"code": code, "event_id": event}),
        )
        .await;
    assert_eq!(status, 200, "{admitted}");

    let (status, refused) = cancel(&stack, &alice, &booking).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("ticket_checked_in")),
        "{refused}"
    );
    assert_eq!(stack.seat(&event, "A-2-5").await.0, "sold");
    assert_eq!(stack.count("SELECT count(*) FROM refunds").await, 0);
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// A `join_waitlist` command sent straight to the event's partition, as a gateway that
/// skipped its checks (an old version, a bug) would: the consumer must refuse it too.
async fn join_directly(stack: &Stack, event: &str, user: &str, seat: &str) -> RequestId {
    let event: EventId = event.parse().expect("event id");
    let partition: i32 = sqlx::query_scalar("SELECT kafka_partition FROM events WHERE id = $1")
        .bind(event)
        .fetch_one(stack.pool())
        .await
        .expect("partition");
    let cmd = CommandEnvelope {
        request_id: RequestId::new(),
        event_id: event,
        user_id: UserId(stack.user(user)),
        issued_at: Utc::now(),
        command: Command::JoinWaitlist(WaitlistSeat {
            seat_no: seat_no(seat),
        }),
        reply: false,
    };
    let producer = seatq_common::kafka::producer(&stack.env.settings.kafka).expect("producer");
    seatq_common::kafka::send(
        &producer,
        &stack.env.topics.commands,
        Some(partition),
        &event.to_string(),
        &cmd.encode().expect("encode"),
    )
    .await
    .expect("produce");
    cmd.request_id
}

async fn decision(stack: &Stack, id: RequestId) -> (String, Option<String>) {
    eventually("the decision", Duration::from_secs(30), || async {
        sqlx::query_as("SELECT status, reason FROM requests WHERE request_id = $1")
            .bind(id)
            .fetch_optional(stack.pool())
            .await
            .expect("decision")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waitlists_open_with_the_sale() {
    let stack = Stack::start(|_| {}).await;
    let event = stack
        .event(json!({"on_sale_at": (Utc::now() + chrono::Duration::minutes(10)).to_rfc3339()}))
        .await;
    let admin = stack.admin_token().await;
    let (status, press) = stack
        .api
        .post(
            &format!("/v1/admin/events/{event}/holdbacks"),
            Some(&admin),
            &json!({"seat_ids": ["A-1-1"], "note": "press"}),
        )
        .await;
    assert_eq!(status, 201, "{press}");
    // Before the sale, nobody can line up for a held-back seat...
    let bob = stack.token("bob").await;
    let (status, refused) = stack.waitlist(Method::POST, &bob, &event, "A-1-1").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (403, Some("sale_not_open")),
        "{refused}"
    );
    let sneaked = join_directly(&stack, &event, "bob", "A-1-1").await;
    assert_eq!(
        decision(&stack, sneaked).await,
        ("rejected".to_owned(), Some("sale_not_open".to_owned()))
    );
    // ...so releasing it before the sale offers it to nobody: it is simply back.
    let hold = press["hold_id"].as_str().expect("hold id");
    let (status, released) = stack
        .api
        .post(
            &format!("/v1/admin/holdbacks/{hold}/release"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(
        stack.seat(&event, "A-1-1").await,
        ("available".to_owned(), None)
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM holds WHERE user_id <> 'system:holdback'")
            .await,
        0
    );
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_room_guards_the_waitlists_too() {
    let stack = Stack::start(|s| s.waiting_room.tick_ms = 200).await;
    let event = stack
        .event(json!({"waiting_room_enabled": true, "pow_difficulty": 0,
                      "on_sale_at": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339()}))
        .await;
    // Alice queues, is let in, and holds a seat.
    let alice = stack.token("alice").await;
    let (status, ticket) = stack
        .api
        .post(
            &format!("/v1/events/{event}/queue"),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
    let admission = eventually("alice's admission", Duration::from_secs(30), || async {
        let (_, view) = stack
            .api
            .get(&format!("/v1/events/{event}/queue/{ticket}"), Some(&alice))
            .await;
        view["admission_token"].as_str().map(str::to_owned)
    })
    .await;
    let (status, held) = stack
        .api
        .hold(
            &alice,
            &event,
            &json!({"seat_ids": ["A-1-4"]}),
            "?wait_ms=5000",
            &[("x-admission-token", admission.as_str())],
        )
        .await;
    assert_eq!(
        (status.as_u16(), &held["status"]),
        (200, &json!("held")),
        "{held}"
    );
    // Bob never queued: he cannot wait for her seat, through the API or around it.
    let bob = stack.token("bob").await;
    let (status, refused) = stack.waitlist(Method::POST, &bob, &event, "A-1-4").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (403, Some("admission_required")),
        "{refused}"
    );
    let sneaked = join_directly(&stack, &event, "bob", "A-1-4").await;
    assert_eq!(
        decision(&stack, sneaked).await,
        ("rejected".to_owned(), Some("admission_required".to_owned()))
    );
    // Alice lets it go: nobody was offered it.
    let hold = held["hold_id"].as_str().expect("hold id");
    let (status, _) = stack.cancel_hold(&alice, hold).await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.seat(&event, "A-1-4").await,
        ("available".to_owned(), None)
    );
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
