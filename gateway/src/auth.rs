//! Authentication: `seatq_common::http::auth` (shared with the notifier, so both verify
//! tokens alike), bound here to the gateway's state. Its items are re-exported because
//! this binding is what makes `AuthUser` and `AdminUser` extract from an `AppState`.

pub use seatq_common::http::auth::*;

use crate::state::AppState;

impl HasJwt for AppState {
    fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }
}
