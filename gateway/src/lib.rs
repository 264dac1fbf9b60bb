//! seatq gateway: the HTTP API.
//!
//! It validates and authenticates requests, serves browsing from PostgreSQL through short
//! caches, and turns hold requests into commands on the event's Kafka partition. It never
//! writes seat state: the consumer does, one writer per partition.

pub mod admission;
pub mod app;
pub mod auth;
pub mod bookings;
pub mod commands;
pub mod decisions;
pub mod demo;
pub mod error;
pub mod event_stats;
pub mod extract;
pub mod holdbacks;
pub mod holds;
pub mod inventory;
pub mod openapi;
pub mod payments;
pub mod queue;
pub mod rate_limit;
pub mod request_ids;
pub mod request_registry;
pub mod routes;
pub mod sandbox;
pub mod search;
pub mod seat_map;
pub mod state;
pub mod views;
pub mod waitlist;
pub mod web;
