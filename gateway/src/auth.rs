//! Authentication (shared with the notifier: `seatq_common::http::auth`).

pub use seatq_common::http::auth::*;

use crate::state::AppState;

impl HasJwt for AppState {
    fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }
}
