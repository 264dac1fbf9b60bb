//! At-least-once delivery, exactly-once effect: redelivered commands, poison messages and
//! two consumers racing for one partition.

use std::sync::Arc;
use std::time::Duration;

use seatq_common::catalog::Catalog;
use seatq_common::ids::{EventId, RequestId};
use seatq_common::testkit::{eventually, TestEnv};
use seatq_consumer::batch::{BatchApplier, BatchResult};
use seatq_consumer::input::Incoming;
use seatq_system_tests::pipeline::*;
use serde_json::json;

async fn produce(env: &TestEnv, event: EventId, partition: i32, payload: &[u8]) {
    let producer = seatq_common::kafka::producer(&env.settings.kafka).expect("producer");
    seatq_common::kafka::send(
        &producer,
        &env.topics.commands,
        Some(partition),
        &event.to_string(),
        payload,
    )
    .await
    .expect("produce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_command_is_decided_once() {
    let p = Pipeline::start(2).await;
    let (event, partition) = new_event(&p, 1, 10).await;
    let cmd = hold_command(event, "twice", vec![0, 1]);
    let bytes = cmd.encode().expect("encode");
    produce(&p.env, event, partition, &bytes).await;
    produce(&p.env, event, partition, &bytes).await;
    let next = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT next_offset FROM consumer_offsets WHERE kafka_partition = $1",
        )
        .bind(partition)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten()
    };
    eventually("both copies consumed", Duration::from_secs(30), || async {
        next(p.env.pool.clone()).await.filter(|n| *n >= 2)
    })
    .await;
    // A third copy after the decision, as a rebalance would redeliver it.
    produce(&p.env, event, partition, &bytes).await;
    eventually("third copy consumed", Duration::from_secs(30), || async {
        next(p.env.pool.clone()).await.filter(|n| *n >= 3)
    })
    .await;
    assert_eq!(count(&p.env.pool, "SELECT count(*) FROM requests").await, 1);
    assert_eq!(count(&p.env.pool, "SELECT count(*) FROM holds").await, 1);
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM seats WHERE status = 'held'"
        )
        .await,
        2
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_recorded_and_do_not_block_the_partition() {
    let p = Pipeline::start(1).await;
    let (event, partition) = new_event(&p, 1, 10).await;
    produce(&p.env, event, partition, b"{this is not json").await;
    let mut unknown: serde_json::Value =
        serde_json::from_slice(&hold_command(event, "x", vec![1]).encode().expect("encode"))
            .expect("json");
    unknown["kind"] = json!("launch_rockets");
    produce(&p.env, event, partition, unknown.to_string().as_bytes()).await;
    let mut bad_body = unknown.clone();
    bad_body["kind"] = json!("hold_seats");
    bad_body["request_id"] = json!(RequestId::new());
    bad_body["body"] = json!({"mode": "seats", "seat_nos": "all of them"});
    produce(&p.env, event, partition, bad_body.to_string().as_bytes()).await;
    let good = hold_command(event, "after-poison", vec![3]);
    produce(&p.env, event, partition, &good.encode().expect("encode")).await;

    wait_decided(&p.env.pool, 3, Duration::from_secs(30)).await;
    let status: String = sqlx::query_scalar("SELECT status FROM requests WHERE request_id = $1")
        .bind(good.request_id)
        .fetch_one(&p.env.pool)
        .await
        .expect("good decided");
    assert_eq!(status, "held");
    // All three are kept for operators; the two with a request id are also answered.
    assert_eq!(
        count(&p.env.pool, "SELECT count(*) FROM dead_letters").await,
        3
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM dead_letters WHERE request_id IS NULL \
             AND reason = 'unreadable_command'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM requests WHERE reason = 'unknown_command_kind'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM requests WHERE reason = 'invalid_command'"
        )
        .await,
        1
    );
}

/// A record packing several commands (what the gateway sends under load) is decided in
/// record order, each command on its own: a bad element is rejected or dead-lettered
/// without taking its neighbours with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_of_several_commands_is_decided_in_record_order() {
    let p = Pipeline::start(1).await;
    let (event, partition) = new_event(&p, 1, 10).await;
    let first = hold_command(event, "first", vec![1]);
    let overlapping = hold_command(event, "second", vec![1, 2]);
    let mut unknown: serde_json::Value =
        serde_json::from_slice(&hold_command(event, "x", vec![5]).encode().expect("encode"))
            .expect("json");
    unknown["kind"] = json!("launch_rockets");
    let last = hold_command(event, "last", vec![2]);
    let parts = vec![
        first.encode().expect("encode"),
        overlapping.encode().expect("encode"),
        unknown.to_string().into_bytes(),
        b"42".to_vec(),
        last.encode().expect("encode"),
    ];
    let record = seatq_common::record::pack(&parts);
    produce(&p.env, event, partition, &record).await;

    wait_decided(&p.env.pool, 4, Duration::from_secs(30)).await;
    let rows: Vec<(uuid::Uuid, String, Option<String>, i32)> = sqlx::query_as(
        "SELECT request_id, status, reason, kafka_seq FROM requests ORDER BY kafka_seq",
    )
    .fetch_all(&p.env.pool)
    .await
    .expect("requests");
    let summary: Vec<(uuid::Uuid, &str, Option<&str>, i32)> = rows
        .iter()
        .map(|(id, status, reason, seq)| (*id, status.as_str(), reason.as_deref(), *seq))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first.request_id.0, "held", None, 0),
            (
                overlapping.request_id.0,
                "rejected",
                Some("seats_unavailable"),
                1
            ),
            (
                unknown["request_id"]
                    .as_str()
                    .expect("id")
                    .parse()
                    .expect("uuid"),
                "rejected",
                Some("unknown_command_kind"),
                2
            ),
            (last.request_id.0, "held", None, 4),
        ]
    );
    assert_eq!(
        count(
            &p.env.pool,
            "SELECT count(*) FROM dead_letters WHERE kafka_seq = 3"
        )
        .await,
        1
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

/// Commands sent together are packed into few records; each sender learns its own
/// (offset, place) and the consumer decides every command at exactly that place. Each
/// record names its commands' request ids, in record order, in its `request_id` header
/// (what `seatq-ctl peek` shows an operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_share_records_and_keep_their_places() {
    let p = Pipeline::start(1).await;
    let (event, partition) = new_event(&p, 10, 30).await;
    let commands = command_producer(&p.env);
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..300 {
        let cmd = hold_command(event, &format!("u{i}"), vec![i]);
        let commands = commands.clone();
        sends.spawn(async move {
            let placed = commands
                .send_command(partition, cmd.request_id, cmd.encode().expect("encode"))
                .await
                .expect("acknowledged");
            (cmd.request_id.0, placed)
        });
    }
    let placed: std::collections::HashMap<uuid::Uuid, (i64, i32)> = sends
        .join_all()
        .await
        .into_iter()
        .map(|(id, at)| (id, (at.offset, at.seq)))
        .collect();
    let records: std::collections::HashSet<i64> = placed.values().map(|at| at.0).collect();
    assert!(
        records.len() < 300,
        "nothing was packed: {} records",
        records.len()
    );
    let places: std::collections::HashSet<&(i64, i32)> = placed.values().collect();
    assert_eq!(places.len(), 300, "two commands answered with one place");

    let (kafka, topic) = (p.env.settings.kafka.clone(), p.env.topics.commands.clone());
    let n = records.len() as i64;
    let peeked = tokio::task::spawn_blocking(move || {
        seatq_consumer::peek::last_records(&kafka, &topic, partition, n)
    })
    .await
    .expect("peek task")
    .expect("peek");
    assert_eq!(peeked.len(), records.len());
    let mut named = 0;
    for record in &peeked {
        let in_payload: Vec<String> =
            seatq_common::record::decode_all::<serde_json::Value>(record.payload.as_bytes())
                .expect("commands")
                .iter()
                .map(|c| c["request_id"].as_str().expect("request_id").to_owned())
                .collect();
        assert_eq!(record.request_ids, in_payload, "record {}", record.offset);
        named += in_payload.len();
    }
    assert_eq!(named, 300);

    wait_decided(&p.env.pool, 300, Duration::from_secs(60)).await;
    let decided = decisions(&p.env.pool).await;
    for (id, at) in &placed {
        let (status, position, _) = &decided[&id.to_string()];
        assert_eq!((status.as_str(), position), ("held", at), "request {id}");
    }
}

/// Two consumers briefly owning one partition (a rebalance overlap) apply the same batch
/// at the same time: the offset fence lets exactly one commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consumers_racing_for_a_partition_commit_the_batch_once() {
    let env = TestEnv::new(1).await;
    let p = Pipeline::start_on(env, false).await;
    let event: EventId = p
        .api
        .create_event(section_a(2, 10), json!({}))
        .await
        .parse()
        .expect("id");
    let messages: Vec<Incoming> = (0..20)
        .map(|i| Incoming {
            offset: 100 + i,
            payload: Some(
                hold_command(event, &format!("u{i}"), vec![(i % 20) as i32])
                    .encode()
                    .expect("encode"),
            ),
        })
        .collect();
    let applier = |owner: &str| BatchApplier {
        pool: p.env.pool.clone(),
        catalog: Arc::new(Catalog::new(p.env.pool.clone(), Duration::from_secs(2))),
        topic: p.env.topics.commands.clone(),
        owner: owner.into(),
        lifecycle: Default::default(),
        drill_panic_user: None,
    };
    let (a, b) = (applier("a"), applier("b"));
    let (ra, rb) = tokio::join!(a.apply(0, 100, &messages), b.apply(0, 100, &messages));
    let mut results = vec![ra.expect("a"), rb.expect("b")];
    results.sort_by_key(|r| matches!(r, BatchResult::Fenced { .. }));
    assert!(
        matches!(
            results[0],
            BatchResult::Applied {
                next_offset: 120,
                decided: 20,
                ..
            }
        ),
        "{results:?}"
    );
    assert_eq!(results[1], BatchResult::Fenced { stored: 120 });
    assert_eq!(
        count(&p.env.pool, "SELECT count(*) FROM requests").await,
        20
    );
    // The loser, retrying from the stored offset with the same messages, finds them decided.
    let again = b.apply(0, 120, &[]).await.expect("empty batch");
    assert!(matches!(
        again,
        BatchResult::Applied {
            next_offset: 120,
            ..
        }
    ));
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

/// The gateway records a command it could not get acknowledged as never accepted
/// (`not_accepted`) while the broker may still write it. If the consumer decides that
/// command at the same moment, exactly one of the two records wins: here the gateway's
/// row is written (uncommitted) first, the batch waits for it on the unique key, finds it
/// decided, and tries again without it; the command is never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_the_gateway_abandons_while_the_batch_runs_is_never_applied() {
    let env = TestEnv::new(1).await;
    let p = Pipeline::start_on(env, false).await;
    let event: EventId = p
        .api
        .create_event(section_a(1, 10), json!({}))
        .await
        .parse()
        .expect("id");
    let abandoned = hold_command(event, "told-503", vec![1]);
    let other = hold_command(event, "told-202", vec![2]);
    let messages: Vec<Incoming> = [&abandoned, &other]
        .iter()
        .enumerate()
        .map(|(i, c)| Incoming {
            offset: i as i64,
            payload: Some(c.encode().expect("encode")),
        })
        .collect();
    let applier = Arc::new(BatchApplier {
        pool: p.env.pool.clone(),
        catalog: Arc::new(Catalog::new(p.env.pool.clone(), Duration::from_secs(2))),
        topic: p.env.topics.commands.clone(),
        owner: "consumer".into(),
        lifecycle: Default::default(),
        drill_panic_user: None,
    });
    // The gateway's abandonment, in a transaction still open.
    let mut gateway = p.env.pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO requests (request_id, event_id, user_id, kind, status, reason, \
           kafka_partition, kafka_offset, kafka_seq, issued_at, decided_at) \
         VALUES ($1, $2, 'told-503', 'hold_seats', 'rejected', 'not_accepted', 0, -1, -1, \
           now(), now())",
    )
    .bind(abandoned.request_id)
    .bind(event)
    .execute(&mut *gateway)
    .await
    .expect("abandon");
    let batch = tokio::spawn({
        let (applier, messages) = (applier.clone(), messages.clone());
        async move { applier.apply(0, 0, &messages).await }
    });
    // The batch reaches the request's key and waits for the gateway's transaction.
    eventually(
        "the batch to wait on the abandoned request",
        Duration::from_secs(30),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'",
            )
            .fetch_one(&p.env.pool)
            .await
            .expect("locks");
            (waiting > 0).then_some(())
        },
    )
    .await;
    gateway.commit().await.expect("commit");
    match batch.await.expect("batch task") {
        Err(e) => assert!(
            e.is_transient() && matches!(e, seatq_consumer::batch::BatchError::Raced(1)),
            "a race is reported for a retry: {e}"
        ),
        Ok(result) => panic!("the batch must not commit over the abandonment: {result:?}"),
    }
    // The retry finds it decided and applies the rest.
    let again = applier.apply(0, 0, &messages).await.expect("retry");
    assert_eq!(
        again,
        BatchResult::Applied {
            next_offset: 2,
            decided: 1,
            duplicates: 1
        }
    );
    let decided = decisions(&p.env.pool).await;
    assert_eq!(
        decided.len(),
        1,
        "only the accepted one is the consumer's: {decided:?}"
    );
    assert_eq!(decided[&other.request_id.to_string()].0, "held");
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, reason FROM requests WHERE request_id = $1")
            .bind(abandoned.request_id)
            .fetch_one(&p.env.pool)
            .await
            .expect("abandoned");
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("rejected", Some("not_accepted"))
    );
    assert_eq!(
        count(&p.env.pool, "SELECT count(*) FROM holds").await,
        1,
        "the abandoned command holds nothing"
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}
