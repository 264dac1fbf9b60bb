//! What every seatq HTTP service shares: one problem+json error type with stable codes,
//! extractors whose rejections use it, JWT authentication, and the server loop. The gateway and the
//! notifier answer bad input the same way because they use the same code.

pub mod auth;
pub mod error;
pub mod extract;
pub mod serve;
