//! Bookings and tickets over HTTP against the real PostgreSQL: who sees what (a stranger
//! gets 404, never 403), the QR code, check-in that admits a ticket exactly once even
//! under concurrent scans, transfer that retires the sender's code, and cancellation
//! going through the pipeline.
//!
//! Bookings and tickets are written here directly as fixtures, the way the consumer
//! writes them when a payment succeeds (that path has its own tests); the cancel test
//! plays the consumer's part by reading the command off the broker and recording a
//! decision, so it needs no consumer either.

use std::time::Duration;

use crate::support::{assert_problem, gateway, sections};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use seatq_common::command::{Command, Decoded};
use seatq_common::ids::{BookingId, RequestId, SectionId, TicketId};
use seatq_common::testkit::{Api, Reply, TestEnv};
use seatq_common::ticket_code;
use serde_json::{json, Value};
use uuid::Uuid;

/// The event's section ids by code.
async fn section(env: &TestEnv, event: Uuid, code: &str) -> SectionId {
    let (id,): (SectionId,) = sqlx::query_as(
        "SELECT s.id FROM sections s JOIN events e ON e.venue_id = s.venue_id \
         WHERE e.id = $1 AND s.code = $2",
    )
    .bind(event)
    .bind(code)
    .fetch_one(&env.pool)
    .await
    .expect("section");
    id
}

/// What a booking fixture is made of.
enum Places {
    /// Reserved seats of section A by seat_no (A has first_seat_no 0: seat 0 is A-1-1).
    Seats(Vec<i32>),
    /// A number of general-admission places in FLOOR.
    Floor(i32),
}

/// Where a ticket is: a seat number, or none for a general-admission place.
type TicketPlace = (Option<i32>, SectionId);

/// A sold hold, its paid payment, a confirmed booking and one valid ticket per place, as
/// the consumer leaves them after a successful payment.
async fn book(
    env: &TestEnv,
    event: &str,
    user: &str,
    places: Places,
    created_ago_secs: i64,
) -> (BookingId, Vec<TicketId>) {
    let event = Uuid::parse_str(event).expect("event id");
    let now = chrono::Utc::now() - chrono::Duration::seconds(created_ago_secs);
    let (hold, payment, booking) = (Uuid::now_v7(), Uuid::now_v7(), BookingId::new());
    let seat_section = section(env, event, "A").await;
    let floor = section(env, event, "FLOOR").await;
    let (seat_nos, ga, tickets): (Vec<i32>, Option<SectionId>, Vec<TicketPlace>) = match places {
        Places::Seats(nos) => (
            nos.clone(),
            None,
            nos.iter().map(|n| (Some(*n), seat_section)).collect(),
        ),
        Places::Floor(n) => (vec![], Some(floor), (0..n).map(|_| (None, floor)).collect()),
    };
    let mut tx = env.pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO holds (id, event_id, user_id, request_id, status, seat_nos, ga_section_id, \
           quantity, created_at, expires_at, ended_at) \
         VALUES ($1, $2, $3, $4, 'sold', $5, $6, $7, $8, $8 + interval '10 minutes', $8)",
    )
    .bind(hold)
    .bind(event)
    .bind(user)
    .bind(Uuid::now_v7())
    .bind(&seat_nos)
    .bind(ga)
    .bind(tickets.len() as i32)
    .bind(now)
    .execute(&mut *tx)
    .await
    .expect("hold");
    sqlx::query(
        "INSERT INTO payments (id, hold_id, event_id, user_id, amount_cents, status) \
         VALUES ($1, $2, $3, $4, 5000, 'paid')",
    )
    .bind(payment)
    .bind(hold)
    .bind(event)
    .bind(user)
    .execute(&mut *tx)
    .await
    .expect("payment");
    sqlx::query(
        "INSERT INTO bookings (id, hold_id, event_id, user_id, payment_id, amount_cents, status, \
           created_at) VALUES ($1, $2, $3, $4, $5, 5000, 'confirmed', $6)",
    )
    .bind(booking)
    .bind(hold)
    .bind(event)
    .bind(user)
    .bind(payment)
    .bind(now)
    .execute(&mut *tx)
    .await
    .expect("booking");
    let mut ids = Vec::new();
    for (seat_no, section_id) in tickets {
        let id = TicketId::new();
        sqlx::query(
            "INSERT INTO tickets (id, booking_id, event_id, seat_no, section_id, holder_user_id, \
               status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'valid', $7)",
        )
        .bind(id)
        .bind(booking)
        .bind(event)
        .bind(seat_no)
        .bind(section_id)
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("ticket");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    (booking, ids)
}

fn code(env: &TestEnv, ticket: TicketId, version: i32) -> String {
    ticket_code::encode(
        env.settings.tickets.code_secret.as_bytes(),
        ticket.0,
        version,
    )
}

async fn check_in(api: &Api, admin: &str, body: Value) -> Reply {
    api.post("/v1/admin/checkins", Some(admin), &body).await
}

/// Status, content type, cache control and body of the ticket's QR code.
async fn qr(api: &Api, token: &str, ticket: TicketId) -> (u16, String, String, String) {
    let r = api
        .http
        .get(format!("{}/v1/tickets/{ticket}/qr.svg", api.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("qr");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, cache) = (
        r.status().as_u16(),
        header("content-type"),
        header("cache-control"),
    );
    (status, content_type, cache, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_see_their_bookings_with_codes_and_nobody_else_does() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let (alice, bob) = (
        api.token("alice", "user").await,
        api.token("bob", "user").await,
    );
    let admin = api.token("door", "admin").await;
    let (seated, seat_tickets) = book(&env, &event, "alice", Places::Seats(vec![0, 11]), 60).await;
    let (floor, floor_tickets) = book(&env, &event, "alice", Places::Floor(2), 0).await;

    let (status, view) = api
        .get(&format!("/v1/bookings/{seated}"), Some(&alice))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["booking_id"], seated.to_string());
    assert_eq!(view["event_id"], event);
    assert_eq!(view["event_title"], "Test Night");
    assert_eq!(view["status"], "confirmed");
    assert_eq!(view["amount_cents"], 5000);
    assert!(view["hold_id"].is_string() && view["created_at"].is_string());
    let tickets = view["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 2);
    for (t, (id, label)) in tickets
        .iter()
        .zip(seat_tickets.iter().zip(["A-1-1", "A-2-2"]))
    {
        assert_eq!(t["ticket_id"], id.to_string());
        assert_eq!(t["seat_id"], label);
        assert_eq!(t["section"], "A");
        assert_eq!(t["status"], "valid");
        assert_eq!(t["holder_user_id"], "alice");
        assert_eq!(t["code"], code(&env, *id, 1));
        assert_eq!(t["qr_url"], format!("/v1/tickets/{id}/qr.svg"));
        assert!(t.get("checked_in_at").is_none(), "{t}");
    }

    // Someone else's booking does not exist for you; an admin sees it, codes included.
    let stranger = api.get(&format!("/v1/bookings/{seated}"), Some(&bob)).await;
    assert_problem(&stranger, 404, "booking_not_found");
    let missing = api
        .get(&format!("/v1/bookings/{}", Uuid::now_v7()), Some(&alice))
        .await;
    assert_problem(&missing, 404, "booking_not_found");
    assert_eq!(
        stranger.1["detail"]
            .as_str()
            .map(|d| d.contains("no booking")),
        Some(true)
    );
    let (status, as_admin) = api
        .get(&format!("/v1/bookings/{seated}"), Some(&admin))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        as_admin["tickets"][0]["code"],
        code(&env, seat_tickets[0], 1)
    );
    assert_problem(
        &api.get(&format!("/v1/bookings/{seated}"), None).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &api.get("/v1/bookings/not-a-uuid", Some(&alice)).await,
        400,
        "invalid_path",
    );

    // The caller's bookings, newest first; general admission has no seat id.
    let (status, mine) = api.get("/v1/me/bookings", Some(&alice)).await;
    assert_eq!(status, 200, "{mine}");
    let list = mine["bookings"].as_array().expect("bookings");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["booking_id"], floor.to_string());
    assert_eq!(list[1]["booking_id"], seated.to_string());
    let ga = &list[0]["tickets"];
    assert_eq!(ga.as_array().map(Vec::len), Some(2));
    assert!(ga[0].get("seat_id").is_none(), "{ga}");
    assert_eq!(ga[0]["section"], "FLOOR");
    assert!(floor_tickets
        .iter()
        .any(|t| ga[0]["code"] == code(&env, *t, 1)));
    let (_, limited) = api.get("/v1/me/bookings?limit=1", Some(&alice)).await;
    assert_eq!(limited["bookings"].as_array().map(Vec::len), Some(1));
    assert_eq!(limited["bookings"][0]["booking_id"], floor.to_string());
    let (status, none) = api.get("/v1/me/bookings", Some(&bob)).await;
    assert_eq!(status, 200);
    assert_eq!(none["bookings"], json!([]));
    for bad in ["?limit=0", "?limit=101", "?limit=x", "?page=2"] {
        assert_problem(
            &api.get(&format!("/v1/me/bookings{bad}"), Some(&alice))
                .await,
            400,
            "invalid_query",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_code_is_served_to_the_holder_only() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let (alice, bob) = (
        api.token("alice", "user").await,
        api.token("bob", "user").await,
    );
    let admin = api.token("door", "admin").await;
    let (_, tickets) = book(&env, &event, "alice", Places::Seats(vec![3, 4]), 0).await;

    let (status, content_type, cache, svg) = qr(api, &alice, tickets[0]).await;
    assert_eq!(status, 200, "{svg}");
    assert_eq!(content_type, "image/svg+xml");
    assert_eq!(cache, "no-store");
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    assert_eq!(qr(api, &admin, tickets[0]).await.0, 200);
    let (status, content_type, _, body) = qr(api, &bob, tickets[0]).await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/problem+json");
    assert!(body.contains("ticket_not_found"), "{body}");
    assert_eq!(qr(api, &alice, TicketId::new()).await.0, 404);

    // A void ticket (its booking cancelled) has no QR code any more.
    sqlx::query("UPDATE tickets SET status = 'void' WHERE id = $1")
        .bind(tickets[1])
        .execute(&env.pool)
        .await
        .expect("void");
    let (status, _, _, body) = qr(api, &alice, tickets[1]).await;
    assert_eq!(status, 410);
    assert!(body.contains("ticket_void"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_admits_a_ticket_once_and_refuses_junk() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let other_event = api.create_event(sections(), json!({})).await;
    let alice = api.token("alice", "user").await;
    let admin = api.token("door", "admin").await;
    let (booking, tickets) = book(&env, &event, "alice", Places::Seats(vec![5, 6, 7]), 0).await;
    let first = code(&env, tickets[0], 1);

    let (status, admitted) = check_in(api, &admin, json!({"code": first, "event_id": event})).await;
    assert_eq!(status, 200, "{admitted}");
    assert_eq!(admitted["ticket_id"], tickets[0].to_string());
    assert_eq!(admitted["event_id"], event);
    assert_eq!(admitted["seat_id"], "A-1-6");
    assert_eq!(admitted["section"], "A");
    assert_eq!(admitted["holder_user_id"], "alice");
    let at = admitted["checked_in_at"].as_str().expect("checked_in_at");

    // The second scan says when the ticket was first used.
    let again = check_in(api, &admin, json!({"code": first, "event_id": event})).await;
    assert_problem(&again, 409, "already_checked_in");
    assert_eq!(again.1["checked_in_at"], at);
    let (by,): (Option<String>,) =
        sqlx::query_as("SELECT checked_in_by FROM tickets WHERE id = $1")
            .bind(tickets[0])
            .fetch_one(&env.pool)
            .await
            .expect("ticket");
    assert_eq!(by.as_deref(), Some("door"));
    let (_, view) = api
        .get(&format!("/v1/bookings/{booking}"), Some(&alice))
        .await;
    assert_eq!(view["tickets"][0]["status"], "checked_in");
    assert_eq!(view["tickets"][0]["checked_in_at"], at);
    assert_eq!(view["tickets"][1]["status"], "valid");

    // Junk is 400, a forged or unknown code 404 (no hint for forgers), a ticket for
    // another event 409 and it stays admissible where it belongs.
    for junk in ["", "hello", "SQ1.", "SQ1.!!!"] {
        assert_problem(
            &check_in(api, &admin, json!({"code": junk, "event_id": event})).await,
            400,
            "ticket_code_malformed",
        );
    }
    let forged = ticket_code::encode(b"not the secret", tickets[1].0, 1);
    let reply = check_in(api, &admin, json!({"code": forged, "event_id": event})).await;
    assert_problem(&reply, 404, "ticket_not_found");
    assert!(!reply.1["detail"]
        .to_string()
        .contains(&tickets[1].to_string()));
    assert_problem(
        &check_in(
            api,
            &admin,
            json!({"code": code(&env, TicketId::new(), 1), "event_id": event}),
        )
        .await,
        404,
        "ticket_not_found",
    );
    assert_problem(
        &check_in(
            api,
            &admin,
            json!({"code": code(&env, tickets[1], 2), "event_id": event}),
        )
        .await,
        404,
        "ticket_not_found",
    );
    let elsewhere = check_in(
        api,
        &admin,
        json!({"code": code(&env, tickets[1], 1), "event_id": other_event}),
    )
    .await;
    assert_problem(&elsewhere, 409, "wrong_event");
    assert_eq!(elsewhere.1["ticket_event_id"], event);
    let (status, _) = check_in(
        api,
        &admin,
        json!({"code": code(&env, tickets[1], 1), "event_id": event}),
    )
    .await;
    assert_eq!(status, 200);

    // A scan must say which event's door it is at: without it any event's ticket would do.
    assert_problem(
        &check_in(api, &admin, json!({"code": code(&env, tickets[2], 1)})).await,
        422,
        "event_required",
    );

    // A void ticket is refused; only admins check in; bad bodies are 4xx.
    sqlx::query("UPDATE tickets SET status = 'void' WHERE id = $1")
        .bind(tickets[2])
        .execute(&env.pool)
        .await
        .expect("void");
    assert_problem(
        &check_in(
            api,
            &admin,
            json!({"code": code(&env, tickets[2], 1), "event_id": event}),
        )
        .await,
        409,
        "ticket_void",
    );
    assert_problem(
        &check_in(
            api,
            &alice,
            json!({"code": code(&env, tickets[2], 1), "event_id": event}),
        )
        .await,
        403,
        "admin_only",
    );
    assert_problem(
        &check_in(api, &admin, json!({"code": 7, "event_id": event})).await,
        422,
        "invalid_body",
    );
    assert_problem(
        &check_in(api, &admin, json!({"code": first, "event_id": "x"})).await,
        422,
        "invalid_body",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_of_one_code_admit_exactly_once() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let admin = api.token("door", "admin").await;
    let (_, tickets) = book(&env, &event, "alice", Places::Floor(1), 0).await;
    let body = json!({"code": code(&env, tickets[0], 1), "event_id": event});

    let mut scans = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, admin, body) = (api.clone_client(), admin.clone(), body.clone());
        scans.spawn(async move { check_in(&api, &admin, body).await });
    }
    let replies = scans.join_all().await;
    let admitted: Vec<&Reply> = replies.iter().filter(|r| r.0 == 200).collect();
    assert_eq!(admitted.len(), 1, "{replies:?}");
    let at = &admitted[0].1["checked_in_at"];
    for r in replies.iter().filter(|r| r.0 != 200) {
        assert_problem(r, 409, "already_checked_in");
        assert_eq!(&r.1["checked_in_at"], at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_the_ticket_and_retires_the_old_code() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let (alice, bob, carol) = (
        api.token("alice", "user").await,
        api.token("bob", "user").await,
        api.token("carol", "user").await,
    );
    let admin = api.token("door", "admin").await;
    let (booking, tickets) = book(&env, &event, "alice", Places::Seats(vec![20, 21]), 0).await;
    let ticket = tickets[0];
    let transfer = |token: &str, id: TicketId, to: Value| {
        let (api, token) = (&api, token.to_owned());
        async move {
            api.post(
                &format!("/v1/tickets/{id}/transfer"),
                Some(&token),
                &json!({ "to_user_id": to }),
            )
            .await
        }
    };

    // Refused: to yourself, to a bad id, by someone who does not hold it.
    assert_problem(
        &transfer(&alice, ticket, json!("alice")).await,
        422,
        "transfer_to_self",
    );
    assert_problem(
        &transfer(&alice, ticket, json!("")).await,
        422,
        "invalid_user_id",
    );
    assert_problem(
        &transfer(&alice, ticket, json!("a b")).await,
        422,
        "invalid_user_id",
    );
    assert_problem(
        &transfer(&carol, ticket, json!("carol")).await,
        404,
        "ticket_not_found",
    );
    assert_problem(
        &transfer(&carol, ticket, json!("bob")).await,
        404,
        "ticket_not_found",
    );
    assert_problem(
        &transfer(&admin, ticket, json!("bob")).await,
        403,
        "not_ticket_holder",
    );
    assert_problem(
        &transfer(&alice, TicketId::new(), json!("bob")).await,
        404,
        "ticket_not_found",
    );

    // Alice gives it to Bob: her answer has no code, and her code stops checking in.
    let (status, moved) = transfer(&alice, ticket, json!("bob")).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["ticket_id"], ticket.to_string());
    assert_eq!(moved["holder_user_id"], "bob");
    assert_eq!(moved["status"], "valid");
    assert_eq!(moved["seat_id"], "A-3-1");
    assert!(moved.get("code").is_none(), "{moved}");
    assert_problem(
        &check_in(
            api,
            &admin,
            json!({"code": code(&env, ticket, 1), "event_id": event}),
        )
        .await,
        409,
        "code_superseded",
    );
    // Alice can no longer move it or show its QR code; she still sees it in her booking.
    assert_problem(
        &transfer(&alice, ticket, json!("carol")).await,
        404,
        "ticket_not_found",
    );
    assert_eq!(qr(api, &alice, ticket).await.0, 404);
    let (_, view) = api
        .get(&format!("/v1/bookings/{booking}"), Some(&alice))
        .await;
    assert_eq!(view["tickets"][0]["holder_user_id"], "bob");
    assert!(view["tickets"][0].get("code").is_none(), "{view}");
    assert_eq!(view["tickets"][1]["code"], code(&env, tickets[1], 1));
    let (status, hers) = api
        .get(&format!("/v1/tickets/{ticket}"), Some(&alice))
        .await;
    assert_eq!(status, 200);
    assert!(hers.get("code").is_none(), "{hers}");
    // Bob is not the booking's owner, but the ticket is his: QR code and new code.
    assert_problem(
        &api.get(&format!("/v1/bookings/{booking}"), Some(&bob))
            .await,
        404,
        "booking_not_found",
    );
    let (status, content_type, _, _) = qr(api, &bob, ticket).await;
    assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
    let (status, his) = api.get(&format!("/v1/tickets/{ticket}"), Some(&bob)).await;
    assert_eq!(status, 200, "{his}");
    let new_code = code(&env, ticket, 2);
    assert_eq!(his["code"], new_code);
    assert_problem(
        &api.get(&format!("/v1/tickets/{ticket}"), Some(&carol))
            .await,
        404,
        "ticket_not_found",
    );

    // The new code checks in once; a used ticket cannot be transferred.
    let (status, admitted) =
        check_in(api, &admin, json!({"code": new_code, "event_id": event})).await;
    assert_eq!(status, 200, "{admitted}");
    assert_eq!(admitted["holder_user_id"], "bob");
    assert_problem(
        &check_in(
            api,
            &admin,
            json!({"code": code(&env, ticket, 1), "event_id": event}),
        )
        .await,
        409,
        "code_superseded",
    );
    assert_problem(
        &transfer(&bob, ticket, json!("carol")).await,
        409,
        "already_checked_in",
    );

    // A void ticket cannot be transferred either.
    sqlx::query("UPDATE tickets SET status = 'void' WHERE id = $1")
        .bind(tickets[1])
        .execute(&env.pool)
        .await
        .expect("void");
    assert_problem(
        &transfer(&alice, tickets[1], json!("bob")).await,
        409,
        "ticket_void",
    );
    assert_problem(
        &api.post(
            &format!("/v1/tickets/{}/transfer", tickets[1]),
            Some(&alice),
            &json!({"to": "bob"}),
        )
        .await,
        422,
        "invalid_body",
    );
}

/// Reads the commands topic from the start, like the consumer would.
struct CommandReader(BaseConsumer);

impl CommandReader {
    fn new(env: &TestEnv) -> Self {
        let reader: BaseConsumer = seatq_common::kafka::consumer_config(
            &env.settings.kafka,
            &format!("{}-reader", env.database),
        )
        .create()
        .expect("reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&env.topics.commands, 0, Offset::Beginning)
            .expect("partition");
        reader.assign(&assignment).expect("assign");
        Self(reader)
    }

    /// The next `cancel_booking` command: its request id, booking, sender and by_admin.
    async fn next_cancel(self) -> (Self, (RequestId, BookingId, String, bool)) {
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no cancel_booking command"
                );
                let Some(Ok(m)) = self.0.poll(Duration::from_millis(100)) else {
                    continue;
                };
                for item in seatq_common::command::decode_record(m.payload().unwrap_or_default()) {
                    if let Decoded::Command(envelope) = item {
                        if let Command::CancelBooking(c) = envelope.command {
                            let found = (
                                envelope.request_id,
                                c.booking_id,
                                envelope.user_id.0,
                                c.by_admin,
                            );
                            return (self, found);
                        }
                    }
                }
            }
        })
        .await
        .expect("reader task")
    }
}

/// Record the consumer's decision for `request_id` (about `booking`) and wake the waiting
/// gateway, as the consumer does in its batch transaction.
async fn decide(
    env: &TestEnv,
    booking: BookingId,
    request_id: RequestId,
    rejected: Option<&str>,
    detail: Value,
) {
    sqlx::query(
        "INSERT INTO requests (request_id, event_id, user_id, kind, status, reason, detail, \
           kafka_partition, kafka_offset, issued_at, decided_at) \
         SELECT $1, b.event_id, b.user_id, 'cancel_booking', $2, $3, $4, 0, 0, now(), now() \
         FROM bookings b WHERE b.id = $5",
    )
    .bind(request_id)
    .bind(if rejected.is_some() {
        "rejected"
    } else {
        "applied"
    })
    .bind(rejected)
    .bind(detail)
    .bind(booking)
    .execute(&env.pool)
    .await
    .expect("decision");
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(seatq_common::db::DECISIONS_CHANNEL)
        .bind(request_id.to_string())
        .execute(&env.pool)
        .await
        .expect("notify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_goes_through_the_pipeline_and_answers_its_decision() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let (alice, bob) = (
        api.token("alice", "user").await,
        api.token("bob", "user").await,
    );
    let admin = api.token("door", "admin").await;
    let (booking, _) = book(&env, &event, "alice", Places::Seats(vec![1]), 0).await;
    let cancel_path = format!("/v1/bookings/{booking}/cancel");
    let cancel = |token: &str| {
        let (api, token, path) = (api.clone_client(), token.to_owned(), cancel_path.clone());
        tokio::spawn(async move { api.post(&path, Some(&token), &json!({})).await })
    };

    // Someone else's booking (or none) is not found, and nothing is sent for it.
    assert_problem(&cancel(&bob).await.expect("task"), 404, "booking_not_found");
    let missing = api
        .post(
            &format!("/v1/bookings/{}/cancel", Uuid::now_v7()),
            Some(&alice),
            &json!({}),
        )
        .await;
    assert_problem(&missing, 404, "booking_not_found");

    // Decided in time and applied: 200 with the refund from the decision.
    let reader = CommandReader::new(&env);
    let pending = cancel(&alice);
    let (reader, (request_id, sent_for, sender, by_admin)) = reader.next_cancel().await;
    assert_eq!(
        (sent_for, sender.as_str(), by_admin),
        (booking, "alice", false)
    );
    decide(
        &env,
        booking,
        request_id,
        None,
        json!({"outcome": "booking_cancelled", "refund_cents": 5000}),
    )
    .await;
    let (status, done) = pending.await.expect("task");
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done,
        json!({"booking_id": booking.to_string(), "status": "cancelled", "refund_cents": 5000,
               "cancelled_tickets": []})
    );

    // Rejected: the consumer's reason as the error (an admin's cancel says so).
    let pending = cancel(&admin);
    let (reader, (request_id, _, sender, by_admin)) = reader.next_cancel().await;
    assert_eq!((sender.as_str(), by_admin), ("door", true));
    decide(&env, booking, request_id, Some("event_started"), json!({})).await;
    let reply = pending.await.expect("task");
    assert_problem(&reply, 409, "event_started");
    assert_eq!(reply.1["request_id"], request_id.to_string());

    // Not decided within the wait: 202 with the request id.
    let started = std::time::Instant::now();
    let pending = cancel(&alice);
    let (_, (request_id, _, _, _)) = reader.next_cancel().await;
    let (status, body) = pending.await.expect("task");
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        json!({"request_id": request_id.to_string(), "status": "pending"})
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "waited for the decision"
    );

    // A booking the consumer has cancelled is refused without a command.
    sqlx::query(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), refund_cents = 5000 \
         WHERE id = $1",
    )
    .bind(booking)
    .execute(&env.pool)
    .await
    .expect("cancel");
    let reply = api.post(&cancel_path, Some(&alice), &json!({})).await;
    assert_problem(&reply, 409, "booking_cancelled");
    let (_, view) = api
        .get(&format!("/v1/bookings/{booking}"), Some(&alice))
        .await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["refund_cents"], 5000);
    assert!(view["cancelled_at"].is_string());
}
