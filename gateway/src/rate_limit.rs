//! Request rate limits per user and per client IP. (The early refusal of a hold request
//! from a user who already has the event's seat limit is a hold rule: `holds`.)
//!
//! A handler of a limited route takes the caller's [`ClientIp`] (an extractor that never
//! fails) and calls [`check`] before doing any work:
//!
//! ```ignore
//! pub async fn join(
//!     State(state): State<AppState>,
//!     user: AuthUser,
//!     client: ClientIp,
//!     Path(event_id): Path<EventId>,
//! ) -> AppResult<Response> {
//!     rate_limit::check(&state, Limit::Queue, &user.user_id, &client).await?;
//!     …
//! }
//! ```
//!
//! (`check_ip` for a route without a user.) Each [`Limit`] is a class with its own
//! settings (`[rate_limits.holds]`, `.waitlist`, `.queue`, `.queue_status`): a sustained
//! rate in requests per second and a burst, per user and per client IP; a rate of 0 turns
//! that limiter off. Routes of one class share its limiters: joining the waiting room
//! and asking for its challenge spend the same `queue` allowance.
//!
//! Over a limit the answer is `429` problem+json with code `rate_limited`, a
//! `Retry-After` header in whole seconds (at least 1, rounded up) and the same in the body
//! (`retry_after_secs`, and `retry_after_ms` exactly), with `limit` (the class) and `scope`
//! (`user` or `ip`) saying which limiter refused. A refused request costs nothing: waiting
//! `Retry-After` is always enough for the next one.
//!
//! **Algorithm**: GCRA (the generic cell rate algorithm, a token bucket stored as one
//! timestamp per limiter) in one Lua script (`rate_limit.lua`), so the user's and the
//! IP's limiters are checked and updated atomically and all or nothing: a request refused
//! by one does not count against the other. The clock is Redis's, so every gateway shares
//! the limiters exactly whatever their own clocks say. Keys are
//! `{key_prefix}:{class}:u:{user_id}` and `{key_prefix}:{class}:ip:{address}` and expire
//! once the limiter is full again, so idle users leave nothing behind. (Both keys go into
//! one script: on Redis Cluster they would need a hash tag; seatq runs one Redis.)
//!
//! **Client IP**: the socket peer (`ConnectInfo<SocketAddr>`, put on every request by
//! `seatq_common::http::serve`), or with `rate_limits.trust_forwarded_for` the first
//! address of `X-Forwarded-For` (the peer when the header is missing or unreadable). Turn
//! that on only behind a proxy that sets the header itself: a client could otherwise name
//! any address and have a fresh limiter per request. IPv6 clients are limited per /64,
//! the block one subscriber gets, since an address within it costs nothing to change;
//! IPv4-mapped IPv6 addresses count as the IPv4 address.
//!
//! **Redis unreachable → fail open.** The limiter protects the sale; it must never stop
//! it. If Redis errors or does not answer within `redis_timeout_ms`, the request is let
//! through, a warning is logged (at most one every 10 s, with how many requests went
//! unchecked), and Redis is not asked again for `redis_retry_ms` so a dead Redis adds no
//! latency to every request. The limiter has a Redis connection of its own without
//! reconnect backoff (the shared one waits out its backoff, which can take minutes), so
//! it limits again within `redis_retry_ms` of Redis coming back. Nothing else is
//! unbounded meanwhile: the consumer still enforces every seat rule, and the waiting room
//! still meters admission.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use seatq_common::config::{RateLimitClass, RateLimitSettings};
use seatq_common::ids::UserId;

use crate::state::AppState;
use seatq_common::http::error::{AppError, AppResult};

/// A class of rate-limited requests, each with its own settings and limiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /v1/events/{id}/holds`
    Holds,
    /// `POST` / `DELETE /v1/events/{id}/seats/{seat_id}/waitlist`
    Waitlist,
    /// `POST /v1/events/{id}/queue`, `POST /v1/events/{id}/queue/challenge`
    Queue,
    /// `GET /v1/events/{id}/queue/{ticket}`
    QueueStatus,
}

impl Limit {
    /// The class's name in settings, keys and problem documents.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Holds => "holds",
            Limit::Waitlist => "waitlist",
            Limit::Queue => "queue",
            Limit::QueueStatus => "queue_status",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::Holds => "hold requests",
            Limit::Waitlist => "waitlist requests",
            Limit::Queue => "waiting-room requests",
            Limit::QueueStatus => "waiting-room status requests",
        }
    }

    fn class(self, settings: &RateLimitSettings) -> &RateLimitClass {
        match self {
            Limit::Holds => &settings.holds,
            Limit::Waitlist => &settings.waitlist,
            Limit::Queue => &settings.queue,
            Limit::QueueStatus => &settings.queue_status,
        }
    }
}

/// The client's address as the rate limits see it (see the module docs); `None` only
/// when the router runs without `seatq_common::http::serve` (no peer address), and then
/// only per-user limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(client_ip(
            peer,
            &parts.headers,
            state.settings.rate_limits.trust_forwarded_for,
        ))
    }
}

/// The first `X-Forwarded-For` address when trusted and readable, else the peer.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trust_forwarded_for: bool) -> ClientIp {
    let forwarded = if trust_forwarded_for {
        first_forwarded_for(headers)
    } else {
        None
    };
    ClientIp(forwarded.or(peer).map(|ip| ip.to_canonical()))
}

fn first_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get("x-forwarded-for")?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    first
        .parse::<IpAddr>()
        .ok()
        // Some proxies add the port: "203.0.113.7:51234", "[2001:db8::1]:51234".
        .or_else(|| first.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// What an IP's limiter is keyed by: the IPv4 address, or the IPv6 /64.
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// GCRA parameters in microseconds: the emission interval and the burst tolerance, or
/// `None` when the limiter is off (rate 0).
fn gcra(rate: f64, burst: u32) -> Option<(u64, u64)> {
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let interval = (1_000_000.0 / rate).round().max(1.0) as u64;
    let tolerance = interval.saturating_mul(u64::from(burst.max(1) - 1));
    Some((interval, tolerance))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    User,
    Ip,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Ip => "ip",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Ip => "address",
        }
    }
}

/// Whole seconds for `Retry-After`: rounded up, at least 1.
fn retry_after_secs(wait_us: u64) -> u64 {
    wait_us.div_ceil(1_000_000).max(1)
}

/// The 429 problem for a request `wait_us` too early.
fn rate_limited(limit: Limit, scope: Scope, wait_us: u64) -> AppError {
    let secs = retry_after_secs(wait_us);
    let mut error = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many {} from this {}; try again in {secs} s",
            limit.what(),
            scope.what()
        ),
    )
    .with("limit", limit.name())
    .with("scope", scope.name())
    .with("retry_after_secs", secs)
    .with("retry_after_ms", wait_us.div_ceil(1000).max(1));
    error.retry_after_secs = Some(secs);
    error
}

/// Check the user's and the client IP's limiters of `limit` and count the request
/// against both, or refuse it with `429 rate_limited`. Never fails for any other reason
/// (Redis down: allowed, see the module docs).
pub async fn check(
    state: &AppState,
    limit: Limit,
    user: &UserId,
    client: &ClientIp,
) -> AppResult<()> {
    check_keys(state, limit, Some(user), client).await
}

/// [`check`] for a route without a user: the client IP's limiter only.
pub async fn check_ip(state: &AppState, limit: Limit, client: &ClientIp) -> AppResult<()> {
    check_keys(state, limit, None, client).await
}

async fn check_keys(
    state: &AppState,
    limit: Limit,
    user: Option<&UserId>,
    client: &ClientIp,
) -> AppResult<()> {
    let settings = &state.settings.rate_limits;
    if !settings.enabled {
        return Ok(());
    }
    let class = limit.class(settings);
    let prefix = format!("{}:{}", settings.key_prefix, limit.name());
    let mut limiters: Vec<(Scope, String, (u64, u64))> = Vec::with_capacity(2);
    if let (Some(user), Some(params)) = (user, gcra(class.user_rate, class.user_burst)) {
        limiters.push((Scope::User, format!("{prefix}:u:{user}"), params));
    }
    if let (Some(ip), Some(params)) = (client.0, gcra(class.ip_rate, class.ip_burst)) {
        limiters.push((Scope::Ip, format!("{prefix}:ip:{}", ip_key(ip)), params));
    }
    if limiters.is_empty() {
        return Ok(());
    }
    match state.rate_limiter.run(state, &limiters).await {
        Verdict::Allowed => Ok(()),
        Verdict::Refused { wait_us, limiter } => {
            let scope = limiters.get(limiter).map_or(Scope::User, |l| l.0);
            seatq_common::metrics::rate_limited(limit.name(), scope.name());
            Err(rate_limited(limit, scope, wait_us))
        }
    }
}

enum Verdict {
    Allowed,
    /// `limiter`: index into the limiters checked.
    Refused {
        wait_us: u64,
        limiter: usize,
    },
}

/// The script, its Redis connection and the fail-open bookkeeping; one per gateway (in
/// `AppState`).
pub struct RateLimiter {
    script: redis::Script,
    /// The limiter's own connection, opened on first use (see the module docs).
    connection: tokio::sync::OnceCell<ConnectionManager>,
    started: Instant,
    /// Redis is not asked before this (ms since `started`) after it failed.
    retry_at_ms: AtomicU64,
    /// When the last "unavailable" warning was logged (ms since `started`, +1; 0: never).
    warned_at_ms: AtomicU64,
    /// Requests let through unchecked since that warning.
    unchecked: AtomicU64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            script: redis::Script::new(include_str!("rate_limit.lua")),
            connection: tokio::sync::OnceCell::new(),
            started: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            unchecked: AtomicU64::new(0),
        }
    }
}

/// At most one "limiter unavailable" warning this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl RateLimiter {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The limiter's connection: no reconnect backoff of its own (a failed reconnect is
    /// retried by the next request Redis is asked for, at most once per `redis_retry_ms`),
    /// and every connect and command bounded by `redis_timeout_ms`.
    async fn connection(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<ConnectionManager, redis::RedisError> {
        self.connection
            .get_or_try_init(|| async {
                let client = redis::Client::open(url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(client, config).await
            })
            .await
            .cloned()
    }

    async fn run(&self, state: &AppState, limiters: &[(Scope, String, (u64, u64))]) -> Verdict {
        let settings = &state.settings.rate_limits;
        if self.now_ms() < self.retry_at_ms.load(Ordering::Relaxed) {
            self.let_through(None);
            return Verdict::Allowed;
        }
        let mut invocation = self.script.prepare_invoke();
        for (_, key, (interval, tolerance)) in limiters {
            invocation.key(key);
            invocation.arg(*interval).arg(*tolerance);
        }
        let timeout = Duration::from_millis(settings.redis_timeout_ms.max(1));
        let answer = tokio::time::timeout(timeout, async {
            let mut redis = self.connection(&state.settings.redis.url, timeout).await?;
            invocation.invoke_async::<(i64, i64, i64)>(&mut redis).await
        })
        .await;
        let error = match answer {
            Ok(Ok((1, _, _))) => return Verdict::Allowed,
            Ok(Ok((_, wait_us, limiter))) => {
                return Verdict::Refused {
                    wait_us: wait_us.max(1) as u64,
                    limiter: (limiter.max(1) - 1) as usize,
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", timeout.as_millis()),
        };
        self.retry_at_ms
            .store(self.now_ms() + settings.redis_retry_ms, Ordering::Relaxed);
        self.let_through(Some(&error));
        Verdict::Allowed
    }

    /// Count a request let through unchecked, and warn now and then.
    fn let_through(&self, error: Option<&str>) {
        self.unchecked.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms() + 1;
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .warned_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let unchecked = self.unchecked.swap(0, Ordering::Relaxed);
            tracing::warn!(
                error = error.unwrap_or("an earlier failure"),
                unchecked,
                "rate limiter unavailable (Redis): letting requests through unchecked"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        h
    }

    #[test]
    fn forwarded_for_only_when_trusted() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let h = headers("203.0.113.7, 10.0.0.1");
        assert_eq!(client_ip(Some(peer), &h, false), ClientIp(Some(peer)));
        assert_eq!(
            client_ip(Some(peer), &h, true),
            ClientIp(Some("203.0.113.7".parse().unwrap()))
        );
        // With a port, v6 in brackets; garbage falls back to the peer.
        assert_eq!(
            client_ip(Some(peer), &headers("203.0.113.7:4711"), true),
            ClientIp(Some("203.0.113.7".parse().unwrap()))
        );
        assert_eq!(
            client_ip(Some(peer), &headers("[2001:db8::1]:4711"), true),
            ClientIp(Some("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            client_ip(Some(peer), &headers("unknown"), true),
            ClientIp(Some(peer))
        );
        assert_eq!(
            client_ip(Some(peer), &HeaderMap::new(), true),
            ClientIp(Some(peer))
        );
    }

    #[test]
    fn ipv4_mapped_is_ipv4_and_ipv6_is_keyed_per_64() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let ip = client_ip(Some(mapped), &HeaderMap::new(), false).0.unwrap();
        assert_eq!(ip_key(ip), "192.0.2.1");
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ip_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, ip_key("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn gcra_parameters() {
        assert_eq!(gcra(0.0, 10), None);
        assert_eq!(gcra(f64::NAN, 10), None);
        assert_eq!(gcra(1.0, 5), Some((1_000_000, 4_000_000)));
        assert_eq!(gcra(4.0, 1), Some((250_000, 0)));
        assert_eq!(gcra(2.0, 0), Some((500_000, 0)));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000_000), 1);
        assert_eq!(retry_after_secs(1_000_001), 2);
        let e = rate_limited(Limit::Holds, Scope::Ip, 2_500_000);
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "rate_limited");
        assert_eq!(e.retry_after_secs, Some(3));
        let extra = e.extra.unwrap();
        assert_eq!(extra["retry_after_secs"], 3);
        assert_eq!(extra["retry_after_ms"], 2500);
        assert_eq!(extra["scope"], "ip");
        assert_eq!(extra["limit"], "holds");
    }
}
