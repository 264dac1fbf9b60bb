//! The organiser's pages and the door, driven in real headless Chromium against the whole
//! stack, as people use them: an organiser (a dev token with role admin, from the login
//! form's "Organiser" box) creates a venue and an event in the browser, holds back a whole
//! section on the event's seat map page and releases it; the forms refuse bad input
//! themselves and show the API's problem (title, detail, code) when the API refuses; at the
//! door, one ticket scanned at two doors at the same moment (one reading it with the camera,
//! the other typing it) admits exactly once — one green screen, one red "already checked
//! in" — and a ticket for another event or a code that is no code is refused.
//! `SEATQ_SCREENSHOTS=1` saves organiser-venue, organiser-event, organiser-holdbacks,
//! checkin-admitted and checkin-refused to `docs/screenshots/`.

use std::time::Duration;

use seatq_common::testkit::eventually;
use seatq_system_tests::stack::Stack;
use serde_json::json;

use crate::chromium::{Browser, WAIT};

async fn stack() -> Stack {
    Stack::start(|s| s.notifier.embedded = true).await
}

/// Log in through the header form with "Organiser" ticked: the organiser links appear.
async fn login_organiser(browser: &Browser, name: &str) {
    browser.goto("#/").await;
    browser.type_into("login-name", name).await;
    browser.click("login-organiser").await;
    browser.click("login-button").await;
    browser
        .text_until("current-user", WAIT, |t| t == name)
        .await;
    shown(browser, "nav-admin").await;
}

/// Wait until the element with this test id is there and shown (not `hidden`).
async fn shown(browser: &Browser, id: &str) {
    let script = format!(
        "const e = document.querySelector('[data-testid=\"{id}\"]'); return !!e && !e.hidden && e.offsetParent !== null;"
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if browser.client.execute(&script, vec![]).await.ok() == Some(json!(true)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{id} not shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Type into the `n`th (0-based) element with this test id (the venue form's section rows).
async fn type_nth(browser: &Browser, id: &str, n: usize, text: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let all = browser
            .client
            .find_all(fantoccini::Locator::Css(&crate::chromium::testid(id)))
            .await
            .unwrap_or_default();
        if let Some(e) = all.get(n) {
            e.clear()
                .await
                .unwrap_or_else(|err| panic!("clear {id} #{n}: {err}"));
            e.send_keys(text)
                .await
                .unwrap_or_else(|err| panic!("type into {id} #{n}: {err}"));
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no {id} #{n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the full-screen verdict is gone (it goes by itself after a few seconds).
async fn result_cleared(door: &Browser) {
    eventually("the verdict to clear", WAIT, || async {
        let hidden = door
            .client
            .execute(
                "return document.querySelector('[data-testid=\"checkin-result\"]').hidden;",
                vec![],
            )
            .await
            .ok();
        (hidden == Some(json!(true))).then_some(())
    })
    .await;
    shown(door, "checkin-code").await;
}

/// "Scan next" on the verdict if it is still showing, as staff would tap it.
async fn back_to_scanning(door: &Browser) {
    door.client
        .execute(
            "const b = document.querySelector('[data-testid=\"checkin-next\"]'); if (b && b.offsetParent) b.click();",
            vec![],
        )
        .await
        .expect("script");
    result_cleared(door).await;
}

async fn select(browser: &Browser, id: &str, value: &str) {
    select_nth(browser, id, 0, value).await;
}

/// Choose `value` in the `n`th select with this test id, as a person picking it does (the
/// page hears `change`).
async fn select_nth(browser: &Browser, id: &str, n: usize, value: &str) {
    let script = "const e = document.querySelectorAll(arguments[0])[arguments[1]];
         if (!e || ![...e.options].some((o) => o.value === arguments[2])) return false;
         e.focus(); e.value = arguments[2];
         e.dispatchEvent(new Event('input', { bubbles: true }));
         e.dispatchEvent(new Event('change', { bubbles: true }));
         return true;";
    let args = vec![json!(crate::chromium::testid(id)), json!(n), json!(value)];
    let deadline = std::time::Instant::now() + WAIT;
    while browser.client.execute(script, args.clone()).await.ok() != Some(json!(true)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {value} in {id} #{n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A ticket: `user` holds `seat`, pays at the sandbox provider; the ticket's code.
async fn ticket_code(stack: &Stack, event: &str, user: &str, seat: &str) -> String {
    let token = stack.token(user).await;
    let hold = stack.hold(&token, event, &[seat]).await;
    let hold = hold["hold_id"].as_str().expect("hold id").to_owned();
    let checkout = stack.checkout(&token, &hold).await;
    stack.pay(&checkout, "succeed", json!({})).await;
    let booking = stack.booking_of(&token, &hold).await;
    booking["tickets"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("a ticket code: {booking}"))
        .to_owned()
}

async fn held_seats(stack: &Stack, event: &str) -> i64 {
    stack
        .count(&format!(
            "SELECT count(*) FROM seats WHERE event_id = '{event}' AND status = 'held'"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_sets_up_a_sale_and_holds_back_a_section() {
    let stack = stack().await;
    let boss = Browser::open(&stack.api.base).await;
    login_organiser(&boss, "boss").await;
    boss.click("nav-admin").await;

    // A venue: reserved stalls of 3 rows × 8 seats and a standing floor. The form checks
    // first: a price missing and a code used twice are refused before anything is sent.
    boss.type_into("venue-name", "Riverside Hall").await;
    boss.type_into("venue-city", "Leeds").await;
    type_nth(&boss, "section-code", 0, "A").await;
    type_nth(&boss, "section-name", 0, "Stalls").await;
    type_nth(&boss, "section-rows", 0, "3").await;
    type_nth(&boss, "section-seats", 0, "8").await;
    boss.click("section-add").await;
    type_nth(&boss, "section-code", 1, "A").await;
    type_nth(&boss, "section-name", 1, "Floor").await;
    select_nth(&boss, "section-kind", 1, "general_admission").await;
    type_nth(&boss, "section-capacity", 1, "100").await;
    type_nth(&boss, "section-price", 1, "25").await;
    boss.click("venue-submit").await;
    boss.attr_until("field-error", "data-field", WAIT, |f| f == "price")
        .await;
    let errors = boss
        .client
        .find_all(fantoccini::Locator::Css(&crate::chromium::testid(
            "field-error",
        )))
        .await
        .expect("errors");
    let mut texts = Vec::new();
    for e in &errors {
        texts.push(e.text().await.expect("text"));
    }
    assert!(
        texts.iter().any(|t| t.contains("used by another section")),
        "{texts:?}"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM venues").await,
        0,
        "nothing sent"
    );
    type_nth(&boss, "section-code", 1, "FLOOR").await;
    type_nth(&boss, "section-price", 0, "40.50").await;
    boss.click("venue-submit").await;
    let venue = boss
        .attr_until("venue-created", "data-venue-id", WAIT, |v| !v.is_empty())
        .await;
    boss.attr_until("venue-item", "data-venue-id", WAIT, |v| v == venue)
        .await;
    let admin = stack.admin_token().await;
    let (status, page) = stack.api.get("/v1/admin/venues", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 1, "{page}");
    let (status, refused) = stack
        .api
        .get("/v1/admin/venues?per_page=0", Some(&admin))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "invalid_query");
    let made = &page["venues"][0];
    assert_eq!(made["id"], venue.as_str());
    assert_eq!(made["name"], "Riverside Hall");
    assert_eq!(made["reserved_seats"], 24);
    assert_eq!(
        made["sections"],
        json!([
            {"code": "A", "name": "Stalls", "kind": "reserved", "rows": 3, "seats_per_row": 8,
             "capacity": 24, "price_cents": 4050},
            {"code": "FLOOR", "name": "Floor", "kind": "general_admission", "capacity": 100,
             "price_cents": 2500}
        ])
    );
    boss.screenshot("organiser-venue").await;

    // An event there, with its own rules; the start is the form's own (a week ahead).
    boss.click("venue-new-event").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let chosen = boss
            .el("event-venue")
            .await
            .prop("value")
            .await
            .ok()
            .flatten();
        if chosen.as_deref() == Some(venue.as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "venue not chosen: {chosen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    boss.type_into("event-title-input", "Spring Concert").await;
    boss.type_into("event-performer", "The Queue Jumpers").await;
    boss.type_into("event-max-seats", "4").await;
    boss.type_into("event-hold-ttl", "300").await;
    boss.type_into("event-refund", "48").await;
    select(&boss, "event-waiting-room", "off").await;
    boss.click("event-submit").await;
    let event = boss
        .attr_until("event-created", "data-event-id", WAIT, |v| !v.is_empty())
        .await;
    let (status, detail) = stack.api.get(&format!("/v1/events/{event}"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["title"], "Spring Concert");
    assert_eq!(detail["performer"], "The Queue Jumpers");
    assert_eq!(detail["venue"]["id"], venue.as_str());
    assert_eq!(detail["max_seats_per_user"], 4);
    assert_eq!(detail["hold_ttl_secs"], 300);
    assert_eq!(detail["refund_cutoff_hours"], 48);
    assert_eq!(detail["waiting_room_enabled"], false);
    assert_eq!(detail["sale_open"], true, "on sale now: {detail}");
    boss.screenshot("organiser-event").await;

    // Hold back the whole stalls section, then release it.
    boss.click("event-holdbacks-link").await;
    boss.el("seat-canvas-A").await;
    boss.click("holdback-mode-section").await;
    select(&boss, "holdback-section", "A").await;
    boss.type_into("holdback-note", "production").await;
    boss.click("holdback-submit").await;
    let hold = boss
        .attr_until("holdback", "data-hold-id", WAIT, |v| !v.is_empty())
        .await;
    boss.attr_until("holdback", "data-status", WAIT, |s| s == "active")
        .await;
    assert_eq!(held_seats(&stack, &event).await, 24);
    boss.text_until("map-counts", WAIT, |t| t.contains("24 held"))
        .await;
    boss.screenshot("organiser-holdbacks").await;
    let (status, list) = stack
        .api
        .get(&format!("/v1/admin/events/{event}/holdbacks"), Some(&admin))
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["holdbacks"][0]["hold_id"], hold.as_str());
    assert_eq!(list["holdbacks"][0]["note"], "production");

    boss.click("holdback-release").await;
    boss.attr_until("holdback", "data-status", WAIT, |s| s == "released")
        .await;
    eventually("the stalls back on sale", WAIT, || async {
        (held_seats(&stack, &event).await == 0).then_some(())
    })
    .await;
    boss.text_until("map-counts", WAIT, |t| t.contains(" 0 held"))
        .await;
    boss.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_holdback_shows_the_api_problem_and_the_pages_are_for_organisers() {
    let stack = stack().await;
    let event = stack.event(json!({})).await;
    // Someone holds A-1-1: a holdback of all of section A cannot be made.
    let buyer = stack.token("buyer").await;
    stack.hold(&buyer, &event, &["A-1-1"]).await;

    // A buyer's session sees no organiser pages.
    let browser = Browser::open(&stack.api.base).await;
    browser.goto("#/").await;
    browser.type_into("login-name", "fan").await;
    browser.click("login-button").await;
    browser
        .text_until("current-user", WAIT, |t| t == "fan")
        .await;
    assert_eq!(
        browser
            .el("nav-admin")
            .await
            .attr("hidden")
            .await
            .expect("attr"),
        Some("true".into())
    );
    browser
        .goto(&format!("#/admin/events/{event}/holdbacks"))
        .await;
    browser.el("admin-only").await;
    browser.click("logout-button").await;

    login_organiser(&browser, "desk").await;
    browser
        .goto(&format!("#/admin/events/{event}/holdbacks"))
        .await;
    // Picking seats: a taken seat is not taken into the selection; a free one is.
    browser.el("seat-canvas-A").await;
    browser.type_into("holdback-seat-input", "A-1-1").await;
    browser.click("holdback-seat-add").await;
    browser.type_into("holdback-seat-input", "A-2-4").await;
    browser.click("holdback-seat-add").await;
    browser
        .attr_until("holdback-seat", "data-seat-id", WAIT, |s| s == "A-2-4")
        .await;
    browser
        .text_until("holdback-count", WAIT, |t| t == "1")
        .await;

    // The whole section: refused by the API, which says why beside the form.
    browser.click("holdback-mode-section").await;
    select(&browser, "holdback-section", "A").await;
    browser.click("holdback-submit").await;
    let code = browser
        .attr_until("holdback-problem", "data-code", WAIT, |c| !c.is_empty())
        .await;
    assert_eq!(code, "seats_unavailable");
    browser
        .text_until("holdback-problem-detail", WAIT, |t| {
            t == "the request was refused: seats_unavailable"
        })
        .await;
    browser.el("holdbacks-empty").await;
    assert_eq!(held_seats(&stack, &event).await, 1, "only the buyer's seat");

    // The picked seat alone is fine.
    browser.click("holdback-mode-seats").await;
    browser.click("holdback-submit").await;
    browser
        .attr_until("holdback", "data-status", WAIT, |s| s == "active")
        .await;
    browser
        .text_until("holdback-seats", WAIT, |t| t == "A-2-4")
        .await;
    assert_eq!(
        stack.seat(&event, "A-2-4").await,
        ("held".to_owned(), Some("system:holdback".to_owned()))
    );
    // A release time in the past is refused by the form itself.
    browser.type_into("holdback-seat-input", "A-2-5").await;
    browser.click("holdback-seat-add").await;
    browser.click("holdback-release-timed").await;
    browser
        .client
        .execute(
            "const e = document.querySelector('[data-testid=\"holdback-release-at\"]'); e.value = '2020-01-01T10:00';",
            vec![],
        )
        .await
        .expect("script");
    browser.click("holdback-submit").await;
    browser
        .attr_until("field-error", "data-field", WAIT, |f| f == "release_at")
        .await;
    browser.close().await;
}

/// A stand-in for the browser's QR reader (Chromium on Linux has none): it "sees" the code
/// the test puts in `window.__seatqScan`, once. The camera is Chromium's fake one.
const FAKE_BARCODE_DETECTOR: &str = "
  window.BarcodeDetector = class {
    static async getSupportedFormats() { return ['qr_code']; }
    constructor(opts) { this.formats = opts.formats; }
    async detect(source) {
      if (!(source instanceof HTMLVideoElement) || !window.__seatqScan) return [];
      const rawValue = window.__seatqScan;
      window.__seatqScan = null;
      return [{ rawValue, format: 'qr_code' }];
    }
  };";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_doors_scanning_one_ticket_at_once_admit_it_exactly_once() {
    let stack = stack().await;
    let event = stack.event(json!({})).await;
    let code = ticket_code(&stack, &event, "guest", "A-1-4").await;

    // Door 1 reads QR codes with the camera; door 2 has no reader, its staff type.
    let camera_door = Browser::open_with(
        &stack.api.base,
        &[
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
        ],
    )
    .await;
    let typing_door = Browser::open(&stack.api.base).await;
    login_organiser(&camera_door, "door1").await;
    login_organiser(&typing_door, "door2").await;
    camera_door
        .client
        .execute(FAKE_BARCODE_DETECTOR, vec![])
        .await
        .expect("script");
    camera_door
        .client
        .execute(
            "location.hash = arguments[0];",
            vec![json!(format!("#/checkin/{event}"))],
        )
        .await
        .expect("script");
    typing_door.goto(&format!("#/checkin/{event}")).await;
    camera_door
        .attr_until("checkin-camera", "data-state", WAIT, |s| s == "scanning")
        .await;
    typing_door
        .attr_until("checkin-camera", "data-state", WAIT, |s| s == "unsupported")
        .await;
    typing_door.type_into("checkin-code", &code).await;

    // The same ticket at both doors at once.
    let scan = camera_door.client.execute(
        "window.__seatqScan = arguments[0];",
        vec![json!(code.clone())],
    );
    let (scanned, ()) = tokio::join!(scan, typing_door.click("checkin-submit"));
    scanned.expect("scan");
    let (first, second) = tokio::join!(
        camera_door.attr_until("checkin-result", "data-result", WAIT, |r| {
            r == "admitted" || r == "refused"
        }),
        typing_door.attr_until("checkin-result", "data-result", WAIT, |r| {
            r == "admitted" || r == "refused"
        }),
    );
    let (winner, loser) = match (first.as_str(), second.as_str()) {
        ("admitted", "refused") => (&camera_door, &typing_door),
        ("refused", "admitted") => (&typing_door, &camera_door),
        other => panic!("exactly one door must admit: {other:?}"),
    };
    tokio::join!(
        winner.screenshot("checkin-admitted"),
        loser.screenshot("checkin-refused")
    );
    assert_eq!(
        loser
            .attr_until("checkin-last", "data-code", WAIT, |c| !c.is_empty())
            .await,
        "already_checked_in"
    );
    loser
        .text_until("checkin-last", WAIT, |t| t.contains("Already checked in"))
        .await;
    winner
        .text_until("checkin-last", WAIT, |t| t.contains("A-1-4"))
        .await;
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM tickets WHERE event_id = '{event}' AND checked_in_at IS NOT NULL"
            ))
            .await,
        1
    );
    // Both doors go back to scanning by themselves.
    for door in [&camera_door, &typing_door] {
        result_cleared(door).await;
    }
    camera_door.close().await;
    typing_door.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_door_refuses_other_events_tickets_and_reads_typed_codes() {
    let stack = stack().await;
    let concert = stack.event(json!({})).await;
    let other = stack.event(json!({})).await;
    let code = ticket_code(&stack, &concert, "guest", "A-2-2").await;
    let door = Browser::open(&stack.api.base).await;
    login_organiser(&door, "door").await;

    // At the other event's door: red, wrong event.
    door.click("nav-checkin").await;
    let link = format!("[data-testid=\"checkin-event-link\"][data-event-id=\"{other}\"]");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match door.client.find(fantoccini::Locator::Css(&link)).await {
            Ok(e) if e.click().await.is_ok() => break,
            _ => {
                assert!(std::time::Instant::now() < deadline, "no door for {other}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    door.attr_until("checkin-camera", "data-state", WAIT, |s| s != "off")
        .await;
    door.type_into("checkin-code", &code).await;
    door.click("checkin-submit").await;
    let refused = door
        .attr_until("checkin-result", "data-code", WAIT, |c| !c.is_empty())
        .await;
    assert_eq!(refused, "wrong_event");
    door.text_until("checkin-last", WAIT, |t| t.contains("Wrong event"))
        .await;
    back_to_scanning(&door).await;

    // Not a ticket code at all: the form says so and sends nothing.
    door.goto(&format!("#/checkin/{concert}")).await;
    door.type_into("checkin-code", "hello").await;
    door.click("checkin-submit").await;
    door.text_until("checkin-code-error", WAIT, |t| {
        t.contains("not a ticket code")
    })
    .await;

    // The right door: green, then red for the same ticket again.
    door.type_into("checkin-code", &code).await;
    door.click("checkin-submit").await;
    door.attr_until("checkin-result", "data-result", WAIT, |r| r == "admitted")
        .await;
    door.text_until("checkin-last", WAIT, |t| t.contains("Seat A-2-2"))
        .await;
    back_to_scanning(&door).await;
    door.type_into("checkin-code", &code).await;
    door.click("checkin-submit").await;
    door.attr_until("checkin-result", "data-code", WAIT, |c| {
        c == "already_checked_in"
    })
    .await;
    door.attr_until("checkin-result", "data-result", WAIT, |r| r == "refused")
        .await;
    door.close().await;
}
