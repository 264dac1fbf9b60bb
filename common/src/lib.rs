//! Code shared by every seatq service: configuration, identifiers, the venue layout and
//! seat numbering, command and event envelopes, topic names, and the PostgreSQL, Redis
//! and Kafka clients with the settings seatq relies on.

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
