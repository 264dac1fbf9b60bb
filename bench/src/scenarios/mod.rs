//! The designs under test, one module each, all driven by [`crate::runner`].
//!
//! A scenario builds one [`crate::runner::Client`] per connection, hands them to the
//! runner with the shared attempts, then checks the end state in PostgreSQL. New
//! scenarios (the seatq pipeline over HTTP) plug in the same way.

pub mod conditional_update;
pub mod for_update;
pub mod redis_first;
pub mod seats_table;
