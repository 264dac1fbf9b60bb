//! Each stage of the pipeline measured on its own, so it is clear where the time goes:
//! the gateway accepting into the broker with no consumer reading, the consumer draining
//! a full topic with the gateway idle, and the broker alone with a plain client.

pub mod accept_drain;
pub mod broker;
