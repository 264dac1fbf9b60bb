//! `POST /v1/dev/token`: a token for any user, for the local stack and tests. Mounted
//! only when `auth.dev_tokens` is on.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::auth::{validate_user_id, Role};
use crate::error::AppResult;
use crate::extract::Json;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    pub user_id: String,
    /// Defaults to `user`.
    pub role: Option<Role>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DevToken {
    pub token: String,
    pub user_id: String,
    pub role: Role,
    /// Unix seconds.
    pub expires_at: i64,
}

#[utoipa::path(post, path = "/v1/dev/token", tag = "dev", request_body = DevTokenRequest,
    responses((status = 200, body = DevToken), (status = 422, body = crate::error::Problem)))]
pub async fn issue_token(
    State(state): State<AppState>,
    Json(req): Json<DevTokenRequest>,
) -> AppResult<Json<DevToken>> {
    validate_user_id(&req.user_id)?;
    let role = req.role.unwrap_or(Role::User);
    let (token, expires_at) =
        state
            .jwt
            .issue(&req.user_id, role, state.settings.auth.token_ttl_secs)?;
    Ok(Json(DevToken {
        token,
        user_id: req.user_id,
        role,
        expires_at,
    }))
}
