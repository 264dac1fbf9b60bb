//! What a client is told about a hold request agrees with what becomes of it, through the
//! real gateway, consumer and broker:
//!
//! - a request that got a 202 answers `pending` or its decision, never 404, even when Redis
//!   lost its entry — and still only to its owner;
//! - a request that got a 503 is never applied, even when the broker wrote it after all
//!   (a broker paused past the produce timeout, then resumed): the client's retry is the
//!   only hold, nothing is held twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::{assert_problem, gateway, sections};
use rdkafka::consumer::{BaseConsumer, Consumer};
use seatq_common::command::{decode_record, Decoded};
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_common::testkit::{eventually, read_topic, PrivateBroker, TestEnv};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_request_stays_pending_for_its_owner_when_redis_forgets_it() {
    let env = TestEnv::new(1).await;
    // No consumer yet: the request stays undecided as long as the test needs.
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let alice = api.token("alice", "user").await;
    let bob = api.token("bob", "user").await;

    let (status, body) = api
        .hold(&alice, &event, &json!({"seat_ids": ["A-1-1"]}), "", &[])
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["request_id"].as_str().expect("request id").to_owned();
    let path = format!("/v1/hold-requests/{id}");
    let (status, pending) = api.get(&path, Some(&alice)).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["event_id"], event.as_str());
    assert!(pending["ahead"].is_i64(), "{pending}");

    // Redis forgets it (this request's key only: other tests share this Redis).
    let redis = redis::Client::open(env.settings.redis.url.as_str()).expect("redis url");
    let mut redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let removed: i64 = redis::cmd("DEL")
        .arg(format!("seatq:req:{id}"))
        .query_async(&mut redis)
        .await
        .expect("DEL");
    assert_eq!(removed, 1, "the accepted request's entry");

    let (status, pending) = api.get(&path, Some(&alice)).await;
    assert_eq!(
        status, 200,
        "a request that got a 202 is not unknown: {pending}"
    );
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["request_id"], id.as_str());
    assert!(
        pending.get("ahead").is_none(),
        "no queue position: {pending}"
    );
    // Still only to its owner; a made-up id is unknown to anyone.
    assert_problem(&api.get(&path, Some(&bob)).await, 404, "request_not_found");
    let made_up = format!("/v1/hold-requests/{}", uuid::Uuid::now_v7());
    assert_problem(
        &api.get(&made_up, Some(&alice)).await,
        404,
        "request_not_found",
    );

    // Once the consumer runs, the decision.
    let _consumer = crate::support::consumer(&env.settings);
    let decided = api.decision(&alice, &id, Duration::from_secs(60)).await;
    assert_eq!(decided["status"], "held", "{decided}");
    assert_eq!(decided["seat_ids"], json!(["A-1-1"]));
    assert_problem(&api.get(&path, Some(&bob)).await, 404, "request_not_found");
}

/// One request of the storm: its user, and what the gateway answered.
struct Sent {
    user: String,
    token: String,
    status: u16,
    body: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_503_is_never_applied_even_when_the_broker_wrote_the_command() {
    let broker = PrivateBroker::start();
    let env = TestEnv::with_brokers(1, &broker.address()).await;
    let mut settings = env.settings.clone();
    settings.kafka.produce_timeout_ms = 1500;
    let timeout = Duration::from_millis(settings.kafka.produce_timeout_ms);
    let consumer = crate::support::consumer(&settings);
    let gw = gateway(&settings).await;
    let api = &gw.api;
    // Places to spare: every user can get the one place they ask for.
    let event = api.create_event(sections(), json!({})).await;
    let one_place = json!({"section": "FLOOR", "quantity": 1});
    let warm = api.token("warm-up", "user").await;
    let (status, body) = api
        .hold(&warm, &event, &one_place, "?wait_ms=5000", &[])
        .await;
    assert_eq!(status, 200, "the pipeline works before the pause: {body}");
    let warm_hold = format!("/v1/holds/{}", body["hold_id"].as_str().expect("hold id"));

    // The broker hangs for three times the produce timeout. Requests arrive all along, one per
    // user: the early ones time out (503), the late ones are acknowledged once it is back.
    const USERS: usize = 25;
    let pause = timeout * 3;
    broker.pause();
    let paused = Instant::now();
    // First, a cancel (a lifecycle command, its id minted for the attempt like a hold
    // request's): refused, it must not cancel the hold later.
    let first_cancel = {
        let (api, token, path) = (api.clone_client(), warm.clone(), warm_hold.clone());
        tokio::spawn(async move {
            api.send(reqwest::Method::DELETE, &path, Some(&token), None)
                .await
        })
    };
    // And one with an Idempotency-Key: refused, its repeats must not be stuck with it.
    let keyed_token = api.token("keyed", "user").await;
    // Idempotency keys live in the Redis all tests share: one of this test's own.
    let key = format!("keyed-{}", env.database);
    let keyed = [("idempotency-key", key.as_str())];
    let first_keyed = {
        let (api, token, event, body, key) = (
            api.clone_client(),
            keyed_token.clone(),
            event.clone(),
            one_place.clone(),
            key.clone(),
        );
        tokio::spawn(async move {
            api.hold(&token, &event, &body, "", &[("idempotency-key", &key)])
                .await
        })
    };
    let mut storm = Vec::new();
    for i in 0..USERS {
        let user = format!("storm-{i}");
        let token = api.token(&user, "user").await;
        let (api, event, body) = (api.clone_client(), event.clone(), one_place.clone());
        storm.push(tokio::spawn(async move {
            let (status, body) = api.hold(&token, &event, &body, "", &[]).await;
            Sent {
                user,
                token,
                status: status.as_u16(),
                body,
            }
        }));
        // The clients' pace over the pause, not a wait for a condition.
        let next = pause.mul_f64((i + 1) as f64 / (USERS + 4) as f64);
        tokio::time::sleep(next.saturating_sub(paused.elapsed())).await;
    }
    tokio::time::sleep(pause.saturating_sub(paused.elapsed())).await;
    broker.resume();
    let (status, first_keyed) = first_keyed.await.expect("keyed client");
    assert_eq!(status, 503, "{first_keyed}");
    let (status, first_cancel) = first_cancel.await.expect("cancel client");
    assert_eq!(status, 503, "{first_cancel}");
    assert_eq!(first_cancel["code"], "broker_unavailable", "{first_cancel}");
    let mut sent = Vec::new();
    for task in storm {
        sent.push(task.await.expect("client"));
    }
    let refused: Vec<&Sent> = sent.iter().filter(|s| s.status == 503).collect();
    let accepted: Vec<&Sent> = sent.iter().filter(|s| s.status == 202).collect();
    eprintln!(
        "during the pause: {} refused (503), {} accepted (202)",
        refused.len(),
        accepted.len()
    );
    for s in &sent {
        assert!(
            s.status == 202 || s.status == 503,
            "{}: {} {}",
            s.user,
            s.status,
            s.body
        );
        if s.status == 503 {
            assert_eq!(s.body["code"], "broker_unavailable", "{}", s.body);
        }
    }
    assert!(
        !refused.is_empty(),
        "the pause outlasted the produce timeout"
    );

    // Each refused client retries, without an Idempotency-Key, as clients do.
    let mut retries = HashMap::new();
    for s in &refused {
        let id = eventually(
            &format!("{}'s retry is accepted", s.user),
            Duration::from_secs(60),
            || async {
                let (status, body) = api.hold(&s.token, &event, &one_place, "", &[]).await;
                (status == 202).then(|| body["request_id"].as_str().map(str::to_owned))?
            },
        )
        .await;
        retries.insert(s.user.clone(), id);
    }
    // The keyed request's repeat is a fresh attempt (its first was never applied), and a
    // repeat of that one answers it again.
    let keyed_id = eventually(
        "the keyed repeat is accepted",
        Duration::from_secs(60),
        || async {
            let (status, body) = api.hold(&keyed_token, &event, &one_place, "", &keyed).await;
            (status == 202).then(|| body["request_id"].as_str().map(str::to_owned))?
        },
    )
    .await;
    let keyed_decided = api
        .decision(&keyed_token, &keyed_id, Duration::from_secs(60))
        .await;
    let (status, keyed_again) = api.hold(&keyed_token, &event, &one_place, "", &keyed).await;
    assert!(status == 200 || status == 202, "{status} {keyed_again}");

    for s in &accepted {
        let id = s.body["request_id"].as_str().expect("request id");
        let decided = api.decision(&s.token, id, Duration::from_secs(60)).await;
        assert_eq!(decided["status"], "held", "{}: {decided}", s.user);
    }
    for s in &refused {
        let decided = api
            .decision(&s.token, &retries[&s.user], Duration::from_secs(60))
            .await;
        assert_eq!(decided["status"], "held", "{}'s retry: {decided}", s.user);
    }

    // Let the consumer read the whole log, the commands written during the pause included.
    let log_end = {
        let reader: BaseConsumer =
            seatq_common::kafka::consumer_config(&settings.kafka, &format!("{}-end", env.database))
                .create()
                .expect("reader");
        let (_, high) = reader
            .fetch_watermarks(&env.topics.commands, 0, Duration::from_secs(10))
            .expect("watermarks");
        high
    };
    eventually(
        "the consumer reached the log end",
        Duration::from_secs(60),
        || async {
            let next = seatq_common::db::next_offset(&env.pool, &env.topics.commands, 0)
                .await
                .expect("offset");
            (next.unwrap_or(0) >= log_end).then_some(())
        },
    )
    .await;
    let in_log: HashSet<String> =
        read_topic(&env, &env.topics.commands, 1, |r| r.len() as i64 >= log_end)
            .iter()
            .flat_map(|record| decode_record(record))
            .filter_map(|d| match d {
                Decoded::Command(c) => Some(c.request_id.to_string()),
                _ => None,
            })
            .collect();

    // Nothing is held twice: every user holds exactly one place, from the attempt that
    // was accepted.
    let holds: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "SELECT user_id, request_id FROM holds WHERE event_id = $1::uuid AND status = 'active'",
    )
    .bind(&event)
    .fetch_all(&env.pool)
    .await
    .expect("holds");
    for s in &sent {
        let mine: Vec<String> = holds
            .iter()
            .filter(|(user, _)| *user == s.user)
            .map(|(_, id)| id.to_string())
            .collect();
        let told = if s.status == 202 {
            s.body["request_id"].as_str().expect("id").to_owned()
        } else {
            retries[&s.user].clone()
        };
        assert_eq!(
            mine,
            vec![told],
            "{} (first answer {}) holds what it was told it holds",
            s.user,
            s.status
        );
    }

    // The keyed request: its repeat was a fresh attempt (its first was never applied), the
    // one hold, and a repeat of that one answers it again.
    let refused_keyed = first_keyed["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a 503 names the refused request: {first_keyed}"))
        .to_owned();
    assert_ne!(
        keyed_id, refused_keyed,
        "a fresh attempt, not the refused request"
    );
    assert_eq!(keyed_decided["status"], "held", "{keyed_decided}");
    assert_eq!(
        keyed_again["request_id"],
        keyed_id.as_str(),
        "{keyed_again}"
    );
    let keyed_holds: Vec<String> = holds
        .iter()
        .filter(|(user, _)| user == "keyed")
        .map(|(_, id)| id.to_string())
        .collect();
    assert_eq!(
        keyed_holds,
        vec![keyed_id.clone()],
        "one hold for the keyed requests"
    );

    // A refused request is decided as not accepted, for good, and says so.
    let mut written_anyway = usize::from(in_log.contains(&refused_keyed))
        + usize::from(
            first_cancel["request_id"]
                .as_str()
                .is_some_and(|id| in_log.contains(id)),
        );
    for s in &refused {
        let id = s.body["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a 503 names the refused request: {}", s.body));
        written_anyway += usize::from(in_log.contains(id));
        let row: (String, Option<String>, i64) = sqlx::query_as(
            "SELECT status, reason, kafka_offset FROM requests WHERE request_id = $1::uuid",
        )
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{}'s refused request {id}: {e}", s.user));
        assert_eq!(
            row,
            ("rejected".into(), Some("not_accepted".into()), -1),
            "{}'s refused request {id}",
            s.user
        );
        let (status, view) = api
            .get(&format!("/v1/hold-requests/{id}"), Some(&s.token))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["status"], "rejected", "{view}");
        assert_eq!(view["reason"], "not_accepted", "{view}");
    }
    eprintln!(
        "{written_anyway} of {} refused commands reached the log anyway (and were skipped)",
        refused.len() + 2
    );

    // The refused cancel was never applied: the hold is still there, and the refused
    // cancel is recorded as such; cancelling again works.
    let (status, hold) = api.get(&warm_hold, Some(&warm)).await;
    assert_eq!(status, 200, "{hold}");
    assert_eq!(
        hold["status"], "active",
        "a refused cancel cancelled the hold: {hold}"
    );
    let cancel_id = first_cancel["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a 503 names the refused command: {first_cancel}"));
    let row: (String, String, Option<String>, i64) = sqlx::query_as(
        "SELECT kind, status, reason, kafka_offset FROM requests WHERE request_id = $1::uuid",
    )
    .bind(cancel_id)
    .fetch_one(&env.pool)
    .await
    .expect("the refused cancel's row");
    assert_eq!(
        row,
        (
            "cancel_hold".into(),
            "rejected".into(),
            Some("not_accepted".into()),
            -1
        )
    );
    let (status, cancelled) = api
        .send(reqwest::Method::DELETE, &warm_hold, Some(&warm), None)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    assert_eq!(violations(&env.pool).await, Violations::default());

    // Stop the consumer while its broker is still up: stopping against a dead one blocks
    // its poll thread, and with it this test's runtime, for as long as librdkafka tries.
    drop(consumer);
    eventually(
        "the consumer has stopped",
        Duration::from_secs(30),
        || async {
            let (kafka, group, topic) = (
                env.settings.kafka.clone(),
                env.settings.consumer.group_id.clone(),
                env.topics.commands.clone(),
            );
            let members = tokio::task::spawn_blocking(move || {
                let admin: rdkafka::consumer::BaseConsumer =
                    seatq_common::kafka::consumer_config(&kafka, &group)
                        .create()
                        .expect("consumer");
                seatq_consumer::group::members(&admin, &group, &topic).map(|m| m.len())
            })
            .await
            .expect("members task");
            (members.ok() == Some(0)).then_some(())
        },
    )
    .await;
}
