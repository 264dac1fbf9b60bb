//! The OpenAPI document, generated from the handlers' annotations. It is served at
//! `/v1/openapi.json` and committed as `docs/openapi.json`; a test fails when the
//! committed copy is stale (`SEATQ_UPDATE_OPENAPI=1` rewrites it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "seatq",
        version = "1",
        description = "Seats for high-demand events: hold requests are queued in Kafka and \
decided in order by one writer per partition. Errors are application/problem+json with a \
stable `code`."
    ),
    paths(
        routes::dev::issue_token,
        routes::admin::create_venue,
        routes::admin::create_event,
        routes::holdbacks::create,
        routes::holdbacks::list,
        routes::holdbacks::release,
        routes::holdbacks::stats,
        routes::events::list,
        routes::events::get,
        routes::events::seat_map,
        routes::holds::request_hold,
        routes::holds::request_status,
        routes::holds::get_hold,
        routes::holds::cancel_hold,
        routes::holds::my_holds,
        routes::queue::challenge,
        routes::queue::join,
        routes::queue::status,
        routes::payments::checkout,
        routes::payments::webhook,
        routes::waitlist::join,
        routes::waitlist::place,
        routes::waitlist::leave,
        routes::bookings::get_booking,
        routes::bookings::my_bookings,
        routes::bookings::cancel_booking,
        routes::bookings::get_ticket,
        routes::bookings::ticket_qr,
        routes::bookings::transfer_ticket,
        routes::bookings::check_in,
        routes::health::healthz,
        routes::health::readyz,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Browse events and seat maps"),
        (name = "holds", description = "Request holds and follow their decisions"),
        (name = "waiting room", description = "Virtual waiting room for on-sales: join, position, admission"),
        (name = "waitlist", description = "Wait for a taken seat; it is offered to the first in line"),
        (name = "payments", description = "Checkout and the payment provider's signed webhooks"),
        (name = "bookings", description = "Bookings, tickets, transfers and check-in"),
        (name = "admin", description = "Venues and events (admin role)"),
        (name = "dev", description = "Local-stack helpers"),
        (name = "ops", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn json() -> String {
    let mut doc = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    doc.push('\n');
    doc
}
