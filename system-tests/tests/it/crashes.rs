//! Crashes mid-storm: kill -9 of the consumer process, and of the broker. Afterwards every
//! request that got 202 is decided exactly once, in FIFO order, and no seat is oversold.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use seatq_common::testkit::{PrivateBroker, TestEnv};
use seatq_system_tests::pipeline::*;
use serde_json::json;

/// The consumer binary in a child process, killed (SIGKILL) when dropped.
struct ConsumerProcess(Child);

impl ConsumerProcess {
    fn spawn(env: &TestEnv) -> Self {
        let child = Command::new(seatq_common::testkit::cluster::workspace_binary(
            "seatq-consumer",
        ))
        .envs(env.child_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start consumer process");
        Self(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_killed_mid_storm_loses_and_repeats_nothing() {
    let env = TestEnv::new(2).await;
    let p = Pipeline::start_on(env, false).await;
    let event = p.api.create_event(section_a(4, 50), json!({})).await;
    let mut child = ConsumerProcess::spawn(&p.env);
    // Warm up: the child has joined the group once a first request is decided.
    let token = user_token(&p.env, "warm-up");
    let (_, first) = p
        .api
        .hold(
            &token,
            &event,
            &json!({"seat_ids": [seat_id(199, 50)]}),
            "",
            &[],
        )
        .await;
    let first_id = first["request_id"].as_str().expect("id").to_owned();
    p.api
        .decision(&token, &first_id, Duration::from_secs(60))
        .await;
    let accepted: Accepted = Arc::default();
    accepted
        .lock()
        .await
        .insert(first_id, (format!("{}-warm-up", p.env.database), vec![199]));
    let storm_task = tokio::spawn(storm(
        Arc::new(p.api.clone_client()),
        Arc::new(p.env.clone()),
        event,
        Storm {
            requests: 3_000,
            concurrency: 100,
            seats: 200,
            per_row: 50,
            seed: 11,
        },
        accepted.clone(),
    ));
    // Kill it twice while decisions are flowing, restarting each time.
    for threshold in [300, 1_200] {
        seatq_common::testkit::eventually("decisions flowing", Duration::from_secs(60), || async {
            (count(&p.env.pool, "SELECT count(*) FROM requests").await >= threshold).then_some(())
        })
        .await;
        let in_flight = accepted.lock().await.len();
        eprintln!(
            "consumer kill -9 after {threshold}+ decisions, {in_flight} requests accepted so far"
        );
        child.kill9();
        child = ConsumerProcess::spawn(&p.env);
    }
    let sent = storm_task.await.expect("storm");
    assert_eq!(sent, 3_000);
    wait_decided(&p.env.pool, 3_001, Duration::from_secs(120)).await;
    child.kill9();
    let decided = decisions(&p.env.pool).await;
    assert_eq!(
        decided.len(),
        3_001,
        "every accepted request decided exactly once"
    );
    assert_eq!(violations(&p.env.pool).await, Violations::default());
    let requests = accepted.lock().await.clone();
    let wrong = replay_fifo(&requests, &decided, 8);
    assert!(wrong.is_empty(), "{:?}", &wrong[..wrong.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_killed_mid_storm_every_accepted_request_is_decided() {
    let mut broker = PrivateBroker::start();
    let env = TestEnv::with_brokers(2, &broker.address()).await;
    let p = Pipeline::start_on(env, true).await;
    let event = p.api.create_event(section_a(4, 50), json!({})).await;
    let accepted: Accepted = Arc::default();
    let api = Arc::new(p.api.clone_client());
    let shared_env = Arc::new(p.env.clone());
    // A slow storm (10 at a time) so the crash lands in its middle.
    let first = storm(
        api.clone(),
        shared_env.clone(),
        event.clone(),
        Storm {
            requests: 1_500,
            concurrency: 10,
            seats: 200,
            per_row: 50,
            seed: 21,
        },
        accepted.clone(),
    );
    let (first_ok, at_kill) = tokio::join!(first, async {
        seatq_common::testkit::eventually("requests accepted", Duration::from_secs(60), || async {
            (accepted.lock().await.len() >= 200).then_some(())
        })
        .await;
        broker.kill9();
        let at_kill = accepted.lock().await.len();
        // The outage itself (fault injection), not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(500)).await;
        broker.restart();
        at_kill
    });
    // After the restart the pipeline takes requests again.
    let second_ok = storm(
        api,
        shared_env,
        event,
        Storm {
            requests: 400,
            concurrency: 10,
            seats: 200,
            per_row: 50,
            seed: 22,
        },
        accepted.clone(),
    )
    .await;
    eprintln!(
        "broker kill -9 after {at_kill} accepted; {first_ok} of 1500 accepted in all, {second_ok} of 400 after"
    );
    assert!(
        at_kill < 1_500 && first_ok > at_kill,
        "the crash did not land mid-storm"
    );
    assert!(second_ok > 0, "nothing accepted after the broker came back");
    let n = accepted.lock().await.len() as i64;
    wait_decided(&p.env.pool, n, Duration::from_secs(120)).await;
    let decided = decisions(&p.env.pool).await;
    let requests = accepted.lock().await.clone();
    let missing: Vec<&String> = requests
        .keys()
        .filter(|id| !decided.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} accepted requests never decided",
        missing.len()
    );
    // No FIFO replay here: a request whose acknowledgement was lost in the crash (the
    // client got 503) may still be in the log and take its seat.
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

/// The broker lost records (or the topic was recreated) while PostgreSQL kept the applied
/// offset: the stored offset is beyond the end of the log. A consumer taking the partition
/// must restart from the log start, or the new commands would be skipped as redeliveries
/// and never decided. (The lost log is simulated from the database side: the stored offset
/// is moved past the log end, which is what a broker that lost its log looks like.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stored_offset_beyond_the_log_end_restarts_from_the_log_start() {
    let env = TestEnv::new(1).await;
    let p = Pipeline::start_on(env, false).await;
    let event = p.api.create_event(section_a(1, 20), json!({})).await;
    let token = user_token(&p.env, "after-loss");
    let mut ids = Vec::new();
    for seat in ["A-1-1", "A-1-2", "A-1-3"] {
        let (status, body) = p
            .api
            .hold(&token, &event, &json!({"seat_ids": [seat]}), "", &[])
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["request_id"].as_str().expect("id").to_owned());
    }
    sqlx::query(
        "INSERT INTO consumer_offsets (topic, kafka_partition, next_offset, owner) \
         VALUES ($1, 0, 1000, 'before-the-loss')",
    )
    .bind(&p.env.topics.commands)
    .execute(&p.env.pool)
    .await
    .expect("stale offset");
    let _consumer = start_consumer(&p.env);
    for id in &ids {
        let decided = p.api.decision(&token, id, Duration::from_secs(60)).await;
        assert_eq!(decided["status"], "held", "{decided}");
    }
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}
