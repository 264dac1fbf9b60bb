//! The users' HTTP side of the waiting room: join, read the ticket, hold with the
//! admission token.
//!
//! People come from many addresses and the gateway limits requests per client IP as
//! well as per user, so the users are spread over loopback source addresses
//! ([`crate::sources`]). A `429` is waited out as its `Retry-After`
//! says and a `503` (broker unavailable) after a moment, then the same request is sent
//! again; both are counted, and the latency recorded is the round trip of the request
//! that was answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::BenchError;
use crate::pipeline::api::Tokens;
use crate::sources::{retry_after, Sources};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before re-sending a request the gateway could not queue (503).
const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(200);
/// Give up on one request after this long of 429s and 503s.
const PATIENCE: Duration = Duration::from_secs(120);

/// A ticket as `POST …/queue` and `GET …/queue/{ticket}` show it (what the bench reads).
#[derive(Debug, Clone, Deserialize)]
pub struct TicketView {
    pub ticket: Uuid,
    pub status: String,
    /// Before the sale opens the place is a lottery draw, provisional.
    pub provisional: bool,
    pub admission_token: Option<String>,
    pub admission_expires_at: Option<DateTime<Utc>>,
}

/// A join's answer: `201` (a new ticket) or `200` (the user's ticket already).
#[derive(Debug, Clone)]
pub struct Joined {
    pub created: bool,
    pub view: TicketView,
    /// Round trip of the answered request.
    pub latency: Duration,
}

/// A hold request's answer.
#[derive(Debug, Clone)]
pub enum HoldAnswer {
    /// `202` (or `200` decided inline): queued under this request id.
    Accepted { request_id: Uuid, latency: Duration },
    /// Refused by the gateway: `status code` (the problem's code).
    Refused(String),
}

#[derive(Deserialize)]
struct Accepted {
    request_id: Uuid,
}

#[derive(Deserialize)]
struct Problem {
    code: Option<String>,
}

/// 429s and 503s waited out and sent again.
#[derive(Debug, Default)]
pub struct Retries {
    pub rate_limited: AtomicU64,
    pub unavailable: AtomicU64,
}

pub struct Agents {
    sources: Sources,
    /// `{gateway}/v1/events/{event}`.
    event_url: String,
    tokens: Arc<Tokens>,
    pub retries: Retries,
}

/// `status code` of a refusal, from its problem+json body.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let code = response
        .json::<Problem>()
        .await
        .ok()
        .and_then(|p| p.code)
        .unwrap_or_else(|| "-".to_string());
    format!("{status} {code}")
}

impl Agents {
    /// Users spread over `source_ips` loopback addresses (0: the default address).
    pub fn new(
        gateway: &str,
        event: Uuid,
        tokens: Arc<Tokens>,
        source_ips: usize,
    ) -> Result<Self, BenchError> {
        Ok(Self {
            sources: Sources::new(source_ips, REQUEST_TIMEOUT)?,
            event_url: format!("{gateway}/v1/events/{event}"),
            tokens,
            retries: Retries::default(),
        })
    }

    pub fn source_ips(&self) -> usize {
        self.sources.source_ips()
    }

    fn http(&self, user: u32) -> &reqwest::Client {
        self.sources.of(user)
    }

    pub fn token(&self, user: u32) -> &str {
        &self.tokens.users[user as usize % self.tokens.users.len()]
    }

    /// Send the request `build` makes until it is answered with something else than
    /// `429` or `503`; returns the answer and its round trip.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, Duration), BenchError> {
        let started = Instant::now();
        loop {
            let sent = Instant::now();
            let response = build().send().await?;
            let latency = sent.elapsed();
            let pause = match response.status() {
                StatusCode::TOO_MANY_REQUESTS => {
                    self.retries.rate_limited.fetch_add(1, Ordering::Relaxed);
                    retry_after(&response)
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    self.retries.unavailable.fetch_add(1, Ordering::Relaxed);
                    UNAVAILABLE_PAUSE.max(retry_after(&response).min(Duration::from_secs(1)))
                }
                _ => return Ok((response, latency)),
            };
            if started.elapsed() > PATIENCE {
                return Err(BenchError::Gateway {
                    what: "waiting-room request",
                    status: response.status().as_u16(),
                    body: format!("still refused after {PATIENCE:?} of retries"),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// `POST /v1/events/{id}/queue` (no proof of work: the event asks for none).
    pub async fn join(&self, user: u32) -> Result<Joined, BenchError> {
        let url = format!("{}/queue", self.event_url);
        let (response, latency) = self
            .send(|| {
                self.http(user)
                    .post(&url)
                    .bearer_auth(self.token(user))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body("{}")
            })
            .await?;
        let created = match response.status() {
            StatusCode::CREATED => true,
            StatusCode::OK => false,
            _ => {
                return Err(BenchError::Gateway {
                    what: "join",
                    status: response.status().as_u16(),
                    body: refusal(response).await,
                })
            }
        };
        Ok(Joined {
            created,
            view: response.json().await?,
            latency,
        })
    }

    /// `GET /v1/events/{id}/queue/{ticket}`.
    pub async fn ticket(
        &self,
        user: u32,
        ticket: Uuid,
    ) -> Result<(TicketView, Duration), BenchError> {
        let url = format!("{}/queue/{ticket}", self.event_url);
        let (response, latency) = self
            .send(|| self.http(user).get(&url).bearer_auth(self.token(user)))
            .await?;
        if response.status() != StatusCode::OK {
            return Err(BenchError::Gateway {
                what: "ticket",
                status: response.status().as_u16(),
                body: refusal(response).await,
            });
        }
        Ok((response.json().await?, latency))
    }

    /// `POST /v1/events/{id}/holds` with `X-Admission-Token` (none if `admission` is
    /// None).
    pub async fn hold(
        &self,
        user: u32,
        admission: Option<&str>,
        body: &[u8],
    ) -> Result<HoldAnswer, BenchError> {
        let url = format!("{}/holds", self.event_url);
        let (response, latency) = self
            .send(|| {
                let request = self
                    .http(user)
                    .post(&url)
                    .bearer_auth(self.token(user))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec());
                match admission {
                    Some(token) => request.header("x-admission-token", token),
                    None => request,
                }
            })
            .await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => {
                let accepted: Accepted = response.json().await?;
                Ok(HoldAnswer::Accepted {
                    request_id: accepted.request_id,
                    latency,
                })
            }
            _ => Ok(HoldAnswer::Refused(refusal(response).await)),
        }
    }
}
