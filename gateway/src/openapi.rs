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
        routes::holdbacks::request_status,
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
        routes::waitlist::mine,
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
    modifiers(&BearerAuth, &CommonErrors),
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

/// Errors every operation can answer besides its own, documented once here rather than
/// on each handler: malformed input (400), a missing or bad token (401), a JSON body that
/// is too large, not JSON or of the wrong shape (413, 415, 422). And problems are served
/// as `application/problem+json`, so that is their documented media type. schemathesis
/// (gateway/tests/schemathesis.rs) holds the API to this.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, RefOr, Response};
        let problem = |description: &str| {
            let schema = utoipa::openapi::Ref::from_schema_name("Problem");
            RefOr::T(
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content(PROBLEM_JSON, Content::new(Some(schema)))
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                for response in responses.values_mut() {
                    if let RefOr::T(Response { content, .. }) = response {
                        if content
                            .get("application/json")
                            .and_then(|c| c.schema.as_ref())
                            .is_some_and(is_problem)
                        {
                            if let Some(c) = content.shift_remove("application/json") {
                                content.insert(PROBLEM_JSON.to_owned(), c);
                            }
                        }
                    }
                }
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description));
                };
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || op.request_body.is_some()
                {
                    add(
                        "400",
                        "invalid_path, invalid_query, invalid_json, invalid_header",
                    );
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add(
                        "401",
                        "unauthorized: a missing, expired or invalid bearer token",
                    );
                }
                let json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.contains_key("application/json"));
                if op.request_body.is_some() {
                    add("413", "payload_too_large");
                }
                if json_body {
                    add(
                        "415",
                        "unsupported_media_type: the body must be application/json",
                    );
                    add(
                        "422",
                        "invalid_body: the JSON does not have the expected shape",
                    );
                }
            }
        }
    }
}

const PROBLEM_JSON: &str = "application/problem+json";

fn is_problem(schema: &utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> bool {
    matches!(schema, utoipa::openapi::RefOr::Ref(r) if r.ref_location.ends_with("/Problem"))
}

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn json() -> String {
    let mut doc = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    doc.push('\n');
    doc
}
