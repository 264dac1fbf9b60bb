//! seatq gateway: the HTTP API.
//!
//! It validates and authenticates requests, serves browsing from PostgreSQL through short
//! caches, and turns hold requests into commands on the event's Kafka partition. It never
//! writes seat state: the consumer does, one writer per partition.
//!
//! # Layout
//!
//! Serving HTTP:
//! - `app`: the router with its middleware, and serving it until shutdown.
//! - `routes`: one module per resource; thin handlers that extract, call a service module
//!   below and shape the response. Each module's `router()` declares its routes once, with
//!   their OpenAPI operations (`utoipa_axum::routes!`); `routes::api_router` merges them.
//! - `state`: everything a handler needs, built once at start and cloned into each request.
//! - `auth`: JWT authentication (`seatq_common::http::auth`, shared with the notifier) bound
//!   to the gateway's state. Errors (`application/problem+json`) and extractors are
//!   `seatq_common::http::{error, extract}`, used as they are, so the notifier answers alike.
//! - `views`: response bodies several routes share.
//! - `openapi`: the OpenAPI document, collected from the routers (the notifier's stream
//!   routes included), served at `/v1/openapi.json` and committed as `docs/openapi.json` (a
//!   test checks it is current).
//! - `web`: the browser app (`gateway/web/`), embedded in the binary and served at `/`.
//!
//! Seat changes, always as commands through the pipeline:
//! - `holds`: hold requests: validate, refuse early a user already at the event's seat
//!   limit, produce a `hold_seats` command, answer 202 only once the broker acknowledged
//!   it, and report what became of the request.
//! - `commands`: the other seat commands (cancel, waitlist, payment outcome, booking
//!   cancellation) and waiting for their decision; a 503 is only answered when true.
//! - `decisions`: waiting for a decision inline (`?wait_ms=`) on `NOTIFY seatq_decisions`.
//! - `request_ids`: request ids that carry a MAC, so an accepted request is never answered
//!   404 when Redis lost its entry.
//! - `request_registry`: what Redis remembers about accepted requests (owner, queue
//!   position) and `Idempotency-Key` claims, until the consumer decides.
//! - `waitlist`: seat waitlists: join and leave as commands, positions from the Redis mirror.
//! - `holdbacks`: organisers take seats off sale (`block_seats`) and release them by hand
//!   or at a set time.
//! - `sale_control`: organisers pause, resume or end a sale (`set_sale_state`), at one
//!   place in queue order.
//! - `seat_history`: every seat's story in queue order, and a refused buyer's receipt
//!   (how far ahead the request that got their seat was).
//!
//! What is for sale:
//! - `inventory`: venues and events; creating an event writes its seats and pins it to a
//!   partition of the commands topic for its whole life.
//! - `seat_map`: the compact, cached seat map, with the consumer position it reflects.
//! - `search`: event search parameters and a short cache of result pages.
//! - `event_stats`: what an operator watches during an on-sale.
//! - `control_room`: that picture pushed live to organisers (one computation per event
//!   however many watch), and unmet demand per seat and section.
//! - `demo`: the local stack's demo venues and events (`seatq-gateway seed-demo`).
//!
//! Letting people in:
//! - `waiting_room`: the virtual waiting room: join after a proof of work, see your place,
//!   get let in.
//! - `lottery`: the pre-sale lottery published for anyone to check: the commitment
//!   first, the seed and the entrant list after the draw.
//! - `admission`: the admission tokens hold requests and waitlist joins must carry while an
//!   event's waiting room is on.
//! - `rate_limit`: rate limits per user and per client IP (GCRA in Redis).
//!
//! Money and tickets:
//! - `payments`: checkout sessions at the provider and its signed webhooks; the gateway
//!   records payments, the consumer decides what they mean for the seats.
//! - `bookings`: bookings and tickets: viewing, cancelling (through the pipeline), QR code,
//!   transfer and check-in (written by the gateway, each one conditional `UPDATE`).
//! - `sandbox`: the sandbox payment provider, served only with `payments.sandbox_enabled`.

pub mod admission;
pub mod app;
pub mod auth;
pub mod bookings;
pub mod commands;
pub mod control_room;
pub mod decisions;
pub mod demo;
pub mod event_stats;
pub mod holdbacks;
pub mod holds;
pub mod inventory;
pub mod lottery;
pub mod openapi;
pub mod payments;
pub mod rate_limit;
pub mod request_ids;
pub mod request_registry;
pub mod routes;
pub mod sale_control;
pub mod sandbox;
pub mod search;
pub mod seat_history;
pub mod seat_map;
pub mod state;
pub mod views;
pub mod waiting_room;
pub mod waitlist;
pub mod web;
