//! The whole-stack harness: seatq's services started inside the test process on an
//! isolated environment (a database, a topic prefix, a Redis key space of their own), so
//! a suite drives the real gateway, consumer and scheduler over HTTP and Kafka against
//! the real PostgreSQL, Redis and broker, and checks the invariants in SQL afterwards.
//!
//! - `pipeline`: the gateway and a consumer: hold requests from HTTP to a decision.
//! - `stack`: the gateway (with the sandbox payment provider), a consumer and the
//!   scheduler, with the steps a buyer takes (hold, pay, join a waitlist).
//!
//! The suites themselves are one test binary, `tests/it`. Tests of one crate alone stay
//! in that crate (`consumer/tests/it`, `gateway/tests/it`).

pub mod pipeline;
pub mod stack;
