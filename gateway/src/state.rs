//! Everything a handler needs, built once at start and cloned cheaply into each request.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use redis::aio::ConnectionManager;
use seatq_common::catalog::Catalog;
use seatq_common::command_producer::CommandProducer;
use seatq_common::config::Settings;
use seatq_common::shutdown::Shutdown;
use seatq_common::topics::Topics;
use sqlx::PgPool;

use crate::auth::JwtKeys;
use crate::decisions::DecisionWaiters;
use crate::seat_map::SeatMapCache;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub producer: FutureProducer,
    /// Hold commands go through here: packed into records per partition.
    pub commands: Arc<CommandProducer>,
    pub topics: Arc<Topics>,
    pub catalog: Arc<Catalog>,
    pub seat_maps: Arc<SeatMapCache>,
    /// Event search result pages (`GET /v1/events`), cached ≤ 1 s.
    pub event_search: Arc<crate::search::SearchCache>,
    pub jwt: Arc<JwtKeys>,
    /// Mints hold request ids that prove whom they were issued to.
    pub request_ids: Arc<crate::request_ids::RequestIdKeys>,
    pub decisions: Arc<DecisionWaiters>,
    /// Rate limits per user and IP (Redis), failing open.
    pub rate_limiter: Arc<crate::rate_limit::RateLimiter>,
    /// Signs and checks waiting-room admission tokens.
    pub admission: Arc<crate::admission::AdmissionKeys>,
    /// The payment provider's API (checkout sessions).
    pub provider: Arc<seatq_common::payment_provider::PaymentProvider>,
    /// Partitions of the commands topic; a new event is pinned to one of them.
    pub command_partitions: i32,
    /// The events organisers are watching live, one picture each.
    pub control_rooms: Arc<crate::control_room::ControlRooms>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot listen: {0}")]
    Bind(String),
}

impl AppState {
    /// Connect to PostgreSQL (and migrate), Redis and the broker. The broker may be down:
    /// browsing still works and writes answer 503 until it is back.
    pub async fn connect(settings: Settings, shutdown: Shutdown) -> Result<Self, StartupError> {
        let pool = seatq_common::db::connect(&settings.database).await?;
        seatq_common::db::migrate(&pool).await?;
        let redis = seatq_common::redis_client::connect(&settings.redis).await?;
        let producer = seatq_common::kafka::producer(&settings.kafka)?;
        let topics = Topics::new(&settings.kafka.topic_prefix);
        let command_partitions = match seatq_common::kafka::partition_count(
            &producer,
            &topics.commands,
            Duration::from_secs(5),
        ) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, fallback = settings.kafka.partitions,
                    "cannot read the commands topic's partition count; using the configured one");
                settings.kafka.partitions
            }
        };
        let control_rooms = Arc::new(crate::control_room::ControlRooms::new(shutdown.clone()));
        let decisions = DecisionWaiters::start(pool.clone(), shutdown);
        let commands = CommandProducer::new(
            producer.clone(),
            topics.commands.clone(),
            settings.kafka.batch_limits(),
        );
        let settings_payments = settings.payments.clone();
        let admission = Arc::new(crate::admission::AdmissionKeys::new(
            &settings.waiting_room.secret,
        ));
        Ok(Self {
            catalog: Arc::new(Catalog::new(pool.clone(), Duration::from_secs(2))),
            seat_maps: Arc::new(SeatMapCache::new(Duration::from_millis(
                settings.gateway.seat_map_cache_ms,
            ))),
            event_search: Arc::default(),
            jwt: Arc::new(JwtKeys::new(&settings.auth.jwt_secret)),
            request_ids: Arc::new(crate::request_ids::RequestIdKeys::new(
                &settings.auth.jwt_secret,
            )),
            topics: Arc::new(topics),
            settings: Arc::new(settings),
            pool,
            redis,
            producer,
            commands,
            decisions,
            rate_limiter: Arc::default(),
            admission,
            provider: Arc::new(seatq_common::payment_provider::PaymentProvider::new(
                &settings_payments,
            )),
            command_partitions,
            control_rooms,
        })
    }

    /// What organisers may set when creating events on this deployment.
    pub fn event_limits(&self) -> crate::inventory::EventLimits {
        crate::inventory::EventLimits {
            partitions: self.command_partitions,
            min_hold_ttl_secs: self.settings.gateway.min_hold_ttl_secs,
            waiting_room_min_capacity: self.settings.waiting_room.default_min_capacity,
            default_pow_difficulty: self.settings.waiting_room.default_pow_difficulty,
        }
    }
}
