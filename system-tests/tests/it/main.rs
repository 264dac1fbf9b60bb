//! The whole-stack suites, one binary: each module is a suite (see docs/testing.md for
//! what each proves). Every test gets its own database and topic prefix, so they run in
//! parallel on one stack.

// Hold requests end to end (gateway and consumer).
mod crashes;
mod delivery;
mod outbox;
mod pipeline;
mod poison;
mod scaling;

// The hold lifecycle (gateway, consumer and scheduler).
mod control_room;
mod expiry;
mod holdbacks;
mod payments;
mod refunds;
mod sale_rules;
mod seating_rules;
mod waiting_room;
mod waitlist;

// Browsers, live streams, metrics.
mod browser;
mod chromium;
mod control_room_browser;
mod metrics;
mod organiser;
mod seating_rules_browser;
mod streams;

// Every service killed in turn; the deployment files against the code.
mod deploy_manifests;
mod faults;
