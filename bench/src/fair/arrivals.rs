//! The burst an on-sale is: every user sends one hold, all within a couple of seconds.
//!
//! Arrival times are drawn from the seed (uniform over the window, sorted), so every
//! design gets the same users at the same moments, and each user is a distinct person
//! with one request (the runner's open loop sends each when it is due, answered or not).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::workload::{self, Attempt, Stadium};

/// `n` arrival offsets uniform over `window`, ascending, from `seed`.
pub fn burst(n: usize, window: Duration, seed: u64) -> Vec<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0062_7572_7374);
    let window_us = window.as_micros().max(1) as u64;
    let mut due: Vec<u64> = (0..n).map(|_| rng.gen_range(0..window_us)).collect();
    due.sort_unstable();
    due.into_iter().map(Duration::from_micros).collect()
}

/// `n` attempts of the workload's shape, user `i` making attempt `i`: one each.
pub fn one_each(stadium: &Stadium, n: usize, seed: u64) -> Vec<Attempt> {
    let mut attempts = workload::generate(stadium, n, n.max(1) as u32, seed);
    for (i, a) in attempts.iter_mut().enumerate() {
        a.user = i as u32;
    }
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_sorted_inside_the_window_and_fixed_by_the_seed() {
        let a = burst(1_000, Duration::from_secs(2), 7);
        assert_eq!(a.len(), 1_000);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(a.iter().all(|d| *d < Duration::from_secs(2)));
        assert_eq!(a, burst(1_000, Duration::from_secs(2), 7));
        assert_ne!(a, burst(1_000, Duration::from_secs(2), 8));
    }

    #[test]
    fn every_user_sends_one() {
        let attempts = one_each(&Stadium::new(), 500, 1);
        assert_eq!(attempts.len(), 500);
        assert!(attempts.iter().enumerate().all(|(i, a)| a.user == i as u32));
    }
}
