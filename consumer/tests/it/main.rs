//! The consumer's own suites, one binary. Whole-stack suites (the gateway and the
//! scheduler too) are in `system-tests`.

mod rules_model;
