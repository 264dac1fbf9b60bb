//! The crowd: every simulated user, what each does, and what they saw.
//!
//! - **Joining** ([`Crowd::join_all`]): each user joins once, `concurrency` joins in
//!   flight (closed loop: a burst as fast as the gateway answers).
//! - **Learning of one's admission.** A browser learns it from its user stream
//!   (`admitted`, then it reads its ticket for the token) and polls its ticket every 4 s
//!   meanwhile. 200,000 browsers polling every 4 s would be 50,000 requests a second,
//!   more than this machine can send or serve, and 200,000 streams are more than the
//!   notifier's descriptor limit. So a sample of users polls as the browser does
//!   ([`Crowd::poll`]), and everyone else is told as the stream would tell them: the
//!   bench watches `queue_tickets` for newly admitted tickets every 250 ms
//!   ([`Crowd::watch`]) in place of the `admitted` message. Whoever sees an admission
//!   first claims that user.
//! - **Buying** ([`Crowd::buy`]): an admitted user looks at the map for a moment (think
//!   time), reads its ticket for the admission token (the poller already has it), and
//!   sends one hold request with `X-Admission-Token` (the flash-sale workload's mix:
//!   mostly one named seat in the best sections, some 2–4 adjacent, some best available
//!   1–4 in a section). The decision is read back from PostgreSQL afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::BenchError;
use crate::runner::new_histogram;
use crate::waitroom::agents::{Agents, HoldAnswer};

/// How often the bench looks for newly admitted tickets (the user stream's stand-in).
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

const ADMITTED_SINCE: &str = "SELECT user_id, admitted_at FROM queue_tickets \
     WHERE event_id = $1 AND status = 'admitted' AND admitted_at >= $2 ORDER BY admitted_at";

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    if let Ok(mut h) = h.lock() {
        h.saturating_record(d.as_micros().max(1) as u64);
    }
}

/// Latency histograms of what the users did.
pub struct Latencies {
    pub join: Mutex<Histogram<u64>>,
    pub poll: Mutex<Histogram<u64>>,
    /// Reading the ticket for the token after being told of the admission.
    pub token: Mutex<Histogram<u64>>,
    pub hold_accept: Mutex<Histogram<u64>>,
    /// `admitted_at` → the bench saw it: by the watcher (the user stream's stand-in)...
    pub admitted_to_watched: Mutex<Histogram<u64>>,
    /// ...and by a polling user.
    pub admitted_to_polled: Mutex<Histogram<u64>>,
}

/// Counters read every second by the sampler.
#[derive(Default)]
pub struct Counters {
    pub joined: AtomicU64,
    pub joined_again: AtomicU64,
    /// Joins answered with a provisional (lottery) place.
    pub provisional: AtomicU64,
    pub join_errors: AtomicU64,
    pub polls: AtomicU64,
    pub poll_errors: AtomicU64,
    /// Admitted users claimed by the watcher or a poller.
    pub admitted_seen: AtomicU64,
    pub seen_by_poll: AtomicU64,
    pub buyers_done: AtomicU64,
    pub holds_sent: AtomicU64,
    pub holds_accepted: AtomicU64,
    pub holds_refused: AtomicU64,
    pub buy_errors: AtomicU64,
}

pub struct Crowd {
    pub agents: Agents,
    pub event: Uuid,
    pub users: u32,
    tickets: Vec<OnceLock<Uuid>>,
    claimed: Vec<AtomicBool>,
    /// The hold request body of each user.
    bodies: Vec<Vec<u8>>,
    think: Vec<Duration>,
    buyers: Semaphore,
    admission_ttl: chrono::Duration,
    pub counters: Counters,
    pub latencies: Latencies,
    pub accepted: Mutex<Vec<Uuid>>,
    /// Hold requests refused by the gateway, by `status code`.
    pub refusals: Mutex<BTreeMap<String, u64>>,
    pub first_error: Mutex<Option<String>>,
    /// One admitted user's token, for the gate checks afterwards.
    pub a_token: OnceLock<(u32, String)>,
    stop: AtomicBool,
}

impl Crowd {
    pub fn new(
        agents: Agents,
        event: Uuid,
        bodies: Vec<Vec<u8>>,
        think_ms: u64,
        buyers_in_flight: usize,
        admission_ttl_secs: i64,
        seed: u64,
    ) -> Self {
        let users = bodies.len() as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7761_6974);
        let think = (0..users)
            .map(|_| Duration::from_millis(rng.gen_range(0..=think_ms)))
            .collect();
        Self {
            agents,
            event,
            users,
            tickets: (0..users).map(|_| OnceLock::new()).collect(),
            claimed: (0..users).map(|_| AtomicBool::new(false)).collect(),
            bodies,
            think,
            buyers: Semaphore::new(buyers_in_flight.max(1)),
            admission_ttl: chrono::Duration::seconds(admission_ttl_secs.max(1)),
            counters: Counters::default(),
            latencies: Latencies {
                join: Mutex::new(new_histogram()),
                poll: Mutex::new(new_histogram()),
                token: Mutex::new(new_histogram()),
                hold_accept: Mutex::new(new_histogram()),
                admitted_to_watched: Mutex::new(new_histogram()),
                admitted_to_polled: Mutex::new(new_histogram()),
            },
            accepted: Mutex::new(Vec::new()),
            refusals: Mutex::new(BTreeMap::new()),
            first_error: Mutex::new(None),
            a_token: OnceLock::new(),
            stop: AtomicBool::new(false),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn error(&self, what: &str, e: &BenchError) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| format!("{what}: {e}"));
        }
    }

    /// The ticket a user got when joining.
    pub fn ticket(&self, user: u32) -> Option<Uuid> {
        self.tickets.get(user as usize)?.get().copied()
    }

    /// Claim an admitted user for buying; false if someone else saw it first.
    fn claim(&self, user: u32) -> bool {
        let first = self
            .claimed
            .get(user as usize)
            .is_some_and(|c| !c.swap(true, Ordering::AcqRel));
        if first {
            self.counters.admitted_seen.fetch_add(1, Ordering::Relaxed);
        }
        first
    }

    /// Buyers told of their admission who have not finished buying.
    pub fn buyers_pending(&self) -> u64 {
        let c = &self.counters;
        c.admitted_seen
            .load(Ordering::Relaxed)
            .saturating_sub(c.buyers_done.load(Ordering::Relaxed))
    }

    /// Users `from..to` join, `concurrency` at a time; stops early when told to.
    pub async fn join_all(self: &Arc<Self>, from: u32, to: u32, concurrency: usize) {
        futures::stream::iter(from..to.min(self.users))
            .map(|user| {
                let crowd = Arc::clone(self);
                async move {
                    if crowd.stopped() {
                        return;
                    }
                    match crowd.agents.join(user).await {
                        Ok(joined) => {
                            record(&crowd.latencies.join, joined.latency);
                            let _ = crowd.tickets[user as usize].set(joined.view.ticket);
                            if joined.view.provisional {
                                crowd.counters.provisional.fetch_add(1, Ordering::Relaxed);
                            }
                            let counter = if joined.created {
                                &crowd.counters.joined
                            } else {
                                &crowd.counters.joined_again
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            crowd.counters.join_errors.fetch_add(1, Ordering::Relaxed);
                            crowd.error("join", &e);
                        }
                    }
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<()>()
            .await;
    }

    /// One polling user: once joined, read the ticket every `every` (from a random
    /// phase) until admitted, then buy.
    pub async fn poll(self: Arc<Self>, user: u32, every: Duration, phase: Duration) {
        let ticket = loop {
            if self.stopped() {
                return;
            }
            if let Some(t) = self.tickets[user as usize].get() {
                break *t;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        tokio::time::sleep(phase).await;
        loop {
            if self.stopped() || self.claimed[user as usize].load(Ordering::Relaxed) {
                return;
            }
            match self.agents.ticket(user, ticket).await {
                Ok((view, latency)) => {
                    self.counters.polls.fetch_add(1, Ordering::Relaxed);
                    record(&self.latencies.poll, latency);
                    if let Some(token) = view.admission_token {
                        if let Some(expires) = view.admission_expires_at {
                            let admitted = expires - self.admission_ttl;
                            if let Ok(d) = (Utc::now() - admitted).to_std() {
                                record(&self.latencies.admitted_to_polled, d);
                            }
                        }
                        if self.claim(user) {
                            self.counters.seen_by_poll.fetch_add(1, Ordering::Relaxed);
                            self.buy(user, Some(token)).await;
                        }
                        return;
                    }
                }
                Err(e) => {
                    self.counters.poll_errors.fetch_add(1, Ordering::Relaxed);
                    self.error("poll", &e);
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Watch for admitted tickets until stopped (then once more), and send each
    /// newly admitted user to buy.
    pub async fn watch(self: Arc<Self>, pool: PgPool) {
        let mut since: Option<DateTime<Utc>> = None;
        let mut last_round = false;
        loop {
            // Every batch shares its tick's `admitted_at`; re-reading the last batch
            // (>=) costs little and the claim skips those already sent.
            let from = since.unwrap_or_default();
            match sqlx::query_as::<_, (String, DateTime<Utc>)>(ADMITTED_SINCE)
                .bind(self.event)
                .bind(from)
                .fetch_all(&pool)
                .await
            {
                Ok(rows) => {
                    let now = Utc::now();
                    for (user_id, admitted_at) in rows {
                        since = Some(since.map_or(admitted_at, |s| s.max(admitted_at)));
                        let Some(user) = user_of(&user_id).filter(|u| *u < self.users) else {
                            continue;
                        };
                        if !self.claim(user) {
                            continue;
                        }
                        if let Ok(d) = (now - admitted_at).to_std() {
                            record(&self.latencies.admitted_to_watched, d);
                        }
                        let crowd = Arc::clone(&self);
                        tokio::spawn(async move { crowd.buy(user, None).await });
                    }
                }
                Err(e) => self.error("watching admissions", &BenchError::Postgres(e)),
            }
            if last_round {
                return;
            }
            if self.stopped() {
                last_round = true;
                continue;
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    }

    /// An admitted user buys: thinks, gets the token, asks for seats.
    async fn buy(self: &Arc<Self>, user: u32, token: Option<String>) {
        tokio::time::sleep(self.think[user as usize]).await;
        let outcome = async {
            let _permit = self
                .buyers
                .acquire()
                .await
                .map_err(|e| BenchError::Stack(format!("buyers' semaphore: {e}")))?;
            let token = match token {
                Some(token) => token,
                None => {
                    let ticket = *self.tickets[user as usize].get().ok_or_else(|| {
                        BenchError::Stack(format!("admitted user {user} without a ticket"))
                    })?;
                    let (view, latency) = self.agents.ticket(user, ticket).await?;
                    record(&self.latencies.token, latency);
                    view.admission_token.ok_or_else(|| {
                        BenchError::Stack(format!(
                            "ticket {ticket} of an admitted user has no admission token ({})",
                            view.status
                        ))
                    })?
                }
            };
            let _ = self.a_token.set((user, token.clone()));
            self.counters.holds_sent.fetch_add(1, Ordering::Relaxed);
            self.agents
                .hold(user, Some(&token), &self.bodies[user as usize])
                .await
        }
        .await;
        match outcome {
            Ok(HoldAnswer::Accepted {
                request_id,
                latency,
            }) => {
                record(&self.latencies.hold_accept, latency);
                self.counters.holds_accepted.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut a) = self.accepted.lock() {
                    a.push(request_id);
                }
            }
            Ok(HoldAnswer::Refused(why)) => {
                self.counters.holds_refused.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut r) = self.refusals.lock() {
                    *r.entry(why).or_default() += 1;
                }
            }
            Err(e) => {
                self.counters.buy_errors.fetch_add(1, Ordering::Relaxed);
                self.error("buy", &e);
            }
        }
        self.counters.buyers_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Wait until every buyer told of an admission has finished, or `patience` passed.
    /// True if all finished.
    pub async fn buyers_finished(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while self.buyers_pending() > 0 {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }
}

/// The user number of a bench user id (`u{n}`, `workload::holder`).
pub fn user_of(user_id: &str) -> Option<u32> {
    user_id.strip_prefix('u')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_map_back_to_user_numbers() {
        assert_eq!(user_of(&crate::workload::holder(123_456)), Some(123_456));
        assert_eq!(user_of("seatq-bench-admin"), None);
        assert_eq!(user_of("u"), None);
    }
}
