//! `POST /v1/dev/token`: a token for any user, for the local stack and tests. Mounted
//! only when `auth.dev_tokens` is on.

use axum::extract::State;
use seatq_common::http::error::{AppResult, Problem};
use seatq_common::http::extract::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{validate_user_id, Role};
use crate::state::AppState;

/// The token route (mounted only with `auth.dev_tokens`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(issue_token))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    /// 1 to 128 characters, no whitespace or control characters.
    #[schema(
        pattern = r"^[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]{1,128}$"
    )]
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
    responses((status = 200, body = DevToken), (status = 422, body = Problem)))]
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
