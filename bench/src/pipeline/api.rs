//! The gateway's HTTP API as the bench needs it: tokens, and a fresh stadium event.
//!
//! Tokens are minted here with the gateway's own secret (`auth.jwt_secret`, same claims
//! as `gateway/src/auth.rs`) instead of 50,000 calls to `/v1/dev/token`: signing is
//! microseconds, and the run then works even where dev tokens are off.
//! Every scenario gets its own event, created through the admin API exactly like an
//! organiser would, so runs never see each other's seats.

use chrono::{Duration, Utc};
use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::BenchError;
use crate::workload::{holder, Stadium};

const TOKEN_TTL_SECS: i64 = 6 * 3600;

/// The rules of an event the bench creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRules {
    pub hold_ttl_secs: i32,
    pub max_seats_per_user: i32,
}

impl EventRules {
    /// The flash-sale runs: holds outlive any run (the gateway allows at most 86,400 s),
    /// and the schema's maximum per user, because the naive designs have no per-user limit
    /// and ~10 attempts per user must not be cut short by one here.
    pub const FLASH_SALE: EventRules = EventRules {
        hold_ttl_secs: 86_400,
        max_seats_per_user: 100,
    };
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    iat: i64,
    exp: i64,
}

/// A bearer token for every simulated user (index = user number) and one admin.
pub struct Tokens {
    pub users: Vec<String>,
    pub admin: String,
}

impl Tokens {
    pub fn mint(secret: &str, users: u32) -> Result<Self, BenchError> {
        let key = EncodingKey::from_secret(secret.as_bytes());
        let iat = Utc::now().timestamp();
        let sign = |sub: &str, role: &str| {
            let claims = Claims {
                sub,
                role,
                iat,
                exp: iat + TOKEN_TTL_SECS,
            };
            jsonwebtoken::encode(&Header::default(), &claims, &key)
        };
        Ok(Self {
            users: (0..users.max(1))
                .map(|u| sign(&holder(u), "user"))
                .collect::<Result<_, _>>()?,
            admin: sign("seatq-bench-admin", "admin")?,
        })
    }
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// Read a response, turning anything but `expected` into [`BenchError::Gateway`].
pub async fn expect(
    response: reqwest::Response,
    expected: reqwest::StatusCode,
    what: &'static str,
) -> Result<reqwest::Response, BenchError> {
    if response.status() == expected {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(BenchError::Gateway {
        what,
        status,
        body: body.chars().take(500).collect(),
    })
}

async fn post_admin(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: serde_json::Value,
    what: &'static str,
) -> Result<Uuid, BenchError> {
    let response = http.post(url).bearer_auth(token).json(&body).send().await?;
    let created: Created = expect(response, reqwest::StatusCode::CREATED, what)
        .await?
        .json()
        .await?;
    Ok(created.id)
}

/// Create a venue shaped like `stadium` (reserved sections only, codes and numbering as
/// the demo stadium's) and an event with `rules`: on sale now and without a waiting room
/// unless `overrides` (an object of the event's fields, e.g. `on_sale_at` and the waiting
/// room's) says otherwise; returns the event id.
pub async fn create_event(
    http: &reqwest::Client,
    gateway: &str,
    tokens: &Tokens,
    stadium: &Stadium,
    title: &str,
    rules: EventRules,
    overrides: serde_json::Value,
) -> Result<Uuid, BenchError> {
    let sections: Vec<serde_json::Value> = stadium
        .sections
        .iter()
        .map(|s| {
            serde_json::json!({
                "kind": "reserved",
                "code": s.code(),
                "name": format!("Section {}", s.code()),
                "rows": s.rows,
                "seats_per_row": s.seats_per_row,
                "price_cents": 10_000,
            })
        })
        .collect();
    let venue = post_admin(
        http,
        format!("{gateway}/v1/admin/venues"),
        &tokens.admin,
        serde_json::json!({"name": format!("bench: {title}"), "city": "bench", "sections": sections}),
        "create venue",
    )
    .await?;
    let now = Utc::now();
    let mut event = serde_json::json!({
            "venue_id": venue,
            "title": title,
            "performer": "seatq bench",
            "starts_at": now + Duration::days(30),
            "on_sale_at": now - Duration::minutes(1),
            "hold_ttl_secs": rules.hold_ttl_secs,
            "max_seats_per_user": rules.max_seats_per_user,
            // The pipeline runs measure hold decisions, not the waiting room (on by
            // default for events this large); the waiting room has its own scenario.
            "waiting_room_enabled": false,
            // The rival designs have no rule against stranding single seats, so like for
            // like it is off; SEATQ_BENCH_SEATING_RULE=on measures what it costs.
            "no_single_seats": std::env::var("SEATQ_BENCH_SEATING_RULE").is_ok_and(|v| v == "on"),
    });
    if let (Some(event), Some(overrides)) = (event.as_object_mut(), overrides.as_object()) {
        event.extend(overrides.clone());
    }
    post_admin(
        http,
        format!("{gateway}/v1/admin/events"),
        &tokens.admin,
        event,
        "create event",
    )
    .await
}
