//! The storm of seat changes the streams follow: real hold requests and cancels through
//! the gateway, as users make them.
//!
//! Each actor is one user with its own share of the venue's seats (so actors never
//! contend: every request changes a seat, and the change rate is what was asked for).
//! On every tick it holds one of its free seats (waiting for the decision inline with
//! `?wait_ms`) or cancels one of its holds, choosing a hold with probability "share of
//! its seats free", so about half its seats are held at any time and both kinds of
//! change keep coming. Actors keep their holds from one phase of the run to the next.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::BenchError;
use crate::pipeline::api::Tokens;
use crate::pipeline::client::post_retrying;
use crate::sources::Sources;
use crate::workload::Stadium;

/// How long a hold request may wait for its decision inline (the gateway's maximum).
const HOLD_WAIT_MS: u64 = 5_000;

/// What the actors did in one phase (the changes themselves are counted in SQL).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormTally {
    pub holds: u64,
    pub cancels: u64,
    /// Holds refused (an actor's own seat, so none are expected).
    pub refused: u64,
    /// Requests not decided within 5 s (their seat is then left alone).
    pub pending: u64,
    /// Answers the gateway gave `503` and were sent again.
    pub broker_retries: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl StormTally {
    fn add(&mut self, o: &StormTally) {
        self.holds += o.holds;
        self.cancels += o.cancels;
        self.refused += o.refused;
        self.pending += o.pending;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }

    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
}

struct Actor {
    user: u32,
    rng: ChaCha8Rng,
    seats: usize,
    free: Vec<i32>,
    held: VecDeque<(i32, Uuid)>,
}

/// Enough actors for `rate` changes a second that none sends hold requests faster than
/// 80 % of the gateway's per-user limit (`user_rate`, 0 = none): every act may be a hold,
/// and the burst allowance is left unused. More actors share the same seats.
pub fn actors_for(asked: usize, rate: f64, user_rate: Option<f64>) -> usize {
    match user_rate {
        Some(limit) if limit > 0.0 => asked.max((rate / (0.8 * limit)).ceil() as usize),
        _ => asked,
    }
}

/// How many actors, and what limits them.
#[derive(Debug, Clone, Copy)]
pub struct Cast {
    pub actors: usize,
    /// The event's `max_seats_per_user`: an actor holds fewer seats than that.
    pub max_seats_per_user: usize,
    pub seed: u64,
}

/// The actors and what they need to talk to the gateway about one event.
pub struct Storm {
    /// Each actor sends from its own source address (see `crate::sources`).
    sources: Arc<Sources>,
    holds_url: String,
    gateway: String,
    tokens: Arc<Tokens>,
    venue: Arc<Stadium>,
    actors: Vec<Arc<Mutex<Actor>>>,
    /// Most seats one actor holds (under the event's per-user limit).
    max_held: usize,
    retries: Arc<AtomicU64>,
}

#[derive(Deserialize)]
struct RequestView {
    status: String,
    hold_id: Option<Uuid>,
}

impl Storm {
    /// `cast.actors` users sharing the seats of `venue` round-robin.
    pub fn new(
        sources: Arc<Sources>,
        gateway: &str,
        event: Uuid,
        tokens: Arc<Tokens>,
        venue: Arc<Stadium>,
        cast: Cast,
    ) -> Self {
        let Cast {
            actors,
            max_seats_per_user,
            seed,
        } = cast;
        let actors = actors.max(1);
        let seats = venue.seat_count();
        let actors_v = (0..actors)
            .map(|a| {
                let free: Vec<i32> = (0..seats).skip(a).step_by(actors).collect();
                Arc::new(Mutex::new(Actor {
                    user: a as u32,
                    rng: ChaCha8Rng::seed_from_u64(seed ^ (a as u64).wrapping_mul(0x9e37_79b9)),
                    seats: free.len(),
                    free,
                    held: VecDeque::new(),
                }))
            })
            .collect();
        Self {
            sources,
            holds_url: format!("{gateway}/v1/events/{event}/holds?wait_ms={HOLD_WAIT_MS}"),
            gateway: gateway.to_string(),
            tokens,
            venue,
            actors: actors_v,
            max_held: max_seats_per_user.saturating_sub(2).max(1),
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Every actor acts once per `actors / rate` seconds for `secs` seconds (a slow
    /// answer delays its next action: the rate is a ceiling).
    pub async fn run(self: &Arc<Self>, secs: f64, rate: f64) -> StormTally {
        let period = Duration::from_secs_f64(self.actors.len() as f64 / rate.max(0.001));
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        let retries_before = self.retries.load(Ordering::Relaxed);
        let tasks: Vec<_> = self
            .actors
            .iter()
            .enumerate()
            .map(|(i, actor)| {
                let (storm, actor) = (Arc::clone(self), Arc::clone(actor));
                tokio::spawn(async move {
                    // Spread the actors over one period.
                    let offset = period.mul_f64(i as f64 / storm.actors.len() as f64);
                    let mut tick =
                        tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut tally = StormTally::default();
                    let mut actor = actor.lock().await;
                    loop {
                        tick.tick().await;
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        storm.act(&mut actor, &mut tally).await;
                    }
                    tally
                })
            })
            .collect();
        let mut total = StormTally::default();
        for task in tasks {
            match task.await {
                Ok(t) => total.add(&t),
                Err(e) => total.error(format!("actor task: {e}")),
            }
        }
        total.broker_retries = self.retries.load(Ordering::Relaxed) - retries_before;
        total
    }

    async fn act(&self, actor: &mut Actor, tally: &mut StormTally) {
        let hold = if actor.held.is_empty() {
            true
        } else if actor.free.is_empty() || actor.held.len() >= self.max_held {
            false
        } else {
            let share_free = actor.free.len() as f64 / actor.seats.max(1) as f64;
            actor.rng.gen_bool(share_free.clamp(0.0, 1.0))
        };
        if hold && !actor.free.is_empty() {
            let at = actor.rng.gen_range(0..actor.free.len());
            let seat = actor.free.swap_remove(at);
            match self.hold(actor.user, seat).await {
                Ok(Some(view)) => match (view.status.as_str(), view.hold_id) {
                    ("held", Some(id)) => {
                        tally.holds += 1;
                        actor.held.push_back((seat, id));
                    }
                    ("pending", _) => tally.pending += 1,
                    _ => tally.refused += 1,
                },
                Ok(None) => tally.pending += 1,
                Err(e) => tally.error(format!("hold: {e}")),
            }
        } else if let Some((seat, id)) = actor.held.pop_front() {
            match self.cancel(actor.user, id).await {
                Ok(true) => {
                    tally.cancels += 1;
                    actor.free.push(seat);
                }
                Ok(false) => tally.pending += 1,
                Err(e) => tally.error(format!("cancel: {e}")),
            }
        }
    }

    fn token(&self, user: u32) -> &str {
        &self.tokens.users[user as usize % self.tokens.users.len()]
    }

    /// `None`: accepted but not decided in time.
    async fn hold(&self, user: u32, seat: i32) -> Result<Option<RequestView>, BenchError> {
        let label = self
            .venue
            .section_of(seat)
            .map_or_else(|| seat.to_string(), |s| s.label(seat));
        let body = serde_json::to_vec(&serde_json::json!({ "seat_ids": [label] }))?;
        let r = post_retrying(
            self.sources.of(user),
            &self.holds_url,
            self.token(user),
            &body,
            &self.retries,
        )
        .await?;
        match r.status() {
            StatusCode::OK => Ok(Some(r.json().await?)),
            StatusCode::ACCEPTED => Ok(None),
            _ => Err(
                crate::pipeline::api::expect(r, StatusCode::OK, "hold request")
                    .await
                    .err()
                    .unwrap_or_else(|| BenchError::Stack("unexpected answer".into())),
            ),
        }
    }

    /// `true` when cancelled, `false` when not decided within 5 s.
    async fn cancel(&self, user: u32, hold: Uuid) -> Result<bool, BenchError> {
        let url = format!("{}/v1/holds/{hold}", self.gateway);
        let r = self
            .sources
            .of(user)
            .delete(url)
            .bearer_auth(self.token(user))
            .send()
            .await?;
        match r.status() {
            StatusCode::OK => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(
                crate::pipeline::api::expect(r, StatusCode::OK, "cancel hold")
                    .await
                    .err()
                    .unwrap_or_else(|| BenchError::Stack("unexpected answer".into())),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::actors_for;

    #[test]
    fn enough_actors_to_stay_under_the_per_user_limit() {
        assert_eq!(actors_for(16, 200.0, Some(1.0)), 250);
        assert_eq!(actors_for(16, 10.0, Some(1.0)), 16);
        assert_eq!(actors_for(16, 200.0, None), 16);
        assert_eq!(actors_for(16, 200.0, Some(0.0)), 16);
    }
}
