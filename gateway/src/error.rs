//! Errors as `application/problem+json` (shared with the notifier: `seatq_common::http`).

pub use seatq_common::http::error::*;
