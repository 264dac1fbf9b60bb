//! Code shared by every seatq service: configuration, identifiers, the venue layout and
//! seat numbering, command and event envelopes, topic names, and the PostgreSQL, Redis
//! and Kafka clients with the settings seatq relies on.
//!
//! # Layout
//!
//! Running a service:
//! - `config`: the settings of every service, in one struct so names agree across them:
//!   built-in defaults (`common/config/default.toml`), the file named by `SEATQ_CONFIG`,
//!   then `SEATQ_<SECTION>__<KEY>` variables.
//! - `secrets`: outside development mode, refuse to start with secrets anyone can know.
//! - `telemetry`: tracing, pretty or JSON; spans carry `request_id`, `event_id`,
//!   `partition` and `offset`, so one request can be followed across services.
//! - `metrics`: the process-wide Prometheus recorder, the `/metrics` route, HTTP latency
//!   middleware, and the names and labels of every metric seatq exports.
//! - `shutdown`: one token cancelled on SIGINT/SIGTERM; every task finishes what it holds.
//! - `http`: what the gateway and the notifier share, so they answer alike: problem+json
//!   errors with stable codes, extractors, JWT authentication, the server loop.
//!
//! The domain:
//! - `ids`: identifier newtypes, so a hold id cannot be passed where an event id belongs.
//! - `layout`: venue sections and the dense seat numbering (`seat_no`) every service
//!   shares; seat ids translate to numbers without touching the seats table.
//! - `seating`: seat attributes, price categories and the rule against stranding a
//!   single seat, shared by the consumer (which enforces it) and the gateway.
//! - `catalog`: events and layouts as every service reads them, with a small cache.
//!
//! The pipeline's messages:
//! - `command`: commands, the only way seat state changes; the envelope is decoded before
//!   its body, so a garbled command is still answered under its request id.
//! - `message`: what the consumer publishes after a batch commits: seat events for
//!   browsers and users, hold timers for the scheduler.
//! - `record`: several messages packed into one Kafka record, because a broker's cost is
//!   per record.
//! - `topics`: topic names from one prefix, so tests (and several stacks on one broker)
//!   isolate themselves.
//!
//! Clients:
//! - `db`: the PostgreSQL pool and the embedded migrations.
//! - `kafka`: Kafka clients with the settings seatq relies on, the same for the local
//!   nisshi broker and for Apache Kafka or Redpanda.
//! - `command_producer`: producing commands: a flusher per partition packs the requests
//!   waiting into the next record.
//! - `redis_client`: one multiplexed, auto-reconnecting Redis connection.
//! - `waitlist_mirror`: the Redis copy of the seats' waitlists, for fast positions
//!   (PostgreSQL decides).
//! - `waiting_room`: the Redis copy of each waiting line, a sorted set for `ZRANK`
//!   positions, rebuilt from PostgreSQL when lost.
//! - `scaling`: consumer lag per partition and how many consumers it calls for (KEDA's
//!   rule), for `seatq-ctl lag` and the control room.
//!
//! Payments, tickets, the waiting room's friction:
//! - `payment_provider`: seatq's client for its payment provider, and the wire types both
//!   sides share.
//! - `payment_outcome`: recording a payment's outcome, shared by the webhook and the
//!   reconciler so both make the same transition and send the same command.
//! - `signing`: Stripe-style webhook signatures over timestamp and body.
//! - `ticket_code`: the signed code a ticket's QR code carries, checkable without the
//!   database.
//! - `pow`: the proof of work for joining a waiting room.
//!
//! Tests (feature `testkit`):
//! - `testkit`: a database and topic prefix of its own for every test, a private
//!   deployment for fault injection, an SSE client, and the invariants every test checks
//!   in SQL.

pub mod catalog;
pub mod command;
pub mod command_producer;
pub mod config;
pub mod db;
pub mod http;
pub mod ids;
pub mod kafka;
pub mod layout;
pub mod message;
pub mod metrics;
pub mod payment_outcome;
pub mod payment_provider;
pub mod pow;
pub mod record;
pub mod redis_client;
pub mod scaling;
pub mod seating;
pub mod secrets;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
pub mod ticket_code;
pub mod topics;
pub mod waiting_room;
pub mod waitlist_mirror;

#[cfg(feature = "testkit")]
pub mod testkit;
