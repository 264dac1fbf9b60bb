//! Extractors with problem+json rejections (shared: `seatq_common::http::extract`).

pub use seatq_common::http::extract::*;
