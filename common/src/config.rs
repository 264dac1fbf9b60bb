//! Configuration for every seatq service.
//!
//! Three layers, later ones win: the built-in defaults (`common/config/default.toml`,
//! compiled in so a binary runs with no file at all), an optional file named by
//! `SEATQ_CONFIG`, and `SEATQ_<SECTION>__<KEY>` environment variables. One struct for all
//! services keeps names identical across them (the gateway and the consumer must agree on
//! topics and the database).

use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub gateway: GatewaySettings,
    pub auth: AuthSettings,
    pub consumer: ConsumerSettings,
    pub scheduler: SchedulerSettings,
    pub waitlist: WaitlistSettings,
    pub payments: PaymentSettings,
    pub tickets: TicketSettings,
    pub notifier: NotifierSettings,
    pub waiting_room: WaitingRoomSettings,
    pub rate_limits: RateLimitSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub deployment: DeploymentSettings,
}

/// Where seatq runs (see `secrets`).
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentSettings {
    /// `production` (the default): the services refuse to start with secrets anyone can
    /// know. `development`: the local stack, the compose demo and the tests.
    pub mode: DeploymentMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentMode {
    Production,
    Development,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic_prefix: String,
    pub partitions: i32,
    pub produce_timeout_ms: u64,
    /// How long the broker may hold a fetch when there is nothing new (long poll).
    pub fetch_wait_max_ms: u64,
    /// Upper bound of one fetch response.
    pub fetch_max_bytes: u32,
    /// A consumer-group member (consumer, scheduler) silent this long is evicted and its
    /// partitions go to the others.
    pub session_timeout_ms: u64,
    pub linger_ms: u64,
    /// Commands packed into one record at most (see `command_producer`).
    pub record_max_commands: usize,
    /// Bytes of one record at most; kept below `fetch_max_bytes / 2` whatever is set.
    pub record_max_bytes: usize,
    /// Records of one partition on their way to the broker at once.
    pub records_in_flight: usize,
}

impl KafkaSettings {
    /// What one command record may hold: well under a fetch, so one record never fills a
    /// fetch on its own.
    pub fn batch_limits(&self) -> crate::command_producer::BatchLimits {
        crate::command_producer::BatchLimits {
            max_commands: self.record_max_commands.max(1),
            max_bytes: self
                .record_max_bytes
                .min(self.fetch_max_bytes as usize / 2)
                .max(1024),
            in_flight: self.records_in_flight.max(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub listen: String,
    pub public_url: String,
    pub seat_map_cache_ms: u64,
    pub max_wait_ms: u64,
    pub max_seats_per_request: usize,
    pub request_timeout_ms: u64,
    pub max_body_bytes: usize,
    /// The shortest `hold_ttl_secs` an organiser may set (tests lower it to see expiry
    /// happen in seconds).
    pub min_hold_ttl_secs: i32,
    /// A keep-alive connection idle (between requests) this long is closed
    /// (`http::serve`); longer than a load balancer's idle timeout (60 s on most).
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: String,
    pub dev_tokens: bool,
    pub token_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    pub group_id: String,
    pub batch_max: usize,
    pub batch_wait_ms: u64,
    pub revoke_timeout_ms: u64,
    /// Fire drills: a command from this user id panics inside the rules, so operators and
    /// the tests can rehearse poison isolation on a real stack. Empty: off.
    #[serde(default)]
    pub drill_panic_user: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerSettings {
    /// Where scheduler instances record the hold-timers offsets they have fired up to.
    pub group_id: String,
    /// `reservation_expiring` goes out this long before a hold expires.
    pub reminder_secs: i64,
    /// How often the sweeper looks for holds the timers missed.
    pub sweep_interval_ms: u64,
    /// A hold this long past its expiry and still active is expired by the sweeper.
    pub sweep_grace_secs: i64,
    /// How often the refund worker looks for refunds to issue.
    pub refund_interval_ms: u64,
    /// Tries of a refund before it is `failed` (left for an operator, and alerted).
    #[serde(default = "default_refund_max_attempts")]
    pub refund_max_attempts: i32,
    /// Wait after a refund's first failed try; doubled after each further one.
    #[serde(default = "default_refund_backoff_ms")]
    pub refund_backoff_ms: u64,
    /// The longest wait between two tries of a refund.
    #[serde(default = "default_refund_backoff_max_ms")]
    pub refund_backoff_max_ms: u64,
    /// How often the hold-timer positions are committed to the scheduler's group.
    pub heartbeat_ms: u64,
    /// The hold-timers reader's `fetch.wait.max.ms`. A timer is read long before it is
    /// due (holds last at least `gateway.min_hold_ttl_secs`), so it can wait longer than
    /// the latency-bound readers: nisshi polls its storage while a fetch waits, and
    /// each waiting fetch costs CPU in proportion to its partitions.
    #[serde(default = "default_timers_fetch_wait_ms")]
    pub timers_fetch_wait_ms: u64,
    /// Tests only: run the timers' clock this far ahead of the machine's (negative:
    /// behind), to show what a scheduler whose clock is off does.
    #[serde(default)]
    pub clock_offset_ms: i64,
}

fn default_timers_fetch_wait_ms() -> u64 {
    2_000
}

fn default_refund_max_attempts() -> i32 {
    12
}

fn default_refund_backoff_ms() -> u64 {
    5_000
}

fn default_refund_backoff_max_ms() -> u64 {
    1_800_000
}

#[derive(Debug, Clone, Deserialize)]
pub struct WaitlistSettings {
    /// How long a user offered a seat from a waitlist has to pay for it.
    pub offer_ttl_secs: i64,
    /// Seats one user may wait for at once, per event.
    pub max_per_user: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentSettings {
    /// Base URL of the payment provider's API (the sandbox provider on the local stack).
    pub provider_url: String,
    /// Bearer key seatq uses when calling the provider.
    pub provider_api_key: String,
    /// Shared secret of webhook signatures (`Payment-Signature`).
    pub webhook_secret: String,
    /// Webhooks signed longer ago than this are refused (replay protection).
    pub webhook_tolerance_secs: i64,
    /// A hold whose payment is in progress at expiry is extended once by this much.
    pub grace_secs: i64,
    /// Serve the sandbox provider from the gateway (local stack and tests only).
    pub sandbox_enabled: bool,
    /// Where the sandbox provider sends its webhooks.
    pub sandbox_webhook_url: String,
    /// The reconciler asks the provider about a payment still pending/processing this
    /// long after it was last heard of (its webhook may have been lost).
    #[serde(default = "default_reconcile_after_secs")]
    pub reconcile_after_secs: u64,
    /// How often the reconciler looks for such payments.
    #[serde(default = "default_reconcile_interval_secs")]
    pub reconcile_interval_secs: u64,
}

fn default_reconcile_after_secs() -> u64 {
    60
}

fn default_reconcile_interval_secs() -> u64 {
    15
}

#[derive(Debug, Clone, Deserialize)]
pub struct TicketSettings {
    /// Key that signs ticket codes: a code cannot be guessed or forged without it.
    pub code_secret: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifierSettings {
    /// Where a standalone notifier listens.
    pub listen: String,
    /// The gateway also serves the notifier's routes (one process for the local stack).
    pub embedded: bool,
    /// Seat-map deltas of one event are merged over this interval into one message.
    pub coalesce_ms: u64,
    /// Seat-event messages kept per partition for `Last-Event-ID` resumes of user streams.
    pub retain_per_partition: usize,
    /// Seat-map deltas kept per event for resumes of event streams.
    pub retain_deltas_per_event: usize,
    /// Records read back from each partition at start, to serve resumes at once.
    pub warm_records: i64,
    /// Messages queued for one client; a client this far behind is disconnected.
    pub client_buffer: usize,
    pub heartbeat_secs: u64,
    /// The `retry:` hint sent to EventSource clients.
    pub retry_ms: u64,
    /// Streams one notifier serves at most (503 beyond).
    pub max_clients: usize,
    /// Kernel send buffer per stream connection (bytes): bounds memory per stream and how
    /// much a stalled client can absorb before it counts as behind.
    pub socket_send_buffer: usize,
    /// A standalone notifier's keep-alive idle timeout (see `gateway.idle_timeout_secs`).
    pub idle_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WaitingRoomSettings {
    /// Events of at least this many places get a waiting room unless the organiser says.
    pub default_min_capacity: i64,
    /// Proof-of-work difficulty (leading zero bits) for events that do not set their own.
    pub default_pow_difficulty: i32,
    /// Signs admission tokens and challenges.
    pub secret: String,
    /// An admission token is good this long after admission.
    pub admission_ttl_secs: i64,
    /// A proof-of-work challenge must be solved within this.
    pub challenge_ttl_secs: i64,
    /// How often the scheduler admits.
    pub tick_ms: u64,
    /// Admission rate (users per second) of an event's first tick, and its bounds.
    pub initial_rate: f64,
    pub min_rate: f64,
    pub max_rate: f64,
    /// The controller adds this much rate per healthy tick...
    pub rate_step: f64,
    /// ...and multiplies it by this when the pipeline is behind.
    pub backoff: f64,
    /// Behind means: more commands than this waiting in the event's partition...
    pub target_lag: i64,
    /// ...or hold decisions slower than this at p99 over the last `latency_window_secs`.
    pub target_decision_p99_ms: f64,
    pub latency_window_secs: i64,
    /// Users admitted but not yet holding anything who may be in the sale at once (0: no cap).
    pub max_unconverted: i64,
    /// Waiting users are told their position this often.
    pub position_update_secs: u64,
}

/// Request rate limits per user and per client IP (`gateway::rate_limit`), and the
/// gateway's per-user seat limit pre-check.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Off: no request is rate limited.
    pub enabled: bool,
    /// Take the client IP from the first `X-Forwarded-For` address instead of the socket
    /// peer. Only behind a proxy that sets the header itself: otherwise clients choose it.
    pub trust_forwarded_for: bool,
    /// Prefix of the limiters' Redis keys.
    pub key_prefix: String,
    /// Redis has this long to answer; after that (or any Redis error) the request is let
    /// through, and Redis is not asked again for `redis_retry_ms`.
    pub redis_timeout_ms: u64,
    pub redis_retry_ms: u64,
    /// Refuse a hold request at the gateway (409 `seat_limit_reached`) when the user
    /// already holds or bought the event's `max_seats_per_user`.
    pub seat_limit_precheck: bool,
    /// `POST /v1/events/{id}/holds`
    pub holds: RateLimitClass,
    /// `POST` and `DELETE …/seats/{seat_id}/waitlist`
    pub waitlist: RateLimitClass,
    /// `POST …/queue` and `POST …/queue/challenge`
    pub queue: RateLimitClass,
    /// `GET …/queue/{ticket}`
    pub queue_status: RateLimitClass,
}

/// One class of limited requests: a sustained rate (requests per second) and a burst
/// (requests at once), per user and per client IP. A rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RateLimitClass {
    pub user_rate: f64,
    pub user_burst: u32,
    pub ip_rate: f64,
    pub ip_burst: u32,
}

impl RateLimitSettings {
    /// What integration tests run with: every limit on but far above what a test sends
    /// (the limits' own tests set theirs), keys of this test only (`scope`), and no seat
    /// limit pre-check, so the consumer's authoritative limit sees every request.
    pub fn for_tests(&mut self, scope: &str) {
        self.key_prefix = format!("{}:{scope}", self.key_prefix);
        self.seat_limit_precheck = false;
        for class in [
            &mut self.holds,
            &mut self.waitlist,
            &mut self.queue,
            &mut self.queue_status,
        ] {
            *class = RateLimitClass {
                user_rate: 100_000.0,
                user_burst: 100_000,
                ip_rate: 100_000.0,
                ip_burst: 100_000,
            };
        }
    }
}

/// Where the services without an HTTP server of their own serve `/metrics` (the gateway
/// and the notifier serve it on their listeners). Empty: off.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetricsSettings {
    pub consumer_listen: String,
    pub scheduler_listen: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log pipelines.
    pub format: String,
    /// A `tracing_subscriber::EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Settings {
    /// Defaults, then the file in `SEATQ_CONFIG` (if set), then `SEATQ_*` variables.
    pub fn load() -> Result<Self, config::ConfigError> {
        let file = std::env::var("SEATQ_CONFIG").ok();
        Self::load_with(file.as_deref(), &[])
    }

    /// The built-in defaults alone (no file, no environment).
    pub fn defaults() -> Result<Self, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    /// Like [`Settings::load`] with an explicit file and extra overrides (`"kafka.brokers"`,
    /// value) applied last; used by tests and tools that embed services.
    pub fn load_with(
        file: Option<&str>,
        overrides: &[(&str, String)],
    ) -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::with_name(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("SEATQ")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true),
        );
        for (key, value) in overrides {
            builder = builder.set_override(*key, value.as_str())?;
        }
        builder.build()?.try_deserialize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_overrides_win() {
        let s = Settings::load_with(None, &[("kafka.partitions", "3".into())]).unwrap();
        assert_eq!(s.kafka.partitions, 3);
        assert_eq!(s.consumer.group_id, "seatq-consumer");
        assert!(
            !s.auth.dev_tokens,
            "dev tokens must be off unless asked for"
        );
    }
}
