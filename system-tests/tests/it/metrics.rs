//! Prometheus metrics of every service, against the real pipeline: a hold goes through
//! the gateway, the consumer and the notifier, and each service's `/metrics` shows it
//! (counters and histograms moved, gauges present for the event's partition). And the
//! Grafana dashboard queries only metrics the code exports.
//!
//! The recorder is process-wide: assertions compare with a snapshot taken before the
//! hold, or use "at least", never absolute values another test could change.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::sse::SseClient;
use seatq_common::testkit::{eventually, free_port, Api, TestEnv};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// One sample line: name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// Parse the exposition text into series → value (comments skipped).
fn parse(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect();
            Some((
                Series {
                    name: name.to_owned(),
                    labels,
                },
                value,
            ))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include `with`; None if there is none.
fn value(samples: &[(Series, f64)], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

async fn scrape(http: &reqwest::Client, base: &str) -> Vec<(Series, f64)> {
    let response = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200, "GET {base}/metrics");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain"),
        "exposition format: {content_type}"
    );
    parse(&response.text().await.expect("metrics body"))
}

/// Everything the services export, as one list of names (histograms by base name).
fn exported_names() -> BTreeSet<&'static str> {
    seatq_common::metrics::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_exports_what_a_hold_moved() {
    let mut env = TestEnv::new(2).await;
    let consumer_metrics = format!("127.0.0.1:{}", free_port());
    let scheduler_metrics = format!("127.0.0.1:{}", free_port());
    env.settings.metrics.consumer_listen = consumer_metrics.clone();
    env.settings.metrics.scheduler_listen = scheduler_metrics.clone();
    env.settings.notifier.coalesce_ms = 50;
    let stop = Shutdown::new();
    let _stop_all = stop.clone().drop_guard();
    {
        let (settings, stop) = (env.settings.clone(), stop.clone());
        tokio::spawn(async move { seatq_consumer::run(settings, stop).await.expect("consumer") });
    }
    {
        let (settings, stop) = (env.settings.clone(), stop.clone());
        tokio::spawn(async move {
            seatq_scheduler::run(settings, stop)
                .await
                .expect("scheduler")
        });
    }
    let (addr, _) = seatq_gateway::app::spawn(env.settings.clone(), stop.clone())
        .await
        .expect("gateway starts");
    let api = Api::new(addr);
    let http = api.http.clone();
    // A standalone notifier: its /metrics is on its own listener.
    let notifier = seatq_notifier::Notifier::start(&env.settings, stop.clone()).expect("notifier");
    let listener = seatq_common::http::serve::bind("127.0.0.1:0")
        .await
        .expect("bind notifier");
    let notifier_base = format!("http://{}", listener.local_addr().expect("addr"));
    {
        let stop = stop.clone();
        tokio::spawn(async move { notifier.serve(listener, stop).await });
    }

    let event = api
        .create_event(
            json!([{"kind": "reserved", "code": "A", "name": "A", "rows": 2,
                    "seats_per_row": 10, "price_cents": 5000}]),
            json!({}),
        )
        .await;
    let partition: i32 = sqlx::query_scalar("SELECT kafka_partition FROM events WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&event).expect("event id"))
        .fetch_one(&env.pool)
        .await
        .expect("event partition");
    let partition = partition.to_string();
    let gateway_base = api.base.clone();
    let before = scrape(&http, &gateway_base).await;
    let accepted = [("result", "accepted")];
    let holds_route = [("route", "/v1/events/{event_id}/holds")];
    let http_count = "seatq_http_request_duration_seconds_count";

    // A client of the event's stream on the notifier, so the hold is a frame sent.
    let mut stream = eventually("the notifier's event stream", WAIT, || async {
        SseClient::connect(
            &http,
            &format!("{notifier_base}/v1/events/{event}/stream"),
            None,
            None,
        )
        .await
        .ok()
    })
    .await;

    let token = api.token("metrics-user", "user").await;
    let (status, decided) = api
        .hold(
            &token,
            &event,
            &json!({"seat_ids": ["A-1-1"]}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "held", "{decided}");
    // Refused at the gateway: an event that does not exist.
    let missing = uuid::Uuid::new_v4();
    let (status, refused) = api
        .hold(
            &token,
            &missing.to_string(),
            &json!({"seat_ids": ["A-1-1"]}),
            "",
            &[],
        )
        .await;
    assert_eq!(status, 404, "{refused}");
    let reason = refused["code"].as_str().expect("problem code").to_owned();

    // Gateway: hold counters by result and reason, latency per route template.
    let after = scrape(&http, &gateway_base).await;
    let moved = |name: &str, with: &[(&str, &str)]| {
        value(&after, name, with).unwrap_or(0.0) - value(&before, name, with).unwrap_or(0.0)
    };
    assert!(
        moved("seatq_hold_requests_total", &accepted) >= 1.0,
        "accepted hold counted"
    );
    assert!(
        moved(
            "seatq_hold_requests_total",
            &[("result", "rejected"), ("reason", reason.as_str())]
        ) >= 1.0,
        "rejected hold counted under {reason}"
    );
    assert!(
        moved(http_count, &holds_route) >= 2.0,
        "latency by route template"
    );
    assert!(
        !after
            .iter()
            .any(|(s, _)| s.labels.get("route").is_some_and(|r| r.contains(&event))),
        "no raw paths as route labels"
    );

    // Consumer: batch histograms, decisions, lag and outbox backlog of the partition.
    let consumer_base = format!("http://{consumer_metrics}");
    eventually("consumer metrics of the hold", WAIT, || async {
        let now = scrape(&http, &consumer_base).await;
        let ok = value(&now, "seatq_consumer_batch_records_count", &[]).unwrap_or(0.0) >= 1.0
            && value(&now, "seatq_consumer_batch_duration_seconds_count", &[]).unwrap_or(0.0)
                >= 1.0
            && value(
                &now,
                "seatq_consumer_decisions_total",
                &[("outcome", "held")],
            )
            .unwrap_or(0.0)
                >= 1.0
            && value(
                &now,
                "seatq_consumer_lag_records",
                &[("partition", &partition)],
            )
            .is_some()
            && value(&now, "seatq_outbox_backlog", &[("partition", &partition)]).is_some();
        ok.then_some(())
    })
    .await;

    // Scheduler: the hold's timer is pending on some partition it owns.
    let scheduler_base = format!("http://{scheduler_metrics}");
    eventually("scheduler timers pending", WAIT, || async {
        let now = scrape(&http, &scheduler_base).await;
        (value(&now, "seatq_scheduler_timers_pending", &[]).unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;

    // Notifier: a client connected, and the hold's delta was sent to it.
    let frames = "seatq_notifier_frames_sent_total";
    let frames_before = value(&before, frames, &[]).unwrap_or(0.0);
    stream
        .until(WAIT, |e| e.event == "seat_status_changed")
        .await;
    let now = scrape(&http, &notifier_base).await;
    assert!(
        value(&now, "seatq_notifier_clients", &[]).unwrap_or(0.0) >= 1.0,
        "client gauge"
    );
    assert!(
        value(&now, frames, &[]).unwrap_or(0.0) > frames_before,
        "frames counted"
    );
    assert!(
        value(
            &now,
            http_count,
            &[("route", "/v1/events/{event_id}/stream")]
        )
        .is_some(),
        "the notifier's own routes are timed"
    );

    // Every name the services exported is a documented one.
    let known = exported_names();
    for (series, _) in after.iter().chain(now.iter()) {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| series.name.strip_suffix(s))
            .filter(|b| known.contains(b))
            .unwrap_or(&series.name);
        assert!(
            known.contains(base),
            "{} is not in metrics::ALL",
            series.name
        );
    }
}

/// Metric names a PromQL expression mentions (histogram suffixes stripped).
fn queried_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("seatq_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/seatq-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let known = exported_names();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let names = queried_names(expr);
            assert!(!names.is_empty(), "{expr} queries no seatq metric");
            for name in names {
                assert!(
                    known.contains(name.as_str()),
                    "{name} (in {expr}) is not exported"
                );
                queried.insert(name);
            }
        }
    }
    // The dashboard shows every metric there is.
    let unshown: Vec<_> = known.iter().filter(|n| !queried.contains(**n)).collect();
    assert!(unshown.is_empty(), "metrics on no panel: {unshown:?}");
}
