//! Scaling the consumer while a storm of hold requests goes on: consumer processes join
//! (1 → 2 → 4) and leave (SIGTERM, kill -9) mid-storm over events on every partition. At
//! the end every accepted request is decided exactly once, in FIFO order per event, and
//! the seat invariants hold. And a consumer stopped with SIGTERM exits 0 promptly, having
//! finished and committed its in-flight batch (PostgreSQL and the group offset agree), so
//! the next owner continues where it stopped.

use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seatq_common::testkit::{eventually, Api, TestEnv};
use seatq_system_tests::pipeline::*;
use serde_json::json;

const PARTITIONS: i32 = 8;
const ROWS: i32 = 2;
const PER_ROW: i32 = 25;

/// A consumer binary in a child process, named so the test can find it among the group's
/// members (its client id) and in `consumer_offsets.owner`; SIGKILLed when dropped.
struct ConsumerProcess {
    child: Child,
    member: String,
}

impl ConsumerProcess {
    fn spawn(env: &TestEnv, host: &str) -> Self {
        let child = Command::new(seatq_common::testkit::cluster::workspace_binary(
            "seatq-consumer",
        ))
        .envs(env.child_env())
        .env("HOSTNAME", host)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start consumer process");
        // The consumer's member name: "{HOSTNAME}-{pid}".
        let member = format!("{host}-{}", child.id());
        Self { child, member }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `deadline` for the exit.
    async fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "SIGTERM not delivered");
        let started = Instant::now();
        eventually("the consumer to exit after SIGTERM", deadline, || {
            let exited = self.child.try_wait().expect("wait");
            async move { exited }
        })
        .await;
        let status = self.child.wait().expect("exit status");
        eprintln!(
            "{} exited {status} {:?} after SIGTERM",
            self.member,
            started.elapsed()
        );
        status
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An accepted hold request: request id -> (event, user, seat_no).
type Accepted = Arc<tokio::sync::Mutex<HashMap<String, (String, String, i32)>>>;

/// Hold requests from `concurrency` clients, each for a random seat of a random event, every
/// one from a new user, until `stop`.
fn start_storm(
    api: Arc<Api>,
    env: Arc<TestEnv>,
    events: Arc<Vec<String>>,
    concurrency: u64,
    stop: Arc<AtomicBool>,
    accepted: Accepted,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..concurrency)
        .map(|client| {
            let (api, env, events, stop, accepted) = (
                api.clone(),
                env.clone(),
                events.clone(),
                stop.clone(),
                accepted.clone(),
            );
            tokio::spawn(async move {
                let mut rng = Rng::new(client + 1);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let event = &events[rng.below(events.len() as u64) as usize];
                    let seat = rng.below((ROWS * PER_ROW) as u64) as i32;
                    let user = format!("c{client}-{i}");
                    let token = user_token(&env, &user);
                    let body = json!({"seat_ids": [seat_id(seat, PER_ROW)]});
                    let (status, reply) = api.hold(&token, event, &body, "", &[]).await;
                    match status.as_u16() {
                        202 => {
                            let id = reply["request_id"].as_str().expect("id").to_owned();
                            let user = format!("{}-{user}", env.database);
                            accepted
                                .lock()
                                .await
                                .insert(id, (event.clone(), user, seat));
                        }
                        503 => assert_eq!(reply["code"], "broker_unavailable", "{reply}"),
                        other => panic!("unexpected {other}: {reply}"),
                    }
                }
            })
        })
        .collect()
}

/// Events (each a small section A) until every partition has at least one.
async fn events_on_every_partition(p: &Pipeline) -> Vec<String> {
    let mut events = Vec::new();
    let mut covered = vec![false; PARTITIONS as usize];
    for _ in 0..64 {
        let (event, partition) = new_event(p, ROWS, PER_ROW).await;
        events.push(event.to_string());
        covered[partition as usize] = true;
        if covered.iter().all(|c| *c) {
            return events;
        }
    }
    panic!("64 events did not cover {PARTITIONS} partitions: {covered:?}");
}

/// Wait until the group has settled on exactly `members`: every partition's last batch,
/// applied after `since`, was applied by one of them, and each of them applies at least
/// one partition. (From the batches themselves: the local broker's coordinator does not
/// describe its groups' members, so the group's own view is not available here.)
async fn wait_settled(
    env: &TestEnv,
    members: &[&str],
    since: chrono::DateTime<chrono::Utc>,
    what: &str,
) {
    eventually(what, Duration::from_secs(45), || async {
        let applied: Vec<(i32, String)> = sqlx::query_as(
            "SELECT kafka_partition, owner FROM consumer_offsets \
             WHERE topic = $1 AND updated_at > $2",
        )
        .bind(&env.topics.commands)
        .bind(since)
        .fetch_all(&env.pool)
        .await
        .expect("offsets");
        let all_partitions = (0..PARTITIONS).all(|p| {
            applied
                .iter()
                .any(|(q, owner)| *q == p && members.contains(&owner.as_str()))
        });
        let every_member = members
            .iter()
            .all(|m| applied.iter().any(|(_, owner)| owner == m));
        (all_partitions && every_member).then_some(())
    })
    .await
}

async fn decided_count(env: &TestEnv) -> i64 {
    count(&env.pool, "SELECT count(*) FROM requests").await
}

/// Wait until `more` decisions were made after now.
async fn wait_progress(env: &TestEnv, more: i64, what: &str) {
    let from = decided_count(env).await;
    eventually(what, Duration::from_secs(60), || async {
        (decided_count(env).await >= from + more).then_some(())
    })
    .await
}

/// Stop the storm and check: every accepted request decided exactly once, FIFO per event,
/// the invariants.
async fn finish_and_check(
    p: &Pipeline,
    stop: &AtomicBool,
    clients: Vec<tokio::task::JoinHandle<()>>,
    accepted: &Accepted,
) {
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("storm client");
    }
    let requests = accepted.lock().await.clone();
    let n = requests.len() as i64;
    wait_decided(&p.env.pool, n, Duration::from_secs(90)).await;
    let decided = decisions(&p.env.pool).await;
    eprintln!("{n} accepted, {} decided", decided.len());
    assert_eq!(decided.len(), requests.len(), "decisions without a request");
    let missing = requests
        .keys()
        .filter(|id| !decided.contains_key(*id))
        .count();
    assert_eq!(missing, 0, "accepted requests never decided");
    let mut by_event: HashMap<&str, HashMap<String, (String, Vec<i32>)>> = HashMap::new();
    for (id, (event, user, seat)) in &requests {
        by_event
            .entry(event.as_str())
            .or_default()
            .insert(id.clone(), (user.clone(), vec![*seat]));
    }
    for (event, requests) in by_event {
        let wrong = replay_fifo(&requests, &decided, 8);
        assert!(
            wrong.is_empty(),
            "event {event}: {:?}",
            &wrong[..wrong.len().min(5)]
        );
    }
    assert_eq!(violations(&p.env.pool).await, Violations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_join_and_leave_mid_storm() {
    let env = TestEnv::new(PARTITIONS).await;
    let p = Pipeline::start_on(env, false).await;
    let events = Arc::new(events_on_every_partition(&p).await);
    let accepted: Accepted = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_storm(
        Arc::new(p.api.clone_client()),
        Arc::new(p.env.clone()),
        events.clone(),
        12,
        stop.clone(),
        accepted.clone(),
    );
    let started = Instant::now();
    let since = chrono::Utc::now();
    let mut c1 = ConsumerProcess::spawn(&p.env, "c1");
    wait_settled(
        &p.env,
        &[&c1.member],
        since,
        "one consumer applying every partition",
    )
    .await;
    wait_progress(&p.env, 200, "decisions with one consumer").await;
    eprintln!("1 consumer: {:?}", started.elapsed());

    let since = chrono::Utc::now();
    let mut c2 = ConsumerProcess::spawn(&p.env, "c2");
    wait_settled(
        &p.env,
        &[&c1.member, &c2.member],
        since,
        "two consumers sharing",
    )
    .await;
    wait_progress(&p.env, 200, "decisions with two consumers").await;
    eprintln!("2 consumers: {:?}", started.elapsed());

    let since = chrono::Utc::now();
    let mut c3 = ConsumerProcess::spawn(&p.env, "c3");
    let mut c4 = ConsumerProcess::spawn(&p.env, "c4");
    let four = [&*c1.member, &c2.member, &c3.member, &c4.member];
    wait_settled(&p.env, &four, since, "four consumers sharing").await;
    wait_progress(&p.env, 200, "decisions with four consumers").await;
    eprintln!("4 consumers: {:?}", started.elapsed());

    // One leaves cleanly (gives its partitions up at once), one crashes (its partitions
    // move when the group coordinator evicts it, after its session timeout).
    let status = c2.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "SIGTERM exit: {status}");
    c3.kill9();
    let since = chrono::Utc::now();
    wait_settled(
        &p.env,
        &[&c1.member, &c4.member],
        since,
        "two consumers left",
    )
    .await;
    wait_progress(&p.env, 200, "decisions after two left").await;
    eprintln!("back to 2 consumers: {:?}", started.elapsed());

    finish_and_check(&p, &stop, clients, &accepted).await;

    // seatq-ctl sees the drained topic: no lag, the two live consumers own everything,
    // one consumer suggested.
    let out = Command::new(seatq_common::testkit::cluster::workspace_binary(
        "seatq-ctl",
    ))
    .args(["lag", "--threshold", "10", "--json"])
    .envs(p.env.child_env())
    .output()
    .expect("run seatq-ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lag JSON");
    assert_eq!(report["total_lag"], 0, "{report}");
    assert_eq!(report["suggested_consumers"], 1, "{report}");
    assert_eq!(
        report["partitions"].as_array().map(Vec::len),
        Some(PARTITIONS as usize)
    );
    let mut expected = vec![c1.member.clone(), c4.member.clone()];
    expected.sort();
    // The group's own members, where the broker describes them (Apache Kafka does; the
    // local nisshi answers an empty list).
    let mut live: Vec<String> = report["live_consumers"]
        .as_array()
        .expect("live consumers")
        .iter()
        .filter_map(|m| m["client_id"].as_str().map(str::to_owned))
        .collect();
    live.sort();
    assert!(live.is_empty() || live == expected, "{report}");
    for partition in report["partitions"].as_array().expect("partitions") {
        let applier = partition["last_applied_by"].as_str().expect("applied by");
        assert!(expected.iter().any(|m| m == applier), "{partition}");
        assert_eq!(partition["lag"], 0, "{partition}");
    }
    for c in [&mut c1, &mut c4] {
        let status = c.terminate(Duration::from_secs(20)).await;
        assert!(status.success(), "SIGTERM exit: {status}");
    }
    eprintln!("done: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_storm_finishes_the_batch_and_the_next_owner_continues() {
    let env = TestEnv::new(PARTITIONS).await;
    let p = Pipeline::start_on(env, false).await;
    let events = Arc::new(events_on_every_partition(&p).await);
    let accepted: Accepted = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_storm(
        Arc::new(p.api.clone_client()),
        Arc::new(p.env.clone()),
        events,
        12,
        stop.clone(),
        accepted.clone(),
    );
    let since = chrono::Utc::now();
    let mut first = ConsumerProcess::spawn(&p.env, "first");
    wait_settled(
        &p.env,
        &[&first.member],
        since,
        "the first consumer applying",
    )
    .await;
    wait_progress(&p.env, 300, "decisions flowing").await;
    let status = first.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "SIGTERM exit: {status}");

    // Whatever it applied, it also committed to the group before exiting: the broker's
    // offsets (what KEDA scales on) agree with PostgreSQL's on every partition, and it
    // left the group at once.
    let report = seatq_consumer::lag::report(&p.env.settings, &p.env.pool, 100, None)
        .await
        .expect("lag report");
    assert!(report.live_consumers.is_empty(), "{report:?}");
    for partition in &report.partitions {
        assert!(partition.committed.is_some(), "{partition:?}");
        assert_eq!(
            partition.group_committed, partition.committed,
            "the final commit is missing: {partition:?}"
        );
    }
    let lag_at_stop = report.total_lag;

    // The storm went on meanwhile; the next owner takes over from the stored offsets.
    let since = chrono::Utc::now();
    let next = ConsumerProcess::spawn(&p.env, "next");
    wait_settled(&p.env, &[&next.member], since, "the next consumer applying").await;
    eprintln!("lag while no consumer ran: {lag_at_stop} records");
    finish_and_check(&p, &stop, clients, &accepted).await;
    drop(next);
}
