//! Nothing stops a partition: commands that cannot be applied, mixed into a storm of good
//! ones, are refused and kept as dead letters while the partition goes on deciding, and
//! the good commands are decided exactly as if the bad ones had never been sent.
//!
//! The same good commands (same request ids, users, seats, packing, order) go through two
//! isolated pipelines: a control run, and a run with poison mixed in — a command whose
//! user id PostgreSQL cannot store (a data error), one that panics inside the rules
//! (`consumer.drill_panic_user`), a payment with a negative amount (a CHECK violation), an
//! unknown kind, a bad body, and records that are not commands at all. Before poison
//! isolation the first of these stopped the partition for good.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use seatq_common::command::{Command, CommandEnvelope, PaymentOutcome};
use seatq_common::ids::{EventId, HoldId, PaymentId, RequestId, UserId};
use seatq_common::testkit::{eventually, free_port, TestEnv};

use seatq_system_tests::pipeline::*;
use serde_json::json;

const ROWS: i32 = 20;
const PER_ROW: i32 = 25;
const GOOD: usize = 3000;
const PER_RECORD: usize = 50;
const DRILL_USER: &str = "fire-drill";

/// The good commands of the storm, for `event`: holds of 1–3 adjacent seats by 600 users,
/// contested; the same seed gives the same storm for both runs.
fn storm(event: EventId) -> Vec<CommandEnvelope> {
    let mut rng = Rng::new(17);
    (0..GOOD)
        .map(|i| {
            let n = 1 + rng.below(3) as i32;
            let row = rng.below(ROWS as u64) as i32;
            let first = rng.below((PER_ROW - n + 1) as u64) as i32;
            let seats = (0..n).map(|k| row * PER_ROW + first + k).collect();
            let mut cmd = hold_command(event, &format!("u{}", rng.below(600)), seats);
            // Request ids shared by both runs, so their decisions can be compared.
            cmd.request_id = RequestId(uuid::Uuid::from_u128(0x5eed_0000_0000 + i as u128));
            cmd
        })
        .collect()
}

/// A command the rules cannot apply, for each way we know of.
struct Poison {
    /// Elements to put into records (by the record index they join), and the request ids
    /// that must end rejected with a reason.
    elements: Vec<(usize, Vec<u8>)>,
    rejected: Vec<(RequestId, &'static str)>,
    /// Whole records that are not commands at all.
    records: Vec<(usize, Vec<u8>)>,
}

/// Poison for the storm on `event`; `setup` is another event of the partition and a live
/// hold on it (the payment's target).
fn poison(event: EventId, setup: (EventId, HoldId)) -> Poison {
    let mut rejected = Vec::new();
    let mut elements = Vec::new();
    // A user id with a NUL character: decided fine in memory, refused by PostgreSQL
    // (invalid byte sequence) when the hold is written.
    let nul = hold_command(event, "evil\u{0}user", vec![0, 1]);
    rejected.push((nul.request_id, "internal_error"));
    elements.push((3, nul.encode().expect("encode")));
    // A panic inside the rules.
    let drill = hold_command(event, DRILL_USER, vec![30]);
    rejected.push((drill.request_id, "internal_error"));
    elements.push((11, drill.encode().expect("encode")));
    // Two more of the same, in one record, next to each other.
    let nul2 = hold_command(event, "\u{0}", vec![40]);
    let drill2 = hold_command(event, DRILL_USER, vec![41]);
    rejected.push((nul2.request_id, "internal_error"));
    rejected.push((drill2.request_id, "internal_error"));
    elements.push((27, nul2.encode().expect("encode")));
    elements.push((27, drill2.encode().expect("encode")));
    // A payment with a negative amount for a live hold: the booking it would make
    // breaks a CHECK constraint when written, whatever else the rules do with it.
    let payment = CommandEnvelope {
        request_id: RequestId::new(),
        event_id: setup.0,
        user_id: UserId("payments".into()),
        issued_at: Utc::now(),
        command: Command::PaymentSucceeded(PaymentOutcome {
            hold_id: setup.1,
            payment_id: PaymentId::new(),
            amount_cents: -500,
            currency: None,
            captured: None,
        }),
        reply: false,
    };
    rejected.push((payment.request_id, "internal_error"));
    elements.push((35, payment.encode().expect("encode")));
    // Malformed: an unknown kind and a bad body, answered with their own reasons.
    let mut unknown: serde_json::Value =
        serde_json::from_slice(&hold_command(event, "x", vec![5]).encode().expect("encode"))
            .expect("json");
    unknown["kind"] = json!("launch_rockets");
    rejected.push((
        RequestId(
            unknown["request_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("uuid"),
        ),
        "unknown_command_kind",
    ));
    elements.push((19, unknown.to_string().into_bytes()));
    let mut bad_body = unknown.clone();
    let bad_id = RequestId::new();
    bad_body["kind"] = json!("hold_seats");
    bad_body["request_id"] = json!(bad_id);
    bad_body["body"] = json!({"mode": "seats", "seat_nos": "all of them"});
    rejected.push((bad_id, "invalid_command"));
    elements.push((44, bad_body.to_string().into_bytes()));
    Poison {
        elements,
        rejected,
        records: vec![
            (7, b"{this is not json".to_vec()),
            (50, vec![0xff, 0xfe, 0x00]),
        ],
    }
}

/// Records of the storm: `PER_RECORD` commands each, with the poison mixed in.
fn records(good: &[CommandEnvelope], poison: Option<&Poison>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, chunk) in good.chunks(PER_RECORD).enumerate() {
        let mut parts: Vec<Vec<u8>> = chunk.iter().map(|c| c.encode().expect("encode")).collect();
        if let Some(p) = poison {
            for (at, element) in &p.elements {
                if *at == i {
                    parts.insert(parts.len() / 2, element.clone());
                }
            }
            for (at, record) in &p.records {
                if *at == i {
                    out.push(record.clone());
                }
            }
        }
        out.push(seatq_common::record::pack(&parts));
    }
    out
}

struct Run {
    pipeline: Pipeline,
    event: EventId,
    metrics: String,
    producer: rdkafka::producer::FutureProducer,
}

async fn start(drill: bool) -> Run {
    let mut env = TestEnv::new(1).await;
    let metrics = format!("127.0.0.1:{}", free_port());
    env.settings.metrics.consumer_listen = metrics.clone();
    if drill {
        env.settings.consumer.drill_panic_user = DRILL_USER.into();
    }
    let pipeline = Pipeline::start_on(env, true).await;
    let event: EventId = pipeline
        .api
        .create_event(section_a(ROWS, PER_ROW), json!({"max_seats_per_user": 8}))
        .await
        .parse()
        .expect("event id");
    let producer = seatq_common::kafka::producer(&pipeline.env.settings.kafka).expect("producer");
    Run {
        pipeline,
        event,
        metrics,
        producer,
    }
}

impl Run {
    async fn deliver(&self, record: &[u8]) {
        let topic = &self.pipeline.env.topics.commands;
        let key = self.event.to_string();
        seatq_common::kafka::send(&self.producer, topic, Some(0), &key, record)
            .await
            .expect("produce");
    }

    /// Another event on the partition with a live hold on it, through the API.
    async fn setup_hold(&self) -> (EventId, HoldId) {
        let api = &self.pipeline.api;
        let event: EventId = api
            .create_event(section_a(1, 5), json!({}))
            .await
            .parse()
            .expect("event id");
        let user = format!("{}-payer", self.pipeline.env.database);
        let token = api.token(&user, "user").await;
        let (status, decided) = api
            .hold(
                &token,
                &event.to_string(),
                &json!({"seat_ids": ["A-1-1"]}),
                "?wait_ms=5000",
                &[],
            )
            .await;
        assert_eq!(
            (status.as_u16(), &decided["status"]),
            (200, &json!("held")),
            "{decided}"
        );
        let hold = decided["hold_id"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .expect("hold id");
        (event, HoldId(hold))
    }
}

/// The sum of a counter's series, scraped from a consumer's metrics listener.
async fn metric(listen: &str, name: &str) -> f64 {
    let Ok(reply) = reqwest::get(format!("http://{listen}/metrics")).await else {
        return 0.0;
    };
    let text = reply.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// request id -> (status, reason, seats held)
async fn outcomes(run: &Run) -> HashMap<uuid::Uuid, (String, Option<String>, Vec<i32>)> {
    type Row = (uuid::Uuid, String, Option<String>, Option<Vec<i32>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.request_id, r.status, r.reason, h.seat_nos FROM requests r \
         LEFT JOIN holds h ON h.id = r.hold_id",
    )
    .fetch_all(&run.pipeline.env.pool)
    .await
    .expect("decisions");
    rows.into_iter()
        .map(|(id, status, reason, seats)| (id, (status, reason, seats.unwrap_or_default())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_in_a_storm_is_dead_lettered_and_the_good_commands_decide_as_without_it() {
    let (control, mixed) = tokio::join!(start(false), start(true));
    let setup = mixed.setup_hold().await;
    let control_records = records(&storm(control.event), None);
    let poison = poison(mixed.event, setup);
    let mixed_records = records(&storm(mixed.event), Some(&poison));

    // Mid-storm: the records go out one by one while the consumers decide.
    tokio::join!(
        async {
            for r in &control_records {
                control.deliver(r).await;
            }
        },
        async {
            for r in &mixed_records {
                mixed.deliver(r).await;
            }
        }
    );
    // The setup hold is one more decision in the mixed run.
    let expected_mixed = (GOOD + poison.rejected.len() + 1) as i64;
    wait_decided(
        &control.pipeline.env.pool,
        GOOD as i64,
        Duration::from_secs(120),
    )
    .await;
    wait_decided(
        &mixed.pipeline.env.pool,
        expected_mixed,
        Duration::from_secs(120),
    )
    .await;

    let (before, after) = (outcomes(&control).await, outcomes(&mixed).await);
    assert_eq!(before.len(), GOOD);
    assert_eq!(after.len(), GOOD + poison.rejected.len() + 1);
    // The good commands: the same winners, the same refusals, the same seats.
    let mut differ = Vec::new();
    for (id, decision) in &before {
        if after.get(id) != Some(decision) {
            differ.push(format!("{id}: {decision:?} vs {:?}", after.get(id)));
        }
    }
    assert!(
        differ.is_empty(),
        "decided differently:\n{}",
        differ.join("\n")
    );
    let held = before.values().filter(|d| d.0 == "held").count();
    assert!(held > 300 && held < GOOD, "a contested storm: {held} held");

    // The poison: rejected with its reason, and each one listed as a dead letter.
    for (id, reason) in &poison.rejected {
        let (status, why, _) = after.get(&id.0).unwrap_or_else(|| panic!("{id} decided"));
        assert_eq!(
            (status.as_str(), why.as_deref()),
            ("rejected", Some(*reason)),
            "{id}"
        );
    }
    let letters = seatq_consumer::dead_letters::list(
        &mixed.pipeline.env.pool,
        Utc::now() - chrono::Duration::hours(1),
        1000,
    )
    .await
    .expect("dead letters");
    let by_request: BTreeMap<uuid::Uuid, &str> = letters
        .iter()
        .filter_map(|d| d.request_id.map(|r| (r, d.reason.as_str())))
        .collect();
    for (id, reason) in &poison.rejected {
        assert_eq!(by_request.get(&id.0), Some(reason), "dead letter of {id}");
    }
    let unreadable = letters.iter().filter(|d| d.request_id.is_none()).count();
    assert_eq!(unreadable, poison.records.len(), "{letters:#?}");
    assert_eq!(letters.len(), poison.rejected.len() + poison.records.len());
    let panicked = letters
        .iter()
        .filter(|d| d.error.as_deref().is_some_and(|e| e.contains("fire drill")))
        .count();
    assert_eq!(
        panicked, 2,
        "the drill's panics are recorded with their message"
    );
    assert!(letters
        .iter()
        .filter(|d| d.reason == "internal_error")
        .all(|d| d.kind.as_deref().is_some() && !d.payload.is_empty()));
    assert_eq!(
        count(
            &control.pipeline.env.pool,
            "SELECT count(*) FROM dead_letters"
        )
        .await,
        0
    );

    // Operators see them: the metric and the alert's input.
    let total = metric(&mixed.metrics, "seatq_consumer_dead_letters_total").await;
    assert!(
        total >= letters.len() as f64,
        "seatq_consumer_dead_letters_total = {total}"
    );

    // The partition is still deciding after all that.
    let after_storm = hold_command(mixed.event, "late", vec![ROWS * PER_ROW - 1]);
    mixed.deliver(&after_storm.encode().expect("encode")).await;
    eventually(
        "a command after the storm",
        Duration::from_secs(30),
        || async {
            outcomes(&mixed)
                .await
                .get(&after_storm.request_id.0)
                .cloned()
        },
    )
    .await;
    assert_eq!(
        violations(&control.pipeline.env.pool).await,
        Violations::default()
    );
    assert_eq!(
        violations(&mixed.pipeline.env.pool).await,
        Violations::default()
    );
}

/// A batch that fails even with none of its commands is not their fault: nothing is
/// rejected, the partition waits, and once the cause is gone everything is decided.
/// (The cause here: a trigger refusing every write of the partition's offset, as a broken
/// schema or a bad deployment would.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_failing_without_its_commands_rejects_nothing() {
    let run = start(false).await;
    let pool = run.pipeline.env.pool.clone();
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'offsets are not writable'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON consumer_offsets \
           FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    let before = metric(&run.metrics, "seatq_consumer_poison_isolations_total").await;
    let good: Vec<CommandEnvelope> = (0..20)
        .map(|i| hold_command(run.event, &format!("v{i}"), vec![i]))
        .collect();
    let parts: Vec<Vec<u8>> = good.iter().map(|c| c.encode().expect("encode")).collect();
    run.deliver(&seatq_common::record::pack(&parts)).await;
    // The consumer has tried, isolated, and found it is not the commands...
    eventually("an isolation attempt", Duration::from_secs(30), || async {
        (metric(&run.metrics, "seatq_consumer_poison_isolations_total").await > before)
            .then_some(())
    })
    .await;
    // ...so nothing was decided, nothing refused.
    assert_eq!(count(&pool, "SELECT count(*) FROM requests").await, 0);
    sqlx::raw_sql("DROP TRIGGER refuse ON consumer_offsets")
        .execute(&pool)
        .await
        .expect("drop trigger");
    // Once the database accepts the writes again, everything is decided, as it should be.
    wait_decided(&pool, 20, Duration::from_secs(60)).await;
    let outcomes = outcomes(&run).await;
    assert!(outcomes.values().all(|d| d.0 == "held"), "{outcomes:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM dead_letters").await, 0);
}
