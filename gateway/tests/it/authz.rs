//! Authorization, against the real gateway, consumer and sandbox payment provider: a
//! user cannot see or touch another user's hold, hold request, booking or ticket (a
//! stranger gets 404, as if it did not exist, and nothing changes); every admin route —
//! enumerated from the committed OpenAPI document, so a new one is covered the day it is
//! added — refuses a user (403 `admin_only`) and an anonymous caller (401); and every
//! route that needs a token refuses expired, forged, unsigned and garbage ones with a
//! 401 problem whose code is `unauthorized`; and a token in the URL (`?access_token=`)
//! counts only on the live-update streams, everywhere else it is ignored (401).

use std::time::Duration;

use crate::support::{gateway, with_sandbox, TestConsumer, TestGateway};
use seatq_common::config::Settings;
use seatq_common::testkit::{eventually, Api, Reply, TestEnv};
use serde_json::{json, Value};

const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The gateway (with the sandbox provider on its own port) and a consumer, stopped on drop.
struct Stack {
    api: Api,
    settings: Settings,
    _gateway: TestGateway,
    _consumer: Option<TestConsumer>,
}

async fn stack(env: &TestEnv, consumer: bool) -> Stack {
    let settings = with_sandbox(&env.settings);
    let _consumer = consumer.then(|| crate::support::consumer(&settings));
    let gateway = gateway(&settings).await;
    Stack {
        api: gateway.api.clone_client(),
        settings,
        _gateway: gateway,
        _consumer,
    }
}

fn sections() -> Value {
    json!([{"kind": "reserved", "code": "A", "name": "A", "rows": 2, "seats_per_row": 5, "price_cents": 5000}])
}

#[track_caller]
fn assert_problem(reply: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(reply.0.as_u16(), status, "{what}: {}", reply.1);
    assert_eq!(reply.1["code"], code, "{what}: {}", reply.1);
    assert_eq!(reply.1["status"], status, "{what}: {}", reply.1);
}

/// A hold of `seat` for `token`'s user, decided by the consumer: (hold id, request id).
async fn hold(api: &Api, token: &str, event: &str, seat: &str) -> (String, String) {
    let (status, body) = api
        .hold(token, event, &json!({"seat_ids": [seat]}), "", &[])
        .await;
    assert_eq!(status, 202, "{body}");
    let request = body["request_id"].as_str().expect("request id").to_owned();
    let decided = api.decision(token, &request, Duration::from_secs(30)).await;
    assert_eq!(decided["status"], "held", "{decided}");
    let hold = decided["hold_id"].as_str().expect("hold id").to_owned();
    (hold, request)
}

/// Pay for a hold through the sandbox provider; returns the confirmed booking.
async fn pay(stack: &Stack, token: &str, hold: &str) -> Value {
    let api = &stack.api;
    let (status, checkout) = api
        .post(
            &format!("/v1/holds/{hold}/checkout"),
            Some(token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "checkout: {checkout}");
    let url = checkout["payment_url"].as_str().expect("payment url");
    let session = url.rsplit('/').next().expect("session id");
    let (status, body) = api
        .post(
            &format!("/sandbox/v1/sessions/{session}/complete"),
            Some(&stack.settings.payments.provider_api_key),
            &json!({"outcome": "succeed"}),
        )
        .await;
    assert_eq!(status, 202, "complete: {body}");
    eventually("the booking", Duration::from_secs(30), || async {
        let (_, mine) = api.get("/v1/me/bookings", Some(token)).await;
        mine["bookings"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["hold_id"] == hold).cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_see_or_touch_each_others_holds_bookings_and_tickets() {
    let env = TestEnv::new(1).await;
    let stack = stack(&env, true).await;
    let api = &stack.api;
    let event = api.create_event(sections(), json!({})).await;
    let alice = api.token("alice", "user").await;
    let mallory = api.token("mallory", "user").await;

    // Holds and hold requests.
    let (open_hold, open_request) = hold(api, &alice, &event, "A-1-1").await;
    let (paid_hold, _) = hold(api, &alice, &event, "A-1-2").await;
    for (method, path, code) in [
        ("GET", format!("/v1/holds/{open_hold}"), "hold_not_found"),
        ("DELETE", format!("/v1/holds/{open_hold}"), "hold_not_found"),
        (
            "POST",
            format!("/v1/holds/{open_hold}/checkout"),
            "hold_not_found",
        ),
        (
            "GET",
            format!("/v1/hold-requests/{open_request}"),
            "request_not_found",
        ),
    ] {
        let reply = api
            .send(
                method.parse().expect("method"),
                &path,
                Some(&mallory),
                (method == "POST").then_some(&json!({})),
            )
            .await;
        assert_problem(&reply, 404, code, &format!("mallory {method} {path}"));
    }
    let (_, mine) = api.get("/v1/me/holds", Some(&mallory)).await;
    assert_eq!(mine["holds"], json!([]), "mallory lists no holds");
    // Nothing changed: the hold is still alice's, active, and no payment was opened.
    let (status, view) = api
        .get(&format!("/v1/holds/{open_hold}"), Some(&alice))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "active", "{view}");
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&env.pool)
        .await
        .expect("count payments");
    assert_eq!(payments, 0, "mallory's checkout opened no payment");

    // Bookings and tickets.
    let booking = pay(&stack, &alice, &paid_hold).await;
    let booking_id = booking["booking_id"].as_str().expect("booking id");
    let ticket = booking["tickets"][0]["ticket_id"]
        .as_str()
        .expect("ticket id")
        .to_owned();
    for (method, path, body, code) in [
        (
            "GET",
            format!("/v1/bookings/{booking_id}"),
            None,
            "booking_not_found",
        ),
        (
            "POST",
            format!("/v1/bookings/{booking_id}/cancel"),
            Some(json!({})),
            "booking_not_found",
        ),
        (
            "GET",
            format!("/v1/tickets/{ticket}"),
            None,
            "ticket_not_found",
        ),
        (
            "GET",
            format!("/v1/tickets/{ticket}/qr.svg"),
            None,
            "ticket_not_found",
        ),
        (
            "POST",
            format!("/v1/tickets/{ticket}/transfer"),
            Some(json!({"to_user_id": "mallory"})),
            "ticket_not_found",
        ),
    ] {
        let reply = api
            .send(
                method.parse().expect("method"),
                &path,
                Some(&mallory),
                body.as_ref(),
            )
            .await;
        assert_problem(&reply, 404, code, &format!("mallory {method} {path}"));
    }
    let (_, mine) = api.get("/v1/me/bookings", Some(&mallory)).await;
    assert_eq!(mine["bookings"], json!([]), "mallory lists no bookings");
    // Still alice's, confirmed, the ticket valid and held by her, with its code.
    let (status, view) = api
        .get(&format!("/v1/bookings/{booking_id}"), Some(&alice))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "confirmed", "{view}");
    let (status, view) = api
        .get(&format!("/v1/tickets/{ticket}"), Some(&alice))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["holder_user_id"], "alice", "{view}");
    assert_eq!(view["status"], "valid", "{view}");
    assert!(view["code"].is_string(), "{view}");

    // The owner can do what the stranger could not.
    let (status, body) = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/holds/{open_hold}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
}

/// Every operation of the committed OpenAPI document but the live-update streams: (method,
/// path with its parameters filled in, needs a token, is an admin route). The streams
/// (tag `streams`) are the notifier's, take a token from the URL too and are checked on
/// their own (`tokens_in_urls_count_only_on_the_stream_routes`).
fn operations() -> Vec<(reqwest::Method, String, bool, bool)> {
    let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let tagged = |tag: &str| {
                op["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == tag))
            };
            if tagged("streams") {
                continue;
            }
            // Path parameters: ids are UUIDs, seats and tickets plain words.
            let mut filled = String::new();
            for segment in path.split('/').skip(1) {
                filled.push('/');
                if segment.starts_with('{') {
                    filled.push_str(&uuid::Uuid::now_v7().to_string());
                } else {
                    filled.push_str(segment);
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let admin = path.starts_with("/v1/admin/") || tagged("admin");
            ops.push((
                method.to_uppercase().parse().expect("method"),
                filled,
                secured,
                admin,
            ));
        }
    }
    ops
}

async fn call(api: &Api, method: &reqwest::Method, path: &str, auth: Option<&str>) -> Reply {
    let mut req = api
        .http
        .request(method.clone(), format!("{}{path}", api.base));
    if let Some(value) = auth {
        req = req.header("authorization", value);
    }
    if *method == reqwest::Method::POST {
        req = req.json(&json!({}));
    }
    let response = req.send().await.expect("request");
    let status = response.status();
    if status == 401 {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_admin_role() {
    let env = TestEnv::new(1).await;
    let stack = stack(&env, false).await;
    let api = &stack.api;
    let user = format!("Bearer {}", api.token("bob", "user").await);
    let admin_ops: Vec<_> = operations().into_iter().filter(|op| op.3).collect();
    assert!(
        admin_ops.len() >= 7,
        "the document lists the admin routes: {admin_ops:?}"
    );
    for (method, path, secured, _) in &admin_ops {
        assert!(
            secured,
            "{method} {path}: an admin route documents its bearer security"
        );
        let what = format!("{method} {path}");
        assert_problem(
            &call(api, method, path, Some(&user)).await,
            403,
            "admin_only",
            &what,
        );
        assert_problem(
            &call(api, method, path, None).await,
            401,
            "unauthorized",
            &what,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_on_every_route_that_needs_one() {
    let env = TestEnv::new(1).await;
    let stack = stack(&env, false).await;
    let api = &stack.api;
    let secret = env.settings.auth.jwt_secret.as_bytes();
    let now = chrono::Utc::now().timestamp();
    let sign = |claims: Value, key: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .expect("sign")
    };
    let admin_claims = json!({"sub": "eve", "role": "admin", "iat": now, "exp": now + 600});
    // A valid admin token's payload, to put under other headers and signatures.
    let admin_token = sign(admin_claims.clone(), secret);
    let admin_payload = admin_token.split('.').nth(1).expect("payload").to_owned();
    // base64url of {"alg":"none","typ":"JWT"}
    const ALG_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let bad: Vec<(&str, String)> = vec![
        ("no token", String::new()),
        ("empty bearer", "Bearer ".into()),
        ("basic auth", "Basic ZXZlOmV2ZQ==".into()),
        ("garbage", "Bearer not.a.jwt".into()),
        ("non-ASCII garbage", "Bearer ÿÿÿ".into()),
        (
            "expired",
            format!(
                "Bearer {}",
                sign(
                    json!({"sub": "eve", "role": "admin", "iat": now - 120, "exp": now - 60}),
                    secret
                )
            ),
        ),
        (
            "other key",
            format!("Bearer {}", sign(admin_claims.clone(), b"not the secret")),
        ),
        ("alg none", format!("Bearer {ALG_NONE}.{admin_payload}.")),
        (
            "HS512 with the right key",
            format!(
                "Bearer {}",
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
                    &admin_claims,
                    &jsonwebtoken::EncodingKey::from_secret(secret),
                )
                .expect("sign")
            ),
        ),
        (
            "no expiry",
            format!(
                "Bearer {}",
                sign(json!({"sub": "eve", "role": "admin", "iat": now}), secret)
            ),
        ),
        (
            "unknown role",
            format!(
                "Bearer {}",
                sign(
                    json!({"sub": "eve", "role": "root", "iat": now, "exp": now + 600}),
                    secret
                )
            ),
        ),
        (
            "empty subject",
            format!(
                "Bearer {}",
                sign(
                    json!({"sub": "", "role": "admin", "iat": now, "exp": now + 600}),
                    secret
                )
            ),
        ),
        ("tampered payload", {
            let user = sign(
                json!({"sub": "eve", "role": "user", "iat": now, "exp": now + 600}),
                secret,
            );
            let parts: Vec<&str> = user.split('.').collect();
            format!("Bearer {}.{admin_payload}.{}", parts[0], parts[2])
        }),
    ];
    let secured: Vec<_> = operations().into_iter().filter(|op| op.2).collect();
    assert!(secured.len() >= 20, "{secured:?}");
    for (method, path, _, _) in &secured {
        for (what, header) in &bad {
            let auth = (!header.is_empty()).then_some(header.as_str());
            assert_problem(
                &call(api, method, path, auth).await,
                401,
                "unauthorized",
                &format!("{what}: {method} {path}"),
            );
        }
    }
    // The same claims, properly signed, get through (so the refusals above are the
    // token's fault): an admin's empty venue is refused for its content, not its caller.
    let reply = call(
        api,
        &reqwest::Method::POST,
        "/v1/admin/venues",
        Some(&format!("Bearer {admin_token}")),
    )
    .await;
    assert_eq!(reply.0, 422, "{}", reply.1);
}

/// Send raw bytes and read what comes back until the head is complete (or the connection
/// closes): the status code.
async fn raw_status(addr: std::net::SocketAddr, request: String) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_urls_count_only_on_the_stream_routes() {
    let env = TestEnv::new(1).await;
    let mut settings = with_sandbox(&env.settings);
    settings.notifier.embedded = true;
    let gw = gateway(&settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let admin = api.token("url-admin", "admin").await;
    let user = api.token("url-user", "user").await;

    // Every route that needs a token: a valid one in the URL and none in the header is
    // no token at all (an admin's, so any route would have let it through).
    let secured: Vec<_> = operations().into_iter().filter(|op| op.2).collect();
    assert!(secured.len() >= 20, "{secured:?}");
    for (method, path, _, _) in &secured {
        let reply = call(api, method, &format!("{path}?access_token={admin}"), None).await;
        assert_problem(
            &reply,
            401,
            "unauthorized",
            &format!("{method} {path}?access_token="),
        );
    }
    // The user's own routes too (the same token in the header works).
    let (status, body) = api
        .get(&format!("/v1/me/holds?access_token={user}"), None)
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = api.get("/v1/me/holds", Some(&user)).await;
    assert_eq!(status, 200, "{body}");

    // The streams take it: the user's SSE stream...
    let stream = |path: String| {
        let http = api.http.clone();
        let url = format!("{}{path}", api.base);
        async move {
            let r = http
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .expect("stream");
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (status, kind)
        }
    };
    assert_eq!(
        stream(format!("/v1/me/stream?access_token={user}")).await,
        (200, "text/event-stream".to_owned())
    );
    assert_eq!(stream("/v1/me/stream".into()).await.0, 401);
    assert_eq!(
        stream("/v1/me/stream?access_token=not.a.jwt".into())
            .await
            .0,
        401
    );
    // ...the public event stream, token or not...
    assert_eq!(
        stream(format!("/v1/events/{event}/stream?access_token={user}")).await,
        (200, "text/event-stream".to_owned())
    );
    // ...and the WebSocket: a valid token upgrades, a bad one is refused (so the token in
    // the URL is read, not ignored).
    let upgrade = |token: &str| {
        format!(
            "GET /v1/ws?access_token={token} HTTP/1.1\r\nHost: seatq\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    assert_eq!(raw_status(gw.addr, upgrade(&user)).await, Some(101));
    assert_eq!(raw_status(gw.addr, upgrade("not.a.jwt")).await, Some(401));
}
