//! The HTTP API's contract: problem+json errors with stable codes, authentication and
//! authorization, the compact cached seat map, degraded mode without a broker, and the
//! committed OpenAPI document.

use crate::support::{assert_problem, gateway, sections};
use seatq_common::testkit::TestEnv;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problem_json_with_stable_codes() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api
        .create_event(sections(), json!({"max_seats_per_user": 4}))
        .await;
    let user = api.token("alice", "user").await;
    let hold = |body: Value| {
        let (api, user, event) = (&api, user.clone(), event.clone());
        async move { api.hold(&user, &event, &body, "", &[]).await }
    };

    assert_problem(&hold(json!({"seat_ids": []})).await, 422, "empty_seat_list");
    assert_problem(
        &hold(json!({"seat_ids": ["A-1-1", "A-1-1"]})).await,
        422,
        "duplicate_seats",
    );
    assert_problem(
        &hold(json!({"seat_ids": ["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5"]})).await,
        422,
        "too_many_seats",
    );
    let unknown = hold(json!({"seat_ids": ["A-9-9", "Z-1-1"]})).await;
    assert_problem(&unknown, 422, "unknown_seat");
    assert_eq!(unknown.1["unknown_seats"], json!(["A-9-9", "Z-1-1"]));
    assert_problem(
        &hold(json!({"section": "NOPE", "quantity": 2})).await,
        422,
        "unknown_section",
    );
    assert_problem(
        &hold(json!({"section": "A", "quantity": 0})).await,
        422,
        "invalid_quantity",
    );
    assert_problem(
        &hold(json!({"section": "A"})).await,
        422,
        "invalid_quantity",
    );
    assert_problem(
        &hold(json!({"seat_ids": ["A-1-1"], "section": "A"})).await,
        422,
        "ambiguous_hold_request",
    );
    assert_problem(&hold(json!({})).await, 422, "invalid_hold_request");
    assert_problem(
        &hold(json!({"seat_ids": "A-1-1"})).await,
        422,
        "invalid_body",
    );
    assert_problem(
        &hold(json!({"seats": ["A-1-1"]})).await,
        422,
        "invalid_body",
    );

    // Malformed JSON, wrong content type, oversized body.
    let raw = |body: &'static str, content_type: &'static str| {
        let (api, user, event) = (&api, user.clone(), event.clone());
        async move {
            let r = api
                .http
                .post(format!("{}/v1/events/{event}/holds", api.base))
                .bearer_auth(user)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("send");
            let status = r.status();
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "problem content type"
            );
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    assert_problem(
        &raw("{\"seat_ids\": [", "application/json").await,
        400,
        "invalid_json",
    );
    assert_problem(
        &raw("seat_ids=A-1-1", "text/plain").await,
        415,
        "unsupported_media_type",
    );
    let huge = format!("{{\"seat_ids\": [\"{}\"]}}", "x".repeat(100_000));
    let r = api
        .http
        .post(format!("{}/v1/events/{event}/holds", api.base))
        .bearer_auth(&user)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413);
    // The body was left unread: the connection is not for reuse, and the client is told.
    assert_eq!(r.headers()["connection"], "close");

    // Unknown event, bad ids, bad query, unknown route, wrong method.
    let missing = uuid::Uuid::now_v7();
    assert_problem(
        &api.hold(
            &user,
            &missing.to_string(),
            &json!({"seat_ids": ["A-1-1"]}),
            "",
            &[],
        )
        .await,
        404,
        "event_not_found",
    );
    assert_problem(
        &api.get(&format!("/v1/events/{missing}"), None).await,
        404,
        "event_not_found",
    );
    assert_problem(
        &api.get(&format!("/v1/events/{missing}/seats"), None).await,
        404,
        "event_not_found",
    );
    assert_problem(
        &api.get("/v1/events/not-a-uuid", None).await,
        400,
        "invalid_path",
    );
    assert_problem(
        &api.get("/v1/events?per_page=1000", None).await,
        400,
        "invalid_query",
    );
    assert_problem(
        &api.get("/v1/events?page=abc", None).await,
        400,
        "invalid_query",
    );
    assert_problem(
        &api.hold(
            &user,
            &event,
            &json!({"seat_ids": ["A-1-1"]}),
            "?wait_ms=60000",
            &[],
        )
        .await,
        400,
        "invalid_query",
    );
    assert_problem(
        &api.hold(
            &user,
            &event,
            &json!({"seat_ids": ["A-1-1"]}),
            "",
            &[("idempotency-key", "")],
        )
        .await,
        400,
        "invalid_idempotency_key",
    );
    assert_problem(
        &api.get("/v1/nothing-here", None).await,
        404,
        "route_not_found",
    );
    assert_problem(
        &api.send(reqwest::Method::DELETE, "/v1/events", None, None)
            .await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        &api.get(&format!("/v1/hold-requests/{missing}"), Some(&user))
            .await,
        404,
        "request_not_found",
    );
    assert_problem(
        &api.get(&format!("/v1/holds/{missing}"), Some(&user)).await,
        404,
        "hold_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_roles_are_enforced() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let body = json!({"seat_ids": ["A-1-1"]});
    let no_token = api
        .post(&format!("/v1/events/{event}/holds"), None, &body)
        .await;
    assert_problem(&no_token, 401, "unauthorized");
    let forged = api
        .hold(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.bad",
            &event,
            &body,
            "",
            &[],
        )
        .await;
    assert_problem(&forged, 401, "unauthorized");
    let other_secret = seatq_gateway::auth::JwtKeys::new("some other secret")
        .issue("mallory", seatq_gateway::auth::Role::Admin, 60)
        .expect("token")
        .0;
    assert_problem(
        &api.hold(&other_secret, &event, &body, "", &[]).await,
        401,
        "unauthorized",
    );
    // Signed with the right secret, expired a minute ago (well past the 5 s leeway).
    let now = chrono::Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &seatq_gateway::auth::Claims {
            sub: "late".into(),
            role: seatq_gateway::auth::Role::User,
            iat: now - 120,
            exp: now - 60,
        },
        &jsonwebtoken::EncodingKey::from_secret(env.settings.auth.jwt_secret.as_bytes()),
    )
    .expect("token");
    assert_problem(
        &api.hold(&expired, &event, &body, "", &[]).await,
        401,
        "unauthorized",
    );

    let user = api.token("bob", "user").await;
    let as_user = api
        .post(
            "/v1/admin/venues",
            Some(&user),
            &json!({"name": "x", "sections": sections()}),
        )
        .await;
    assert_problem(&as_user, 403, "admin_only");
    assert_problem(
        &api.post("/v1/dev/token", None, &json!({"user_id": ""}))
            .await,
        422,
        "invalid_user_id",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_input_is_validated() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let admin = api.token("organiser", "admin").await;
    let venue = |sections: Value| json!({"name": "V", "city": "C", "sections": sections});
    let bad_code = api
        .post("/v1/admin/venues", Some(&admin), &venue(json!([{"kind": "reserved", "code": "A-1", "name": "x", "rows": 1, "seats_per_row": 1, "price_cents": 1}])))
        .await;
    assert_problem(&bad_code, 422, "invalid_section_code");
    let dup = api
        .post("/v1/admin/venues", Some(&admin), &venue(json!([
            {"kind": "general_admission", "code": "A", "name": "x", "capacity": 1, "price_cents": 1},
            {"kind": "general_admission", "code": "A", "name": "y", "capacity": 1, "price_cents": 1}])))
        .await;
    assert_problem(&dup, 422, "duplicate_section_code");
    let too_big = api
        .post("/v1/admin/venues", Some(&admin), &venue(json!([{"kind": "reserved", "code": "A", "name": "x", "rows": 1001, "seats_per_row": 1, "price_cents": 1}])))
        .await;
    assert_problem(&too_big, 422, "invalid_field");
    assert_problem(
        &api.post("/v1/admin/venues", Some(&admin), &venue(json!([])))
            .await,
        422,
        "invalid_field",
    );
    let no_venue = api
        .post("/v1/admin/events", Some(&admin), &json!({"venue_id": uuid::Uuid::now_v7(), "title": "x", "starts_at": "2030-01-01T00:00:00Z"}))
        .await;
    assert_problem(&no_venue, 422, "venue_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_not_open_is_refused_at_the_gateway() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let event = api
        .create_event(sections(), json!({"on_sale_at": later}))
        .await;
    let user = api.token("early-bird", "user").await;
    let reply = api
        .hold(&user, &event, &json!({"seat_ids": ["A-1-1"]}), "", &[])
        .await;
    assert_problem(&reply, 403, "sale_not_open");
    assert!(reply.1["on_sale_at"].is_string());
    let (status, detail) = api.get(&format!("/v1/events/{event}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(detail["sale_open"], false);
}

/// The seat map's bytes: (raw, gzipped).
async fn map_sizes(base: &str, event: &str) -> (usize, usize) {
    let url = format!("{base}/v1/events/{event}/seats");
    let plain = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let mut sizes = [0usize; 2];
    for (i, encoding) in ["identity", "gzip"].into_iter().enumerate() {
        let r = plain
            .get(&url)
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("map");
        assert_eq!(r.status(), 200);
        sizes[i] = r.bytes().await.expect("body").len();
    }
    (sizes[0], sizes[1])
}

/// A 50,000-seat map is a few kilobytes compressed, cached, and answers 304 to its ETag;
/// seat attributes and price categories (by range) add little to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_map_is_compact_cached_and_conditional() {
    let env = TestEnv::new(1).await;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let section = |i: i32, ranges: bool| {
        let mut s = json!({"kind": "reserved", "code": format!("S{i}"), "name": format!("S{i}"),
                           "rows": 25, "seats_per_row": 50, "price_cents": 5000 + i});
        if ranges {
            // What a stadium section typically says: premium front rows, an aisle down
            // the middle, wheelchair spaces with companions at the back, a restricted
            // last row.
            s["seat_ranges"] = json!([
                {"rows": [1, 3], "seats": [1, 50], "price_category": "FRONT"},
                {"rows": [1, 25], "seats": [25, 26], "attributes": ["aisle"]},
                {"rows": [24, 24], "seats": [1, 4], "attributes": ["accessible"]},
                {"rows": [24, 24], "seats": [5, 8], "attributes": ["companion"]},
                {"rows": [25, 25], "seats": [1, 50], "attributes": ["restricted_view"],
                 "price_category": "VIEW"}
            ]);
        }
        s
    };
    let sections: Vec<Value> = (0..40).map(|i| section(i, false)).collect();
    let event = api.create_event(Value::Array(sections), json!({})).await;
    let url = format!("{}/v1/events/{event}/seats", api.base);
    let raw = reqwest::Client::builder().build().expect("client");
    let r = raw
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("map");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let compressed = r.bytes().await.expect("body").len();
    assert!(
        compressed <= 64 * 1024,
        "compressed map is {compressed} bytes"
    );
    let (_, map) = api.get(&format!("/v1/events/{event}/seats"), None).await;
    assert_eq!(map["counts"]["available"], 50_000);
    assert_eq!(map["sections"].as_array().expect("sections").len(), 40);
    assert_eq!(
        map["sections"][0]["status"].as_str().expect("status").len(),
        1_250
    );
    let r = raw
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("map");
    assert_eq!(r.status(), 304);

    let (status, list) = api.get("/v1/events?per_page=10", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["events"][0]["capacity"], 50_000);
    assert_eq!(
        list["events"][0]["price_range"],
        json!({"min_cents": 5000, "max_cents": 5039})
    );

    // The same stadium with 200 seat ranges and two price categories.
    let admin = api.token("organiser", "admin").await;
    let (status, venue) = api
        .post(
            "/v1/admin/venues",
            Some(&admin),
            &json!({"name": "Ranged Arena", "sections": (0..40).map(|i| section(i, true)).collect::<Vec<_>>(),
                    "price_categories": [{"code": "FRONT", "name": "Front", "price_cents": 9000},
                                         {"code": "VIEW", "name": "Restricted view", "price_cents": 2000}]}),
        )
        .await;
    assert_eq!(status, 201, "{venue}");
    let (status, ranged) = api
        .post(
            "/v1/admin/events",
            Some(&admin),
            &json!({"venue_id": venue["id"], "title": "Ranged Night",
                    "starts_at": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{ranged}");
    let ranged = ranged["id"].as_str().expect("event id");
    let (plain_raw, plain_gz) = map_sizes(&api.base, &event).await;
    let (ranged_raw, ranged_gz) = map_sizes(&api.base, ranged).await;
    eprintln!(
        "50,000-seat map: {plain_raw} bytes ({plain_gz} gzipped); with 200 seat ranges and 2 \
         price categories: {ranged_raw} bytes ({ranged_gz} gzipped)"
    );
    assert!(ranged_gz <= 64 * 1024, "{ranged_gz} bytes gzipped");
    // The ranges are the compact form: no per-seat attribute data.
    assert!(
        ranged_raw < plain_raw + 40 * 1024,
        "{plain_raw} → {ranged_raw}"
    );
}

/// Without a broker, browsing keeps working and hold requests get 503 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_503_for_writes_and_browsing_still_works() {
    let mut env = TestEnv::new(1).await;
    let dead = format!("127.0.0.1:{}", seatq_common::testkit::free_port());
    env.settings.kafka.brokers = dead;
    env.settings.kafka.produce_timeout_ms = 1500;
    let gw = gateway(&env.settings).await;
    let api = &gw.api;
    let event = api.create_event(sections(), json!({})).await;
    let (status, _) = api.get(&format!("/v1/events/{event}/seats"), None).await;
    assert_eq!(status, 200);
    let user = api.token("carol", "user").await;
    let r = api
        .http
        .post(format!("{}/v1/events/{event}/holds", api.base))
        .bearer_auth(&user)
        .json(&json!({"seat_ids": ["A-1-1"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "broker_unavailable");
    let (status, ready) = api.get("/readyz", None).await;
    assert_eq!(status, 200);
    assert_eq!(ready["broker"], false);
    assert_eq!(ready["database"], true);
}

#[test]
fn committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let current = seatq_gateway::openapi::json();
    if std::env::var_os("SEATQ_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &current).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is stale: run `SEATQ_UPDATE_OPENAPI=1 cargo nextest run -p seatq-gateway -E test(/committed_openapi/)` and commit it"
    );
}
