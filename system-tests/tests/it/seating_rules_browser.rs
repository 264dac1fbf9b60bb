//! The seating rules in the web app, driven in real headless Chromium against the whole
//! stack: a buyer whose seats would leave one alone reads which seat and takes the
//! suggested seats in one click; the map's legend lists the seat marks and price
//! categories, and its filters change which seats are highlighted; a buyer who needs a
//! wheelchair space ticks the box and holds a space with its companion seat in one hold,
//! while without the box the page keeps those seats back and says until when (and a page
//! that asks anyway shows the queue's `seats_reserved_for_access`); an organiser
//! creates a venue with a price category and seat ranges, and an event with the seating
//! rules, through the forms (which refuse what the API would). `SEATQ_SCREENSHOTS=1` saves
//! seating-map, seating-suggestion and seating-venue to `docs/screenshots/`.

use std::time::{Duration, Instant};

use chrono::Utc;
use seatq_system_tests::stack::Stack;
use serde_json::{json, Value};

use crate::chromium::{testid, Browser, WAIT};

async fn stack() -> Stack {
    Stack::start(|s| s.notifier.embedded = true).await
}

/// Section S: 2 rows of 8 seats, 50.00 each, with an aisle between seats 4 and 5;
/// wheelchair spaces S-2-1, S-2-8 and S-1-8, companion seats S-2-2 and S-2-7; restricted
/// views S-2-4..6; row 1 in the FRONT price category (90.00).
fn sections() -> Value {
    json!([{
        "kind": "reserved", "code": "S", "name": "Stalls", "rows": 2, "seats_per_row": 8,
        "price_cents": 5000,
        "seat_ranges": [
            {"rows": [1, 2], "seats": [4, 5], "attributes": ["aisle"]},
            {"rows": [2, 2], "seats": [1, 1], "attributes": ["accessible"]},
            {"rows": [2, 2], "seats": [8, 8], "attributes": ["accessible"]},
            {"rows": [1, 1], "seats": [8, 8], "attributes": ["accessible"]},
            {"rows": [2, 2], "seats": [2, 2], "attributes": ["companion"]},
            {"rows": [2, 2], "seats": [7, 7], "attributes": ["companion"]},
            {"rows": [2, 2], "seats": [4, 6], "attributes": ["restricted_view"]},
            {"rows": [1, 1], "seats": [1, 8], "price_category": "FRONT"}
        ]
    }])
}

/// A venue with [`sections`] and an event on sale there; `extra` sets event fields.
async fn event(stack: &Stack, extra: Value) -> String {
    let admin = stack.admin_token().await;
    let (status, venue) = stack
        .api
        .post(
            "/v1/admin/venues",
            Some(&admin),
            &json!({"name": "Rules Hall", "city": "York", "sections": sections(),
                    "price_categories": [{"code": "FRONT", "name": "Front row", "price_cents": 9000}]}),
        )
        .await;
    assert_eq!(status, 201, "{venue}");
    let mut body = json!({
        "venue_id": venue["id"],
        "title": "Rules Night",
        "performer": "The Gaps",
        "starts_at": (Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
        "on_sale_at": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "waiting_room_enabled": false,
    });
    if let (Some(obj), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        obj.extend(extra.clone());
    }
    let (status, ev) = stack
        .api
        .post("/v1/admin/events", Some(&admin), &body)
        .await;
    assert_eq!(status, 201, "{ev}");
    ev["id"].as_str().expect("event id").to_owned()
}

/// A seat of section S by row and number: its status and the user holding it.
async fn seat(stack: &Stack, event: &str, row: i32, number: i32) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT s.status, h.user_id FROM seats s LEFT JOIN holds h ON h.id = s.hold_id \
         WHERE s.event_id = $1::uuid AND s.row_no = $2 AND s.seat_number = $3",
    )
    .bind(event)
    .bind(row)
    .bind(number)
    .fetch_one(stack.pool())
    .await
    .expect("seat")
}

/// Add a seat to the selection through "Pick a seat by number".
async fn add_seat(browser: &Browser, id: &str) {
    browser.type_into("seat-id-input", id).await;
    browser.click("seat-add").await;
}

/// What the page's seat map says about a seat (`SeatMap.info`), as JSON.
async fn seat_info(browser: &Browser, id: &str) -> Value {
    browser
        .client
        .execute(
            "return document.querySelector('[data-testid=\"seat-map\"]').seatMap.info(arguments[0]);",
            vec![json!(id)],
        )
        .await
        .expect("seat info")
}

/// Type into the `n`th (0-based) element with this test id.
async fn type_nth(browser: &Browser, id: &str, n: usize, text: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = browser
            .client
            .find_all(fantoccini::Locator::Css(&testid(id)))
            .await
            .unwrap_or_default();
        if let Some(e) = all.get(n) {
            e.clear().await.expect("clear");
            e.send_keys(text).await.expect("type");
            return;
        }
        assert!(Instant::now() < deadline, "no {id} #{n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Click the `n`th (0-based) element with this test id.
async fn click_nth(browser: &Browser, id: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = browser
            .client
            .find_all(fantoccini::Locator::Css(&testid(id)))
            .await
            .unwrap_or_default();
        if let Some(e) = all.get(n) {
            if e.click().await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "cannot click {id} #{n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Choose `value` in the `n`th select with this test id, as a person picking it does.
async fn select_nth(browser: &Browser, id: &str, n: usize, value: &str) {
    let script = "const e = document.querySelectorAll(arguments[0])[arguments[1]];
         if (!e || ![...e.options].some((o) => o.value === arguments[2])) return false;
         e.focus(); e.value = arguments[2];
         e.dispatchEvent(new Event('input', { bubbles: true }));
         e.dispatchEvent(new Event('change', { bubbles: true }));
         return true;";
    let args = vec![json!(testid(id)), json!(n), json!(value)];
    let deadline = Instant::now() + WAIT;
    while browser.client.execute(script, args.clone()).await.ok() != Some(json!(true)) {
        assert!(Instant::now() < deadline, "no {value} in {id} #{n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The texts of every element with this test id.
async fn texts(browser: &Browser, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in browser
        .client
        .find_all(fantoccini::Locator::Css(&testid(id)))
        .await
        .expect("find")
    {
        out.push(e.text().await.expect("text"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_buyer_who_would_leave_a_seat_alone_takes_the_suggestion_in_one_click() {
    let stack = stack().await;
    let event = event(&stack, json!({})).await;
    let buyer = Browser::open(&stack.api.base).await;
    buyer.login(&stack.user("gappy")).await;
    buyer.open_event(&event).await;

    // S-1-2 and S-1-3, front row: 90.00 each, before anything is held.
    add_seat(&buyer, "S-1-2").await;
    add_seat(&buyer, "S-1-3").await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "2")
        .await;
    buyer
        .attr_until("selection-total", "data-cents", WAIT, |c| c == "18000")
        .await;
    // The page warns before asking (from its own map), and asks anyway when told to.
    buyer
        .attr_until("selection-strand", "data-seat-ids", WAIT, |s| {
            s == "S-1-1,S-1-4"
        })
        .await;
    buyer.click("hold-button").await;

    // Refused: S-1-1 would be alone at the row's end, S-1-4 against the aisle.
    buyer
        .attr_until("hold-status", "data-status", WAIT, |s| s == "rejected")
        .await;
    buyer
        .attr_until("hold-reason", "data-reason", WAIT, |r| {
            r == "would_strand_seat"
        })
        .await;
    let reason = buyer
        .text_until("hold-reason", WAIT, |t| t.contains("on their own"))
        .await;
    assert!(reason.contains("S-1-1 and S-1-4"), "{reason}");
    buyer
        .attr_until("stranded-seats", "data-seat-ids", WAIT, |s| {
            s == "S-1-1,S-1-4"
        })
        .await;
    buyer
        .attr_until("strand-suggestion", "data-seat-ids", WAIT, |s| {
            s == "S-1-1,S-1-2"
        })
        .await;
    let offer = buyer
        .text_until("strand-suggestion", WAIT, |t| !t.is_empty())
        .await;
    assert_eq!(offer, "Take S-1-1, S-1-2 instead");
    assert_eq!(seat(&stack, &event, 1, 2).await.0, "available");
    buyer.screenshot("seating-suggestion").await;

    // One click: a new hold request for the suggested seats, held, 180.00 in all.
    buyer.click("strand-suggestion").await;
    buyer
        .attr_until("hold-status", "data-status", WAIT, |s| s == "held")
        .await;
    buyer
        .attr_until("held-total", "data-cents", WAIT, |c| c == "18000")
        .await;
    buyer
        .attr_until("hold-panel", "data-hold-id", WAIT, |id| !id.is_empty())
        .await;
    buyer
        .text_until("hold-seats", WAIT, |t| t == "S-1-1, S-1-2")
        .await;
    buyer
        .attr_until("hold-total", "data-cents", WAIT, |c| c == "18000")
        .await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "0")
        .await;
    let me = stack.user("gappy");
    for n in [1, 2] {
        assert_eq!(
            seat(&stack, &event, 1, n).await,
            ("held".to_owned(), Some(me.clone()))
        );
    }
    assert_eq!(seat(&stack, &event, 1, 3).await.0, "available");
    buyer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_legend_and_filters_and_a_buyer_who_needs_a_wheelchair_space() {
    let stack = stack().await;
    let release = Utc::now() + chrono::Duration::days(6);
    let event = event(
        &stack,
        json!({"accessible_release_at": release.to_rfc3339()}),
    )
    .await;
    let buyer = Browser::open(&stack.api.base).await;
    buyer.login(&stack.user("wheels")).await;
    buyer.open_event(&event).await;

    // The legend: the four seat marks and the price category with its price.
    buyer.el("legend-attributes").await;
    let marks = texts(&buyer, "legend-attribute").await;
    assert_eq!(
        marks,
        [
            "Wheelchair space",
            "Companion seat",
            "Restricted view",
            "Aisle seat"
        ],
        "{marks:?}"
    );
    let prices = texts(&buyer, "legend-category").await;
    assert!(
        prices[0].starts_with("Front row") && prices[0].contains("90.00"),
        "{prices:?}"
    );
    assert_eq!(prices.len(), 2, "FRONT and the section's price: {prices:?}");
    let info = seat_info(&buyer, "S-2-1").await;
    assert_eq!(info["attributes"], json!(["accessible"]), "{info}");
    assert_eq!(info["price_cents"], 5000, "{info}");
    let info = seat_info(&buyer, "S-1-8").await;
    assert_eq!(info["attributes"], json!(["accessible"]), "{info}");
    assert_eq!(info["category"]["code"], "FRONT", "{info}");
    assert_eq!(info["price_cents"], 9000, "{info}");

    // Filters: all 16 seats highlighted without one; the wheelchair spaces alone; with
    // the companion seats; no restricted view; the front row without restricted views.
    let highlighted = |n: &'static str| move |v: &str| v == n;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("16"))
        .await;
    buyer.click("filter-accessible").await;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("3"))
        .await;
    assert_eq!(seat_info(&buyer, "S-2-8").await["highlighted"], true);
    assert_eq!(seat_info(&buyer, "S-1-1").await["highlighted"], false);
    buyer.click("filter-companion").await;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("5"))
        .await;
    assert_eq!(seat_info(&buyer, "S-2-7").await["highlighted"], true);
    buyer.click("filter-clear").await;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("16"))
        .await;
    buyer.click("filter-no-restricted").await;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("13"))
        .await;
    assert_eq!(seat_info(&buyer, "S-2-5").await["highlighted"], false);
    buyer.click("filter-cat-FRONT").await;
    buyer
        .attr_until("seat-map", "data-highlighted", WAIT, highlighted("8"))
        .await;
    buyer
        .attr_until("seat-canvas-S", "data-highlighted", WAIT, highlighted("8"))
        .await;
    buyer
        .text_until("filter-count", WAIT, |t| t.contains("8 of 16"))
        .await;
    buyer.click("filter-clear").await;
    buyer.click("filter-accessible").await;
    buyer.click("filter-companion").await;
    buyer.click("zoom-S").await;
    buyer.screenshot("seating-map").await;
    buyer.click("filter-clear").await;

    // Kept for buyers who need access until the release time: without the box, the page
    // does not take S-2-1 into the selection and says why and until when.
    buyer
        .attr_until("access-need", "data-reserved", WAIT, |r| r == "true")
        .await;
    buyer
        .text_until("access-note", WAIT, |t| t.contains("kept for buyers"))
        .await;
    add_seat(&buyer, "S-2-1").await;
    buyer
        .text_until("access-kept", WAIT, |t| {
            t.contains("This wheelchair space is kept for buyers who need a wheelchair space until")
        })
        .await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "0")
        .await;
    add_seat(&buyer, "S-2-2").await;
    buyer
        .text_until("access-kept", WAIT, |t| {
            t.starts_with("This companion seat")
        })
        .await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "0")
        .await;

    // Ticked: a space and a seat two places away are not together (the page says so
    // before asking); the space and its companion seat are, and are held in one hold.
    buyer.click("accessible-need").await;
    add_seat(&buyer, "S-2-1").await;
    add_seat(&buyer, "S-2-3").await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "2")
        .await;
    buyer
        .attr_until("selection-problem", "data-code", WAIT, |c| {
            c == "companions_not_together"
        })
        .await;
    buyer.click("selection-clear").await;
    add_seat(&buyer, "S-2-1").await;
    add_seat(&buyer, "S-2-2").await;
    buyer
        .text_until("selection-count", WAIT, |t| t == "2")
        .await;
    buyer
        .attr_until("selection-total", "data-cents", WAIT, |c| c == "10000")
        .await;
    buyer.click("hold-button").await;
    buyer
        .attr_until("hold-status", "data-status", WAIT, |s| s == "held")
        .await;
    buyer
        .text_until("hold-seats", WAIT, |t| t == "S-2-1, S-2-2")
        .await;
    buyer
        .attr_until("hold-total", "data-cents", WAIT, |c| c == "10000")
        .await;
    let me = stack.user("wheels");
    let holds: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT hold_id::text FROM seats WHERE event_id = $1::uuid AND status = 'held'",
    )
    .bind(&event)
    .fetch_all(stack.pool())
    .await
    .expect("holds");
    assert_eq!(holds.len(), 1, "one hold for both seats");
    for n in [1, 2] {
        assert_eq!(
            seat(&stack, &event, 2, n).await,
            ("held".to_owned(), Some(me.clone()))
        );
    }
    buyer.close().await;

    // Another buyer, without the box, is not given the other space by the page.
    let walker = Browser::open(&stack.api.base).await;
    walker.login(&stack.user("walker")).await;
    walker.open_event(&event).await;
    add_seat(&walker, "S-2-8").await;
    walker.el("access-kept").await;
    walker
        .text_until("selection-count", WAIT, |t| t == "0")
        .await;
    assert_eq!(seat(&stack, &event, 2, 8).await.0, "available");
    // A page that does not know S-2-8 is kept (as if its map were stale) asks anyway: the
    // queue refuses it and the page says why, leaving the seat free on the map.
    walker
        .client
        .execute(
            "const m = document.querySelector('[data-testid=\"seat-map\"]').seatMap;
             const l = m.locate('S-2-8'); l.sec.attrs[l.i] = 0; return true;",
            vec![],
        )
        .await
        .expect("script");
    add_seat(&walker, "S-2-8").await;
    walker
        .text_until("selection-count", WAIT, |t| t == "1")
        .await;
    walker.click("hold-button").await;
    walker
        .attr_until("hold-status", "data-status", WAIT, |s| s == "rejected")
        .await;
    walker
        .attr_until("hold-reason", "data-reason", WAIT, |r| {
            r == "seats_reserved_for_access"
        })
        .await;
    walker
        .text_until("hold-reason", WAIT, |t| {
            t.contains("S-2-8 is kept for buyers who need a wheelchair space until")
        })
        .await;
    assert_eq!(seat_info(&walker, "S-2-8").await["status"], "available");
    assert_eq!(seat(&stack, &event, 2, 8).await.0, "available");
    // The held space: no waitlist before the release (an offer cannot ask who needs it).
    add_seat(&walker, "S-2-1").await;
    walker
        .attr_until("seat-info", "data-seat-id", WAIT, |s| s == "S-2-1")
        .await;
    walker
        .text_until("waitlist-kept", WAIT, |t| t.contains("its waitlist opens"))
        .await;
    walker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_sets_up_price_categories_seat_ranges_and_the_seating_rules() {
    let stack = stack().await;
    let boss = Browser::open(&stack.api.base).await;
    boss.login_organiser(&stack.user("boss")).await;
    boss.goto("#/admin/venues").await;

    // Stalls: 2 rows × 8 seats at 50.00, a FRONT category at 90.00 for row 1, a
    // wheelchair space S-2-1 with its companion seat S-2-2, and an aisle between 4 and 5.
    boss.type_into("venue-name", "Range Hall").await;
    boss.type_into("venue-city", "Hull").await;
    type_nth(&boss, "section-code", 0, "S").await;
    type_nth(&boss, "section-name", 0, "Stalls").await;
    type_nth(&boss, "section-rows", 0, "2").await;
    type_nth(&boss, "section-seats", 0, "8").await;
    type_nth(&boss, "section-price", 0, "50").await;
    boss.click("category-add").await;
    type_nth(&boss, "category-code", 0, "FRONT").await;
    type_nth(&boss, "category-name", 0, "Front row").await;
    type_nth(&boss, "category-price", 0, "90").await;
    let ranges = [
        // rows, seats, attributes, category
        ((1, 1), (1, 8), vec![], "FRONT"),
        ((2, 2), (1, 1), vec!["accessible"], ""),
        ((2, 2), (2, 2), vec!["companion"], ""),
        ((1, 2), (4, 5), vec!["aisle"], ""),
    ];
    for (n, ((r0, r1), (s0, s1), attrs, cat)) in ranges.iter().enumerate() {
        boss.click("range-add").await;
        type_nth(&boss, "range-row-from", n, &r0.to_string()).await;
        type_nth(&boss, "range-row-to", n, &r1.to_string()).await;
        type_nth(&boss, "range-seat-from", n, &s0.to_string()).await;
        type_nth(&boss, "range-seat-to", n, &s1.to_string()).await;
        for attr in attrs {
            click_nth(&boss, &format!("range-attr-{attr}"), n).await;
        }
        if !cat.is_empty() {
            select_nth(&boss, "range-category", n, cat).await;
        }
    }
    boss.client
        .execute(
            "document.querySelector('[data-testid=\"section-row\"]').scrollIntoView({block: 'start'}); window.scrollBy(0, -70);",
            vec![],
        )
        .await
        .expect("scroll");
    boss.screenshot("seating-venue").await;
    // The form refuses a range outside the section (rows 1–3 of 2) before sending it.
    type_nth(&boss, "range-row-to", 0, "3").await;
    boss.click("venue-submit").await;
    boss.attr_until("field-error", "data-field", WAIT, |f| f == "range_row-to")
        .await;
    let errors = texts(&boss, "field-error").await;
    assert_eq!(errors, ["Rows to must be between 1 and 2."], "{errors:?}");
    assert_eq!(stack.count("SELECT count(*) FROM venues").await, 0);
    type_nth(&boss, "range-row-to", 0, "1").await;
    boss.click("venue-submit").await;
    let venue = boss
        .attr_until("venue-created", "data-venue-id", WAIT, |v| !v.is_empty())
        .await;
    boss.text_until("venue-created", WAIT, |t| {
        t.contains("1 price category, 4 seat ranges")
    })
    .await;
    let admin = stack.admin_token().await;
    let (status, page) = stack.api.get("/v1/admin/venues", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    let made = &page["venues"][0];
    assert_eq!(made["id"], venue.as_str());
    assert_eq!(
        made["price_categories"],
        json!([{"code": "FRONT", "name": "Front row", "price_cents": 9000}])
    );
    assert_eq!(
        made["sections"][0]["seat_ranges"],
        json!([
            {"rows": [1, 1], "seats": [1, 8], "price_category": "FRONT"},
            {"rows": [2, 2], "seats": [1, 1], "attributes": ["accessible"]},
            {"rows": [2, 2], "seats": [2, 2], "attributes": ["companion"]},
            {"rows": [1, 2], "seats": [4, 5], "attributes": ["aisle"]}
        ])
    );
    boss.attr_until("venue-item", "data-venue-id", WAIT, |v| v == venue)
        .await;
    boss.text_until("venue-categories-list", WAIT, |t| t.contains("FRONT"))
        .await;

    // An event there: single seats never left alone (the default), accessible seats kept
    // until the day before the start. A release after the start is refused by the form.
    boss.click("venue-new-event").await;
    boss.until_script(
        "the venue chosen",
        WAIT,
        &format!(
            "return document.querySelector('[data-testid=\"event-venue\"]').value === '{venue}';"
        ),
    )
    .await;
    boss.type_into("event-title-input", "Range Night").await;
    select_nth(&boss, "event-waiting-room", 0, "off").await;
    let set_release = |days: i32| {
        format!(
            "const starts = new Date(document.querySelector('[data-testid=\"event-starts\"]').value);
             starts.setDate(starts.getDate() + ({days}));
             const pad = (n) => String(n).padStart(2, '0');
             document.querySelector('[data-testid=\"event-accessible-release\"]').value =
               `${{starts.getFullYear()}}-${{pad(starts.getMonth() + 1)}}-${{pad(starts.getDate())}}T${{pad(starts.getHours())}}:${{pad(starts.getMinutes())}}`;"
        )
    };
    assert_eq!(
        boss.el("event-no-single-seats")
            .await
            .prop("checked")
            .await
            .expect("checked"),
        Some("true".into())
    );
    boss.client
        .execute(&set_release(1), vec![])
        .await
        .expect("script");
    boss.click("event-submit").await;
    boss.attr_until("field-error", "data-field", WAIT, |f| {
        f == "accessible_release_at"
    })
    .await;
    boss.client
        .execute(&set_release(-1), vec![])
        .await
        .expect("script");
    boss.click("event-submit").await;
    let event = boss
        .attr_until("event-created", "data-event-id", WAIT, |v| !v.is_empty())
        .await;
    boss.text_until("event-created-rules", WAIT, |t| {
        t.starts_with("No single seat left alone")
    })
    .await;
    let (status, detail) = stack.api.get(&format!("/v1/events/{event}"), None).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["no_single_seats"], true, "{detail}");
    assert_eq!(detail["accessible_reserved"], true, "{detail}");
    let starts = chrono::DateTime::parse_from_rfc3339(detail["starts_at"].as_str().unwrap())
        .expect("starts_at");
    let release = chrono::DateTime::parse_from_rfc3339(
        detail["accessible_release_at"]
            .as_str()
            .unwrap_or_else(|| panic!("a release time: {detail}")),
    )
    .expect("accessible_release_at");
    assert_eq!(starts - release, chrono::Duration::days(1), "{detail}");
    boss.close().await;
}
