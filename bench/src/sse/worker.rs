//! The stream-holding worker process: `bench sse-worker`, started by the scenario.
//!
//! It holds thousands of `GET /v1/events/{id}/stream` streams on one thread. Over
//! HTTP/1.1 each is a raw `TcpStream` read through the chunked and event-stream decoders
//! of [`parse`]; over HTTP/2 (h2c with prior knowledge, the `h2` crate) many streams
//! share a connection, as a browser's tabs or a load balancer's clients do, and each
//! stream's data goes through the event-stream decoder alone. It keeps per stream only
//! what the run needs: its cursor, and the messages it received
//! (an index into the distinct messages seen, with the receipt time). Every message is
//! the same bytes for every stream that gets it, so it is parsed once, when first seen;
//! later receipts are matched byte for byte against it.
//!
//! Requests come on stdin and replies go to stdout, one JSON line each
//! ([`protocol`](super::protocol)); diagnostics go to stderr.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::measure::{self, Unattributed};
use super::parse::{parse_head, Chunked, SseItem, SseParser};
use super::protocol::{
    Done, Opened, Progress, Reply, ReportRequest, Request, SectionStatus, StateCheck, WorkerReport,
};
use crate::runner::new_histogram;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A dropped stream reconnects after this (EventSource would wait the `retry` hint, 2 s;
/// shorter keeps the run short, and the reconnect is counted either way).
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
const READ_BUFFER: usize = 64 * 1024;
/// HTTP/2 flow-control windows, a browser's order of size: a stream that is not read
/// cannot use up its connection's window and stall the streams beside it.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

thread_local! {
    /// One read buffer for all streams: they run on this thread one at a time, and a
    /// stream keeps between reads only the partial line its parser holds.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER]);
}

/// Microseconds since the Unix epoch: comparable with PostgreSQL's and Kafka's clocks
/// and across the worker processes (one machine, one clock).
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The seat layout the maps share: seat id ↔ position in a map's status bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// (code, rows, seats per row, index of the section's first seat).
    sections: Vec<(String, i32, i32, u32)>,
    seats: u32,
}

impl Layout {
    fn of(sections: &[SectionStatus]) -> Self {
        let mut out = Vec::new();
        let mut base = 0u32;
        for s in sections {
            out.push((s.code.clone(), s.rows, s.seats_per_row, base));
            base += (s.rows.max(0) * s.seats_per_row.max(0)) as u32;
        }
        Self {
            sections: out,
            seats: base,
        }
    }

    /// `"{code}-{row}-{seat}"` (1-based) to its index.
    fn index(&self, seat_id: &str) -> Option<u32> {
        let mut parts = seat_id.rsplitn(3, '-');
        let seat: i32 = parts.next()?.parse().ok()?;
        let row: i32 = parts.next()?.parse().ok()?;
        let code = parts.next()?;
        let (_, rows, per_row, base) = self.sections.iter().find(|s| s.0 == code)?;
        ((1..=*rows).contains(&row) && (1..=*per_row).contains(&seat))
            .then(|| base + ((row - 1) * per_row + seat - 1) as u32)
    }

    fn label(&self, index: u32) -> String {
        for (code, rows, per_row, base) in &self.sections {
            let end = base + (rows * per_row) as u32;
            if (*base..end).contains(&index) {
                let offset = (index - base) as i32;
                return format!("{code}-{}-{}", offset / per_row + 1, offset % per_row + 1);
            }
        }
        format!("#{index}")
    }
}

/// A distinct message, parsed once.
struct Message {
    id: i64,
    phase: u32,
    data: Box<[u8]>,
    /// (seat index, status byte `A`/`H`/`S`).
    seats: Vec<(u32, u8)>,
}

#[derive(Debug, Default)]
struct Client {
    map: u32,
    since: i64,
    /// Got `ready` on its first connection.
    opened: bool,
    connected: bool,
    /// Highest message id received (the stream's resume cursor).
    cursor: i64,
    /// (message index, receipt µs), in order.
    receipts: Vec<(u32, i64)>,
    resynced: bool,
    disconnects: u32,
    /// The HTTP/2 connection (index in `Shared::h2`) it shares; HTTP/1.1 when `None`.
    group: Option<usize>,
}

/// An HTTP/2 connection several streams share; made (again) by the first of them that
/// needs it.
#[derive(Default)]
struct H2Group {
    conn: tokio::sync::Mutex<Option<h2::client::SendRequest<Bytes>>>,
    members: Cell<usize>,
}

#[derive(Default)]
struct Shared {
    addr: String,
    path: String,
    layout: Option<Layout>,
    maps: HashMap<u32, Rc<[u8]>>,
    phase: u32,
    messages: Vec<Message>,
    by_id: HashMap<i64, Vec<u32>>,
    clients: Vec<Client>,
    h2: Vec<Rc<H2Group>>,
    tasks: Vec<JoinHandle<()>>,
    reconnects: u64,
    ready_mismatches: u64,
    bad_messages: u64,
    first_bad: Option<String>,
    other_events: u64,
    heartbeats: u64,
    event_id: String,
}

impl Shared {
    fn bad(&mut self, what: String) {
        self.bad_messages += 1;
        if self.first_bad.is_none() {
            eprintln!("sse-worker: {what}");
            self.first_bad = Some(what);
        }
    }

    /// The index of the message `(id, data)`, parsing it if it is new.
    fn intern(&mut self, id: i64, data: &[u8]) -> u32 {
        if let Some(known) = self.by_id.get(&id) {
            for &m in known {
                if *self.messages[m as usize].data == *data {
                    return m;
                }
            }
        }
        let seats = match self.parse_delta(id, data) {
            Ok(seats) => seats,
            Err(e) => {
                self.bad(format!("message {id}: {e}"));
                Vec::new()
            }
        };
        let index = self.messages.len() as u32;
        self.messages.push(Message {
            id,
            phase: self.phase,
            data: data.into(),
            seats,
        });
        self.by_id.entry(id).or_default().push(index);
        index
    }

    fn parse_delta(&self, id: i64, data: &[u8]) -> Result<Vec<(u32, u8)>, String> {
        #[derive(Deserialize)]
        struct Change {
            seat_id: String,
            status: String,
        }
        #[derive(Deserialize)]
        struct Delta {
            event_id: String,
            seats: Vec<Change>,
            next_offset: i64,
        }
        let delta: Delta = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        if delta.next_offset != id {
            return Err(format!("id {id} but next_offset {}", delta.next_offset));
        }
        if delta.event_id != self.event_id {
            return Err(format!("a delta of event {}", delta.event_id));
        }
        let layout = self.layout.as_ref().ok_or("no seat map yet")?;
        delta
            .seats
            .iter()
            .map(|c| {
                let index = layout
                    .index(&c.seat_id)
                    .ok_or_else(|| format!("unknown seat {}", c.seat_id))?;
                let status = match c.status.as_str() {
                    "available" => b'A',
                    "held" => b'H',
                    "sold" => b'S',
                    other => return Err(format!("unknown status {other}")),
                };
                Ok((index, status))
            })
            .collect()
    }
}

/// Where one read's events go.
struct Sink<'a> {
    shared: &'a mut Shared,
    client: usize,
    now: i64,
    opened: &'a mut Option<oneshot::Sender<Result<(), String>>>,
    /// The server said `reconnect`.
    stop: bool,
}

impl Sink<'_> {
    fn handle(&mut self, item: SseItem<'_>) {
        let (event, data, id) = match item {
            SseItem::Comment => {
                self.shared.heartbeats += 1;
                return;
            }
            SseItem::Event { event, data, id } => (event, data, id),
        };
        let id = id.and_then(|v| v.parse::<i64>().ok());
        match event {
            "seat_status_changed" => {
                let Some(id) = id else {
                    self.shared.bad("a delta without a numeric id".into());
                    return;
                };
                let message = self.shared.intern(id, data);
                let c = &mut self.shared.clients[self.client];
                c.receipts.push((message, self.now));
                c.cursor = c.cursor.max(id);
            }
            "ready" => {
                let fresh = self.opened.is_some();
                let c = &mut self.shared.clients[self.client];
                c.connected = true;
                // A fresh stream starts exactly at the map's position; a resumed one at
                // its cursor or past it (what it missed follows at once, merged).
                let ok = match id {
                    Some(id) if fresh => id == c.since,
                    Some(id) => id >= c.cursor,
                    None => false,
                };
                if !ok {
                    self.shared.ready_mismatches += 1;
                }
                if let Some(tx) = self.opened.take() {
                    self.shared.clients[self.client].opened = true;
                    let _ = tx.send(Ok(()));
                } else {
                    self.shared.reconnects += 1;
                }
            }
            "resync" => self.shared.clients[self.client].resynced = true,
            "reconnect" => self.stop = true,
            _ => self.shared.other_events += 1,
        }
    }
}

/// How a connection ended.
type Ended = Result<&'static str, String>;

/// One connection of client `i`: request, head, then events until it ends.
async fn connection(
    shared: &Rc<RefCell<Shared>>,
    i: usize,
    opened: &mut Option<oneshot::Sender<Result<(), String>>>,
) -> Ended {
    let (addr, request) = {
        let s = shared.borrow();
        let c = &s.clients[i];
        let mut request = if c.opened {
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nLast-Event-ID: {}\r\n",
                s.path, s.addr, c.cursor
            )
        } else {
            format!(
                "GET {}?since={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
                s.path, c.since, s.addr
            )
        };
        request.push_str("\r\n");
        (s.addr.clone(), request)
    };
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connect: no answer in {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut head: Option<Vec<u8>> = Some(Vec::new());
    let mut chunked: Option<Chunked> = None;
    let mut sse = SseParser::default();
    loop {
        stream
            .readable()
            .await
            .map_err(|e| format!("waiting to read: {e}"))?;
        let now = now_us();
        let step: Option<Ended> = SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            let n = match stream.try_read(&mut buf[..]) {
                Ok(0) => return Some(Ok("closed by the notifier")),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(format!("read: {e}"))),
            };
            let bytes = &buf[..n];
            let Some(h) = head.as_mut() else {
                return feed(shared, i, now, opened, &mut chunked, &mut sse, bytes);
            };
            h.extend_from_slice(bytes);
            let (parsed, at) = match parse_head(h) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if parsed.status != 200 {
                let text = String::from_utf8_lossy(&h[at..]);
                return Some(Err(format!(
                    "HTTP {}: {}",
                    parsed.status,
                    text.chars().take(300).collect::<String>()
                )));
            }
            if parsed.chunked {
                chunked = Some(Chunked::default());
            }
            // What came after the head is body.
            let rest = h.split_off(at);
            head = None;
            feed(shared, i, now, opened, &mut chunked, &mut sse, &rest)
        });
        if let Some(ended) = step {
            return ended;
        }
    }
}

/// A ready handle on `group`'s connection, connecting (again) when it has none or lost it.
async fn h2_sender(
    shared: &Rc<RefCell<Shared>>,
    group: &H2Group,
) -> Result<h2::client::SendRequest<Bytes>, String> {
    let mut conn = group.conn.lock().await;
    if let Some(send) = conn.as_ref() {
        if let Ok(ready) = send.clone().ready().await {
            return Ok(ready);
        }
    }
    let addr = shared.borrow().addr.clone();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connect: no answer in {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .handshake::<_, Bytes>(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::task::spawn_local(async move {
        if let Err(e) = connection.await {
            eprintln!("sse-worker: an HTTP/2 connection ended: {e}");
        }
    });
    *conn = Some(send.clone());
    send.ready()
        .await
        .map_err(|e| format!("HTTP/2 connection not ready: {e}"))
}

/// One stream of client `i` on its group's HTTP/2 connection: request, then events until
/// it ends.
async fn h2_connection(
    shared: &Rc<RefCell<Shared>>,
    i: usize,
    group: &H2Group,
    opened: &mut Option<oneshot::Sender<Result<(), String>>>,
) -> Ended {
    let request = {
        let s = shared.borrow();
        let c = &s.clients[i];
        let builder = if c.opened {
            http::Request::get(format!("http://{}{}", s.addr, s.path))
                .header("last-event-id", c.cursor.to_string())
        } else {
            http::Request::get(format!("http://{}{}?since={}", s.addr, s.path, c.since))
        };
        builder
            .header("accept", "text/event-stream")
            .body(())
            .map_err(|e| format!("the request: {e}"))?
    };
    let mut send = h2_sender(shared, group).await?;
    let (response, _) = send
        .send_request(request, true)
        .map_err(|e| format!("sending the request: {e}"))?;
    let response = tokio::time::timeout(CONNECT_TIMEOUT, response)
        .await
        .map_err(|_| format!("no answer in {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("response: {e}"))?;
    let status = response.status();
    let mut body = response.into_body();
    if status != http::StatusCode::OK {
        let text = match tokio::time::timeout(CONNECT_TIMEOUT, body.data()).await {
            Ok(Some(Ok(chunk))) => String::from_utf8_lossy(&chunk).chars().take(300).collect(),
            _ => String::new(),
        };
        return Err(format!("HTTP {}: {text}", status.as_u16()));
    }
    let mut sse = SseParser::default();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("read: {e}"))?;
        let now = now_us();
        let _ = body.flow_control().release_capacity(chunk.len());
        if let Some(ended) = feed(shared, i, now, opened, &mut None, &mut sse, &chunk) {
            return ended;
        }
    }
    Ok("response ended")
}

/// Decode body bytes and handle their events. `Some` when the connection should end.
fn feed(
    shared: &Rc<RefCell<Shared>>,
    i: usize,
    now: i64,
    opened: &mut Option<oneshot::Sender<Result<(), String>>>,
    chunked: &mut Option<Chunked>,
    sse: &mut SseParser,
    body: &[u8],
) -> Option<Ended> {
    let mut s = shared.borrow_mut();
    let mut sink = Sink {
        shared: &mut s,
        client: i,
        now,
        opened,
        stop: false,
    };
    match chunked {
        Some(decoder) => {
            if let Err(e) = decoder.feed(body, |p| sse.feed(p, |item| sink.handle(item))) {
                return Some(Err(format!("chunked body: {e}")));
            }
            if decoder.is_done() {
                return Some(Ok("response ended"));
            }
        }
        None => sse.feed(body, |item| sink.handle(item)),
    }
    sink.stop.then_some(Ok("told to reconnect"))
}

/// Client `i`'s life: connect, read; after a drop, reconnect with its cursor.
async fn client(
    shared: Rc<RefCell<Shared>>,
    i: usize,
    mut opened: Option<oneshot::Sender<Result<(), String>>>,
) {
    let group = {
        let s = shared.borrow();
        s.clients[i].group.and_then(|g| s.h2.get(g).cloned())
    };
    loop {
        let ended = match &group {
            Some(group) => h2_connection(&shared, i, group, &mut opened).await,
            None => connection(&shared, i, &mut opened).await,
        };
        let reason = match ended {
            Ok(why) => why.to_string(),
            Err(e) => e,
        };
        if let Some(tx) = opened.take() {
            // Never got `ready`: the stream did not open.
            let _ = tx.send(Err(reason));
            return;
        }
        {
            let mut s = shared.borrow_mut();
            let c = &mut s.clients[i];
            c.connected = false;
            c.disconnects += 1;
            if c.disconnects == 1 {
                eprintln!("sse-worker: stream {i} dropped ({reason}); reconnecting");
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

async fn open(
    shared: &Rc<RefCell<Shared>>,
    count: usize,
    since: i64,
    map: u32,
    concurrency: usize,
    timeout: Duration,
    http2: usize,
) -> Result<Opened, String> {
    if !shared.borrow().maps.contains_key(&map) {
        return Err(format!("no seat map {map}"));
    }
    let started = Instant::now();
    let mut http2_connections = 0;
    let permits = std::sync::Arc::new(Semaphore::new(concurrency.max(1)));
    let mut waits = Vec::with_capacity(count);
    for _ in 0..count {
        let permit = std::sync::Arc::clone(&permits)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let i = {
            let mut s = shared.borrow_mut();
            let group = (http2 > 0).then(|| {
                let last = s.h2.len().checked_sub(1);
                match last.filter(|&g| s.h2[g].members.get() < http2) {
                    Some(g) => g,
                    None => {
                        s.h2.push(Rc::default());
                        http2_connections += 1;
                        s.h2.len() - 1
                    }
                }
            });
            if let Some(g) = group {
                let members = &s.h2[g].members;
                members.set(members.get() + 1);
            }
            s.clients.push(Client {
                map,
                since,
                cursor: since,
                group,
                ..Client::default()
            });
            s.clients.len() - 1
        };
        let (tx, rx) = oneshot::channel();
        let task = tokio::task::spawn_local(client(Rc::clone(shared), i, Some(tx)));
        let abort = task.abort_handle();
        shared.borrow_mut().tasks.push(task);
        waits.push(tokio::task::spawn_local(async move {
            let result = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err("the stream's task ended".to_string()),
                Err(_) => Err(format!("no `ready` within {timeout:?}")),
            };
            if result.is_err() {
                // Close it: a connection waiting in the notifier's accept queue must
                // not be served later as a stream nobody counts.
                abort.abort();
            }
            drop(permit);
            result
        }));
    }
    let mut out = Opened {
        http2_connections,
        ..Opened::default()
    };
    for wait in waits {
        match wait.await {
            Ok(Ok(())) => out.opened += 1,
            Ok(Err(e)) => {
                out.failed += 1;
                out.first_error.get_or_insert(e);
            }
            Err(e) => {
                out.failed += 1;
                out.first_error.get_or_insert(e.to_string());
            }
        }
    }
    out.secs = crate::results::round(started.elapsed().as_secs_f64(), 3);
    Ok(out)
}

fn progress(s: &Shared) -> Progress {
    let mut p = Progress {
        min_cursor: i64::MAX,
        ..Progress::default()
    };
    for c in s.clients.iter().filter(|c| c.opened) {
        p.streams += 1;
        p.connected += usize::from(c.connected);
        p.messages += c.receipts.len() as u64;
        p.disconnects += u64::from(c.disconnects);
        p.resyncs += u64::from(c.resynced);
        if !c.resynced {
            p.min_cursor = p.min_cursor.min(c.cursor);
        }
    }
    if p.min_cursor == i64::MAX {
        p.min_cursor = -1;
    }
    p
}

fn firsts(s: &Shared, phase: u32) -> Vec<(i64, i64)> {
    let mut first: HashMap<i64, i64> = HashMap::new();
    for c in &s.clients {
        for &(m, at) in &c.receipts {
            let message = &s.messages[m as usize];
            if message.phase == phase {
                let e = first.entry(message.id).or_insert(at);
                *e = (*e).min(at);
            }
        }
    }
    let mut out: Vec<(i64, i64)> = first.into_iter().collect();
    out.sort_unstable();
    out
}

fn report(s: &Shared, r: &ReportRequest) -> Result<WorkerReport, String> {
    let final_map = s
        .maps
        .get(&r.final_map)
        .ok_or_else(|| format!("no seat map {}", r.final_map))?;
    let layout = s.layout.as_ref().ok_or("no seat map yet")?;
    let firsts: HashMap<i64, i64> = r.firsts.iter().copied().collect();
    let (mut decided, mut published, mut spread) =
        (new_histogram(), new_histogram(), new_histogram());
    let mut out = WorkerReport {
        reconnects: s.reconnects,
        ready_mismatches: s.ready_mismatches,
        bad_messages: s.bad_messages,
        first_bad: s.first_bad.clone(),
        other_events: s.other_events,
        heartbeats: s.heartbeats,
        ..WorkerReport::default()
    };
    let (mut first_us, mut last_us) = (i64::MAX, i64::MIN);
    let add = |a: &mut Unattributed, b: Unattributed| {
        a.missed += b.missed;
        a.negative += b.negative;
    };
    // Clients grouped by what they received: one fold per distinct sequence.
    let mut sequences: HashMap<(u32, u64), (usize, u64)> = HashMap::new();
    let mut state = StateCheck::default();
    for (i, c) in s.clients.iter().enumerate().filter(|(_, c)| c.opened) {
        out.streams += 1;
        out.connected += usize::from(c.connected);
        out.disconnects += u64::from(c.disconnects);
        let in_phase: Vec<(i64, i64)> = c
            .receipts
            .iter()
            .filter(|(m, _)| s.messages[*m as usize].phase == r.phase)
            .map(|&(m, at)| {
                let message = &s.messages[m as usize];
                out.data_bytes += message.data.len() as u64;
                out.seats += message.seats.len() as u64;
                if let Some(first) = firsts.get(&message.id) {
                    spread.saturating_record((at - first).max(0) as u64);
                }
                (message.id, at)
            })
            .collect();
        out.messages += in_phase.len() as u64;
        if let (Some(first), Some(last)) = (in_phase.first(), in_phase.last()) {
            first_us = first_us.min(first.1);
            last_us = last_us.max(last.1);
        }
        let start = c.since;
        add(
            &mut out.decided_unattributed,
            measure::attribute(&r.changes, start, in_phase.iter().copied(), &mut decided),
        );
        add(
            &mut out.published_unattributed,
            measure::attribute(&r.published, start, in_phase, &mut published),
        );
        if c.resynced {
            state.resynced += 1;
            continue;
        }
        let mut h = DefaultHasher::new();
        for (m, _) in &c.receipts {
            m.hash(&mut h);
        }
        sequences
            .entry((c.map, h.finish()))
            .and_modify(|e| e.1 += 1)
            .or_insert((i, 1));
    }
    if first_us <= last_us {
        out.first_us = first_us;
        out.last_us = last_us;
    }
    state.distinct_sequences = sequences.len() as u64;
    for &(representative, count) in sequences.values() {
        let c = &s.clients[representative];
        let start = s
            .maps
            .get(&c.map)
            .ok_or_else(|| format!("no seat map {}", c.map))?;
        let mut seats = start.to_vec();
        for (m, _) in &c.receipts {
            for &(index, status) in &s.messages[*m as usize].seats {
                seats[index as usize] = status;
            }
        }
        state.checked += count;
        match seats.iter().zip(final_map.iter()).position(|(a, b)| a != b) {
            None if seats.len() == final_map.len() => state.matching += count,
            at => {
                state.mismatching += count;
                if state.first_mismatch.is_none() {
                    state.first_mismatch = Some(match at {
                        Some(at) => format!(
                            "{count} streams (e.g. stream {representative}, {} messages) end with seat {} '{}', the seat map says '{}'",
                            c.receipts.len(),
                            layout.label(at as u32),
                            seats[at] as char,
                            final_map[at] as char
                        ),
                        None => "a seat map of another size".to_string(),
                    });
                }
            }
        }
    }
    out.state = state;
    out.decided_to_received = measure::to_pairs(&decided);
    out.published_to_received = measure::to_pairs(&published);
    out.spread = measure::to_pairs(&spread);
    Ok(out)
}

fn set_map(s: &mut Shared, id: u32, sections: &[SectionStatus]) -> Result<(), String> {
    let layout = Layout::of(sections);
    match &s.layout {
        Some(known) if *known != layout => return Err("seat maps of different layouts".into()),
        Some(_) => {}
        None => s.layout = Some(layout.clone()),
    }
    let mut bytes = Vec::with_capacity(layout.seats as usize);
    for section in sections {
        let want = (section.rows * section.seats_per_row).max(0) as usize;
        if section.status.len() != want {
            return Err(format!(
                "section {} has {} statuses for {want} seats",
                section.code,
                section.status.len()
            ));
        }
        bytes.extend_from_slice(section.status.as_bytes());
    }
    s.maps.insert(id, bytes.into());
    Ok(())
}

fn reply<T: serde::Serialize>(result: Result<T, String>) -> String {
    let reply = match result {
        Ok(ok) => Reply::Ok { ok },
        Err(error) => Reply::Err { error },
    };
    serde_json::to_string(&reply)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize the reply: {e}\"}}"))
}

async fn serve(addr: String, path: String, event_id: String) -> anyhow::Result<()> {
    let shared = Rc::new(RefCell::new(Shared {
        addr,
        path,
        event_id,
        ..Shared::default()
    }));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let text = reply::<Done>(Err(format!("bad request: {e}")));
                stdout.write_all(format!("{text}\n").as_bytes()).await?;
                stdout.flush().await?;
                continue;
            }
        };
        let mut close = false;
        let text = match request {
            Request::Map { id, sections } => {
                reply(set_map(&mut shared.borrow_mut(), id, &sections).map(|()| Done {}))
            }
            Request::Open {
                count,
                since,
                map,
                concurrency,
                timeout_ms,
                http2,
            } => reply(
                open(
                    &shared,
                    count,
                    since,
                    map,
                    concurrency,
                    Duration::from_millis(timeout_ms),
                    http2,
                )
                .await,
            ),
            Request::Phase { phase } => {
                shared.borrow_mut().phase = phase;
                reply(Ok(Done {}))
            }
            Request::Progress => reply(Ok(progress(&shared.borrow()))),
            Request::Firsts { phase } => reply(Ok(firsts(&shared.borrow(), phase))),
            Request::Report(r) => reply(report(&shared.borrow(), &r)),
            Request::Close => {
                for task in shared.borrow_mut().tasks.drain(..) {
                    task.abort();
                }
                close = true;
                reply(Ok(Done {}))
            }
        };
        stdout.write_all(format!("{text}\n").as_bytes()).await?;
        stdout.flush().await?;
        if close {
            break;
        }
    }
    Ok(())
}

/// `bench sse-worker`: serve the scenario's requests until `close` or end of input. (The
/// scenario starts it with its descriptor limit raised to the hard limit.)
pub fn main(addr: String, path: String, event_id: String) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, serve(addr, path, event_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections() -> Vec<SectionStatus> {
        vec![
            SectionStatus {
                code: "L101".into(),
                rows: 2,
                seats_per_row: 3,
                status: "AAAHAA".into(),
            },
            SectionStatus {
                code: "X-1".into(),
                rows: 1,
                seats_per_row: 2,
                status: "SA".into(),
            },
        ]
    }

    #[test]
    fn seat_ids_map_to_positions_in_the_status_bytes_and_back() {
        let layout = Layout::of(&sections());
        assert_eq!(layout.seats, 8);
        assert_eq!(layout.index("L101-1-1"), Some(0));
        assert_eq!(layout.index("L101-2-1"), Some(3));
        assert_eq!(layout.index("X-1-1-2"), Some(7), "codes may contain '-'");
        assert_eq!(layout.index("L101-3-1"), None);
        assert_eq!(layout.index("L101-1-4"), None);
        assert_eq!(layout.index("L102-1-1"), None);
        assert_eq!(layout.label(3), "L101-2-1");
        assert_eq!(layout.label(7), "X-1-1-2");
    }

    fn shared() -> Shared {
        let mut s = Shared {
            event_id: "e1".into(),
            ..Shared::default()
        };
        set_map(&mut s, 0, &sections()).expect("map");
        s
    }

    #[test]
    fn a_message_is_parsed_once_and_matched_by_its_bytes() {
        let mut s = shared();
        let a = br#"{"event_id":"e1","seats":[{"seat_id":"L101-2-1","status":"available"},{"seat_id":"X-1-1-2","status":"held"}],"sections":[],"next_offset":7}"#;
        let m = s.intern(7, a);
        assert_eq!(s.intern(7, a), m);
        assert_eq!(s.messages[m as usize].seats, [(3, b'A'), (7, b'H')]);
        // Same id, other bytes (a resumed stream's catch-up): another message.
        let b = br#"{"event_id":"e1","seats":[],"sections":[],"next_offset":7}"#;
        assert_ne!(s.intern(7, b), m);
        assert_eq!(s.bad_messages, 0);
        s.intern(
            8,
            br#"{"event_id":"e2","seats":[],"sections":[],"next_offset":8}"#,
        );
        s.intern(
            9,
            br#"{"event_id":"e1","seats":[],"sections":[],"next_offset":8}"#,
        );
        s.intern(10, b"not json");
        assert_eq!(s.bad_messages, 3);
    }

    #[test]
    fn every_client_is_checked_against_the_final_map() {
        let mut s = shared();
        set_map(
            &mut s,
            1,
            &[
                SectionStatus {
                    status: "AAAAAA".into(),
                    ..sections()[0].clone()
                },
                SectionStatus {
                    status: "SH".into(),
                    ..sections()[1].clone()
                },
            ],
        )
        .expect("map");
        let delta = br#"{"event_id":"e1","seats":[{"seat_id":"L101-2-1","status":"available"},{"seat_id":"X-1-1-2","status":"held"}],"sections":[],"next_offset":7}"#;
        let m = s.intern(7, delta);
        for got_it in [true, true, false] {
            s.clients.push(Client {
                map: 0,
                since: 5,
                opened: true,
                cursor: if got_it { 7 } else { 5 },
                receipts: if got_it { vec![(m, 1_000)] } else { vec![] },
                ..Client::default()
            });
        }
        let r = report(
            &s,
            &ReportRequest {
                phase: 0,
                changes: measure::marks(vec![(7, 400), (7, 400)]),
                published: vec![],
                firsts: firsts(&s, 0),
                final_map: 1,
            },
        )
        .expect("report");
        assert_eq!(r.state.checked, 3);
        assert_eq!(r.state.matching, 2);
        assert_eq!(r.state.mismatching, 1);
        assert_eq!(r.state.distinct_sequences, 2);
        assert!(
            r.state
                .first_mismatch
                .as_deref()
                .is_some_and(|m| m.contains("seat L101-2-1 'H', the seat map says 'A'")),
            "{:?}",
            r.state.first_mismatch
        );
        assert_eq!(r.messages, 2);
        assert_eq!(r.decided_unattributed.missed, 2, "the third client's two");
        let mut h = new_histogram();
        measure::add_pairs(&mut h, &r.decided_to_received);
        assert_eq!((h.len(), h.max()), (4, h.highest_equivalent(600)));
        assert_eq!(progress(&s).min_cursor, 5);
    }
}
