//! The gateway's own suites, one binary: the real gateway in the test process (and, where
//! a test needs decisions, a consumer) against the real PostgreSQL, Redis and broker.
//! Suites that run the whole stack are in `system-tests`.

mod support;

mod api;
mod authz;
mod bookings;
mod hostile;
mod limits;
mod request_truth;
mod sandbox_provider;
mod schemathesis;
mod search;
mod startup;
