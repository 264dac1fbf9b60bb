//! The seatq client: one `POST /v1/events/{id}/holds` per attempt, answered `202`.
//!
//! The user is only told "queued" (with a request id) at this point; the decision is
//! read back from PostgreSQL after the storm, so the runner records accepted request
//! ids instead of promises. While the broker is down the gateway answers
//! `503 broker_unavailable`: the client waits a moment and sends the same request again,
//! like a browser honouring `Retry-After` would (only faster), and counts the retries;
//! a 503 is never an accepted request. A `429` (a user over the per-user hold rate; the
//! workload's busiest users get there) is waited out per its `Retry-After`, counted the
//! same way.
//!
//! The same client drives the fair fight's fronts for the naive designs (`crate::fair`),
//! which decide synchronously: their `200` carries the decision (`status` `held` or
//! `rejected`, as the gateway's own inline answer to `?wait_ms=` does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

use crate::error::BenchError;
use crate::pipeline::api::{self, Tokens};
use crate::runner::{Client, Decision};
use crate::sources::{retry_after, Sources};
use crate::workload::{Attempt, Request, Stadium};

/// Pause before re-sending a request the gateway could not queue.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Give up on one attempt after this long of 503s.
const RETRY_PATIENCE: Duration = Duration::from_secs(120);

/// A `202` (queued: `pending`) or a `200` (decided: `held` or `rejected`).
#[derive(Deserialize)]
struct Answer {
    request_id: Uuid,
    status: String,
}

/// The JSON body of `attempt` for the stadium event.
pub fn hold_body(stadium: &Stadium, attempt: &Attempt) -> serde_json::Value {
    match &attempt.request {
        Request::Seats(seats) => {
            let labels: Vec<String> = seats
                .iter()
                .filter_map(|&n| stadium.section_of(n).map(|s| s.label(n)))
                .collect();
            serde_json::json!({ "seat_ids": labels })
        }
        Request::BestAvailable { section, quantity } => {
            serde_json::json!({ "section": section.code(), "quantity": quantity })
        }
    }
}

pub struct HttpClient {
    /// Each user sends from its own source address (see `crate::sources`).
    sources: Arc<Sources>,
    holds_url: Arc<str>,
    tokens: Arc<Tokens>,
    stadium: Arc<Stadium>,
    /// 503s and 429s answered with a retry (shared by all clients of a run).
    retries: Arc<AtomicU64>,
}

impl HttpClient {
    pub fn new(
        sources: Arc<Sources>,
        holds_url: Arc<str>,
        tokens: Arc<Tokens>,
        stadium: Arc<Stadium>,
        retries: Arc<AtomicU64>,
    ) -> Self {
        Self {
            sources,
            holds_url,
            tokens,
            stadium,
            retries,
        }
    }
}

/// POST `body` (JSON) to `url` as the user of `token`; while the gateway answers `503`
/// (it could not queue the command) wait a moment, and after a `429` (this user sent too
/// fast for the per-user limit) wait its `Retry-After`, as a browser would; then send it
/// again, counting each retry in `retries`. Any other answer is returned as it is.
pub async fn post_retrying(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &[u8],
    retries: &AtomicU64,
) -> Result<reqwest::Response, BenchError> {
    let started = Instant::now();
    loop {
        let response = http
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await?;
        let pause = match response.status() {
            reqwest::StatusCode::SERVICE_UNAVAILABLE => RETRY_PAUSE,
            reqwest::StatusCode::TOO_MANY_REQUESTS => retry_after(&response),
            _ => return Ok(response),
        };
        if started.elapsed() > RETRY_PATIENCE {
            return Err(BenchError::BrokerUnavailable(RETRY_PATIENCE));
        }
        retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
    }
}

impl Client for HttpClient {
    async fn attempt(&mut self, attempt: &Attempt) -> Result<Decision, BenchError> {
        let body = serde_json::to_vec(&hold_body(&self.stadium, attempt))?;
        let token = &self.tokens.users[attempt.user as usize % self.tokens.users.len()];
        let response = post_retrying(
            self.sources.of(attempt.user),
            &self.holds_url,
            token,
            &body,
            &self.retries,
        )
        .await?;
        let expected = match response.status() {
            reqwest::StatusCode::OK => reqwest::StatusCode::OK,
            _ => reqwest::StatusCode::ACCEPTED,
        };
        let answer: Answer = api::expect(response, expected, "hold request")
            .await?
            .json()
            .await?;
        Ok(match answer.status.as_str() {
            "pending" => Decision::Accepted(answer.request_id),
            // The front knows which seats; the runner only counts the answer.
            "held" => Decision::Held(Vec::new()),
            _ => Decision::Rejected,
        })
    }
}
