//! Topic names, derived from one configurable prefix so tests (and several stacks on one
//! broker) can isolate themselves by prefix.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Commands that change seat state, keyed by event id.
    pub commands: String,
    /// Seat map deltas and per-user notifications, keyed by event id.
    pub seat_events: String,
    /// One timer per hold for the scheduler, keyed by event id.
    pub hold_timers: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            commands: format!("{prefix}.commands"),
            seat_events: format!("{prefix}.seat-events"),
            hold_timers: format!("{prefix}.hold-timers"),
        }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.commands, &self.seat_events, &self.hold_timers]
    }
}
