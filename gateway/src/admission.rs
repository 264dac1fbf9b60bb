//! Admission tokens: what a user gets from the waiting room when it is their turn, and what
//! every way to buy (`POST /v1/events/{id}/holds`, joining a seat's waitlist) asks for
//! (`X-Admission-Token`) while the event's waiting room is on.
//!
//! An HS256 JWT signed with `waiting_room.secret` (not the login secret: a leaked login
//! key must not let anyone skip the line), bound to the user, the event and the queue
//! ticket, and valid for `waiting_room.admission_ttl_secs` from admission.

use chrono::{DateTime, Utc};
use seatq_common::http::auth::Hs256Keys;
use seatq_common::http::error::AppError;
use seatq_common::ids::{EventId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const KIND: &str = "admission";

/// May `user` buy at this event now (hold seats, wait for one)? Not before the sale opens,
/// and, with a waiting room, only with its admission token. The consumer checks both again
/// when it decides; this answers early and clearly.
pub fn sale_gate(
    keys: &AdmissionKeys,
    info: &seatq_common::catalog::EventInfo,
    user: &UserId,
    headers: &axum::http::HeaderMap,
) -> Result<(), AppError> {
    if info.on_sale_at > Utc::now() {
        return Err(
            AppError::forbidden("sale_not_open", "this event is not on sale yet")
                .with("on_sale_at", info.on_sale_at),
        );
    }
    if info.waiting_room_enabled {
        let token = headers
            .get("x-admission-token")
            .and_then(|v| v.to_str().ok());
        keys.verify(token, user, info.id)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmissionClaims {
    pub sub: String,
    pub evt: EventId,
    pub tkt: Uuid,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct AdmissionKeys(Hs256Keys);

impl AdmissionKeys {
    pub fn new(secret: &str) -> Self {
        Self(Hs256Keys::new(secret))
    }

    /// The token of a ticket admitted at `admitted_at`; with its expiry.
    pub fn issue(
        &self,
        user: &UserId,
        event: EventId,
        ticket: Uuid,
        admitted_at: DateTime<Utc>,
        ttl_secs: i64,
    ) -> Result<(String, DateTime<Utc>), AppError> {
        let expires_at = admitted_at + chrono::Duration::seconds(ttl_secs.max(1));
        let claims = AdmissionClaims {
            sub: user.0.clone(),
            evt: event,
            tkt: ticket,
            typ: KIND.into(),
            iat: admitted_at.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = self
            .0
            .sign(&claims)
            .map_err(|e| AppError::internal("admission token", e))?;
        Ok((token, expires_at))
    }

    /// Check `token` for `user` at `event`: 403 with a precise code otherwise.
    pub fn verify(
        &self,
        token: Option<&str>,
        user: &UserId,
        event: EventId,
    ) -> Result<(), AppError> {
        let token = token.ok_or_else(|| {
            AppError::forbidden(
                "admission_required",
                "this event has a waiting room: join it and send its admission token as X-Admission-Token",
            )
        })?;
        let claims: AdmissionClaims = self.0.verify(token.trim()).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AppError::forbidden(
                "admission_expired",
                "your admission has expired: join the waiting room again",
            ),
            _ => AppError::forbidden("admission_invalid", "this is not a valid admission token"),
        })?;
        if claims.typ != KIND || claims.sub != user.0 {
            return Err(AppError::forbidden(
                "admission_invalid",
                "this admission token is not yours",
            ));
        }
        if claims.evt != event {
            return Err(AppError::forbidden(
                "admission_wrong_event",
                "this admission token is for another event",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_admits_its_user_to_its_event_only() {
        let keys = AdmissionKeys::new("secret");
        let (user, event) = (UserId("ann".into()), EventId::new());
        let (token, _) = keys
            .issue(&user, event, Uuid::new_v4(), Utc::now(), 60)
            .expect("token");
        assert!(keys.verify(Some(&token), &user, event).is_ok());
        let code = |r: Result<(), AppError>| r.expect_err("refused").code;
        assert_eq!(code(keys.verify(None, &user, event)), "admission_required");
        assert_eq!(
            code(keys.verify(Some("x.y.z"), &user, event)),
            "admission_invalid"
        );
        assert_eq!(
            code(keys.verify(Some(&token), &UserId("bob".into()), event)),
            "admission_invalid"
        );
        assert_eq!(
            code(keys.verify(Some(&token), &user, EventId::new())),
            "admission_wrong_event"
        );
        let forged = AdmissionKeys::new("other")
            .issue(&user, event, Uuid::new_v4(), Utc::now(), 60)
            .expect("token")
            .0;
        assert_eq!(
            code(keys.verify(Some(&forged), &user, event)),
            "admission_invalid"
        );
        let (old, _) = keys
            .issue(
                &user,
                event,
                Uuid::new_v4(),
                Utc::now() - chrono::Duration::hours(2),
                60,
            )
            .expect("token");
        assert_eq!(
            code(keys.verify(Some(&old), &user, event)),
            "admission_expired"
        );
    }
}
