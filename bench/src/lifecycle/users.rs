//! The simulated users: what each one does over HTTP, in the order a person would.
//!
//! A holder asks for a pair and waits for the decision inline (`?wait_ms`), polling the
//! status URL if it is not decided in time. Then a buyer checks out and pays at the
//! sandbox provider (`complete` on the provider's API, as its payment page would). For a
//! pair left to expire, the users waiting for each seat join its waitlist one after
//! another. Each join is answered before the next one is sent, so the planned order is
//! the Kafka order the consumer sees. Nothing waits for the hold to expire: that is the
//! scheduler's job.
//!
//! A failed step is counted and its pair goes no further; it never stops the other
//! users. Whether the system got the rest right is checked afterwards in SQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::BenchError;
use crate::lifecycle::plan::{Fate, Pair, Waiter};
use crate::pipeline::api::{expect, Tokens};
use crate::pipeline::client::{hold_body, post_retrying};
use crate::sources::Sources;
use crate::workload::{Attempt, Request, Stadium};

/// How long a hold request may wait for its decision inline (the gateway's maximum).
const HOLD_WAIT_MS: u64 = 5_000;
const POLL: Duration = Duration::from_millis(100);
/// Give up polling a hold request after this long.
const POLL_PATIENCE: Duration = Duration::from_secs(60);

/// A hold request's answer (`200` decided, `202` pending, or the status route).
#[derive(Deserialize)]
struct RequestView {
    request_id: Uuid,
    status: String,
    hold_id: Option<Uuid>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Checkout {
    payment_url: String,
}

/// The session id in a sandbox payment URL (`{base}/sandbox/pay/{session_id}`,
/// `gateway/src/sandbox/api.rs`), which is what the provider's API is called with.
pub fn session_id(payment_url: &str) -> Option<&str> {
    let (_, id) = payment_url.split_once("/sandbox/pay/")?;
    let id = id.split(['?', '#', '/']).next()?;
    (!id.is_empty()).then_some(id)
}

/// What the users did, added up.
#[derive(Debug, Default)]
pub struct Tally {
    pub holds: u64,
    pub holds_rejected: u64,
    /// Why the first refused hold was refused.
    pub first_rejection: Option<String>,
    pub payments_completed: u64,
    pub joins: u64,
    pub joins_at_limit: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, what: &str, e: BenchError) {
        self.errors += 1;
        self.first_error
            .get_or_insert_with(|| format!("{what}: {e}"));
    }

    pub fn add(&mut self, other: Tally) {
        self.holds += other.holds;
        self.holds_rejected += other.holds_rejected;
        self.payments_completed += other.payments_completed;
        self.joins += other.joins;
        self.joins_at_limit += other.joins_at_limit;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.first_rejection.is_none() {
            self.first_rejection = other.first_rejection;
        }
    }
}

/// Everything the users need to talk to the stack about one event.
pub struct Users {
    /// The bench's own requests (the sandbox provider's API).
    pub http: reqwest::Client,
    /// Each user's requests, from its own source address (see `crate::sources`).
    pub sources: Arc<Sources>,
    pub gateway: String,
    /// The payment provider's base URL and API key (the sandbox, on the local stack).
    pub provider: String,
    pub provider_key: String,
    pub tokens: Arc<Tokens>,
    pub venue: Arc<Stadium>,
    pub event: Uuid,
    /// `503` answers sent again.
    pub retries: AtomicU64,
}

impl Users {
    fn token(&self, user: u32) -> &str {
        &self.tokens.users[user as usize % self.tokens.users.len()]
    }

    fn label(&self, seat_no: i32) -> String {
        self.venue
            .section_of(seat_no)
            .map_or_else(|| seat_no.to_string(), |s| s.label(seat_no))
    }

    /// Everything one pair's users do.
    pub async fn act(&self, pair: &Pair) -> Tally {
        let mut tally = Tally::default();
        let hold = match self.hold(pair, &mut tally).await {
            Ok(Some(hold)) => hold,
            Ok(None) => return tally,
            Err(e) => {
                tally.error("hold", e);
                return tally;
            }
        };
        match &pair.fate {
            Fate::Pay => match self.pay(pair.holder, hold).await {
                Ok(()) => tally.payments_completed += 1,
                Err(e) => tally.error("payment", e),
            },
            Fate::Expire { waitlists } => {
                let lines = pair
                    .seats
                    .iter()
                    .zip(waitlists)
                    .map(|(&seat, waiters)| self.queue_up(seat, waiters));
                for line in futures::future::join_all(lines).await {
                    tally.add(line);
                }
            }
        }
        tally
    }

    /// Hold the pair; `None` if it was refused (a planned seat is never contested, so a
    /// refusal is worth a look, but not an error of the bench).
    async fn hold(&self, pair: &Pair, tally: &mut Tally) -> Result<Option<Uuid>, BenchError> {
        let attempt = Attempt {
            user: pair.holder,
            request: Request::Seats(pair.seats.clone()),
        };
        let body = serde_json::to_vec(&hold_body(&self.venue, &attempt))?;
        let url = format!(
            "{}/v1/events/{}/holds?wait_ms={HOLD_WAIT_MS}",
            self.gateway, self.event
        );
        let token = self.token(pair.holder);
        let response = post_retrying(
            self.sources.of(pair.holder),
            &url,
            token,
            &body,
            &self.retries,
        )
        .await?;
        let mut view: RequestView = match response.status() {
            StatusCode::OK => response.json().await?,
            _ => {
                expect(response, StatusCode::ACCEPTED, "hold request")
                    .await?
                    .json()
                    .await?
            }
        };
        let started = Instant::now();
        while view.status == "pending" {
            if started.elapsed() > POLL_PATIENCE {
                return Err(BenchError::Stack(format!(
                    "hold request {} still pending after {POLL_PATIENCE:?}",
                    view.request_id
                )));
            }
            tokio::time::sleep(POLL).await;
            let url = format!("{}/v1/hold-requests/{}", self.gateway, view.request_id);
            let response = self
                .sources
                .of(pair.holder)
                .get(url)
                .bearer_auth(token)
                .send()
                .await?;
            view = expect(response, StatusCode::OK, "hold status")
                .await?
                .json()
                .await?;
        }
        match (view.status.as_str(), view.hold_id) {
            ("held", Some(hold)) => {
                tally.holds += 1;
                Ok(Some(hold))
            }
            _ => {
                tally.holds_rejected += 1;
                tally.first_rejection.get_or_insert_with(|| {
                    format!(
                        "hold of seats {:?} refused: {}",
                        pair.seats,
                        view.reason.as_deref().unwrap_or(&view.status)
                    )
                });
                Ok(None)
            }
        }
    }

    /// Check out (seatq opens a session at the provider) and pay at the provider.
    async fn pay(&self, user: u32, hold: Uuid) -> Result<(), BenchError> {
        let url = format!("{}/v1/holds/{hold}/checkout", self.gateway);
        let response = post_retrying(
            self.sources.of(user),
            &url,
            self.token(user),
            b"",
            &self.retries,
        )
        .await?;
        let checkout: Checkout = expect(response, StatusCode::OK, "checkout")
            .await?
            .json()
            .await?;
        let session = session_id(&checkout.payment_url).ok_or_else(|| {
            BenchError::Stack(format!(
                "no sandbox session id in payment_url {}",
                checkout.payment_url
            ))
        })?;
        let url = format!("{}/sandbox/v1/sessions/{session}/complete", self.provider);
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.provider_key)
            .json(&serde_json::json!({"outcome": "succeed"}))
            .send()
            .await?;
        expect(response, StatusCode::ACCEPTED, "sandbox payment").await?;
        Ok(())
    }

    /// The seat's waiting users join its waitlist, each after the previous one's answer.
    async fn queue_up(&self, seat: i32, waiters: &[Waiter]) -> Tally {
        let mut tally = Tally::default();
        let url = format!(
            "{}/v1/events/{}/seats/{}/waitlist",
            self.gateway,
            self.event,
            self.label(seat)
        );
        for waiter in waiters {
            let joined = async {
                let response = post_retrying(
                    self.sources.of(waiter.user),
                    &url,
                    self.token(waiter.user),
                    b"",
                    &self.retries,
                )
                .await?;
                // 201: on the list; 202: queued, decided in Kafka order after the
                // previous join all the same.
                match response.status() {
                    StatusCode::CREATED => Ok(response),
                    _ => expect(response, StatusCode::ACCEPTED, "waitlist join").await,
                }
            }
            .await;
            match joined {
                Ok(_) => {
                    tally.joins += 1;
                    tally.joins_at_limit += u64::from(waiter.at_limit);
                }
                Err(e) => tally.error("waitlist join", e),
            }
        }
        tally
    }

    pub fn broker_retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_is_the_last_segment_of_the_payment_url() {
        let url = "http://127.0.0.1:58080/sandbox/pay/cs_0192abc";
        assert_eq!(session_id(url), Some("cs_0192abc"));
        assert_eq!(
            session_id("http://x/sandbox/pay/cs_1?lang=en"),
            Some("cs_1")
        );
        assert_eq!(session_id("http://x/sandbox/pay/"), None);
        assert_eq!(session_id("http://x/pay/cs_1"), None);
    }

    #[test]
    fn tallies_add_up_and_keep_the_first_error() {
        let mut a = Tally {
            holds: 1,
            joins: 2,
            ..Tally::default()
        };
        let mut b = Tally {
            holds_rejected: 1,
            joins_at_limit: 1,
            ..Tally::default()
        };
        b.error("join", BenchError::Stack("first".into()));
        a.add(b);
        let mut c = Tally::default();
        c.error("join", BenchError::Stack("second".into()));
        a.add(c);
        assert_eq!(
            (a.holds, a.holds_rejected, a.joins, a.joins_at_limit),
            (1, 1, 2, 1)
        );
        assert_eq!(a.errors, 2);
        assert_eq!(a.first_error.as_deref(), Some("join: first"));
    }
}
