//! The browser app, driven in real headless Chromium (Debian's `chromium` and
//! `chromedriver`, over WebDriver) against the whole stack: gateway with the embedded
//! notifier and the sandbox payment provider, consumer and scheduler.
//!
//! People use it as they would: two browsers on one event (one holds a seat, the other sees
//! it turn held within 2 s), hold → pay on the provider's page → ticket with its QR code,
//! a waitlist offer arriving live in the second browser when the first cancels, the
//! 50,000-seat stadium map, and the waiting room (the proof of work solved in the page's
//! workers, a place in line, admission, a hold with the admission token; the lottery before
//! the sale opens). `SEATQ_SCREENSHOTS=1` saves the main screens to
//! `docs/screenshots/` (the README shows them). Each test has its own database, so plain
//! user names cannot collide with other tests.

use std::time::{Duration, Instant};

use seatq_system_tests::stack::Stack;
use serde_json::json;

use crate::chromium::{Browser, WAIT};

async fn stack() -> (Stack, String) {
    let stack = Stack::start(|s| s.notifier.embedded = true).await;
    let base = stack.api.base.clone();
    (stack, base)
}

/// Counts the map shows: (available, held, sold).
fn counts(text: &str) -> (i64, i64, i64) {
    let numbers: Vec<i64> = text
        .split('·')
        .map(|part| {
            part.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(-1)
        })
        .collect();
    match numbers.as_slice() {
        [a, h, s] => (*a, *h, *s),
        _ => (-1, -1, -1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_in_one_browser_shows_in_another_within_two_seconds() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let (alice, bob) = (Browser::open(&base).await, Browser::open(&base).await);
    alice.login("alice").await;
    bob.login("bob").await;
    alice.open_event(&event).await;
    bob.open_event(&event).await;
    bob.text_until("map-counts", WAIT, |t| counts(t).1 == 0 && counts(t).0 > 0)
        .await;
    alice.screenshot("event-seat-map").await;

    alice.hold_seat("A-1-5").await;
    let held_at = Instant::now();
    bob.text_until("map-counts", Duration::from_secs(2), |t| counts(t).1 == 1)
        .await;
    let seen_after = held_at.elapsed();
    assert!(
        seen_after < Duration::from_secs(2),
        "seen after {seen_after:?}"
    );
    alice.screenshot("hold-countdown").await;
    // Bob looks at the seat: taken, and he may join its waitlist.
    bob.type_into("seat-id-input", "A-1-5").await;
    bob.click("seat-add").await;
    bob.text_until("seat-info-status", WAIT, |t| t.contains("held"))
        .await;
    bob.el("waitlist-join").await;
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hold_pay_and_get_a_ticket_with_its_qr_code() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let alice = Browser::open(&base).await;
    alice.login("alice").await;
    alice.goto("#/").await;
    alice.el("event-card").await;
    alice.screenshot("events").await;
    alice.open_event(&event).await;
    let hold = alice.hold_seat("A-2-3").await;
    alice.el("hold-countdown").await;
    alice.click("hold-pay").await;
    // The provider's payment page.
    alice.el("pay-button").await;
    alice.screenshot("payment-page").await;
    alice.click("pay-button").await;
    alice
        .attr_until("result-status", "data-status", WAIT, |s| s == "succeeded")
        .await;
    alice.click("back-link").await;
    // Back in seatq on the hold, which becomes a booking with a ticket.
    assert!(alice
        .client
        .current_url()
        .await
        .expect("url")
        .as_str()
        .ends_with(&format!("#/holds/{hold}")));
    alice
        .attr_until("hold-panel", "data-status", WAIT, |s| s == "sold")
        .await;
    alice.click("hold-booking-link").await;
    alice
        .attr_until("booking", "data-status", WAIT, |s| s == "confirmed")
        .await;
    let qr = alice.el("ticket-qr").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let loaded = alice
            .client
            .execute(
                "return arguments[0].complete && arguments[0].naturalWidth > 0;",
                vec![serde_json::to_value(&qr).expect("element")],
            )
            .await
            .expect("script");
        if loaded == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the QR code image did not load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice
        .text_until("ticket-seat", WAIT, |t| t.contains("A-2-3"))
        .await;
    alice.screenshot("booking-ticket").await;
    alice.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waitlist_offer_arrives_live_when_the_holder_cancels() {
    let (stack, base) = stack().await;
    let event = stack.event(json!({})).await;
    let (alice, bob) = (Browser::open(&base).await, Browser::open(&base).await);
    alice.login("alice").await;
    bob.login("bob").await;
    alice.open_event(&event).await;
    let hold = alice.hold_seat("A-1-9").await;
    bob.open_event(&event).await;
    bob.type_into("seat-id-input", "A-1-9").await;
    bob.click("seat-add").await;
    bob.text_until("seat-info-status", WAIT, |t| t.contains("held"))
        .await;
    bob.click("waitlist-join").await;
    bob.text_until("waitlist-position", WAIT, |t| t.contains('1'))
        .await;
    bob.screenshot("waitlist").await;

    alice.click("hold-cancel").await;
    let offered = bob
        .attr_until("offer-banner", "data-hold-id", WAIT, |id| !id.is_empty())
        .await;
    assert_ne!(offered, hold, "a new hold for bob");
    bob.el("offer-pay").await;
    bob.screenshot("waitlist-offer").await;
    assert_eq!(
        stack.seat(&event, "A-1-9").await,
        ("held".to_owned(), Some("bob".to_owned()))
    );
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stadium_map_of_fifty_thousand_seats_renders_live() {
    let (stack, base) = stack().await;
    let demo = seatq_gateway::demo::seed(
        stack.pool(),
        seatq_gateway::inventory::EventLimits {
            partitions: 2,
            min_hold_ttl_secs: 30,
            waiting_room_min_capacity: 10_000,
            default_pow_difficulty: 0,
        },
    )
    .await
    .expect("demo events");
    let event = demo.stadium_event_id.to_string();
    let fan = Browser::open(&base).await;
    fan.login("fan").await;
    let started = Instant::now();
    fan.open_event(&event).await;
    let shown = fan
        .text_until("map-counts", WAIT, |t| counts(t).0 >= 50_000)
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the stadium took {took:?} to show: {shown}"
    );
    fan.screenshot("stadium").await;
    // A hold elsewhere shows up on the big map too.
    let token = stack.token("someone").await;
    let (status, reply) = stack
        .api
        .hold(
            &token,
            &event,
            &json!({"section": "L101", "quantity": 2}),
            "?wait_ms=5000",
            &[],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    fan.text_until("map-counts", Duration::from_secs(2), |t| counts(t).1 == 2)
        .await;
    fan.close().await;
}

/// The proof of work the waiting room asks for, in JavaScript (`gateway/web/sha256.js`,
/// `pow.js`, `pow-worker.js`), run in Chromium: SHA-256 test vectors, the same work
/// count as `seatq_common::pow::work` on the server's own challenges, and nonces found by
/// the Web Workers (and by the page-thread fallback) that the server accepts. Solve times
/// are printed; `SEATQ_POW_BENCH=1` measures difficulties 14 to 20 (several runs each).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_browser_proof_of_work_agrees_with_the_server() {
    use seatq_common::pow;

    // Only the app's files are needed: serve them alone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, seatq_gateway::web::router::<()>())
            .await
            .expect("serve the app")
    });
    let browser = Browser::open(&base).await;
    browser
        .client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(300)),
            None,
            None,
        ))
        .await
        .expect("script timeout");
    browser.goto("").await;
    let run = |script: &'static str, args: Vec<serde_json::Value>| {
        let client = browser.client.clone();
        async move {
            client
                .execute(script, args)
                .await
                .unwrap_or_else(|e| panic!("script failed: {e}"))
        }
    };

    // Known answers (FIPS 180-2 and NIST's examples).
    let digests = run(
        "const m = await import('/sha256.js');
         return { implementation: m.implementation,
                  digests: arguments[0].map((s) => m.sha256Hex(s)),
                  million: m.sha256Hex('a'.repeat(1000000)) };",
        vec![json!([
            "",
            "abc",
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        ])],
    )
    .await;
    assert_eq!(
        digests["digests"],
        json!([
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ])
    );
    assert_eq!(
        digests["million"],
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
    assert_eq!(digests["implementation"], "unrolled", "{digests}");

    // The server's challenges: the same work count for many nonces, and the server's
    // solutions solve them in JavaScript too.
    let secret = b"browser pow test";
    let event = uuid::Uuid::new_v4();
    let expires = chrono::Utc::now().timestamp() + 600;
    let challenges: Vec<String> = (0..6).map(|_| pow::issue(secret, event, expires)).collect();
    let mut pairs = Vec::new();
    for c in &challenges {
        for n in (0..200).map(|n| n.to_string()).chain([pow::solve(c, 12)]) {
            pairs.push(json!([c, n, pow::work(c, &n)]));
        }
    }
    let js_work = run(
        "const m = await import('/sha256.js');
         return arguments[0].map(([c, n]) => m.work(c, n));",
        vec![json!(pairs)],
    )
    .await;
    let expected: Vec<serde_json::Value> = pairs.iter().map(|p| p[2].clone()).collect();
    assert_eq!(js_work, json!(expected));

    // Solved in the browser (on the page, then in the workers, warmed up first as the
    // waiting room does when it shows its join button), accepted by the server.
    let solve = "const { solve, warm } = await import('/pow.js');
         const [challenges, difficulty, useWorkers] = arguments;
         if (useWorkers) { warm(); await new Promise((r) => setTimeout(r, 500)); }
         const out = [];
         for (const c of challenges) {
           const r = await solve(c, difficulty, { useWorkers });
           out.push([r.nonce, r.ms, r.workers]);
         }
         return out;";
    let now = chrono::Utc::now().timestamp();
    let solved = |challenges: Vec<String>, difficulty: u32, workers: bool| {
        let run = &run;
        async move {
            let results = run(
                solve,
                vec![json!(challenges), json!(difficulty), json!(workers)],
            )
            .await;
            let mut times = Vec::new();
            for (c, r) in challenges.iter().zip(results.as_array().expect("results")) {
                let nonce = r[0].as_str().expect("nonce");
                assert!(
                    pow::verify(secret, c, nonce, event, difficulty, now).is_ok(),
                    "{c} {nonce} at {difficulty}"
                );
                assert_eq!(r[2].as_u64().expect("workers") > 0, workers, "{r}");
                times.push(r[1].as_f64().expect("ms"));
            }
            times
        }
    };
    solved(challenges.clone(), 12, false).await;
    let cores = run("return navigator.hardwareConcurrency;", vec![]).await;
    println!("proof of work: {cores} cores, so as many workers (up to 4)");
    let bench = std::env::var_os("SEATQ_POW_BENCH").is_some();
    let difficulties: &[u32] = if bench { &[14, 16, 18, 20] } else { &[14, 16] };
    for &difficulty in difficulties {
        let mut times = Vec::new();
        for _ in 0..if bench { 5 } else { 1 } {
            let fresh = (0..6).map(|_| pow::issue(secret, event, expires)).collect();
            times.extend(solved(fresh, difficulty, true).await);
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "proof of work at difficulty {difficulty}: {} solves, mean {mean:.0} ms, median {:.0} ms, max {:.0} ms",
            times.len(),
            times[times.len() / 2],
            times[times.len() - 1]
        );
        if difficulty == 16 {
            // 2^16 hashes take tens of milliseconds; this only catches a broken search.
            assert!(mean < 3000.0, "difficulty 16 takes {mean:.0} ms on average");
        }
    }
    browser.close().await;
}

/// Join a waiting room as a person would: the page solves the proof of work in its
/// worker, shows a place in line behind four people who joined first, lets the user in
/// when the scheduler admits them and holds a seat with the admission token. A reload
/// while waiting comes back to the same ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_waiting_room_lets_a_buyer_in_to_hold_a_seat() {
    use seatq_common::pow;

    let stack = Stack::start(|s| {
        s.notifier.embedded = true;
        // One person a second, so the line moves slowly enough to see.
        s.waiting_room.tick_ms = 300;
        s.waiting_room.initial_rate = 1.0;
        s.waiting_room.min_rate = 1.0;
        s.waiting_room.max_rate = 1.0;
        s.waiting_room.rate_step = 0.0;
        s.waiting_room.position_update_secs = 1;
    })
    .await;
    let base = stack.api.base.clone();
    let event = stack
        .event(json!({"waiting_room_enabled": true, "pow_difficulty": 14}))
        .await;
    let fan = Browser::open(&base).await;
    fan.login("fan").await;
    fan.open_event(&event).await;
    fan.attr_until("queue-panel", "data-status", WAIT, |s| s == "join")
        .await;
    // Holding is not possible yet.
    assert_eq!(
        fan.el("hold-button")
            .await
            .attr("disabled")
            .await
            .expect("attr"),
        Some("true".into())
    );

    // Four people join first (through the API, with their own proof of work).
    for i in 0..4 {
        let token = stack.token(&format!("early{i}")).await;
        let (status, c) = stack
            .api
            .post(
                &format!("/v1/events/{event}/queue/challenge"),
                Some(&token),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["difficulty"], 14);
        let challenge = c["challenge"].as_str().expect("challenge");
        let nonce = pow::solve(challenge, 14);
        let (status, joined) = stack
            .api
            .post(
                &format!("/v1/events/{event}/queue"),
                Some(&token),
                &json!({"challenge": challenge, "nonce": nonce}),
            )
            .await;
        assert_eq!(status, 201, "{joined}");
    }

    fan.click("queue-join").await;
    fan.attr_until("queue-panel", "data-status", WAIT, |s| s == "waiting")
        .await;
    let solved_ms = fan
        .attr_until("queue-panel", "data-pow-ms", WAIT, |v| !v.is_empty())
        .await;
    let ticket = fan
        .attr_until("queue-panel", "data-ticket", WAIT, |v| !v.is_empty())
        .await;
    let position: i64 = fan
        .attr_until("queue-position", "data-position", WAIT, |p| !p.is_empty())
        .await
        .parse()
        .expect("position");
    assert!(position >= 1, "{position}");
    fan.attr_until("queue-length", "data-length", WAIT, |l| !l.is_empty())
        .await;
    fan.text_until("queue-eta", WAIT, |t| !t.is_empty() && t != "…")
        .await;
    println!("in line at #{position} after a proof of work of {solved_ms} ms");
    fan.screenshot("waiting-room").await;

    // A reload goes back to the same ticket (not to the join button).
    fan.client.refresh().await.expect("reload");
    fan.attr_until("queue-panel", "data-status", WAIT, |s| {
        s == "waiting" || s == "admitted"
    })
    .await;
    assert_eq!(
        fan.attr_until("queue-panel", "data-ticket", WAIT, |v| !v.is_empty())
            .await,
        ticket
    );

    // Let in when it is their turn, with the time to shop.
    fan.attr_until("queue-panel", "data-status", Duration::from_secs(30), |s| {
        s == "admitted"
    })
    .await;
    fan.text_until("queue-admitted", WAIT, |t| t.contains("minutes to shop"))
        .await;
    fan.el("queue-admission-countdown").await;
    fan.screenshot("waiting-room-admitted").await;

    // A hold refused for its admission (as if the token had gone bad) sends the page back
    // through the waiting room, which gives the same ticket and a good token again.
    fan.client
        .execute(
            "const real = window.fetch;
             let once = true;
             window.fetch = (url, init) => {
               if (once && init && init.method === 'POST' && String(url).includes('/holds')) {
                 once = false;
                 return Promise.resolve(new Response(
                   JSON.stringify({ code: 'admission_invalid', detail: 'this is not a valid admission token' }),
                   { status: 403, headers: { 'Content-Type': 'application/problem+json' } }));
               }
               return real(url, init);
             };",
            vec![],
        )
        .await
        .expect("script");
    fan.type_into("seat-id-input", "A-1-5").await;
    fan.click("seat-add").await;
    fan.text_until("selection-count", WAIT, |t| t == "1").await;
    fan.click("hold-button").await;
    fan.attr_until("hold-reason", "data-reason", WAIT, |r| {
        r == "admission_invalid"
    })
    .await;
    fan.attr_until("queue-panel", "data-status", WAIT, |s| s == "admitted")
        .await;
    assert_eq!(
        fan.attr_until("queue-panel", "data-ticket", WAIT, |v| !v.is_empty())
            .await,
        ticket
    );
    // The selection is still there: hold it now.
    fan.click("hold-button").await;
    fan.attr_until("hold-status", "data-status", WAIT, |s| s == "held")
        .await;
    let hold = fan
        .attr_until("hold-panel", "data-hold-id", WAIT, |id| !id.is_empty())
        .await;
    assert!(!hold.is_empty());
    assert_eq!(
        stack.seat(&event, "A-1-5").await,
        ("held".to_owned(), Some("fan".to_owned()))
    );
    fan.close().await;
}

/// Before the sale opens the line is a lottery: the page says the place is provisional and
/// drawn at random when the sale opens, counts down to it, and lets the user in after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_before_the_sale_opens_is_a_lottery() {
    let stack = Stack::start(|s| {
        s.notifier.embedded = true;
        s.waiting_room.tick_ms = 300;
    })
    .await;
    let base = stack.api.base.clone();
    let fan = Browser::open(&base).await;
    fan.login("fan").await;
    // On sale in a few seconds: time to join before, not much to wait after.
    let opens = chrono::Utc::now() + chrono::Duration::seconds(10);
    let event = stack
        .event(json!({
            "waiting_room_enabled": true,
            "pow_difficulty": 14,
            "on_sale_at": opens.to_rfc3339(),
        }))
        .await;
    fan.open_event(&event).await;
    fan.click("queue-join").await;
    fan.attr_until("queue-panel", "data-status", WAIT, |s| s == "waiting")
        .await;
    fan.text_until("queue-provisional", WAIT, |t| {
        t.contains("drawn at random when the sale opens")
    })
    .await;
    fan.el("queue-sale-countdown").await;
    fan.screenshot("waiting-room-lottery").await;
    // The sale opens; the draw puts the only person in line first, and lets them in.
    fan.attr_until("queue-panel", "data-status", Duration::from_secs(30), |s| {
        s == "admitted"
    })
    .await;
    fan.hold_seat("A-2-2").await;
    fan.close().await;
}
