//! The batch's SQL, kept apart from the rules so they stay pure: every statement the
//! consumer runs in a batch transaction is a named constant in one of these modules, next
//! to the function that runs it.
//!
//! - `offsets`: the fence, each partition's applied offset.
//! - `inventory`: seats, general-admission counters, users' seat counts.
//! - `lifecycle`: holds, waitlists, payments in progress, bookings, tickets, refunds.
//! - `decisions`: `requests` rows, dead letters, outbox rows, `NOTIFY`.
//!
//! Locks are taken in one fixed order (bookings, holds, seats and counters, waitlist
//! entries) so two transactions never wait on each other in a cycle.

pub mod decisions;
pub mod inventory;
pub mod lifecycle;
pub mod offsets;
