//! Paying, through the sandbox provider's real protocol (checkout session, payment page,
//! signed webhooks): forged webhooks are refused, duplicates make one booking, a payment in
//! progress at expiry gets a grace period, a payment too late is refunded while the seat
//! stays with its new holder, a payment whose webhooks are lost is settled by the
//! reconciler asking the provider, and a cancelled booking is refunded once with its seats
//! back on sale (to the waitlist first). Tickets of a real booking check in once and transfer.
//! A payment declined and then paid on the same session books a live hold or is refunded
//! once; a capture of another amount or currency is refunded, never booked.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use seatq_common::payment_provider::{WebhookData, WebhookEvent, WebhookKind};
use seatq_common::signing::signature_header;
use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

/// POST a webhook body with a signature header (or none).
async fn post_webhook(stack: &Stack, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut req = stack
        .api
        .http
        .post(format!("{}/v1/payments/webhook", stack.api.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("payment-signature", sig);
    }
    let response = req.send().await.expect("webhook");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn succeeded(checkout: &Value, event_id: &str) -> Vec<u8> {
    let url = checkout["payment_url"].as_str().expect("payment url");
    serde_json::to_vec(&WebhookEvent {
        id: event_id.to_owned(),
        kind: WebhookKind::Succeeded,
        created: chrono::Utc::now().timestamp(),
        data: WebhookData {
            payment_id: checkout["payment_id"]
                .as_str()
                .expect("payment id")
                .parse()
                .expect("uuid"),
            session_id: url.rsplit('/').next().expect("session").to_owned(),
            amount_cents: checkout["amount_cents"].as_i64().expect("amount"),
            currency: checkout["currency"].as_str().expect("currency").to_owned(),
        },
    })
    .expect("webhook json")
}

fn hold_id(view: &Value) -> String {
    view["hold_id"].as_str().expect("hold id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_without_a_valid_signature_are_refused() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let hold = hold_id(&stack.hold(&alice, &event, &["A-1-1"]).await);
    let checkout = stack.checkout(&alice, &hold).await;
    let body = succeeded(&checkout, "evt_forged");
    let secret = stack.env.settings.payments.webhook_secret.clone();
    let now = chrono::Utc::now().timestamp();
    for (signature, code) in [
        (None, "signature_missing"),
        (Some("v1=abc".to_owned()), "signature_malformed"),
        (
            Some(signature_header(b"not the secret", now, &body)),
            "signature_mismatch",
        ),
        (
            Some(signature_header(secret.as_bytes(), now - 3600, &body)),
            "signature_stale",
        ),
        // Signed, but over another body.
        (
            Some(signature_header(secret.as_bytes(), now, b"{}")),
            "signature_mismatch",
        ),
    ] {
        let (status, problem) = post_webhook(&stack, &body, signature).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some(code)),
            "{problem}"
        );
    }
    // Nothing happened: the payment is pending and the hold active.
    assert_eq!(stack.count("SELECT count(*) FROM webhook_events").await, 0);
    assert_eq!(
        stack
            .count("SELECT count(*) FROM payments WHERE status = 'pending'")
            .await,
        1
    );
    assert_eq!(stack.hold_view(&alice, &hold).await["status"], "active");
    // The same body, properly signed, is accepted.
    let (status, ack) = post_webhook(
        &stack,
        &body,
        Some(signature_header(secret.as_bytes(), now, &body)),
    )
    .await;
    assert_eq!(
        (status, ack["duplicate"].as_bool()),
        (200, Some(false)),
        "{ack}"
    );
    stack.booking_of(&alice, &hold).await;
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// The provider sends the success webhook 100 times, and a hundred more copies arrive at
/// once from elsewhere: one capture, one booking, one ticket per seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_webhooks_make_one_booking_whose_tickets_check_in_once() {
    let stack = Arc::new(Stack::start(|_| {}).await);
    let event = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let hold = hold_id(&stack.hold(&alice, &event, &["A-1-3", "A-1-4"]).await);
    let checkout = stack.checkout(&alice, &hold).await;
    assert_eq!(checkout["amount_cents"], 10_000);
    // A second click on "pay" gets the same payment back.
    assert_eq!(
        stack.checkout(&alice, &hold).await["payment_id"],
        checkout["payment_id"]
    );
    let completed = stack
        .pay(&checkout, "succeed", json!({"duplicates": 100}))
        .await;
    let event_id = completed["event_id"].as_str().expect("event id").to_owned();
    let body = Arc::new(succeeded(&checkout, &event_id));
    let secret = stack.env.settings.payments.webhook_secret.clone();
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (stack, body, secret) = (stack.clone(), body.clone(), secret.clone());
        copies.spawn(async move {
            let sig = signature_header(secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
            post_webhook(&stack, &body, Some(sig)).await
        });
    }
    while let Some(reply) = copies.join_next().await {
        let (status, ack) = reply.expect("webhook task");
        assert_eq!(status, 200, "{ack}");
    }
    let booking = stack.booking_of(&alice, &hold).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["amount_cents"], 10_000);
    let tickets = booking["tickets"].as_array().expect("tickets").clone();
    assert_eq!(tickets.len(), 2);
    let payment = checkout["payment_id"].as_str().expect("payment");
    let provider = stack.provider_payment(payment).await;
    assert_eq!(provider["captured_cents"], 10_000);
    for (sql, n) in [
        ("SELECT count(*) FROM bookings", 1),
        ("SELECT count(*) FROM tickets", 2),
        (
            "SELECT count(*) FROM webhook_events WHERE kind = 'payment.succeeded'",
            1,
        ),
        (
            "SELECT count(*) FROM requests WHERE kind = 'payment_succeeded'",
            1,
        ),
        ("SELECT count(*) FROM payments WHERE status = 'paid'", 1),
        ("SELECT count(*) FROM refunds", 0),
        ("SELECT count(*) FROM seats WHERE status = 'sold'", 2),
    ] {
        assert_eq!(stack.count(sql).await, n, "{sql}");
    }

    // At the door: the first scan admits, the second is refused with when it was used.
    let admin = stack.admin_token().await;
    let code = tickets[0]["code"].as_str().expect("ticket code");
    let scan = json!({"code": code, "event_id": event});
    let (status, admitted) = stack
        .api
        .post("/v1/admin/checkins", Some(&admin), &scan)
        .await;
    assert_eq!(status, 200, "{admitted}");
    let (status, again) = stack
        .api
        .post("/v1/admin/checkins", Some(&admin), &scan)
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["checked_in_at"], admitted["checked_in_at"], "{again}");
    // The other ticket goes to bob: alice's printed code stops working.
    let old_code = tickets[1]["code"].as_str().expect("ticket code").to_owned();
    let ticket = tickets[1]["ticket_id"].as_str().expect("ticket id");
    let (status, moved) = stack
        .api
        .post(
            &format!("/v1/tickets/{ticket}/transfer"),
            Some(&alice),
            &json!({"to_user_id": stack.user("bob")}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let (status, refused) = stack
        .api
        .post(
            "/v1/admin/checkins",
            Some(&admin),
            &json!({"code": old_code, "event_id": event}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (409, Some("code_superseded")),
        "{refused}"
    );
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// Alice is paying when her hold runs out: it is extended once by the grace period, and
/// her payment, arriving within it, becomes a booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_in_progress_at_expiry_gets_a_grace_period_and_books() {
    let stack = Stack::start(|s| s.payments.grace_secs = 30).await;
    let event = stack.event(json!({"hold_ttl_secs": 2})).await;
    let alice = stack.token("alice").await;
    let hold = stack.hold(&alice, &event, &["A-2-1"]).await;
    let id = hold_id(&hold);
    let checkout = stack.checkout(&alice, &id).await;
    let extended = stack
        .wait_hold(
            &alice,
            &id,
            "the grace period",
            Duration::from_secs(30),
            |h| h["extended"] == true,
        )
        .await;
    assert_eq!(extended["status"], "active");
    assert!(extended["expires_at"].as_str() > hold["expires_at"].as_str());
    stack.pay(&checkout, "succeed", json!({})).await;
    let booking = stack.booking_of(&alice, &id).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(
        stack.seat(&event, "A-2-1").await,
        ("sold".into(), Some(stack.user("alice")))
    );
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// Alice's payment arrives after her hold (and its grace period) ended and the seat went
/// to bob from the waitlist: the money goes back to her, the seat stays bob's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_after_the_hold_ended_is_refunded_and_the_seat_stays_with_its_new_holder() {
    let stack = Stack::start(|s| s.payments.grace_secs = 1).await;
    let event = stack.event(json!({"hold_ttl_secs": 2})).await;
    let (alice, bob) = (stack.token("alice").await, stack.token("bob").await);
    let seat = "A-1-7";
    let id = hold_id(&stack.hold(&alice, &event, &[seat]).await);
    let (status, _) = stack.waitlist(Method::POST, &bob, &event, seat).await;
    assert_eq!(status, 201);
    let checkout = stack.checkout(&alice, &id).await;
    let offer = stack.wait_offer(&bob, &event, seat).await;
    let ended = stack.hold_view(&alice, &id).await;
    assert_eq!(
        (ended["status"].as_str(), ended["extended"].as_bool()),
        (Some("expired"), Some(true))
    );

    stack.pay(&checkout, "succeed", json!({})).await;
    let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
    let provider = eventually("the refund", Duration::from_secs(30), || async {
        let view = stack.provider_payment(&payment).await;
        (view["refunded_cents"] == 5000).then_some(view)
    })
    .await;
    assert_eq!(provider["captured_cents"], 5000);
    eventually("the refund recorded", Duration::from_secs(10), || async {
        (stack
            .count(
                "SELECT count(*) FROM refunds WHERE status = 'issued' AND reason = 'hold_released'",
            )
            .await
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(stack.count("SELECT count(*) FROM bookings").await, 0);
    assert_eq!(
        stack
            .count("SELECT count(*) FROM payments WHERE status = 'refunded'")
            .await,
        1
    );
    assert_eq!(
        stack.seat(&event, seat).await,
        ("held".into(), Some(stack.user("bob")))
    );
    assert_eq!(stack.hold_view(&bob, &offer).await["status"], "active");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// The provider takes alice's money but its webhooks are lost (as when the gateway that
/// sends them is killed): the reconciler asks the provider and the hold becomes a booking;
/// the webhook redelivered later changes nothing. A declined payment whose webhook is lost
/// is marked failed the same way, and its hold stays active for another try.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_whose_webhooks_are_lost_is_reconciled_with_the_provider() {
    let stack = Stack::start(|s| {
        s.payments.reconcile_after_secs = 1;
        s.payments.reconcile_interval_secs = 1;
    })
    .await;
    let event = stack.event(json!({})).await;
    let (alice, bob) = (stack.token("alice").await, stack.token("bob").await);
    let hold = hold_id(&stack.hold(&alice, &event, &["A-1-5", "A-1-6"]).await);
    let checkout = stack.checkout(&alice, &hold).await;
    let completed = stack
        .pay(&checkout, "succeed", json!({"drop_webhooks": true}))
        .await;
    let booking = stack.booking_of(&alice, &hold).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["amount_cents"], 10_000);
    // No webhook arrived: the reconciler recorded the outcome.
    assert_eq!(stack.count("SELECT count(*) FROM webhook_events").await, 0);

    // The provider redelivers after all: acknowledged, nothing happens twice.
    let event_id = completed["event_id"].as_str().expect("event id");
    let body = succeeded(&checkout, event_id);
    let secret = stack.env.settings.payments.webhook_secret.clone();
    let sig = signature_header(secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
    let (status, ack) = post_webhook(&stack, &body, Some(sig)).await;
    assert_eq!(status, 200, "{ack}");

    // Bob's card is declined and that webhook is lost too.
    let declined = hold_id(&stack.hold(&bob, &event, &["A-1-8"]).await);
    let checkout = stack.checkout(&bob, &declined).await;
    stack
        .pay(&checkout, "fail", json!({"drop_webhooks": true}))
        .await;
    eventually(
        "the declined payment reconciled",
        Duration::from_secs(30),
        || async {
            (stack
                .count("SELECT count(*) FROM payments WHERE status = 'failed'")
                .await
                == 1)
                .then_some(())
        },
    )
    .await;
    eventually(
        "the payment_failed command applied",
        Duration::from_secs(10),
        || async {
            (stack
                .count("SELECT count(*) FROM requests WHERE kind = 'payment_failed'")
                .await
                == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(stack.hold_view(&bob, &declined).await["status"], "active");
    for (sql, n) in [
        ("SELECT count(*) FROM bookings", 1),
        ("SELECT count(*) FROM tickets", 2),
        (
            "SELECT count(*) FROM requests WHERE kind = 'payment_succeeded'",
            1,
        ),
        ("SELECT count(*) FROM payments WHERE status = 'paid'", 1),
        ("SELECT count(*) FROM refunds", 0),
        ("SELECT count(*) FROM seats WHERE status = 'sold'", 2),
    ] {
        assert_eq!(stack.count(sql).await, n, "{sql}");
    }
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_booking_refunds_once_and_puts_its_seats_back_on_sale() {
    let stack = Arc::new(Stack::start(|_| {}).await);
    let event = stack.event(json!({})).await;
    let (alice, bob, carol) = (
        stack.token("alice").await,
        stack.token("bob").await,
        stack.token("carol").await,
    );
    let id = hold_id(&stack.hold(&alice, &event, &["A-2-8", "A-2-9"]).await);
    let checkout = stack.checkout(&alice, &id).await;
    stack.pay(&checkout, "succeed", json!({})).await;
    let booking = stack.booking_of(&alice, &id).await;
    let booking_id = booking["booking_id"].as_str().expect("booking").to_owned();
    // Bob waits for one of the sold seats.
    let (status, _) = stack.waitlist(Method::POST, &bob, &event, "A-2-8").await;
    assert_eq!(status, 201);

    // Alice cancels twice at once (a double click): one cancellation, one refund.
    let path = format!("/v1/bookings/{booking_id}/cancel");
    let empty = json!({});
    let (first, second) = tokio::join!(
        stack.api.post(&path, Some(&alice), &empty),
        stack.api.post(&path, Some(&alice), &empty)
    );
    let mut answers = [first, second];
    answers.sort_by_key(|(status, _)| status.as_u16());
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(answers[0].1["refund_cents"], 10_000);
    assert_eq!(
        (answers[1].0.as_u16(), answers[1].1["code"].as_str()),
        (409, Some("booking_cancelled")),
        "{}",
        answers[1].1
    );
    let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
    eventually("the refund", Duration::from_secs(30), || async {
        let view = stack.provider_payment(&payment).await;
        (view["refunded_cents"] == 10_000).then_some(())
    })
    .await;
    let (_, view) = stack
        .api
        .get(&format!("/v1/bookings/{booking_id}"), Some(&alice))
        .await;
    assert_eq!(view["status"], "cancelled");
    assert!(view["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .all(|t| t["status"] == "void"));
    // Seat 8 went to bob, seat 9 is on sale again.
    stack.wait_offer(&bob, &event, "A-2-8").await;
    stack.hold(&carol, &event, &["A-2-9"]).await;
    assert_eq!(stack.count("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        stack.provider_payment(&payment).await["refunded_cents"],
        10_000
    );

    // Inside the refund cutoff: cancelled, seats back, no money back.
    let soon = stack
        .event(json!({
            "starts_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            "refund_cutoff_hours": 24
        }))
        .await;
    let late = hold_id(&stack.hold(&alice, &soon, &["A-1-1"]).await);
    let checkout = stack.checkout(&alice, &late).await;
    stack.pay(&checkout, "succeed", json!({})).await;
    let booking = stack.booking_of(&alice, &late).await;
    let (status, cancelled) = stack
        .api
        .post(
            &format!(
                "/v1/bookings/{}/cancel",
                booking["booking_id"].as_str().expect("id")
            ),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), cancelled["refund_cents"].as_i64()),
        (200, Some(0)),
        "{cancelled}"
    );
    assert_eq!(stack.count("SELECT count(*) FROM refunds").await, 1);
    assert_eq!(stack.seat(&soon, "A-1-1").await.0, "available");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// Wait until the payment's `payment_failed` is decided.
async fn wait_failed(stack: &Stack, payment: &str) {
    eventually(
        "the declined payment applied",
        Duration::from_secs(30),
        || async {
            let applied: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM requests r JOIN payments p ON p.hold_id = r.hold_id \
                 WHERE r.kind = 'payment_failed' AND p.id = $1::uuid AND p.status = 'failed'",
            )
            .bind(payment)
            .fetch_one(stack.pool())
            .await
            .expect("payment_failed decision");
            (applied == 1).then_some(())
        },
    )
    .await;
}

/// Alice's card is declined, then she pays on the same payment with another card: the
/// provider sends `payment.failed`, then `payment.succeeded`. Her hold is still live, so
/// it becomes a booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_that_failed_then_succeeded_books_a_live_hold() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let hold = hold_id(&stack.hold(&alice, &event, &["A-1-2"]).await);
    let checkout = stack.checkout(&alice, &hold).await;
    let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
    stack.pay(&checkout, "fail", json!({})).await;
    wait_failed(&stack, &payment).await;
    assert_eq!(stack.hold_view(&alice, &hold).await["status"], "active");

    stack
        .pay(&checkout, "succeed", json!({"retry": true}))
        .await;
    let booking = stack.booking_of(&alice, &hold).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["amount_cents"], 5000);
    assert_eq!(
        stack.provider_payment(&payment).await["captured_cents"],
        5000
    );
    for (sql, n) in [
        ("SELECT count(*) FROM payments WHERE status = 'paid'", 1),
        ("SELECT count(*) FROM bookings", 1),
        ("SELECT count(*) FROM refunds", 0),
        ("SELECT count(*) FROM seats WHERE status = 'sold'", 1),
    ] {
        assert_eq!(stack.count(sql).await, n, "{sql}");
    }
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// The same, but alice gave her hold up between the decline and the success: the money
/// goes back, exactly once, even when the provider reports the success twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_that_failed_then_succeeded_after_its_hold_ended_is_refunded_once() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let hold = hold_id(&stack.hold(&alice, &event, &["A-1-3"]).await);
    let checkout = stack.checkout(&alice, &hold).await;
    let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
    stack.pay(&checkout, "fail", json!({})).await;
    wait_failed(&stack, &payment).await;
    let (status, cancelled) = stack.cancel_hold(&alice, &hold).await;
    assert_eq!(status, 200, "{cancelled}");

    let completed = stack
        .pay(&checkout, "succeed", json!({"retry": true}))
        .await;
    eventually("the refund", Duration::from_secs(30), || async {
        let view = stack.provider_payment(&payment).await;
        (view["refunded_cents"] == 5000).then_some(())
    })
    .await;
    // The provider reports the success once more, as a new event: nothing happens twice.
    let event_id = completed["event_id"].as_str().expect("event id");
    let body = succeeded(&checkout, &format!("{event_id}_again"));
    let secret = stack.env.settings.payments.webhook_secret.clone();
    let sig = signature_header(secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
    let (status, ack) = post_webhook(&stack, &body, Some(sig)).await;
    assert_eq!(
        (status, ack["duplicate"].as_bool()),
        (200, Some(false)),
        "{ack}"
    );
    eventually("the refund recorded", Duration::from_secs(10), || async {
        (stack
            .count("SELECT count(*) FROM payments WHERE status = 'refunded'")
            .await
            == 1)
            .then_some(())
    })
    .await;
    for (sql, n) in [
        (
            "SELECT count(*) FROM refunds WHERE status = 'issued' AND reason = 'hold_released'",
            1,
        ),
        ("SELECT count(*) FROM refunds", 1),
        (
            "SELECT count(*) FROM requests WHERE kind = 'payment_succeeded'",
            1,
        ),
        ("SELECT count(*) FROM bookings", 0),
    ] {
        assert_eq!(stack.count(sql).await, n, "{sql}");
    }
    let provider = stack.provider_payment(&payment).await;
    assert_eq!(
        (
            provider["captured_cents"].as_i64(),
            provider["refunded_cents"].as_i64()
        ),
        (Some(5000), Some(5000))
    );
    assert_eq!(stack.seat(&event, "A-1-3").await.0, "available");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// The provider captures 40.00 of a 50.00 payment, or 50.00 in euros instead of dollars:
/// neither is a sale. What was captured goes back, the metric behind the alert moves, and
/// the hold stays live so the buyer can pay again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_capture_of_another_amount_or_currency_is_refunded_and_never_booked() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({})).await;
    let alice = stack.token("alice").await;
    let mut holds = Vec::new();
    for (seat, knob, field, captured) in [
        ("A-1-4", json!({"capture_cents": 4000}), "amount", 4000),
        (
            "A-1-5",
            json!({"capture_currency": "EUR"}),
            "currency",
            5000,
        ),
    ] {
        let series = format!("seatq_payment_mismatches_total{{field=\"{field}\"}}");
        let before = metric(&series);
        let hold = hold_id(&stack.hold(&alice, &event, &[seat]).await);
        let checkout = stack.checkout(&alice, &hold).await;
        let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
        stack.pay(&checkout, "succeed", knob).await;
        eventually("the refund", Duration::from_secs(30), || async {
            let view = stack.provider_payment(&payment).await;
            (view["refunded_cents"] == captured).then_some(())
        })
        .await;
        // The worker records the provider's answer just after the provider refunded.
        eventually("the refund recorded", Duration::from_secs(30), || async {
            let issued: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM refunds WHERE payment_id = $1::uuid AND status = 'issued'",
            )
            .bind(&payment)
            .fetch_one(stack.pool())
            .await
            .expect("refunds");
            (issued == 1).then_some(())
        })
        .await;
        let (status, reason, amount): (String, String, i64) = sqlx::query_as(
            "SELECT p.status, r.reason, r.amount_cents FROM payments p \
             JOIN refunds r ON r.payment_id = p.id WHERE p.id = $1::uuid",
        )
        .bind(&payment)
        .fetch_one(stack.pool())
        .await
        .expect("payment and refund");
        assert_eq!(
            (status.as_str(), reason.as_str(), amount),
            ("refunded", "payment_mismatch", captured),
            "{field}"
        );
        let detail: Value = sqlx::query_scalar(
            "SELECT detail FROM requests WHERE kind = 'payment_succeeded' AND hold_id = $1::uuid",
        )
        .bind(&hold)
        .fetch_one(stack.pool())
        .await
        .expect("decision");
        assert_eq!(
            (detail["outcome"].as_str(), detail["mismatch"].as_str()),
            (Some("refund"), Some(field)),
            "{detail}"
        );
        assert_eq!(stack.hold_view(&alice, &hold).await["status"], "active");
        assert_eq!(
            stack.seat(&event, seat).await,
            ("held".into(), Some(stack.user("alice")))
        );
        assert!(metric(&series) >= before + 1.0, "{series} did not move");
        holds.push(hold);
    }
    assert_eq!(stack.count("SELECT count(*) FROM bookings").await, 0);

    // The hold is still alice's to pay for: a new checkout, paid as asked, books it.
    let hold = holds.pop().expect("a hold");
    let checkout = stack.checkout(&alice, &hold).await;
    stack.pay(&checkout, "succeed", json!({})).await;
    assert_eq!(stack.booking_of(&alice, &hold).await["status"], "confirmed");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
