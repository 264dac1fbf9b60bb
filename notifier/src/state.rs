//! What the notifier's handlers share, and small pieces they all need.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use seatq_common::config::NotifierSettings;
use seatq_common::http::auth::{HasJwt, JwtKeys};
use seatq_common::http::error::AppError;
use seatq_common::http::serve::ConnectionKill;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, SubscribeError};

#[derive(Clone)]
pub struct NotifierState {
    pub hub: Arc<Hub>,
    pub jwt: Arc<JwtKeys>,
    pub settings: Arc<NotifierSettings>,
    /// Set once the seat events have been read up to where they were at start.
    pub ready: Arc<AtomicBool>,
}

impl HasJwt for NotifierState {
    fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }
}

/// The kill switch of the request's connection, when served by `seatq_common::http::serve`
/// and the connection carries only this stream.
///
/// An HTTP/2 connection multiplexes many streams (a browser's tabs, or a load balancer's
/// clients), so killing it for one slow stream would cut off the others. Such a stream gets
/// no kill switch: the hub stops feeding it and drops its queue's sender, and its response
/// ends once the client has read what was already queued (at most the queue and the
/// stream's flow-control window); the client then resumes from its last id. Meanwhile it
/// holds no more than that, and HTTP/2 flow control keeps it from slowing its neighbours.
pub struct ConnectionKillParts(pub Option<CancellationToken>);

impl<S: Send + Sync> FromRequestParts<S> for ConnectionKillParts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.version == axum::http::Version::HTTP_2 {
            return Ok(Self(None));
        }
        Ok(Self(
            parts
                .extensions
                .get::<ConnectionKill>()
                .map(|k| k.0.clone()),
        ))
    }
}

/// A stream that cannot be opened: 503 with Retry-After, so clients try again (elsewhere).
pub fn unavailable(e: SubscribeError) -> AppError {
    let code = match e {
        SubscribeError::Full => "notifier_full",
        SubscribeError::Closed => "notifier_shutting_down",
    };
    AppError::unavailable(code, e.to_string(), 2)
}
