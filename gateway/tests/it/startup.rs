//! The real `seatq-gateway` binary refuses to start outside development mode with secrets
//! anyone can know: the built-in placeholders, or the empty values deploy/k8s ships. It
//! exits non-zero at once, naming each setting, before it connects to anything (the
//! services it is given here do not exist).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the gateway with only `env` as its configuration (the runner's `SEATQ_*` variables
/// removed) until it exits or `limit` passes: (exit status if it exited, its output).
fn run_gateway(
    env: &[(&str, &str)],
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let log = std::env::temp_dir().join(format!(
        "seatq-startup-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_seatq-gateway"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SEATQ_") {
            command.env_remove(key);
        }
    }
    // Nothing listens on port 1: the check must come before any connection.
    command
        .env("SEATQ_DATABASE__URL", "postgres://seatq@127.0.0.1:1/none")
        .env("SEATQ_REDIS__URL", "redis://127.0.0.1:1/")
        .env("SEATQ_KAFKA__BROKERS", "127.0.0.1:1")
        .env("SEATQ_GATEWAY__LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    let mut child = command.spawn().expect("start seatq-gateway");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (status, output)
}

const SECRETS: [&str; 5] = [
    "auth.jwt_secret (SEATQ_AUTH__JWT_SECRET)",
    "payments.webhook_secret (SEATQ_PAYMENTS__WEBHOOK_SECRET)",
    "tickets.code_secret (SEATQ_TICKETS__CODE_SECRET)",
    "waiting_room.secret (SEATQ_WAITING_ROOM__SECRET)",
    "payments.provider_api_key (SEATQ_PAYMENTS__PROVIDER_API_KEY)",
];

#[test]
fn the_gateway_refuses_to_start_with_placeholder_or_empty_secrets() {
    // The built-in defaults, production mode (the default).
    let started = Instant::now();
    let (status, output) = run_gateway(&[], Duration::from_secs(20));
    let status =
        status.unwrap_or_else(|| panic!("still running with placeholder secrets:\n{output}"));
    assert!(!status.success(), "exited {status}:\n{output}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to refuse",
        started.elapsed()
    );
    assert!(
        output.contains("seatq-gateway refuses to start"),
        "{output}"
    );
    for secret in SECRETS {
        assert!(
            output.contains(&format!("{secret} is a placeholder")),
            "{secret}:\n{output}"
        );
    }

    // The empty values deploy/k8s/secret.yaml ships, and dev tokens left on.
    let empty: Vec<(&str, &str)> = [
        "SEATQ_AUTH__JWT_SECRET",
        "SEATQ_PAYMENTS__WEBHOOK_SECRET",
        "SEATQ_PAYMENTS__PROVIDER_API_KEY",
        "SEATQ_TICKETS__CODE_SECRET",
        "SEATQ_WAITING_ROOM__SECRET",
    ]
    .into_iter()
    .map(|k| (k, ""))
    .chain([("SEATQ_AUTH__DEV_TOKENS", "true")])
    .collect();
    let (status, output) = run_gateway(&empty, Duration::from_secs(20));
    let status = status.unwrap_or_else(|| panic!("still running with empty secrets:\n{output}"));
    assert!(!status.success(), "exited {status}:\n{output}");
    for secret in SECRETS {
        assert!(
            output.contains(&format!("{secret} is empty")),
            "{secret}:\n{output}"
        );
    }
    assert!(
        output.contains("auth.dev_tokens (SEATQ_AUTH__DEV_TOKENS) is on"),
        "{output}"
    );

    // In development mode the same settings pass the check (the gateway then goes on to
    // the services it was given, which do not exist).
    let (_, output) = run_gateway(
        &[("SEATQ_DEPLOYMENT__MODE", "development")],
        Duration::from_secs(3),
    );
    assert!(!output.contains("refuses to start"), "{output}");
}
