//! The sandbox's payment page, where seatq sends the buyer (`payment_url`).
//!
//! Plain server-rendered HTML with one form, so it works without JavaScript, with a
//! keyboard and a screen reader, and is easy for browser tests to drive (`data-testid`
//! on the buttons). Paying or declining here completes the session exactly like the API's
//! `complete` with its defaults: one `payment.processing`, then one outcome webhook.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use seatq_common::http::error::AppResult;
use seatq_common::http::extract::Path;
use serde::Deserialize;

use super::api::{self, Finish, Outcome};
use super::store::{self, SessionRow};
use super::webhooks::Plan;
use super::SandboxState;

#[derive(Debug, Deserialize)]
pub(super) struct PayForm {
    outcome: Outcome,
}

/// `GET /sandbox/pay/{session_id}`: the payment form, or the result if already completed.
pub(super) async fn show(
    State(state): State<SandboxState>,
    Path(session_id): Path<String>,
) -> AppResult<Response> {
    Ok(match store::session(&state.pool, &session_id).await? {
        None => not_found(),
        Some(session) if session.is_open() => page(StatusCode::OK, &pay_form(&session)),
        Some(session) => page(StatusCode::OK, &result(&state, &session, true)),
    })
}

/// `POST /sandbox/pay/{session_id}` (form `outcome=succeed|fail`): complete and show the
/// result.
pub(super) async fn submit(
    State(state): State<SandboxState>,
    Path(session_id): Path<String>,
    form: Result<Form<PayForm>, FormRejection>,
) -> AppResult<Response> {
    let Ok(Form(form)) = form else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            &Doc {
                title: "Choose Pay or Decline".into(),
                body: "<h1>Choose Pay or Decline</h1>\n<p>The form was incomplete. \
                    Go back and press one of the two buttons.</p>"
                    .into(),
            },
        ));
    };
    Ok(
        match api::complete(
            &state,
            &session_id,
            form.outcome,
            Plan::default(),
            &store::CompleteOptions::default(),
        )
        .await?
        {
            Finish::Done { session, .. } => page(StatusCode::OK, &result(&state, &session, false)),
            Finish::AlreadyCompleted(session) => {
                page(StatusCode::CONFLICT, &result(&state, &session, true))
            }
            Finish::NotFound => not_found(),
        },
    )
}

struct Doc {
    title: String,
    /// Inner HTML of `<main>`, already escaped.
    body: String,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;\
color:#1b1d21;line-height:1.5}main{max-width:28rem;margin:3rem auto;padding:2rem;\
background:#fff;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.5rem;margin-top:0}.badge{display:inline-block;background:#fff4ce;\
color:#5c4400;padding:.15rem .6rem;border-radius:1rem;font-size:.875rem}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}\
label{display:block;font-weight:600;margin-top:1rem}input{font:inherit;width:100%;\
box-sizing:border-box;padding:.5rem;border:1px solid #6b7280;border-radius:.375rem}\
.hint{color:#4b5563;font-size:.875rem;margin:.25rem 0 1rem}.actions{display:flex;gap:.75rem}\
button{font:inherit;font-weight:600;padding:.6rem 1.4rem;border-radius:.375rem;\
border:2px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1d4ed8}\
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}a{color:#1d4ed8}";

fn page(status: StatusCode, doc: &Doc) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · seatq sandbox payments</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<p class=\"badge\">Sandbox: no real money moves</p>\n{body}\n</main>\n\
         </body>\n</html>\n",
        title = escape(&doc.title),
        body = doc.body,
    );
    // A payment page must never be served from a cache after it changed state.
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        &Doc {
            title: "Payment not found".into(),
            body: "<h1>Payment not found</h1>\n<p>This payment link is not valid.</p>".into(),
        },
    )
}

fn pay_form(session: &SessionRow) -> Doc {
    let amount = escape(&format_amount(session.amount_cents, &session.currency));
    let description = escape(&session.description);
    let action = escape(&format!("/sandbox/pay/{}", session.id));
    Doc {
        title: format!(
            "Pay {}",
            format_amount(session.amount_cents, &session.currency)
        ),
        body: format!(
            "<h1>Pay {amount}</h1>\n\
             <dl>\n<dt>For</dt><dd data-testid=\"description\">{description}</dd>\n\
             <dt>Amount</dt><dd data-testid=\"amount\">{amount}</dd>\n</dl>\n\
             <form method=\"post\" action=\"{action}\">\n\
             <label for=\"card\">Card number</label>\n\
             <input id=\"card\" name=\"card\" value=\"4242 4242 4242 4242\" readonly \
             autocomplete=\"off\" aria-describedby=\"card-hint\">\n\
             <p id=\"card-hint\" class=\"hint\">A test card: nothing is charged.</p>\n\
             <div class=\"actions\">\n\
             <button type=\"submit\" name=\"outcome\" value=\"succeed\" \
             data-testid=\"pay-button\">Pay</button>\n\
             <button type=\"submit\" name=\"outcome\" value=\"fail\" class=\"secondary\" \
             data-testid=\"decline-button\">Decline</button>\n\
             </div>\n</form>"
        ),
    }
}

/// The outcome of a completed session; `earlier` when it was completed before this
/// request.
fn result(state: &SandboxState, session: &SessionRow, earlier: bool) -> Doc {
    let amount = escape(&format_amount(session.amount_cents, &session.currency));
    let (title, message) = if session.status == "succeeded" {
        (
            "Payment succeeded",
            format!("{amount} was paid. seatq will confirm your booking in a moment."),
        )
    } else {
        (
            "Payment declined",
            "Nothing was charged. You can go back and try again while your seats are held."
                .to_owned(),
        )
    };
    let earlier = if earlier {
        "<p>This payment was already completed.</p>\n"
    } else {
        ""
    };
    let back = escape(&session.return_url.clone().unwrap_or_else(|| {
        format!(
            "{}/",
            state.settings.gateway.public_url.trim_end_matches('/')
        )
    }));
    Doc {
        title: title.into(),
        body: format!(
            "<h1 data-testid=\"result-status\" data-status=\"{status}\">{title}</h1>\n\
             {earlier}<p role=\"status\">{message}</p>\n\
             <p><a href=\"{back}\" data-testid=\"back-link\">Back to seatq</a></p>",
            status = escape(&session.status),
        ),
    }
}

/// `EUR 1,234.50`: the currency code and the amount in major units.
fn format_amount(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let units = (cents / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!(
        "{} {sign}{grouped}.{:02}",
        currency.to_ascii_uppercase(),
        cents % 100
    )
}

/// Text safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped() {
        assert_eq!(format_amount(0, "eur"), "EUR 0.00");
        assert_eq!(format_amount(5, "EUR"), "EUR 0.05");
        assert_eq!(format_amount(5000, "usd"), "USD 50.00");
        assert_eq!(format_amount(123_456_789, "EUR"), "EUR 1,234,567.89");
        assert_eq!(format_amount(-100_050, "EUR"), "EUR -1,000.50");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<b>"Tom & Jerry's"</b>"#),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
    }
}
