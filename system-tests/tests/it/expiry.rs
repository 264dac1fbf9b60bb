//! Holds end on time: the scheduler's timers expire unpaid holds (with a reminder first),
//! survive kill -9 of the scheduler, and the sweeper expires holds whose timer never fired.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use seatq_common::catalog::Catalog;
use seatq_common::ids::HoldId;
use seatq_common::message::{SeatEvent, SeatEventEnvelope};
use seatq_common::record;
use seatq_common::testkit::invariants::{overdue_holds, violations, Violations};
use seatq_common::testkit::{eventually, read_topic};
use seatq_scheduler::sweeper::{sweep_request_id, Sweeper};
use seatq_scheduler::timers::{expiry_attempt_request_id, expiry_request_id};
use seatq_system_tests::stack::*;
use serde_json::{json, Value};

use uuid::Uuid;

fn hold_id(view: &Value) -> HoldId {
    view["hold_id"]
        .as_str()
        .expect("hold id")
        .parse()
        .expect("uuid")
}

fn time(view: &Value, field: &str) -> DateTime<Utc> {
    view[field]
        .as_str()
        .expect(field)
        .parse()
        .expect("timestamp")
}

/// The decision of `request_id`: (kind, status, detail.outcome).
async fn decision(stack: &Stack, request_id: Uuid) -> Option<(String, String, String)> {
    sqlx::query_as(
        "SELECT kind, status, coalesce(detail->>'outcome', '') FROM requests WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(stack.pool())
    .await
    .expect("decision")
}

/// Hold `seat` and leave it unpaid until it expires: the hold, its expiry, and how late
/// after its expiry it ended.
async fn hold_until_it_expires(
    stack: &Stack,
    token: &str,
    event: &str,
    seat: &str,
) -> (HoldId, DateTime<Utc>, chrono::Duration) {
    let hold = stack.hold(token, event, &[seat]).await;
    let id = hold_id(&hold);
    let expires_at = time(&hold, "expires_at");
    let ended = stack
        .wait_hold(
            token,
            &id.to_string(),
            "the hold to expire",
            Duration::from_secs(30),
            |h| h["status"] == "expired",
        )
        .await;
    (id, expires_at, time(&ended, "ended_at") - expires_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpaid_hold_expires_on_time_after_a_reminder_and_the_seat_is_sold_again() {
    let stack = Stack::start(|_| {}).await;
    let event = stack.event(json!({"hold_ttl_secs": 3})).await;
    let alice = stack.token("alice").await;
    let (id, expires_at, lateness) = hold_until_it_expires(&stack, &alice, &event, "A-1-1").await;
    // On time: not before its expiry (less a little clock skew), and promptly after.
    assert!(
        lateness > chrono::Duration::seconds(-2) && lateness < chrono::Duration::seconds(5),
        "expired {lateness} after its expiry"
    );
    // By its timer, not the sweeper.
    assert_eq!(
        decision(&stack, expiry_request_id(id, expires_at).0).await,
        Some(("expire_hold".into(), "applied".into(), "expired".into()))
    );
    assert_eq!(stack.seat(&event, "A-1-1").await.0, "available");

    let bob = stack.token("bob").await;
    let again = stack.hold(&bob, &event, &["A-1-1"]).await;
    assert_eq!(again["seat_ids"], json!(["A-1-1"]));

    // Alice was reminded before it expired, then told it was released.
    let mut seen: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let records = read_topic(&stack.env, &stack.env.topics.seat_events, 2, |records| {
        records.iter().any(|r| {
            record::decode_all::<SeatEventEnvelope>(r)
                .unwrap_or_default()
                .iter()
                .any(|e| matches!(&e.payload, SeatEvent::HoldReleased { hold_id, .. } if *hold_id == id))
        })
    });
    for r in &records {
        for e in record::decode_all::<SeatEventEnvelope>(r).expect("seat events") {
            match e.payload {
                SeatEvent::ReservationExpiring { hold_id, .. } if hold_id == id => {
                    seen.insert("reminder", e.occurred_at);
                }
                SeatEvent::HoldReleased {
                    hold_id, reason, ..
                } if hold_id == id => {
                    assert_eq!(reason, "expired");
                    seen.insert("released", e.occurred_at);
                }
                _ => {}
            }
        }
    }
    let reminder = seen
        .get("reminder")
        .expect("a reservation_expiring reminder");
    assert!(
        *reminder < expires_at,
        "reminded at {reminder}, expiry {expires_at}"
    );
    assert!(seen.contains_key("released"));
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// Timers of two hold windows (4 s and 8 s) while the scheduler process is killed with
/// SIGKILL twice: once before anything is due, once while expiries are being fired.
/// Every hold still expires by its timer, and each expiry is decided exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_killed_twice_every_timer_still_fires_once() {
    let stack = Stack::start_with(SchedulerMode::None, |s| {
        // Only timers may expire holds here; the sweeper waits an hour.
        s.scheduler.sweep_grace_secs = 3600;
        // A killed scheduler's partitions go to the next one once its session expires.
        s.kafka.session_timeout_ms = 2000;
    })
    .await;
    let mut scheduler = SchedulerProcess::spawn(&stack.env);
    let short = stack.event(json!({"hold_ttl_secs": 4})).await;
    let long = stack.event(json!({"hold_ttl_secs": 8})).await;
    let mut holds: Vec<(HoldId, DateTime<Utc>)> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let stack = Arc::new(stack);
    for i in 0..(2 * PER_ROW) {
        let event = if i % 2 == 0 {
            short.clone()
        } else {
            long.clone()
        };
        let seat = format!("A-{}-{}", i / PER_ROW + 1, i % PER_ROW + 1);
        let stack = stack.clone();
        tasks.spawn(async move {
            let token = stack.token(&format!("buyer{i}")).await;
            let hold = stack.hold(&token, &event, &[&seat]).await;
            (hold_id(&hold), time(&hold, "expires_at"))
        });
    }
    while let Some(h) = tasks.join_next().await {
        holds.push(h.expect("hold task"));
    }
    // First crash: timers read (or not yet), nothing due.
    scheduler.kill9();
    scheduler = SchedulerProcess::spawn(&stack.env);
    // Second crash: as soon as the first expiry is decided, mid-firing.
    let expired = "SELECT count(*) FROM holds WHERE status = 'expired'";
    eventually("a first expiry", Duration::from_secs(60), || async {
        (stack.count(expired).await > 0).then_some(())
    })
    .await;
    scheduler.kill9();
    scheduler = SchedulerProcess::spawn(&stack.env);
    eventually("every hold expired", Duration::from_secs(90), || async {
        (stack.count(expired).await == holds.len() as i64).then_some(())
    })
    .await;
    for (id, expires_at) in &holds {
        let decided: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT request_id, coalesce(detail->>'outcome', '') FROM requests \
             WHERE kind = 'expire_hold' AND hold_id = $1",
        )
        .bind(id)
        .fetch_all(stack.pool())
        .await
        .expect("expiries");
        assert_eq!(
            decided,
            vec![(expiry_request_id(*id, *expires_at).0, "expired".to_owned())],
            "hold {id}: one expiry, by its timer"
        );
    }
    assert_eq!(
        stack
            .count("SELECT count(*) FROM seats WHERE status <> 'available'")
            .await,
        0
    );
    assert_eq!(overdue_holds(stack.pool(), 0).await, 0);
    assert_eq!(violations(stack.pool()).await, Violations::default());
    drop(scheduler);
}

/// No timer fires here (the scheduler's timer service is not running, as if the timer was
/// never emitted or was lost): the sweeper alone expires the overdue hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweeper_expires_a_hold_whose_timer_never_fired() {
    let stack = Stack::start_with(SchedulerMode::None, |_| {}).await;
    let event = stack.event(json!({"hold_ttl_secs": 1})).await;
    let alice = stack.token("alice").await;
    let hold = stack.hold(&alice, &event, &["A-2-5"]).await;
    let id = hold_id(&hold);
    let env = &stack.env;
    let producer = seatq_common::kafka::producer(&env.settings.kafka).expect("producer");
    let sweeper = Sweeper {
        pool: env.pool.clone(),
        catalog: Arc::new(Catalog::new(env.pool.clone(), Duration::from_secs(2))),
        commands: seatq_common::command_producer::CommandProducer::new(
            producer,
            env.topics.commands.clone(),
            env.settings.kafka.batch_limits(),
        ),
        redis: None,
        interval: Duration::from_millis(200),
        grace_secs: 1,
    };
    // Not overdue yet: nothing to sweep.
    assert_eq!(sweeper.sweep().await.expect("sweep"), 0);
    let ended = eventually(
        "the sweeper to expire the hold",
        Duration::from_secs(30),
        || async {
            sweeper.sweep().await.expect("sweep");
            let view = stack.hold_view(&alice, &id.to_string()).await;
            (view["status"] == "expired").then_some(view)
        },
    )
    .await;
    assert!(time(&ended, "ended_at") >= time(&hold, "expires_at"));
    assert_eq!(
        decision(&stack, sweep_request_id(id, time(&hold, "expires_at")).0).await,
        Some(("expire_hold".into(), "applied".into(), "expired".into()))
    );
    // Sweeping again finds nothing.
    assert_eq!(sweeper.sweep().await.expect("sweep"), 0);
    assert_eq!(stack.seat(&event, "A-2-5").await.0, "available");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}

/// The scheduler's clock runs 5 s ahead of the consumer's: its timer fires 5 s before the
/// hold is due, and the consumer decides that expiry `not_due`. That must not use the
/// timer up: the consumer re-arms it, the re-armed firing (a new request id) comes when the
/// hold is due, and the hold expires on time by its timer. The sweeper, the only other way
/// out, does not run here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_expires_on_time_by_its_timer_when_the_schedulers_clock_runs_ahead() {
    let stack = Stack::start(|s| {
        s.scheduler.clock_offset_ms = 5000;
        s.scheduler.sweep_interval_ms = 600_000;
    })
    .await;
    let event = stack.event(json!({"hold_ttl_secs": 8})).await;
    let alice = stack.token("alice").await;
    let (id, expires_at, lateness) = hold_until_it_expires(&stack, &alice, &event, "A-1-2").await;
    assert!(
        lateness > chrono::Duration::seconds(-2) && lateness < chrono::Duration::seconds(3),
        "expired {lateness} after its expiry"
    );
    // The early firing was not due; its re-armed successor expired the hold.
    assert_eq!(
        decision(&stack, expiry_request_id(id, expires_at).0).await,
        Some(("expire_hold".into(), "applied".into(), "not_due".into()))
    );
    assert_eq!(
        decision(&stack, expiry_attempt_request_id(id, expires_at, 1).0).await,
        Some(("expire_hold".into(), "applied".into(), "expired".into()))
    );
    assert_eq!(
        decision(&stack, sweep_request_id(id, expires_at).0).await,
        None
    );
    assert_eq!(stack.seat(&event, "A-1-2").await.0, "available");
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
