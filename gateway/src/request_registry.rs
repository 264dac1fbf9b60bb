//! What the gateway remembers in Redis about requests it accepted: who sent each one
//! (so only its owner can poll it before the consumer decides) and `Idempotency-Key`s.
//!
//! Decided requests are answered from PostgreSQL; these entries only bridge the moment
//! between the broker's acknowledgement and the decision, and expire after a day.
//!
//! An idempotency key is claimed (SET NX) *before* producing. A repeat finds the claim and
//! gets the same request id; if the first attempt never reached the broker (crash, broker
//! down), the repeat produces the same command again under the same request id — the
//! consumer applies a request id at most once, so that is safe. If the first attempt was
//! abandoned (refused with a 503 and recorded `not_accepted`, `commands::abandon`), it can
//! never be applied: the repeat takes the key over for a new request id (compare and set,
//! so two concurrent repeats make one new attempt).
//!
//! Losing an entry of accepted requests loses nothing but the queue position: the status
//! route still knows a request it issued by its id (`request_ids`).

use redis::AsyncCommands;
use seatq_common::http::error::AppError;
use seatq_common::ids::{EventId, RequestId, UserId};
use serde::{Deserialize, Serialize};

const TTL_SECS: u64 = 24 * 3600;

/// A request accepted by the broker but maybe not decided yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptedRequest {
    pub user_id: UserId,
    pub event_id: EventId,
    pub partition: i32,
    pub offset: i64,
    /// Place within the record, and how many commands the record carries.
    #[serde(default)]
    pub seq: i32,
    #[serde(default = "one")]
    pub record_commands: i32,
    pub accepted_at: chrono::DateTime<chrono::Utc>,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyClaim {
    request_id: RequestId,
    /// Hash of the event and body: a key reused for a different request is an error.
    fingerprint: String,
}

pub enum Claim {
    /// The key is new: go ahead with this request id.
    Fresh,
    /// The key was used before, for the same request.
    Repeat(RequestId),
}

fn redis_down(e: redis::RedisError) -> AppError {
    tracing::warn!(error = %e, "redis unavailable");
    AppError::unavailable("redis_unavailable", "request tracking is unavailable", 2)
}

fn accepted_key(id: RequestId) -> String {
    format!("seatq:req:{id}")
}

fn idempotency_key(user: &UserId, key: &str) -> String {
    format!("seatq:idem:{user}:{key}")
}

pub async fn record_accepted(
    redis: &mut redis::aio::ConnectionManager,
    id: RequestId,
    request: &AcceptedRequest,
) -> Result<(), AppError> {
    let json = serde_json::to_string(request).map_err(|e| AppError::internal("encode", e))?;
    redis
        .set_ex::<_, _, ()>(accepted_key(id), json, TTL_SECS)
        .await
        .map_err(redis_down)
}

pub async fn find_accepted(
    redis: &mut redis::aio::ConnectionManager,
    id: RequestId,
) -> Result<Option<AcceptedRequest>, AppError> {
    let json: Option<String> = redis.get(accepted_key(id)).await.map_err(redis_down)?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Claim `key` for `request_id`, or find the request it was claimed for.
pub async fn claim_idempotency_key(
    redis: &mut redis::aio::ConnectionManager,
    user: &UserId,
    key: &str,
    request_id: RequestId,
    fingerprint: &str,
) -> Result<Claim, AppError> {
    let redis_key = idempotency_key(user, key);
    let claim = IdempotencyClaim {
        request_id,
        fingerprint: fingerprint.to_owned(),
    };
    let json = serde_json::to_string(&claim).map_err(|e| AppError::internal("encode", e))?;
    let claimed: bool = redis::cmd("SET")
        .arg(&redis_key)
        .arg(&json)
        .arg("NX")
        .arg("EX")
        .arg(TTL_SECS)
        .query_async::<Option<String>>(redis)
        .await
        .map_err(redis_down)?
        .is_some();
    if claimed {
        return Ok(Claim::Fresh);
    }
    let existing: Option<String> = redis.get(&redis_key).await.map_err(redis_down)?;
    let existing: IdempotencyClaim = existing
        .and_then(|j| serde_json::from_str(&j).ok())
        .ok_or_else(|| {
            AppError::new(
                axum::http::StatusCode::CONFLICT,
                "idempotency_key_in_flux",
                "the idempotency key is being replaced; retry",
            )
        })?;
    if existing.fingerprint != fingerprint {
        return Err(AppError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    Ok(Claim::Repeat(existing.request_id))
}

/// Replace the claim of `key` for the abandoned request `old` by one for `new`; false if
/// the claim is no longer `old`'s (a concurrent repeat replaced it first).
pub async fn replace_idempotency_claim(
    redis: &mut redis::aio::ConnectionManager,
    user: &UserId,
    key: &str,
    old: RequestId,
    new: RequestId,
    fingerprint: &str,
) -> Result<bool, AppError> {
    let encode = |request_id| {
        serde_json::to_string(&IdempotencyClaim {
            request_id,
            fingerprint: fingerprint.to_owned(),
        })
        .map_err(|e| AppError::internal("encode", e))
    };
    let replaced: i64 = redis::Script::new(REPLACE_CLAIM)
        .key(idempotency_key(user, key))
        .arg(encode(old)?)
        .arg(encode(new)?)
        .arg(TTL_SECS)
        .invoke_async(redis)
        .await
        .map_err(redis_down)?;
    Ok(replaced == 1)
}

/// Compare and set: KEYS[1] becomes ARGV[2] (for ARGV[3] seconds) only if it is ARGV[1].
const REPLACE_CLAIM: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// Whether `key` was claimed by an earlier request of `user` (read only).
pub async fn idempotency_key_claimed(
    redis: &mut redis::aio::ConnectionManager,
    user: &UserId,
    key: &str,
) -> Result<bool, AppError> {
    redis
        .exists(idempotency_key(user, key))
        .await
        .map_err(redis_down)
}

/// `Idempotency-Key`: 1 to 128 visible ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), AppError> {
    if (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        ))
    }
}
