//! Whether the wall clock stepped during a run.
//!
//! The fronts stamp arrivals on the wall clock (the gateway's `issued_at` is product data
//! that has to mean a time of day, and the naive fronts stamp the same way so every design
//! is judged alike). Ordering by the wall clock is ordering by a monotonic clock as long
//! as the wall clock did not step: NTP's rate corrections move `CLOCK_REALTIME` and
//! `CLOCK_MONOTONIC` together, only a step (`settimeofday`, an NTP jump) moves one without
//! the other. So each run watches the distance between the two, and reports how far it
//! moved: 0 means its stamps order arrivals exactly as a monotonic clock would have.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock and the monotonic clock, read together at the start of a run.
#[derive(Debug, Clone, Copy)]
pub struct StepWatch {
    wall_us: i128,
    mono: Instant,
}

fn wall_us() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i128,
        Err(e) => -(e.duration().as_micros() as i128),
    }
}

impl StepWatch {
    pub fn start() -> Self {
        Self {
            wall_us: wall_us(),
            mono: Instant::now(),
        }
    }

    /// How far the wall clock moved against the monotonic clock since `start`, ms (a
    /// few microseconds of it are the two reads not being simultaneous).
    pub fn step_ms(&self) -> f64 {
        let wall = wall_us() - self.wall_us;
        let mono = self.mono.elapsed().as_micros() as i128;
        crate::results::round((wall - mono).unsigned_abs() as f64 / 1_000.0, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unstepped_clock_moves_with_the_monotonic_one() {
        let watch = StepWatch::start();
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 20 {
            std::hint::spin_loop();
        }
        // Nothing steps the clock in a unit test; only the reads' own skew remains.
        assert!(watch.step_ms() < 5.0, "{}", watch.step_ms());
    }
}
