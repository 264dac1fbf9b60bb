//! HTTP routes, one module per resource. Handlers are thin: extract, call a service
//! function, shape the response.

pub mod admin;
pub mod bookings;
pub mod dev;
pub mod events;
pub mod health;
pub mod holdbacks;
pub mod holds;
pub mod payments;
pub mod queue;
pub mod waitlist;
