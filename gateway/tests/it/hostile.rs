//! Hostile input against the real gateway on a random port: oversized bodies (413), huge
//! seat lists, unicode and binary garbage, deeply nested JSON and huge numbers in bodies,
//! paths and query strings — always a 4xx problem with a stable code, never a 5xx; very
//! long URLs and headers refused by the HTTP layer (414/431); and slow clients bounded:
//! request heads trickled a byte a second, connections that send nothing and HTTP/2
//! prefaces trickled or left without a request are all cut off after the header timeout
//! (slowloris), a body trickled slowly gets 408 from the request timeout, while a
//! live-update stream (SSE) outlives both. Keep-alive connections: one busy with a
//! request every 200 ms is never cut off, an idle one is closed after the idle timeout.
//!
//! The slow clients are raw TCP, so the test controls every byte and its timing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::{gateway, sections};
use seatq_common::http::serve::HEADER_READ_TIMEOUT;
use seatq_common::testkit::{Reply, TestEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw response: status, content type, body.
struct Raw {
    status: u16,
    content_type: String,
    body: Value,
}

/// Send raw bytes as a request (the connection is closed after it) and read the response.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading all of an oversized request.
    let _ = stream.write_all(request).await;
    read_response(&mut stream, Duration::from_secs(10))
        .await
        .expect("a response")
}

/// Read one response (until the connection closes, or `timeout`); None if it closed
/// without one.
async fn read_response(stream: &mut TcpStream, timeout: Duration) -> Option<Raw> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(timeout, stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    Some(Raw {
        status,
        content_type,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

/// A request with `Connection: close` and the given body bytes.
fn request(method: &str, target: &str, token: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {target} HTTP/1.1\r\nHost: seatq\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[track_caller]
fn assert_problem(
    status: u16,
    content_type: &str,
    body: &Value,
    want: u16,
    code: &str,
    what: &str,
) {
    assert_eq!(status, want, "{what}: {body}");
    assert_eq!(content_type, "application/problem+json", "{what}");
    assert_eq!(body["code"], code, "{what}: {body}");
}

#[track_caller]
fn assert_raw(r: &Raw, want: u16, code: &str, what: &str) {
    assert_problem(r.status, &r.content_type, &r.body, want, code, what);
}

#[track_caller]
fn assert_reply(r: &Reply, want: u16, code: &str, what: &str) {
    assert_eq!(r.0.as_u16(), want, "{what}: {}", r.1);
    assert_eq!(r.1["code"], code, "{what}: {}", r.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_malformed_and_garbage_input_gets_4xx_problems() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let user = api.token("hostile", "user").await;
    let admin = api.token("hostile-admin", "admin").await;
    let holds = format!("/v1/events/{event}/holds");
    let limit = env.settings.gateway.max_body_bytes;

    // Oversized bodies: JSON, bytes (the webhook), and a Content-Length announcing more
    // than the limit with nothing behind it (refused at once, not waited for).
    let big = format!("{{\"seat_ids\": [\"{}\"]}}", "x".repeat(limit));
    let r = raw(
        gw.addr,
        &request("POST", &holds, Some(&user), big.as_bytes()),
    )
    .await;
    assert_raw(&r, 413, "payload_too_large", "oversized hold body");
    let r = raw(
        gw.addr,
        &request("POST", "/v1/payments/webhook", None, big.as_bytes()),
    )
    .await;
    assert_raw(&r, 413, "payload_too_large", "oversized webhook body");
    let started = Instant::now();
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "POST {holds} HTTP/1.1\r\nHost: seatq\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {user}\r\nContent-Length: 10000000000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let r = read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered without the body");
    assert_raw(&r, 413, "payload_too_large", "announced 10 GB");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Huge seat lists: over the per-request limit, and over the body limit.
    let many: Vec<String> = (1..=2000)
        .map(|n| format!("A-{}-{}", n / 10 + 1, n % 10 + 1))
        .collect();
    assert_reply(
        &api.hold(&user, &event, &json!({"seat_ids": many}), "", &[])
            .await,
        422,
        "too_many_seats",
        "2000 seats",
    );
    let r = raw(
        gw.addr,
        &request(
            "POST",
            &holds,
            Some(&user),
            json!({"seat_ids": vec!["A-1-1"; 20_000]})
                .to_string()
                .as_bytes(),
        ),
    )
    .await;
    assert_raw(&r, 413, "payload_too_large", "20000 seats");
    assert_reply(
        &api.hold(
            &user,
            &event,
            &json!({"section": "FLOOR", "quantity": 1_000_000}),
            "",
            &[],
        )
        .await,
        422,
        "too_many_seats",
        "a million places",
    );

    // Unicode and binary garbage in JSON strings: unknown seats, never a 500.
    let garbage = [
        "💺",
        "A-1-1\u{0}",
        "\u{202e}1-1-A",
        "A\u{300}-1-1",
        "\u{fffd}",
        "A-1-1\n",
    ];
    let r = api
        .hold(&user, &event, &json!({"seat_ids": garbage}), "", &[])
        .await;
    assert_reply(&r, 422, "unknown_seat", "unicode seat ids");
    let r = api
        .hold(
            &user,
            &event,
            &json!({"section": "\u{0}💺", "quantity": 1}),
            "",
            &[],
        )
        .await;
    assert_reply(&r, 422, "unknown_section", "unicode section");
    // Invalid UTF-8, a NUL-laden string, lone surrogates, deep nesting, huge numbers.
    for (what, body, status, code) in [
        (
            "invalid UTF-8",
            b"{\"seat_ids\": [\"\xff\xfe\"]}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "lone surrogate",
            br#"{"seat_ids": ["\ud800"]}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "binary",
            vec![0u8, 159, 146, 150, 255, 0, 1],
            400,
            "invalid_json",
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            400,
            "invalid_json",
        ),
        (
            "deep nesting in a field",
            format!("{{\"seat_ids\": {}{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "invalid_json",
        ),
        (
            "huge integer",
            br#"{"section": "A", "quantity": 100000000000000000000000000000}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "huge float",
            br#"{"section": "A", "quantity": 1e400}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "negative",
            br#"{"section": "A", "quantity": -1}"#.to_vec(),
            422,
            "invalid_quantity",
        ),
        (
            "duplicate keys",
            br#"{"section": "A", "section": "B", "quantity": 1}"#.to_vec(),
            422,
            "invalid_body",
        ),
    ] {
        let r = raw(gw.addr, &request("POST", &holds, Some(&user), &body)).await;
        // serde stops at the first thing that does not fit the target type, so some
        // syntactically broken inputs are a shape error (422) before they are a syntax
        // error (400); either is a refusal with a stable code.
        let (status, code) = if r.status == 422 && r.body["code"] == "invalid_body" {
            (422, "invalid_body")
        } else {
            (status, code)
        };
        assert_raw(&r, status, code, what);
    }
    // Admin input with NUL and unicode (PostgreSQL text refuses NUL: it must be refused
    // before it gets there).
    let venue = |name: &str, code: &str| {
        json!({"name": name, "city": "C\u{0}", "sections": [
            {"kind": "general_admission", "code": code, "name": "x\u{0}", "capacity": 1, "price_cents": 1}]})
    };
    for (name, code) in [("V\u{0}", "A"), ("💺\u{202e}", "A"), ("V", "\u{0}")] {
        let r = api
            .post("/v1/admin/venues", Some(&admin), &venue(name, code))
            .await;
        assert!(
            r.0.is_client_error() || r.0 == 201,
            "venue {name:?}/{code:?}: {} {}",
            r.0,
            r.1
        );
        assert!(r.1["code"] != "internal", "{}", r.1);
    }

    // Paths and query strings: huge numbers, unicode, invalid percent-encoding.
    for (what, path, code) in [
        (
            "numeric id",
            "/v1/events/99999999999999999999999999999999999999".to_owned(),
            "invalid_path",
        ),
        (
            "unicode id",
            "/v1/events/%F0%9F%92%BA".to_owned(),
            "invalid_path",
        ),
        (
            "invalid UTF-8 id",
            "/v1/events/%FF%FE".to_owned(),
            "invalid_path",
        ),
        ("NUL id", "/v1/holds/%00".to_owned(), "invalid_path"),
        (
            "huge page",
            "/v1/events?page=99999999999999999999999".to_owned(),
            "invalid_query",
        ),
        (
            "unicode page",
            "/v1/events?page=%F0%9F%92%BA".to_owned(),
            "invalid_query",
        ),
        (
            "invalid UTF-8 query",
            "/v1/events?q=%FF%FE".to_owned(),
            "invalid_query",
        ),
        (
            "huge wait",
            format!("/v1/hold-requests/{}?wait_ms=1e999", uuid::Uuid::now_v7()),
            "invalid_query",
        ),
    ] {
        let r = raw(gw.addr, &request("GET", &path, Some(&user), b"")).await;
        assert!(
            r.status == 400 || r.status == 404,
            "{what}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        if r.status == 400 {
            assert_eq!(r.body["code"], code, "{what}: {}", r.body);
        }
    }
    // Idempotency keys and user ids with garbage.
    assert_reply(
        &api.hold(
            &user,
            &event,
            &json!({"seat_ids": ["A-1-1"]}),
            "",
            &[("idempotency-key", "ÿ💺")],
        )
        .await,
        400,
        "invalid_idempotency_key",
        "unicode idempotency key",
    );
    assert_reply(
        &api.post("/v1/dev/token", None, &json!({"user_id": "a\u{0}b"}))
            .await,
        422,
        "invalid_user_id",
        "NUL user id",
    );
    assert_reply(
        &api.post(
            "/v1/dev/token",
            None,
            &json!({"user_id": "x".repeat(10_000)}),
        )
        .await,
        422,
        "invalid_user_id",
        "long user id",
    );
    // Still serving.
    assert_eq!(api.get("/healthz", None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn very_long_urls_and_headers_are_refused_by_the_http_layer() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let status = |bytes: Vec<u8>| async move {
        let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
        let _ = stream.write_all(&bytes).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        text.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok())
    };
    let long_url = format!(
        "GET /v1/events?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let got = status(long_url.into_bytes()).await;
    assert!(matches!(got, Some(414 | 431)), "70 kB URL: {got:?}");
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let got = status(long_header.into_bytes()).await;
    assert_eq!(got, Some(431), "100 kB header");
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let got = status(many.into_bytes()).await;
    assert_eq!(got, Some(431), "500 headers");
    // A long URL within the limits reaches the router and is answered as usual.
    let r = gw
        .api
        .get(&format!("/v1/events/{}", "a".repeat(20_000)), None)
        .await;
    assert_eq!(r.0, 400, "{}", r.1);
    assert_eq!(r.1["code"], "invalid_path");
}

/// Trickle `bytes` one per `every` until the server closes the connection; returns how
/// long it stayed open, or None if it was still open after `give_up`.
async fn trickle(
    stream: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    give_up: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    for byte in bytes.iter().cycle() {
        if started.elapsed() > give_up {
            return None;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // Wait `every`, noticing a close (EOF, reset or an error response) meanwhile.
        match tokio::time::timeout(every, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {
                // An error response: the close follows.
                let _ = tokio::time::timeout(give_up, stream.read_to_end(&mut Vec::new())).await;
                return Some(started.elapsed());
            }
            Err(_) => {}
        }
    }
    None
}

/// Read and discard until the server closes the connection; how long that took from
/// `since`, or None if it was still open after `give_up`.
async fn closed_after(
    stream: &mut TcpStream,
    since: Instant,
    give_up: Duration,
) -> Option<Duration> {
    let mut sink = [0u8; 4096];
    loop {
        let left = give_up.checked_sub(since.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// The HTTP/2 client preface (prior knowledge, no TLS).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_but_streams_live_on() {
    let env = TestEnv::new(1).await;
    let mut settings = env.settings.clone();
    settings.gateway.request_timeout_ms = 2000;
    settings.notifier.embedded = true;
    settings.notifier.heartbeat_secs = 1;
    let gw = gateway(&settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let user = api.token("slow", "user").await;
    let timeout = Duration::from_millis(settings.gateway.request_timeout_ms);

    // An SSE stream, opened first: it must outlive the header and request timeouts.
    let mut sse = TcpStream::connect(gw.addr).await.expect("connect");
    sse.write_all(
        format!("GET /v1/events/{event}/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let sse_opened = Instant::now();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sse.read(&mut head))
        .await
        .expect("stream answers")
        .expect("read");
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Slowloris: a request head one byte a second, forever. The three run side by side.
    let slowloris = async {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        trickle(
            &mut s,
            b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            Duration::from_secs(1),
            HEADER_READ_TIMEOUT * 3,
        )
        .await
    };
    // No request head from the start: a connection that sends nothing; an HTTP/2 preface
    // trickled a byte a second (cut off mid-preface, while the protocol is still unknown);
    // a whole preface and an empty SETTINGS frame, then no request.
    let silent = async {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        closed_after(&mut s, Instant::now(), HEADER_READ_TIMEOUT * 3).await
    };
    let h2_trickled = async {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        trickle(
            &mut s,
            H2_PREFACE,
            Duration::from_secs(1),
            HEADER_READ_TIMEOUT * 3,
        )
        .await
    };
    let h2_idle = async {
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        let started = Instant::now();
        s.write_all(H2_PREFACE).await.expect("write");
        s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
            .await
            .expect("write");
        closed_after(&mut s, started, HEADER_READ_TIMEOUT * 3).await
    };
    // A body trickled slowly on a normal route: 408 after the request timeout.
    let slow_body = async {
        let body = json!({"seat_ids": ["A-1-1"]}).to_string();
        let mut s = TcpStream::connect(gw.addr).await.expect("connect");
        s.write_all(
            format!(
                "POST /v1/events/{event}/holds HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {user}\r\nContent-Length: {}\r\n\r\n",
                body.len() + 10_000
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        let started = Instant::now();
        let mut buf = Vec::new();
        for byte in body.bytes().cycle() {
            if s.write_all(&[byte]).await.is_err() || started.elapsed() > timeout * 5 {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(300), s.read_buf(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) if buf.windows(4).any(|w| w == b"\r\n\r\n") => break,
                _ => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await;
        (
            started.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    };
    // Meanwhile the stream keeps going and a normal client is served promptly.
    let healthy = async {
        let started = Instant::now();
        while started.elapsed() < HEADER_READ_TIMEOUT {
            let t = Instant::now();
            assert_eq!(api.get("/healthz", None).await.0, 200);
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "a normal client waited"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (slowloris, silent, h2_trickled, h2_idle, (body_took, body_reply), ()) =
        tokio::join!(slowloris, silent, h2_trickled, h2_idle, slow_body, healthy);

    for (what, open) in [
        ("slowloris", slowloris),
        ("silent", silent),
        ("trickled HTTP/2 preface", h2_trickled),
        ("idle HTTP/2", h2_idle),
    ] {
        let open = open.unwrap_or_else(|| panic!("the {what} connection was never closed"));
        assert!(
            open >= HEADER_READ_TIMEOUT - Duration::from_secs(1)
                && open <= HEADER_READ_TIMEOUT + Duration::from_secs(5),
            "the {what} connection closed after {open:?}, want about {HEADER_READ_TIMEOUT:?}"
        );
    }
    assert!(
        body_reply.starts_with("HTTP/1.1 408"),
        "slow body: {body_reply}"
    );
    assert!(
        body_reply.contains("application/problem+json") && body_reply.contains("request_timeout"),
        "{body_reply}"
    );
    assert!(
        body_took >= timeout - Duration::from_millis(200) && body_took < timeout * 3,
        "408 after {body_took:?}, want about {timeout:?}"
    );

    // The stream is still open, past both timeouts: its heartbeats keep coming.
    assert!(sse_opened.elapsed() > HEADER_READ_TIMEOUT);
    let mut buf = vec![0u8; 65536];
    // What it sent meanwhile (a closed stream would end with EOF here)...
    loop {
        match tokio::time::timeout(Duration::from_millis(100), sse.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => continue,
            Err(_) => break,
            ended => panic!("the stream ended: {ended:?}"),
        }
    }
    // ...and something new.
    let fresh = tokio::time::timeout(
        Duration::from_secs(3 * settings.notifier.heartbeat_secs),
        sse.read(&mut buf),
    )
    .await;
    assert!(
        matches!(fresh, Ok(Ok(n)) if n > 0),
        "the stream went silent or ended: {fresh:?}"
    );
}

/// One response read off a kept-alive connection: status and headers (lower-case names).
struct KeptResponse {
    status: u16,
    headers: Vec<(String, String)>,
}

impl KeptResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read exactly one response (head and `Content-Length` body) and leave the connection
/// open; None if the server closed it (or said nothing within `timeout`).
async fn read_kept_response(stream: &mut TcpStream, timeout: Duration) -> Option<KeptResponse> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.lines();
            let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .expect("a Content-Length response");
            if buf.len() >= end + 4 + length {
                assert_eq!(buf.len(), end + 4 + length, "one response at a time");
                return Some(KeptResponse { status, headers });
            }
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

const KEPT_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: seatq\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_are_closed_only_when_idle() {
    let env = TestEnv::new(1).await;
    let mut settings = env.settings.clone();
    settings.gateway.idle_timeout_secs = 2;
    let idle = Duration::from_secs(settings.gateway.idle_timeout_secs);
    let gw = gateway(&settings).await;

    // Busy: a request every 200 ms on one connection, for well over the idle timeout and
    // past the header timeout too. Every request is answered on the same connection.
    let busy_for = (idle * 3).max(HEADER_READ_TIMEOUT + Duration::from_secs(2));
    let mut conn = TcpStream::connect(gw.addr).await.expect("connect");
    let opened = Instant::now();
    let mut answered = 0;
    let mut advertised = HashSet::new();
    let mut last_response = Instant::now();
    while opened.elapsed() < busy_for {
        let sent = conn.write_all(KEPT_REQUEST).await;
        let response = match sent {
            Ok(()) => read_kept_response(&mut conn, Duration::from_secs(5)).await,
            Err(_) => None,
        };
        let response = response.unwrap_or_else(|| {
            panic!(
                "request {} dropped without a response {:?} after the connection opened",
                answered + 1,
                opened.elapsed()
            )
        });
        last_response = Instant::now();
        assert_eq!(response.status, 200);
        advertised.insert(response.header("keep-alive").map(str::to_owned));
        answered += 1;
        // The client's pace, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered >= 40, "only {answered} requests in {busy_for:?}");
    // One second less than the server waits (see `http::serve`).
    assert_eq!(advertised, HashSet::from([Some("timeout=1".to_owned())]));

    // Idle: closed once the idle timeout has passed since the last response.
    let closed = closed_after(&mut conn, last_response, idle * 5)
        .await
        .expect("an idle connection is closed");
    assert!(
        closed >= idle - Duration::from_millis(100) && closed <= idle + Duration::from_secs(2),
        "the idle connection closed after {closed:?}, want about {idle:?}"
    );

    // A request head that starts arriving just before the idle deadline and ends after
    // it is answered: a request being read is never cut off.
    let mut conn = TcpStream::connect(gw.addr).await.expect("connect");
    conn.write_all(KEPT_REQUEST).await.expect("write");
    let first = read_kept_response(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(first.map(|r| r.status), Some(200));
    tokio::time::sleep(idle - Duration::from_millis(300)).await;
    for part in [
        &KEPT_REQUEST[..10],
        &KEPT_REQUEST[10..30],
        &KEPT_REQUEST[30..],
    ] {
        conn.write_all(part).await.expect("the connection is open");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let late = read_kept_response(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(
        late.map(|r| r.status),
        Some(200),
        "a head read across the idle deadline"
    );
}
