//! The control room, a seat's story, the buyer's receipt and the lottery check, driven in
//! real headless Chromium against the whole stack: an organiser opens an event's control
//! room while a storm of hold requests runs, and its tiles follow the live stream (the
//! page counts what it draws: the rate is measured and printed); the organiser pauses the
//! sale from the page and a buyer's hold is refused with the paused message, then resumes
//! it; two requests for one seat queue together (the consumer stopped), the buyer whose
//! request came second reads on their page how far ahead the winner was, and the
//! organiser's story of the seat shows the earlier request as the one that got it. Then
//! the lottery page checks a revealed draw with WebCrypto and shows the user their place.
//! `SEATQ_SCREENSHOTS=1` saves control-room, seat-story, receipt and lottery-check to
//! `docs/screenshots/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use seatq_common::ids::EventId;
use seatq_common::testkit::eventually;
use seatq_system_tests::stack::Stack;
use serde_json::json;

use crate::chromium::{Browser, WAIT};

/// The page's count of drawn updates (`data-updates` of the control room).
async fn updates(browser: &Browser) -> u64 {
    browser
        .attr_until("control-room", "data-updates", WAIT, |_| true)
        .await
        .parse()
        .expect("a count")
}

/// Scroll the element with this test id to the top, below the header (for a screenshot).
async fn scroll_to(browser: &Browser, id: &str) {
    browser
        .client
        .execute(
            "document.querySelector(arguments[0])?.scrollIntoView({block: 'start'}); window.scrollBy(0, -80);",
            vec![json!(crate::chromium::testid(id))],
        )
        .await
        .expect("scroll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_runs_the_sale_from_the_control_room() {
    let mut stack = Stack::start(|s| s.notifier.embedded = true).await;
    let event = stack.event(json!({})).await;

    let boss = Browser::open(&stack.api.base).await;
    boss.login_organiser(&stack.user("boss")).await;
    boss.goto("#/admin/events").await;
    boss.click("event-control-room-link").await;
    boss.attr_until("control-live", "data-mode", WAIT, |m| m == "live")
        .await;
    boss.attr_until("sale-state", "data-state", WAIT, |s| s == "open")
        .await;
    boss.el("seat-canvas-A").await;

    // A storm: 400 requests from 20 people for 14 seats (A-1-1..4 and row 2), in 20 tasks.
    let mut seats: Vec<String> = (1..=4).map(|n| format!("A-1-{n}")).collect();
    seats.extend((1..=10).map(|n| format!("A-2-{n}")));
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(stack.token(&format!("storm{i:02}")).await);
    }
    let sent = Arc::new(AtomicUsize::new(0));
    let u0 = updates(&boss).await;
    let t0 = Instant::now();
    let mut storm = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let api = stack.api.clone_client();
        let (event, seats, sent) = (event.clone(), seats.clone(), sent.clone());
        storm.push(tokio::spawn(async move {
            for k in 0..20 {
                let seat = &seats[(i * 7 + k * 3) % seats.len()];
                let (status, reply) = api
                    .hold(
                        &token,
                        &event,
                        &json!({"seat_ids": [seat]}),
                        "?wait_ms=2000",
                        &[],
                    )
                    .await;
                assert!(
                    status.is_success() || status == 409 || status == 429,
                    "{status}: {reply}"
                );
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // The tiles follow while it runs.
    boss.attr_until("tile-decisions", "data-value", WAIT, |v| {
        v.parse::<f64>().is_ok_and(|d| d > 0.0)
    })
    .await;
    boss.attr_until("tile-holds", "data-value", WAIT, |v| {
        v.parse::<i64>().is_ok_and(|n| n > 0)
    })
    .await;
    for task in storm {
        task.await.expect("storm task");
    }
    assert_eq!(sent.load(Ordering::Relaxed), 400);
    // The update rate over at least 6 s of the storm and after it.
    eventually("a 6 s window", Duration::from_secs(10), || async {
        (t0.elapsed() >= Duration::from_secs(6)).then_some(())
    })
    .await;
    let u1 = updates(&boss).await;
    let secs = t0.elapsed().as_secs_f64();
    let rate = (u1 - u0) as f64 / secs;
    println!(
        "control room: {} updates drawn in {secs:.1} s during and after a storm of 400 hold requests: {rate:.2} updates/s",
        u1 - u0
    );
    assert!(rate >= 0.5, "{rate:.2} updates/s");
    boss.text_until("control-updated", WAIT, |t| t.starts_with("updated"))
        .await;
    // Unmet demand reaches the heat map's table (recomputed at most every 15 s).
    boss.attr_until("demand-total", "data-value", Duration::from_secs(45), |v| {
        v.parse::<i64>().is_ok_and(|n| n > 0)
    })
    .await;
    boss.attr_until("demand-row", "data-section", WAIT, |s| s == "A")
        .await;
    boss.screenshot("control-room").await;

    // Pause from the page: a buyer's hold is refused and the buyer's page says why.
    let fan_user = stack.user("fan");
    let fan = Browser::open(&stack.api.base).await;
    fan.login(&fan_user).await;
    fan.open_event(&event).await;
    boss.type_into("sale-note", "gate trouble").await;
    boss.click("sale-pause").await;
    boss.attr_until("sale-state", "data-state", WAIT, |s| s == "paused")
        .await;
    fan.type_into("seat-id-input", "A-1-9").await;
    fan.click("seat-add").await;
    fan.text_until("selection-count", WAIT, |t| t == "1").await;
    fan.click("hold-button").await;
    fan.attr_until("hold-status", "data-status", WAIT, |s| s == "rejected")
        .await;
    fan.attr_until("hold-reason", "data-reason", WAIT, |r| r == "sale_paused")
        .await;
    fan.text_until("hold-reason", WAIT, |t| t.contains("paused the sale"))
        .await;
    fan.text_until("sale-status", WAIT, |t| t.contains("Sale paused"))
        .await;
    // An ended sale cannot be paused: the end asks first; keep it going.
    boss.click("sale-end").await;
    boss.click("sale-end-keep").await;
    boss.click("sale-resume").await;
    boss.attr_until("sale-state", "data-state", WAIT, |s| s == "open")
        .await;
    // The selection is kept: the same seat, held now.
    fan.click("hold-button").await;
    fan.attr_until("hold-status", "data-status", WAIT, |s| s == "held")
        .await;
    fan.text_until("sale-status", WAIT, |t| t.contains("On sale"))
        .await;

    // Two requests for A-1-5 queue together: first another buyer's, then the fan's.
    stack.pause_consumer().await;
    let early = stack.token("early").await;
    let (status, queued) = stack
        .api
        .hold(&early, &event, &json!({"seat_ids": ["A-1-5"]}), "", &[])
        .await;
    assert_eq!(status, 202, "{queued}");
    fan.type_into("seat-id-input", "A-1-5").await;
    fan.click("seat-add").await;
    fan.text_until("selection-count", WAIT, |t| t == "1").await;
    fan.click("hold-button").await;
    // Queued: the page follows the request in the queue.
    fan.el("hold-ahead").await;
    stack.resume_consumer();
    fan.attr_until("hold-status", "data-status", WAIT, |s| s == "rejected")
        .await;
    let receipt = fan
        .text_until("receipt-line", WAIT, |t| t.starts_with("A-1-5 went to"))
        .await;
    println!("receipt: {receipt}");
    assert!(receipt.contains("before yours"), "{receipt}");
    scroll_to(&fan, "hold-status").await;
    fan.screenshot("receipt").await;

    // The organiser reads the seat's story: the earlier request got it.
    boss.type_into("story-seat-input", "A-1-5").await;
    boss.click("story-open").await;
    boss.attr_until("seat-story", "data-state", WAIT, |s| s == "loaded")
        .await;
    boss.attr_until("seat-story", "data-seat-id", WAIT, |s| s == "A-1-5")
        .await;
    let rows = boss
        .client
        .find_all(fantoccini::Locator::Css(&crate::chromium::testid(
            "story-command",
        )))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "two commands named A-1-5");
    let attr = |i: usize, name: &'static str| {
        let row = rows[i].clone();
        async move { row.attr(name).await.expect("attr").unwrap_or_default() }
    };
    assert_eq!(attr(0, "data-user").await, stack.user("early"));
    assert_eq!(attr(0, "data-winner").await, "true");
    assert_eq!(attr(0, "data-status").await, "held");
    assert_eq!(attr(1, "data-user").await, fan_user);
    assert_eq!(attr(1, "data-winner").await, "false");
    assert_eq!(attr(1, "data-status").await, "rejected");
    boss.text_until("story-winner", WAIT, |t| t.contains("got the seat"))
        .await;
    boss.el("story-hold").await;
    scroll_to(&boss, "seat-story-panel").await;
    boss.screenshot("seat-story").await;
    fan.close().await;
    boss.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lottery_page_checks_a_revealed_draw() {
    let stack = Stack::start(|s| {
        s.notifier.embedded = true;
        s.waiting_room.tick_ms = 200;
    })
    .await;
    // The sale (and the draw's close) a few seconds ahead; five people join before it.
    let event = stack
        .event(json!({
            "waiting_room_enabled": true,
            "pow_difficulty": 0,
            "on_sale_at": (Utc::now() + chrono::Duration::seconds(8)).to_rfc3339(),
        }))
        .await;
    let path = format!("/v1/events/{event}/queue");
    let mut users = Vec::new();
    for i in 0..5 {
        let user = stack.user(&format!("entrant{i}"));
        let token = stack.api.token(&user, "user").await;
        let (status, view) = stack.api.post(&path, Some(&token), &json!({})).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["provisional"], true, "joined before the draw: {view}");
        users.push(user);
    }
    let me = &users[3];
    let browser = Browser::open(&stack.api.base).await;
    browser.login(me).await;
    browser.goto(&format!("#/events/{event}")).await;
    browser.click("lottery-link").await;
    browser.el("lottery-commitment").await;
    // Revealed 5 s after the opening: the page checks it then by itself.
    browser
        .attr_until("lottery-verdict", "data-ok", Duration::from_secs(45), |v| {
            !v.is_empty()
        })
        .await;
    for check in ["seed", "list", "count", "draws"] {
        let ok = browser
            .attr_until(&format!("lottery-check-{check}"), "data-ok", WAIT, |_| true)
            .await;
        assert_eq!(ok, "true", "check {check}");
    }
    assert_eq!(
        browser
            .attr_until("lottery-verdict", "data-ok", WAIT, |_| true)
            .await,
        "true"
    );
    browser
        .attr_until("lottery-entrants", "data-count", WAIT, |c| c == "5")
        .await;
    // The place shown is the place in the line seatq admits from.
    let line: Vec<String> = sqlx::query_scalar(
        "SELECT lottery_tag FROM queue_tickets WHERE event_id = $1::uuid \
           AND lottery_tag IS NOT NULL ORDER BY sort_key",
    )
    .bind(&event)
    .fetch_all(stack.pool())
    .await
    .expect("line");
    let mine =
        seatq_common::waiting_room::entrant_tag(EventId(event.parse().expect("event id")), me);
    let place = line.iter().position(|t| *t == mine).expect("an entrant") + 1;
    browser
        .attr_until("lottery-mine", "data-tag", WAIT, |t| t == mine)
        .await;
    let shown = browser
        .attr_until("lottery-mine", "data-place", WAIT, |p| !p.is_empty())
        .await;
    assert_eq!(shown, place.to_string());
    browser.screenshot("lottery-check").await;
    browser.close().await;
}
