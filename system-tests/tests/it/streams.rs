//! The notifier against the real pipeline and broker: a hold reaches the event's stream and
//! its owner's; resumes get exactly what was missed; a client that stops reading is cut
//! off while others keep receiving (over HTTP/2, without the connection its neighbours
//! share); two notifier instances say the same thing with the same ids; WebSocket carries
//! the same messages; shutdown tells clients to reconnect.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use seatq_common::config::Settings;
use seatq_common::ids::EventId;
use seatq_common::message::{SeatChange, SeatEvent, SeatEventEnvelope, SeatStatus};
use seatq_common::shutdown::Shutdown;
use seatq_common::testkit::sse::{SseClient, SseEvent};
use seatq_common::testkit::{Api, TestEnv};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

struct Stack {
    env: TestEnv,
    api: Api,
    stops: Vec<Shutdown>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for s in &self.stops {
            s.cancel();
        }
    }
}

impl Stack {
    /// Gateway and consumer; notifiers are started by the tests.
    async fn start(tune: impl FnOnce(&mut Settings)) -> Self {
        let mut env = TestEnv::new(2).await;
        env.settings.notifier.coalesce_ms = 50;
        tune(&mut env.settings);
        let gateway = Shutdown::new();
        let (addr, _) = seatq_gateway::app::spawn(env.settings.clone(), gateway.clone())
            .await
            .expect("gateway starts");
        let consumer = Shutdown::new();
        {
            let (settings, stop) = (env.settings.clone(), consumer.clone());
            tokio::spawn(
                async move { seatq_consumer::run(settings, stop).await.expect("consumer") },
            );
        }
        Self {
            env,
            api: Api::new(addr),
            stops: vec![gateway, consumer],
        }
    }

    /// A notifier instance on a port of its own; its base URL and its shutdown.
    async fn notifier(&mut self) -> (String, Shutdown) {
        self.notifier_with(|_| {}).await
    }

    async fn notifier_with(&mut self, tune: impl FnOnce(&mut Settings)) -> (String, Shutdown) {
        let stop = Shutdown::new();
        let mut settings = self.env.settings.clone();
        tune(&mut settings);
        let notifier = seatq_notifier::Notifier::start(&settings, stop.clone()).expect("notifier");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        {
            let stop = stop.clone();
            tokio::spawn(async move { notifier.serve(listener, stop).await });
        }
        self.stops.push(stop.clone());
        // Ready once it has read the seat events up to their end.
        seatq_common::testkit::eventually("the notifier to be ready", WAIT, || async {
            let r = self
                .api
                .http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        (base, stop)
    }

    async fn event(&self) -> (String, i64) {
        let event = self
            .api
            .create_event(
                json!([{"kind": "reserved", "code": "A", "name": "A", "rows": 4,
                        "seats_per_row": 25, "price_cents": 5000}]),
                json!({}),
            )
            .await;
        let (status, map) = self
            .api
            .get(&format!("/v1/events/{event}/seats"), None)
            .await;
        assert_eq!(status, 200, "{map}");
        let since = map["position"]["next_offset"].as_i64().expect("position");
        (event, since)
    }

    async fn hold(&self, token: &str, event: &str, seat: &str) -> Value {
        let (status, decided) = self
            .api
            .hold(
                token,
                event,
                &json!({"seat_ids": [seat]}),
                "?wait_ms=5000",
                &[],
            )
            .await;
        assert_eq!(status, 200, "{decided}");
        assert_eq!(decided["status"], "held", "{decided}");
        decided
    }

    fn user(&self, name: &str) -> String {
        format!("{}-{name}", self.env.database)
    }
}

async fn sse(base: &str, path: &str, token: Option<&str>, last: Option<&str>) -> SseClient {
    let mut client = SseClient::connect(
        &reqwest::Client::new(),
        &format!("{base}{path}"),
        token,
        last,
    )
    .await
    .unwrap_or_else(|(s, body)| panic!("{path}: {s} {body}"));
    client.until(WAIT, |e| e.event == "ready").await;
    client
}

/// Seat ids a `seat_status_changed` event reports with `status`.
fn seats_with(event: &SseEvent, status: &str) -> Vec<String> {
    event.json()["seats"]
        .as_array()
        .map(|seats| {
            seats
                .iter()
                .filter(|s| s["status"] == status)
                .filter_map(|s| s["seat_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_reaches_the_event_stream_and_only_its_owners_stream() {
    let mut stack = Stack::start(|_| {}).await;
    let (base, _) = stack.notifier().await;
    let (event, since) = stack.event().await;
    let alice = stack.api.token(&stack.user("alice"), "user").await;
    let bob = stack.api.token(&stack.user("bob"), "user").await;
    let mut seats = sse(
        &base,
        &format!("/v1/events/{event}/stream?since={since}"),
        None,
        None,
    )
    .await;
    let mut mine = sse(&base, "/v1/me/stream", Some(&alice), None).await;

    let held = stack.hold(&alice, &event, "A-1-1").await;
    let delta = seats
        .until(WAIT, |e| {
            seats_with(e, "held").contains(&"A-1-1".to_owned())
        })
        .await;
    assert_eq!(delta.event, "seat_status_changed");
    let next_offset = delta.json()["next_offset"].as_i64().expect("next_offset");
    assert!(next_offset > since);
    assert_eq!(delta.id, Some(next_offset.to_string()));
    let created = mine.until(WAIT, |e| e.event == "hold_created").await;
    assert_eq!(created.json()["hold_id"], held["hold_id"]);
    assert_eq!(created.json()["event_id"], event.as_str());

    // Bob's hold shows on the map, not on alice's stream.
    stack.hold(&bob, &event, "A-1-2").await;
    seats
        .until(WAIT, |e| {
            seats_with(e, "held").contains(&"A-1-2".to_owned())
        })
        .await;
    let rest = mine.drain(Duration::from_millis(700)).await;
    assert!(rest.iter().all(|e| e.event != "hold_created"), "{rest:?}");

    // The seat map agrees with the stream's position.
    let (_, map) = stack
        .api
        .get(&format!("/v1/events/{event}/seats"), None)
        .await;
    assert!(map["position"]["next_offset"].as_i64() >= Some(next_offset));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resume_with_last_event_id_gets_exactly_what_was_missed() {
    let mut stack = Stack::start(|_| {}).await;
    let (base, _) = stack.notifier().await;
    let (event, since) = stack.event().await;
    let alice = stack.api.token(&stack.user("alice"), "user").await;
    let bob = stack.api.token(&stack.user("bob"), "user").await;
    let mut mine = sse(&base, "/v1/me/stream", Some(&alice), None).await;
    let mut seats = sse(
        &base,
        &format!("/v1/events/{event}/stream?since={since}"),
        None,
        None,
    )
    .await;
    stack.hold(&alice, &event, "A-2-1").await;
    mine.until(WAIT, |e| e.event == "hold_created").await;
    seats
        .until(WAIT, |e| !seats_with(e, "held").is_empty())
        .await;
    let (my_cursor, map_cursor) = (mine.last_id.clone(), seats.last_id.clone());
    drop(mine);
    drop(seats);

    // Away: three holds of alice's and one of bob's.
    let mut missed = Vec::new();
    for seat in ["A-2-2", "A-2-3", "A-2-4"] {
        missed.push(stack.hold(&alice, &event, seat).await["hold_id"].clone());
    }
    stack.hold(&bob, &event, "A-2-5").await;

    let mut mine = sse(&base, "/v1/me/stream", Some(&alice), my_cursor.as_deref()).await;
    let again: Vec<Value> = mine
        .drain(Duration::from_millis(1500))
        .await
        .into_iter()
        .filter(|e| e.event == "hold_created")
        .map(|e| e.json()["hold_id"].clone())
        .collect();
    assert_eq!(
        again, missed,
        "each missed hold once, in order, nothing of bob's"
    );

    let mut seats = SseClient::connect(
        &reqwest::Client::new(),
        &format!("{base}/v1/events/{event}/stream?since={since}"),
        None,
        map_cursor.as_deref(),
    )
    .await
    .expect("resume");
    let events = seats.drain(Duration::from_millis(1500)).await;
    assert!(events.iter().all(|e| e.event != "resync"), "{events:?}");
    let mut held: Vec<String> = events.iter().flat_map(|e| seats_with(e, "held")).collect();
    held.sort();
    assert_eq!(held, ["A-2-2", "A-2-3", "A-2-4", "A-2-5"]);

    // A notifier started now reads back only the last record of each partition: it cannot
    // know what came before, so the old cursor is told to re-fetch the map.
    let (fresh, _) = stack.notifier_with(|s| s.notifier.warm_records = 1).await;
    let mut old = SseClient::connect(
        &reqwest::Client::new(),
        &format!("{fresh}/v1/events/{event}/stream"),
        None,
        map_cursor.as_deref(),
    )
    .await
    .expect("old cursor");
    old.until(WAIT, |e| e.event == "resync").await;
}

/// Seat-map deltas of `seats` seats each, produced straight to the seat-events topic (the
/// consumer's outbox relay writes the same records).
async fn storm(env: &TestEnv, event: EventId, deltas: usize, seats: usize, first_offset: i64) {
    let producer = seatq_common::kafka::producer(&env.settings.kafka).expect("producer");
    for i in 0..deltas {
        let envelope = SeatEventEnvelope {
            event_id: event,
            occurred_at: Utc::now(),
            payload: SeatEvent::SeatStatusChanged {
                seats: (0..seats)
                    .map(|s| SeatChange {
                        seat_id: format!("Z{i}-1-{s}"),
                        status: SeatStatus::Held,
                    })
                    .collect(),
                sections: vec![],
                next_offset: first_offset + i as i64,
            },
        };
        let payload = serde_json::to_vec(&envelope).expect("json");
        seatq_common::kafka::send(
            &producer,
            &env.topics.seat_events,
            None,
            &event.to_string(),
            &payload,
        )
        .await
        .expect("produce");
    }
}

async fn stats(base: &str) -> Value {
    reqwest::get(format!("{base}/v1/notifier/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

/// A stack whose notifier queues at most 4 messages per client and flushes every 20 ms,
/// so a client that stops reading falls behind within a short storm; and its base URL.
async fn stack_for_slow_clients() -> (Stack, String) {
    let mut stack = Stack::start(|s| {
        s.notifier.client_buffer = 4;
        s.notifier.coalesce_ms = 20;
    })
    .await;
    let (base, _) = stack.notifier().await;
    (stack, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_dropped_while_others_keep_receiving() {
    let (stack, base) = stack_for_slow_clients().await;
    let event = EventId::new();
    // The slow client: asks for the stream with a tiny receive window, then never reads.
    let addr = base.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut slow = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    slow.write_all(
        format!("GET /v1/events/{event}/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("request");
    let mut fast = sse(&base, &format!("/v1/events/{event}/stream"), None, None).await;
    seatq_common::testkit::eventually("both clients registered", WAIT, || async {
        (stats(&base).await["clients"] == 2).then_some(())
    })
    .await;

    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(e) = fast.next(WAIT).await {
            seen += seats_with(&e, "held").len();
            if e.json()["next_offset"] == 1_199 {
                return seen;
            }
        }
        panic!("the fast client stopped receiving after {seen} seats");
    });
    storm(&stack.env, event, 200, 400, 1_000).await;
    assert!(reader.await.expect("reader") > 0);
    seatq_common::testkit::eventually("the slow client to be dropped", WAIT, || async {
        let s = stats(&base).await;
        (s["dropped_slow"] == 1 && s["clients"] == 0).then_some(())
    })
    .await;
    // Its connection was closed: after what the socket still holds, the stream ends.
    let mut sink = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match slow.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the slow client's connection is still open");
}

/// Opens `path` as one more stream of an HTTP/2 connection; its body.
async fn h2_stream(client: &h2::client::SendRequest<Bytes>, path: &str) -> h2::RecvStream {
    let request = axum::http::Request::get(path)
        .header("accept", "text/event-stream")
        .body(())
        .expect("request");
    let (response, _) = client
        .clone()
        .ready()
        .await
        .expect("the connection takes another stream")
        .send_request(request, true)
        .expect("send");
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("an answer in time")
        .expect("response");
    assert_eq!(response.status(), 200);
    response.into_body()
}

/// Reads `body` (giving its bytes back to flow control) until its text contains `needle`,
/// or to its end when `needle` is `None`. False if it errs or does not get there in time.
async fn h2_read_until(body: &mut h2::RecvStream, needle: Option<&str>) -> bool {
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = body.data().await {
            let Ok(chunk) = chunk else { return false };
            let _ = body.flow_control().release_capacity(chunk.len());
            text.push_str(&String::from_utf8_lossy(&chunk));
            if needle.is_some_and(|n| text.contains(n)) {
                return true;
            }
            // Keep only a tail long enough to hold a needle cut by a chunk boundary.
            if text.len() > 4096 {
                text.drain(..text.len() - 64);
            }
        }
        needle.is_none()
    };
    tokio::time::timeout(WAIT, read).await.unwrap_or(false)
}

/// Many streams share one HTTP/2 connection (a browser's tabs, a load balancer's clients):
/// one that stops reading is let go on its own, and the others keep receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http2_stream_that_stops_reading_is_let_go_without_its_connection() {
    let (stack, base) = stack_for_slow_clients().await;
    let event = EventId::new();
    let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    // Windows like a browser's: a small one per stream, a large one for the connection,
    // so a stream nobody reads cannot use up the connection's.
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(8 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("HTTP/2 (prior knowledge) handshake");
    let connection = tokio::spawn(connection);
    let path = format!("{base}/v1/events/{event}/stream");
    let mut slow = h2_stream(&client, &path).await;
    let mut fast = h2_stream(&client, &path).await;
    assert!(h2_read_until(&mut fast, Some("event: ready")).await);
    seatq_common::testkit::eventually("both streams registered", WAIT, || async {
        (stats(&base).await["clients"] == 2).then_some(())
    })
    .await;

    let reader =
        tokio::spawn(async move { h2_read_until(&mut fast, Some("\"next_offset\":1199")).await });
    storm(&stack.env, event, 200, 400, 1_000).await;
    assert!(
        reader.await.expect("reader"),
        "the fast stream stopped receiving"
    );
    seatq_common::testkit::eventually("the slow stream to be let go", WAIT, || async {
        let s = stats(&base).await;
        (s["dropped_slow"] == 1 && s["clients"] == 1).then_some(())
    })
    .await;
    assert!(!connection.is_finished(), "the connection was closed");
    // What was queued for the slow stream is still there to read, and then it ends.
    assert!(
        h2_read_until(&mut slow, None).await,
        "the slow stream did not end"
    );
    // The connection still takes new streams.
    let mut again = h2_stream(&client, &path).await;
    assert!(h2_read_until(&mut again, Some("event: ready")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_notifier_instances_deliver_the_same_messages_with_the_same_ids() {
    let mut stack = Stack::start(|_| {}).await;
    let (one, _) = stack.notifier().await;
    let (two, _) = stack.notifier().await;
    let (event, since) = stack.event().await;
    let alice = stack.api.token(&stack.user("alice"), "user").await;
    let path = format!("/v1/events/{event}/stream?since={since}");
    let mut a = sse(&one, &path, None, None).await;
    let mut b = sse(&two, &path, None, None).await;
    let mut me_a = sse(&one, "/v1/me/stream", Some(&alice), None).await;
    let mut me_b = sse(&two, "/v1/me/stream", Some(&alice), None).await;
    for seat in ["A-3-1", "A-3-2", "A-3-3"] {
        stack.hold(&alice, &event, seat).await;
    }
    let all_held = |e: &SseEvent| e.json()["next_offset"].as_i64().is_some();
    let mut final_ids = Vec::new();
    for client in [&mut a, &mut b] {
        let mut held = Vec::new();
        while held.len() < 3 {
            let e = client.until(WAIT, all_held).await;
            held.extend(seats_with(&e, "held"));
        }
        held.sort();
        assert_eq!(held, ["A-3-1", "A-3-2", "A-3-3"]);
        final_ids.push(client.last_id.clone());
    }
    assert_eq!(
        final_ids[0], final_ids[1],
        "the same position on both instances"
    );
    let mut ids = Vec::new();
    for client in [&mut me_a, &mut me_b] {
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(client.until(WAIT, |e| e.event == "hold_created").await);
        }
        ids.push(
            got.iter()
                .map(|e| (e.id.clone(), e.data.clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(ids[0], ids[1], "same messages, same ids");

    // A cursor from one instance resumes on the other.
    let cursor = me_a.last_id.clone();
    drop(me_a);
    stack.hold(&alice, &event, "A-3-4").await;
    let mut moved = sse(&two, "/v1/me/stream", Some(&alice), cursor.as_deref()).await;
    let resumed = moved.until(WAIT, |e| e.event == "hold_created").await;
    assert_eq!(resumed.json()["seat_ids"], json!(["A-3-4"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_carries_the_same_messages_and_shutdown_says_reconnect() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut stack = Stack::start(|_| {}).await;
    let (base, stop) = stack.notifier().await;
    let (event, since) = stack.event().await;
    let alice = stack.api.token(&stack.user("alice"), "user").await;

    // Bad input is refused with problems, never a 500.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/v1/me/stream"))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/v1/events/{event}/stream"))
        .header("last-event-id", "bogus")
        .send()
        .await
        .expect("bad cursor");
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.expect("problem");
    assert_eq!(problem["code"], "invalid_cursor");

    let url = format!(
        "{}/v1/ws?access_token={alice}",
        base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket");
    ws.send(Message::Text(
        json!({"type": "subscribe", "event_id": event, "since": since})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    ws.send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .expect("junk");
    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;
    async fn text(ws: &mut Ws) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("a message")
                .expect("open")
                .expect("ok");
            if let Message::Text(t) = m {
                return serde_json::from_str::<Value>(&t).expect("json");
            }
        }
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = text(&mut ws).await;
        if m["type"] != "message" {
            seen.push(m);
        }
    }
    assert!(seen.iter().any(|m| m["type"] == "subscribed"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["type"] == "error" && m["code"] == "invalid_message"),
        "{seen:?}"
    );
    stack.hold(&alice, &event, "A-4-1").await;
    let (mut delta, mut created) = (false, false);
    while !(delta && created) {
        let m = text(&mut ws).await;
        if m["type"] != "message" {
            continue;
        }
        if m["stream"] == format!("event:{event}") && m["event"] == "seat_status_changed" {
            delta = true;
        }
        if m["stream"] == "me" && m["event"] == "hold_created" {
            assert_eq!(m["data"]["seat_ids"], json!(["A-4-1"]));
            created = true;
        }
    }
    // An SSE client and the WebSocket both hear that the notifier is going away.
    let mut sse_client = sse(&base, &format!("/v1/events/{event}/stream"), None, None).await;
    stop.cancel();
    sse_client.until(WAIT, |e| e.event == "reconnect").await;
    loop {
        let m = text(&mut ws).await;
        if m["event"] == "reconnect" {
            break;
        }
    }
}
