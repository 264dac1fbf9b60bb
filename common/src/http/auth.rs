//! Authentication: HS256 JWTs whose `sub` is the user id and `role` is `user` or `admin`.
//!
//! Handlers take [`AuthUser`] or [`AdminUser`] as an argument; the extractor verifies the
//! `Authorization: Bearer` token and rejects with a 401/403 problem before the handler
//! runs.
//!
//! Only the live-update streams take the token from the query string as well
//! ([`StreamUser`], `?access_token=`): EventSource cannot set headers. Everywhere else a
//! token in the URL is ignored, because URLs end up in access logs, proxy logs, browser
//! history and `Referer` headers; a stream URL is opened by the app itself and never shown.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::AppError;
use crate::ids::UserId;

/// State that can verify tokens: what the [`AuthUser`] extractor needs from a service.
pub trait HasJwt {
    fn jwt(&self) -> &JwtKeys;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// An HS256 key and its validation rules (`exp` and `sub` required, 5 s leeway for clock
/// skew): what login tokens and the gateway's admission tokens share.
#[derive(Clone)]
pub struct Hs256Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Hs256Keys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::default(), claims, &self.encoding)
    }

    /// The claims of `token` if it is signed with this key and valid now.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

/// Login token keys, derived from the configured secret.
#[derive(Clone)]
pub struct JwtKeys(Hs256Keys);

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        Self(Hs256Keys::new(secret))
    }

    /// A token for `user_id` valid for `ttl_secs`; returns it with its expiry (unix secs).
    pub fn issue(
        &self,
        user_id: &str,
        role: Role,
        ttl_secs: u64,
    ) -> Result<(String, i64), AppError> {
        let iat = Utc::now().timestamp();
        let exp = iat + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user_id.to_owned(),
            role,
            iat,
            exp,
        };
        self.0
            .sign(&claims)
            .map(|t| (t, exp))
            .map_err(|e| AppError::internal("jwt encode", e))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let claims: Claims = self
            .0
            .verify(token)
            .map_err(|e| AppError::unauthorized(format!("invalid token: {e}")))?;
        validate_user_id(&claims.sub)
            .map_err(|_| AppError::unauthorized("invalid token: bad subject"))?;
        Ok(claims)
    }
}

/// A user id is 1..=128 printable characters without whitespace.
pub fn validate_user_id(id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.chars().count() <= UserId::MAX_LEN
        && id.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "invalid_user_id",
            "user_id must be 1 to 128 printable characters without spaces",
        ))
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Owners and admins may see a resource.
    pub fn may_see(&self, owner: &UserId) -> bool {
        self.is_admin() || &self.user_id == owner
    }
}

/// An authenticated caller with the admin role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

/// The bearer token of a request's `Authorization` header.
pub fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The bearer token of a stream request: the `Authorization` header, or `?access_token=`
/// (see the module docs: stream routes only).
pub fn stream_token(parts: &Parts) -> Option<String> {
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return bearer_token(parts);
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "access_token")
            .map(|(_, v)| v.to_owned())
    })
}

impl AuthUser {
    fn from_token<S: HasJwt>(token: Option<String>, state: &S) -> Result<Self, AppError> {
        let token = token.ok_or_else(|| AppError::unauthorized("missing bearer token"))?;
        let claims = state.jwt().verify(&token)?;
        Ok(AuthUser {
            user_id: UserId(claims.sub),
            role: claims.role,
        })
    }
}

impl<S: HasJwt + Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Self::from_token(bearer_token(parts), state)
    }
}

/// The authenticated caller of a live-update stream: like [`AuthUser`], and the token may
/// also come as `?access_token=` (EventSource cannot set headers).
#[derive(Debug, Clone)]
pub struct StreamUser(pub AuthUser);

impl<S: HasJwt + Send + Sync> FromRequestParts<S> for StreamUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        AuthUser::from_token(stream_token(parts), state).map(Self)
    }
}

impl<S: HasJwt + Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(AppError::forbidden(
                "admin_only",
                "this route needs the admin role",
            ));
        }
        Ok(AdminUser(user))
    }
}
