//! schemathesis (PyPI) fuzzes the real gateway from its own OpenAPI document: every
//! operation (the live-update streams too: the gateway serves them with the embedded
//! notifier), with generated valid and invalid input, an admin's bearer token, and path
//! parameters that sometimes name real objects (an event, its seats, a decided hold and
//! its request), so handlers run past the "not found" branch. It runs every check
//! (`--checks all`): no 5xx; no response the document does not describe (status code,
//! content type, headers, body schema, each event of an event stream); input valid by the
//! document accepted and input invalid by it refused (so the document states the bounds
//! and patterns the handlers enforce); missing required headers refused; routes that
//! declare a token refuse requests without one; undeclared methods answered 405.
//!
//! schemathesis is installed into the machine-wide cache by `ensure_schemathesis` in
//! deploy/local/lib.sh (deploy/local/test calls it; so does this test when it is missing).
//! When it cannot be installed the test fails under deploy/local/test (and so CI), and
//! skips loudly elsewhere (`testkit::needed_tool`).

use std::time::Duration;

use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::{needed_tool, Api, TestEnv};
use serde_json::{json, Value};

/// The whole run's budget; the test as a whole stays well under three minutes. By hand,
/// `SEATQ_SCHEMATHESIS_SECS` runs longer and `SEATQ_SCHEMATHESIS_SEED` picks another seed.
const MAX_TIME_SECS: u64 = 75;
/// Generated cases per operation and phase.
const MAX_EXAMPLES: u32 = 25;

/// Operations whose input can be valid by the document and still be refused with 422 for
/// what no schema can say: names that must exist at the event or venue (seats, sections,
/// the venue of a new event) and rules across fields or with the caller (a section code
/// twice, at most 200,000 reserved seats in a venue, on sale before the start, a ticket
/// transferred to yourself). schemathesis' own advice for such rules (`st explain ST202`)
/// is to allow 422 as an answer to valid input for those operations only.
const REFUSED_FOR_STATE: &[&str] = &[
    "request_hold",
    "create_venue",
    "create_event",
    "create_holdback",
    "transfer_ticket",
];

/// Valid input's accepted answers (schemathesis' defaults) and `extra`, as TOML.
fn accepted(extra: &str) -> String {
    format!(
        "checks.positive_data_acceptance.expected-statuses = \
         [\"{extra}\", \"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"429\", \"5xx\"]\n"
    )
}

/// schemathesis' configuration: real ids offered for path parameters half of the time;
/// an event stream read up to its first event (`ready`: streams never end); the
/// WebSocket route's 101 counted as its success (schemathesis counts only 2xx to 4xx as
/// answers, and only 2xx and 3xx as accepting); 422 allowed for valid input of
/// `REFUSED_FOR_STATE`.
fn config(objects: &[(&str, Vec<String>)]) -> String {
    let mut toml = String::from("max-stream-events = 1\n\n[parameters]\n");
    for (name, _) in objects {
        toml.push_str(&format!(
            "\"path.{name}\" = {{ dictionary = \"{name}\", probability = 0.5 }}\n"
        ));
    }
    for (name, values) in objects {
        toml.push_str(&format!("\n[dictionaries.{name}]\nvalues = {values:?}\n"));
    }
    toml.push_str("\n[[operations]]\ninclude-path = \"/v1/ws\"\n");
    toml.push_str(&accepted("101"));
    toml.push_str(
        "checks.not_a_server_error.expected-statuses = [\"101\", \"2xx\", \"3xx\", \"4xx\"]\n",
    );
    toml.push_str(&format!(
        "\n[[operations]]\ninclude-operation-id = {REFUSED_FOR_STATE:?}\n"
    ));
    toml.push_str(&accepted("422"));
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_honours_its_openapi_document_under_fuzzing() {
    let Some(st) =
        tokio::task::spawn_blocking(|| needed_tool("ensure_schemathesis", "SCHEMATHESIS_BIN"))
            .await
            .expect("join")
    else {
        return;
    };
    let env = TestEnv::new(1).await;
    // The sandbox payment provider on the gateway's own port, so a checkout of the real
    // hold reaches a provider (without one it is a 503, which is no fault of the API);
    // the notifier embedded, so the stream routes of the document are served.
    let mut settings = crate::support::with_sandbox(&env.settings);
    settings.notifier.embedded = true;
    let stop = Shutdown::new();
    let consumer = {
        let (settings, stop) = (settings.clone(), stop.clone());
        tokio::spawn(async move { seatq_consumer::run(settings, stop).await })
    };
    let (addr, _) = seatq_gateway::app::spawn(settings, stop.clone())
        .await
        .expect("gateway starts");
    let api = Api::new(addr);

    // Real objects for the path parameters: an event with seats, a decided hold.
    let event = api
        .create_event(
            json!([
                {"kind": "reserved", "code": "A", "name": "A", "rows": 2, "seats_per_row": 5, "price_cents": 5000},
                {"kind": "general_admission", "code": "FLOOR", "name": "Floor", "capacity": 20, "price_cents": 2500}
            ]),
            json!({}),
        )
        .await;
    let admin = api.token("fuzzer", "admin").await;
    let (status, accepted) = api
        .hold(&admin, &event, &json!({"seat_ids": ["A-1-1"]}), "", &[])
        .await;
    assert_eq!(status, 202, "{accepted}");
    let request_id = accepted["request_id"]
        .as_str()
        .expect("request id")
        .to_owned();
    let decided: Value = api
        .decision(&admin, &request_id, Duration::from_secs(30))
        .await;
    let hold_id = decided["hold_id"].as_str().expect("hold id").to_owned();

    let dir = std::env::temp_dir().join(format!("seatq-schemathesis-{}", env.database));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config_path = dir.join("schemathesis.toml");
    std::fs::write(
        &config_path,
        config(&[
            ("event_id", vec![event.clone()]),
            (
                "seat_id",
                vec!["A-1-1".into(), "A-2-5".into(), "FLOOR".into()],
            ),
            ("hold_id", vec![hold_id]),
            ("request_id", vec![request_id]),
        ]),
    )
    .expect("write config");

    let max_time: u64 = std::env::var("SEATQ_SCHEMATHESIS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_TIME_SECS);
    let seed = std::env::var("SEATQ_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let mut run = tokio::process::Command::new(&st);
    run.arg("--config-file")
        .arg(&config_path)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", api.base))
        .args(["--url", &api.base])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all"])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--max-time", &max_time.to_string()])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: hypothesis on Python 3.11 fails sporadically with "AST constructor
        // recursion depth mismatch" when two threads describe strategies at once.
        .args(["--workers", "1", "--request-timeout", "15", "--seed", &seed])
        .args(["--suppress-health-check", "all", "--no-color"])
        .args(["--generation-database", ":memory:"])
        .arg("--report-dir")
        .arg(&dir)
        .current_dir(&dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(max_time + 60), run.output())
        .await
        .expect("schemathesis finishes within its budget")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::write(dir.join("output.txt"), format!("{stdout}\n{stderr}"));
    stop.cancel();
    let _ = consumer.await;
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    // A run that tested nothing would pass too: make sure it did test.
    assert!(
        stdout.contains("passed") || stdout.contains("Passed"),
        "no operation was tested:\n{stdout}\n{stderr}"
    );
    // What was run, for the log: schemathesis' summary (operations, phases, test cases).
    if let Some(at) = stdout.find(" SUMMARY ") {
        eprintln!("schemathesis:{}", &stdout[at..]);
    }
    // Kept only when the run failed, for its report.
    let _ = std::fs::remove_dir_all(&dir);
}
