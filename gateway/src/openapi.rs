//! The OpenAPI document. Its operations come from the routers themselves
//! (`routes::api_router`, and the notifier's stream routes from `seatq_notifier`): each
//! route is declared once, so the document lists exactly the routes that are served. This
//! module adds what is said once for all of them (title, tags, the bearer scheme, the
//! errors every operation can answer). It is served at `/v1/openapi.json` and committed as
//! `docs/openapi.json`; a test fails when the committed copy is stale
//! (`SEATQ_UPDATE_OPENAPI=1` rewrites it).

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// What the document says besides its operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "seatq",
        version = "1",
        description = "Seats for high-demand events: hold requests are queued in Kafka and \
decided in order by one writer per partition. Errors are application/problem+json with a \
stable `code`. Live updates (the `streams` operations) come from the notifier: its own \
service in production, served by the gateway too with `notifier.embedded` (the local stack)."
    ),
    components(schemas(seatq_common::http::error::Problem)),
    tags(
        (name = "events", description = "Browse events and seat maps"),
        (name = "holds", description = "Request holds and follow their decisions"),
        (name = "waiting room", description = "Virtual waiting room for on-sales: join, position, admission"),
        (name = "waitlist", description = "Wait for a taken seat; it is offered to the first in line"),
        (name = "payments", description = "Checkout and the payment provider's signed webhooks"),
        (name = "bookings", description = "Bookings, tickets, transfers and check-in"),
        (name = "streams", description = "Live updates: seat maps and your own notifications, over Server-Sent Events or a WebSocket"),
        (name = "admin", description = "Venues and events (admin role)"),
        (name = "dev", description = "Local-stack helpers"),
        (name = "ops", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// The document: every route of the API (the local-stack token route included) and the
/// notifier's streams, with the bearer scheme and the errors common to all operations.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = crate::routes::api_router(true).split_for_parts();
    let mut doc = ApiDoc::openapi()
        .merge_from(api)
        .merge_from(seatq_notifier::openapi());
    BearerAuth.modify(&mut doc);
    CommonErrors.modify(&mut doc);
    doc
}

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
/// on each handler: malformed input (400), a missing or bad token (401), a user's token on
/// an admin route (403), a JSON body that is too large, not JSON or of the wrong shape
/// (413, 415, 422). And problems are served as `application/problem+json`, so that is
/// their documented media type. schemathesis (gateway/tests/schemathesis.rs) holds the
/// API to this.
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
                if op
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| t == "admin"))
                {
                    add("403", "admin_only: the token's role is not admin");
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
    let mut doc = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    doc.push('\n');
    doc
}

/// `GET /v1/openapi.json`: the document, built once.
pub async fn serve() -> Response {
    static JSON: LazyLock<String> = LazyLock::new(json);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        JSON.as_str(),
    )
        .into_response()
}
