//! HTTP routes, one module per resource. Handlers are thin: extract, call a service
//! function, shape the response.
//!
//! Each route is declared once: its `#[utoipa::path]` names the method and path, and the
//! module's `router()` registers the handler with `utoipa_axum::routes!`, which builds the
//! axum route and the OpenAPI operation from that one declaration. So the served router
//! and the document (`crate::openapi`) cannot disagree about which routes exist. Layers
//! that belong to one route (the hold route's metrics) are put on it in its module.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod admin;
pub mod bookings;
pub mod control_room;
pub mod dev;
pub mod events;
pub mod health;
pub mod holdbacks;
pub mod holds;
pub mod payments;
pub mod waiting_room;
pub mod waitlist;

/// The whole HTTP API: every area's routes with their OpenAPI operations, the document's
/// own route, and with `dev_tokens` the local-stack token route (`auth.dev_tokens`). The
/// browser app, the sandbox provider and the notifier's streams are merged by `app`.
pub fn api_router(dev_tokens: bool) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::default()
        .merge(events::router())
        .merge(holds::router())
        .merge(waiting_room::router())
        .merge(waitlist::router())
        .merge(payments::router())
        .merge(bookings::router())
        .merge(admin::router())
        .merge(holdbacks::router())
        .merge(control_room::router())
        .merge(health::router())
        .route(
            "/v1/openapi.json",
            axum::routing::get(crate::openapi::serve),
        );
    if dev_tokens {
        api.merge(dev::router())
    } else {
        api
    }
}
