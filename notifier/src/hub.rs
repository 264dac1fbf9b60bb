//! Who listens to what, what was said recently, and getting each message to its listeners.
//!
//! The hub is fed every message of `seatq.seat-events` in partition order (`publish`) and
//! keeps, under one lock:
//! - per event, its recent seat-map deltas (to resume event streams) and the changes not
//!   yet sent, merged (`flush` sends them every `coalesce_ms`: a storm of 10,000 changes a
//!   second becomes a few messages per second per client, each with every seat changed);
//! - per partition, recent messages addressed to users (to resume user streams), and the
//!   position read so far;
//! - the clients: a bounded queue each. A message is offered with `try_send`; a client
//!   whose queue is full has fallen behind and is disconnected (its HTTP/1.1 connection
//!   killed; an HTTP/2 stream is just no longer fed, see `state::ConnectionKillParts`), so
//!   a slow reader can never hold others up or make the notifier's memory grow. It
//!   reconnects and resumes from its last id.
//!
//! Registering a client and replaying what it missed happen under the same lock as
//! publishing, so nothing published in between is lost or sent twice.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use seatq_common::ids::{EventId, UserId};
use seatq_common::message::{
    SeatChange, SeatEvent, SeatEventEnvelope, SeatStatus, SectionAvailability,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::frame::{Frame, SharedFrame, READY, RECONNECT, RESYNC};
use crate::position::{Cut, Pos};

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub retain_per_partition: usize,
    pub retain_deltas_per_event: usize,
    pub client_buffer: usize,
    /// Streams this hub serves at most, however they came.
    pub max_clients: usize,
    /// Streams that own their connection (HTTP/1.1, WebSocket: they come with a kill
    /// switch) at most: each costs a file descriptor, so this stays below the process's
    /// limit. Streams multiplexed on HTTP/2 connections share descriptors and count only
    /// against `max_clients`.
    pub max_connection_streams: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("this notifier serves as many streams as it may")]
    Full,
    #[error("this notifier is shutting down")]
    Closed,
}

/// Where an event stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStart {
    /// From the seat map the client holds (its `position.next_offset`), or from now.
    Fresh(Option<i64>),
    /// A dropped stream's `Last-Event-ID`.
    Resume(i64),
}

/// Counters for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    pub clients: usize,
    /// Clients disconnected because they fell behind.
    pub dropped_slow: u64,
    pub messages: u64,
}

pub struct Hub {
    config: HubConfig,
    state: Mutex<State>,
    next_client: AtomicU64,
    clients: AtomicUsize,
    /// Of `clients`, those that own their connection.
    connection_streams: AtomicUsize,
    dropped_slow: AtomicU64,
    messages: AtomicU64,
    metrics: seatq_common::metrics::NotifierMetrics,
}

#[derive(Default)]
struct State {
    partitions: BTreeMap<i32, PartitionLog>,
    events: HashMap<EventId, EventState>,
    users: HashMap<UserId, HashMap<u64, Client>>,
    closed: bool,
}

struct Client {
    tx: mpsc::Sender<SharedFrame>,
    kill: Option<CancellationToken>,
}

/// What happened to a frame offered to a client.
enum Offer {
    Queued,
    /// Fell behind or went away: remove it.
    Gone,
}

impl Client {
    fn offer(&self, frame: &SharedFrame, hub: &Hub) -> Offer {
        match self.tx.try_send(frame.clone()) {
            Ok(()) => {
                hub.metrics.frames_sent.increment(1);
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                hub.dropped_slow.fetch_add(1, Ordering::Relaxed);
                hub.metrics.dropped_slow.increment(1);
                tracing::debug!("a client fell behind; disconnecting it");
                if let Some(kill) = &self.kill {
                    kill.cancel();
                }
                Offer::Gone
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }
}

struct PartitionLog {
    /// Recent messages addressed to a user, oldest first.
    entries: VecDeque<UserEntry>,
    /// Messages at or before this position may be missing from `entries`.
    complete_after: Pos,
    /// The last position read.
    head: Pos,
}

struct UserEntry {
    pos: Pos,
    user: UserId,
    event: &'static str,
    data: Arc<str>,
}

struct EventState {
    clients: HashMap<u64, EventClient>,
    /// Recent deltas, in order.
    deltas: VecDeque<Arc<Delta>>,
    /// Every delta with `next_offset` above this is in `deltas` (`i64::MAX`: unknown yet).
    complete_after: i64,
    /// Changes not yet sent to the clients.
    pending: Delta,
}

struct EventClient {
    client: Client,
    /// Send only deltas past this offset (the client already has the rest).
    after: i64,
}

/// Seat-map changes up to `next_offset`; merging keeps the latest state of each seat.
#[derive(Debug, Default, Clone)]
struct Delta {
    seats: BTreeMap<String, SeatStatus>,
    sections: BTreeMap<String, i32>,
    next_offset: i64,
}

/// What a `seat_status_changed` stream message carries.
#[derive(Serialize)]
struct DeltaMessage {
    event_id: EventId,
    seats: Vec<SeatChange>,
    sections: Vec<SectionAvailability>,
    next_offset: i64,
}

impl Delta {
    fn merge(&mut self, other: &Delta) {
        self.seats
            .extend(other.seats.iter().map(|(k, v)| (k.clone(), *v)));
        self.sections
            .extend(other.sections.iter().map(|(k, v)| (k.clone(), *v)));
        self.next_offset = self.next_offset.max(other.next_offset);
    }

    fn is_empty(&self) -> bool {
        self.seats.is_empty() && self.sections.is_empty()
    }

    fn frame(&self, event_id: EventId) -> SharedFrame {
        let message = DeltaMessage {
            event_id,
            seats: self
                .seats
                .iter()
                .map(|(seat_id, status)| SeatChange {
                    seat_id: seat_id.clone(),
                    status: *status,
                })
                .collect(),
            sections: self
                .sections
                .iter()
                .map(|(section, available)| SectionAvailability {
                    section: section.clone(),
                    available: *available,
                })
                .collect(),
            next_offset: self.next_offset,
        };
        let data = serde_json::to_string(&message).unwrap_or_else(|_| "{}".into());
        Frame::new(
            Some(self.next_offset.to_string()),
            "seat_status_changed",
            data,
        )
    }
}

impl EventState {
    fn new() -> Self {
        Self {
            clients: HashMap::new(),
            deltas: VecDeque::new(),
            complete_after: i64::MAX,
            pending: Delta::default(),
        }
    }
}

/// A client's registration: the frames to send first, then whatever arrives on the queue.
/// Dropping it unregisters the client.
pub struct Subscription {
    pub initial: VecDeque<SharedFrame>,
    pub rx: mpsc::Receiver<SharedFrame>,
    hub: Arc<Hub>,
    id: u64,
    key: Key,
    owns_connection: bool,
}

enum Key {
    Event(EventId),
    User(UserId),
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.clients.fetch_sub(1, Ordering::Relaxed);
        if self.owns_connection {
            self.hub.connection_streams.fetch_sub(1, Ordering::Relaxed);
        }
        self.hub.metrics.clients.decrement(1.0);
        let mut state = self.hub.lock();
        match &self.key {
            Key::Event(event_id) => {
                if let Some(e) = state.events.get_mut(event_id) {
                    e.clients.remove(&self.id);
                }
            }
            Key::User(user) => {
                if let Some(clients) = state.users.get_mut(user) {
                    clients.remove(&self.id);
                    if clients.is_empty() {
                        state.users.remove(user);
                    }
                }
            }
        }
    }
}

impl Hub {
    pub fn new(config: HubConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(State::default()),
            next_client: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            connection_streams: AtomicUsize::new(0),
            dropped_slow: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            metrics: seatq_common::metrics::NotifierMetrics::new(),
        })
    }

    /// The state, even if a panic poisoned the lock (every update leaves it consistent).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            clients: self.clients.load(Ordering::Relaxed),
            dropped_slow: self.dropped_slow.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
        }
    }

    /// Reading `partition` starts at `offset`: what came before is not known here.
    pub fn start_partition(&self, partition: i32, offset: i64) {
        let before = Pos::new(offset - 1, u32::MAX);
        self.lock().partitions.insert(
            partition,
            PartitionLog {
                entries: VecDeque::new(),
                complete_after: before,
                head: before,
            },
        );
    }

    /// A message read from `partition` at `pos`.
    pub fn publish(&self, partition: i32, pos: Pos, envelope: &SeatEventEnvelope) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(log) = state.partitions.get_mut(&partition) else {
            return;
        };
        if pos <= log.head {
            return; // read twice (after a seek): already handled
        }
        log.head = pos;
        match &envelope.payload {
            SeatEvent::SeatStatusChanged {
                seats,
                sections,
                next_offset,
            } => {
                let delta = Delta {
                    seats: seats
                        .iter()
                        .map(|c| (c.seat_id.clone(), c.status))
                        .collect(),
                    sections: sections
                        .iter()
                        .map(|s| (s.section.clone(), s.available))
                        .collect(),
                    next_offset: *next_offset,
                };
                let event = state
                    .events
                    .entry(envelope.event_id)
                    .or_insert_with(EventState::new);
                if event.complete_after == i64::MAX {
                    event.complete_after = next_offset - 1;
                }
                if !event.clients.is_empty() {
                    event.pending.merge(&delta);
                }
                event.deltas.push_back(Arc::new(delta));
                while event.deltas.len() > self.config.retain_deltas_per_event {
                    if let Some(old) = event.deltas.pop_front() {
                        event.complete_after = event.complete_after.max(old.next_offset);
                    }
                }
            }
            payload => {
                let Some(user) = payload.user_id() else {
                    return;
                };
                let Ok(data) = serde_json::to_string(envelope) else {
                    return;
                };
                let entry = UserEntry {
                    pos,
                    user: user.clone(),
                    event: payload.kind(),
                    data: data.into(),
                };
                if let Some(clients) = state.users.get_mut(user) {
                    let cut = cut_of(&state.partitions);
                    let frame = Frame::new(Some(cut.to_string()), entry.event, entry.data.clone());
                    clients.retain(|_, c| matches!(c.offer(&frame, self), Offer::Queued));
                }
                if let Some(log) = state.partitions.get_mut(&partition) {
                    log.entries.push_back(entry);
                    while log.entries.len() > self.config.retain_per_partition {
                        if let Some(old) = log.entries.pop_front() {
                            log.complete_after = log.complete_after.max(old.pos);
                        }
                    }
                }
            }
        }
    }

    /// Send every event's merged pending changes to its clients.
    pub fn flush(&self) {
        let mut state = self.lock();
        for (event_id, event) in state.events.iter_mut() {
            if event.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut event.pending);
            if event.clients.is_empty() {
                continue;
            }
            let frame = pending.frame(*event_id);
            event.clients.retain(|_, c| {
                c.after >= pending.next_offset
                    || matches!(c.client.offer(&frame, self), Offer::Queued)
            });
        }
    }

    /// A new client, if there is room for it; `kill` is its connection's kill switch
    /// when the stream owns its connection.
    fn register(
        &self,
        state: &State,
        kill: Option<CancellationToken>,
    ) -> Result<(u64, Client, mpsc::Receiver<SharedFrame>), SubscribeError> {
        if state.closed {
            return Err(SubscribeError::Closed);
        }
        if self.clients.load(Ordering::Relaxed) >= self.config.max_clients
            || (kill.is_some()
                && self.connection_streams.load(Ordering::Relaxed)
                    >= self.config.max_connection_streams)
        {
            return Err(SubscribeError::Full);
        }
        let (tx, rx) = mpsc::channel(self.config.client_buffer.max(1));
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        Ok((id, Client { tx, kill }, rx))
    }

    /// The registration of a client just added under `key` (counted until it is dropped).
    fn subscription(
        self: &Arc<Self>,
        id: u64,
        key: Key,
        initial: VecDeque<SharedFrame>,
        rx: mpsc::Receiver<SharedFrame>,
        owns_connection: bool,
    ) -> Subscription {
        self.clients.fetch_add(1, Ordering::Relaxed);
        if owns_connection {
            self.connection_streams.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.clients.increment(1.0);
        Subscription {
            initial,
            rx,
            hub: self.clone(),
            id,
            key,
            owns_connection,
        }
    }

    /// Follow one event's seat map.
    pub fn subscribe_event(
        self: &Arc<Self>,
        event_id: EventId,
        start: EventStart,
        kill: Option<CancellationToken>,
    ) -> Result<Subscription, SubscribeError> {
        let mut state = self.lock();
        let owns_connection = kill.is_some();
        let (id, client, rx) = self.register(&state, kill)?;
        let event = state.events.entry(event_id).or_insert_with(EventState::new);
        let mut initial = VecDeque::new();
        let after = match start {
            EventStart::Resume(from) if event.complete_after > from => {
                initial.push_back(Frame::control(
                    RESYNC,
                    None,
                    "changes since your last message are no longer kept here: re-fetch the seat map",
                ));
                -1
            }
            EventStart::Resume(from) | EventStart::Fresh(Some(from)) => from,
            EventStart::Fresh(None) => -1,
        };
        let mut missed = Delta::default();
        for delta in event.deltas.iter().filter(|d| d.next_offset > after) {
            missed.merge(delta);
        }
        let cursor = after.max(missed.next_offset);
        initial.push_front(Frame::control(
            READY,
            (cursor >= 0).then(|| cursor.to_string()),
            "streaming",
        ));
        if !missed.is_empty() {
            initial.push_back(missed.frame(event_id));
        }
        // Pending changes go out at the next flush, to this client too unless it has them.
        event.clients.insert(
            id,
            EventClient {
                client,
                after: cursor,
            },
        );
        drop(state);
        Ok(self.subscription(id, Key::Event(event_id), initial, rx, owns_connection))
    }

    /// Follow what happens to one user's holds, offers, bookings and refunds.
    pub fn subscribe_user(
        self: &Arc<Self>,
        user: UserId,
        resume: Option<Cut>,
        kill: Option<CancellationToken>,
    ) -> Result<Subscription, SubscribeError> {
        let mut guard = self.lock();
        let owns_connection = kill.is_some();
        let (id, client, rx) = self.register(&guard, kill)?;
        let state = &mut *guard;
        let mut initial = VecDeque::new();
        let head = cut_of(&state.partitions);
        if let Some(from) = resume {
            let kept = state
                .partitions
                .iter()
                .all(|(p, log)| from.0.get(p).is_some_and(|at| *at >= log.complete_after));
            if kept {
                let mut cursor = from.clone();
                for (p, log) in &state.partitions {
                    for entry in log
                        .entries
                        .iter()
                        .filter(|e| e.user == user && !from.covers(*p, e.pos))
                    {
                        cursor.0.insert(*p, entry.pos);
                        initial.push_back(Frame::new(
                            Some(cursor.to_string()),
                            entry.event,
                            entry.data.clone(),
                        ));
                    }
                    cursor.0.insert(*p, log.head);
                }
            } else {
                initial.push_back(Frame::control(
                    RESYNC,
                    None,
                    "messages since your last one are no longer kept here: re-fetch your holds and bookings",
                ));
            }
        }
        initial.push_front(Frame::control(
            READY,
            (!head.0.is_empty()).then(|| head.to_string()),
            "streaming",
        ));
        state
            .users
            .entry(user.clone())
            .or_default()
            .insert(id, client);
        drop(guard);
        Ok(self.subscription(id, Key::User(user), initial, rx, owns_connection))
    }

    /// Tell every client to reconnect elsewhere and close their streams; refuse new ones.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let bye = Frame::control(RECONNECT, None, "this notifier is shutting down; reconnect");
        for event in state.events.values_mut() {
            for c in event.clients.values() {
                let _ = c.client.tx.try_send(bye.clone());
            }
            event.clients.clear();
        }
        for clients in state.users.values() {
            for c in clients.values() {
                let _ = c.tx.try_send(bye.clone());
            }
        }
        state.users.clear();
    }

    /// Whether every partition has been read up to `targets` (start-up catch-up).
    pub fn caught_up(&self, targets: &BTreeMap<i32, i64>) -> bool {
        let state = self.lock();
        targets.iter().all(|(p, end)| {
            state
                .partitions
                .get(p)
                .is_some_and(|log| log.head.offset + 1 >= *end)
        })
    }
}

fn cut_of(partitions: &BTreeMap<i32, PartitionLog>) -> Cut {
    Cut(partitions.iter().map(|(p, log)| (*p, log.head)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use seatq_common::ids::HoldId;

    fn hub(client_buffer: usize) -> Arc<Hub> {
        let hub = Hub::new(HubConfig {
            retain_per_partition: 3,
            retain_deltas_per_event: 3,
            client_buffer,
            max_clients: 10,
            max_connection_streams: 4,
        });
        hub.start_partition(0, 0);
        hub.start_partition(1, 0);
        hub
    }

    fn delta(
        event: EventId,
        seat: &str,
        status: SeatStatus,
        next_offset: i64,
    ) -> SeatEventEnvelope {
        SeatEventEnvelope {
            event_id: event,
            occurred_at: Utc::now(),
            payload: SeatEvent::SeatStatusChanged {
                seats: vec![SeatChange {
                    seat_id: seat.into(),
                    status,
                }],
                sections: vec![],
                next_offset,
            },
        }
    }

    fn released(event: EventId, user: &str) -> SeatEventEnvelope {
        SeatEventEnvelope {
            event_id: event,
            occurred_at: Utc::now(),
            payload: SeatEvent::HoldReleased {
                hold_id: HoldId::new(),
                user_id: UserId(user.into()),
                reason: "expired".into(),
            },
        }
    }

    fn drain(sub: &mut Subscription) -> Vec<SharedFrame> {
        let mut out: Vec<SharedFrame> = sub.initial.drain(..).collect();
        while let Ok(f) = sub.rx.try_recv() {
            out.push(f);
        }
        out
    }

    #[test]
    fn deltas_are_coalesced_per_flush_with_the_latest_state_of_each_seat() {
        let hub = hub(8);
        let event = EventId::new();
        let mut sub = hub
            .subscribe_event(event, EventStart::Fresh(Some(10)), None)
            .expect("subscribe");
        hub.publish(
            0,
            Pos::new(0, 0),
            &delta(event, "A-1-1", SeatStatus::Held, 11),
        );
        hub.publish(
            0,
            Pos::new(0, 1),
            &delta(event, "A-1-2", SeatStatus::Held, 11),
        );
        hub.publish(
            0,
            Pos::new(1, 0),
            &delta(event, "A-1-1", SeatStatus::Available, 12),
        );
        hub.flush();
        let frames = drain(&mut sub);
        assert_eq!(frames.len(), 2, "ready + one coalesced delta");
        assert_eq!(frames[0].event, READY);
        assert_eq!(frames[0].id.as_deref(), Some("10"));
        assert_eq!(frames[1].id.as_deref(), Some("12"));
        let data: serde_json::Value = serde_json::from_str(&frames[1].data).expect("json");
        assert_eq!(
            data["seats"],
            serde_json::json!([
                {"seat_id": "A-1-1", "status": "available"},
                {"seat_id": "A-1-2", "status": "held"}
            ])
        );
        hub.flush();
        assert!(drain(&mut sub).is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn a_resume_gets_exactly_the_missed_changes_or_a_resync() {
        let hub = hub(8);
        let event = EventId::new();
        for (i, seat) in ["A-1-1", "A-1-2", "A-1-3"].into_iter().enumerate() {
            hub.publish(
                0,
                Pos::new(i as i64, 0),
                &delta(event, seat, SeatStatus::Sold, 20 + i as i64),
            );
        }
        let mut sub = hub
            .subscribe_event(event, EventStart::Resume(20), None)
            .expect("subscribe");
        let frames = drain(&mut sub);
        assert_eq!(frames[0].id.as_deref(), Some("22"));
        let data: serde_json::Value = serde_json::from_str(&frames[1].data).expect("json");
        let seats: Vec<&str> = data["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| s["seat_id"].as_str().expect("id"))
            .collect();
        assert_eq!(seats, ["A-1-2", "A-1-3"]);
        // Older than the first delta seen: we cannot know what came before.
        let mut old = hub
            .subscribe_event(event, EventStart::Resume(5), None)
            .expect("subscribe");
        assert!(drain(&mut old).iter().any(|f| f.event == RESYNC));
        // Evicted (3 kept): the oldest are gone.
        hub.publish(
            0,
            Pos::new(3, 0),
            &delta(event, "A-1-4", SeatStatus::Sold, 23),
        );
        let mut late = hub
            .subscribe_event(event, EventStart::Resume(19), None)
            .expect("subscribe");
        assert!(drain(&mut late).iter().any(|f| f.event == RESYNC));
        let mut fine = hub
            .subscribe_event(event, EventStart::Resume(20), None)
            .expect("subscribe");
        assert!(!drain(&mut fine).iter().any(|f| f.event == RESYNC));
    }

    #[test]
    fn user_streams_resume_from_a_cut_across_partitions() {
        let hub = hub(8);
        let event = EventId::new();
        let mut sub = hub
            .subscribe_user(UserId("ann".into()), None, None)
            .expect("subscribe");
        hub.publish(0, Pos::new(0, 0), &released(event, "ann"));
        hub.publish(1, Pos::new(0, 0), &released(event, "bob"));
        let frames = drain(&mut sub);
        assert_eq!(frames.len(), 2, "ready + ann's message only");
        let cursor = Cut::parse(frames[1].id.as_deref().expect("id")).expect("cut");
        drop(sub);
        // While ann is away: one message on each partition for her.
        hub.publish(1, Pos::new(1, 0), &released(event, "ann"));
        hub.publish(0, Pos::new(1, 0), &released(event, "ann"));
        hub.publish(0, Pos::new(1, 1), &released(event, "bob"));
        let mut back = hub
            .subscribe_user(UserId("ann".into()), Some(cursor), None)
            .expect("resume");
        let frames = drain(&mut back);
        assert_eq!(
            frames.iter().filter(|f| f.event == "hold_released").count(),
            2
        );
        // Resuming from the last of those gets nothing again.
        let last =
            Cut::parse(frames.last().and_then(|f| f.id.as_deref()).expect("id")).expect("cut");
        let mut again = hub
            .subscribe_user(UserId("ann".into()), Some(last), None)
            .expect("resume");
        assert_eq!(drain(&mut again).len(), 1, "ready only");
    }

    #[test]
    fn a_client_that_falls_behind_is_disconnected_and_others_keep_receiving() {
        let hub = hub(2);
        let event = EventId::new();
        let kill = CancellationToken::new();
        let mut slow = hub
            .subscribe_event(event, EventStart::Fresh(None), Some(kill.clone()))
            .expect("slow");
        let mut fast = hub
            .subscribe_event(event, EventStart::Fresh(None), None)
            .expect("fast");
        slow.initial.clear();
        for i in 0..5 {
            hub.publish(
                0,
                Pos::new(i, 0),
                &delta(event, "A-1-1", SeatStatus::Held, 30 + i),
            );
            hub.flush();
            while fast.rx.try_recv().is_ok() {}
        }
        assert!(
            kill.is_cancelled(),
            "the slow client's connection was killed"
        );
        assert_eq!(hub.stats().dropped_slow, 1);
        hub.publish(
            0,
            Pos::new(9, 0),
            &delta(event, "A-1-2", SeatStatus::Held, 40),
        );
        hub.flush();
        assert!(fast.rx.try_recv().is_ok(), "the fast client still receives");
        drop(slow);
        assert_eq!(hub.stats().clients, 1);
    }

    #[test]
    fn streams_that_own_a_connection_are_capped_below_all_streams() {
        let hub = hub(8);
        let event = EventId::new();
        let open = |kill: Option<CancellationToken>| {
            hub.subscribe_event(event, EventStart::Fresh(None), kill)
        };
        let mut subs: Vec<Subscription> = (0..4)
            .map(|_| open(Some(CancellationToken::new())).expect("own connection"))
            .collect();
        assert!(matches!(
            open(Some(CancellationToken::new())),
            Err(SubscribeError::Full)
        ));
        // Multiplexed streams need no descriptor: room up to `max_clients` (10).
        subs.extend((0..6).map(|_| open(None).expect("multiplexed")));
        assert!(matches!(open(None), Err(SubscribeError::Full)));
        // A stream that owned its connection leaves, and frees a place for one.
        drop(subs.remove(0));
        assert!(matches!(
            open(Some(CancellationToken::new())).map(|s| subs.push(s)),
            Ok(())
        ));
        assert_eq!(hub.stats().clients, 10);
    }

    #[test]
    fn closing_tells_everyone_to_reconnect_and_refuses_new_streams() {
        let hub = hub(8);
        let mut sub = hub
            .subscribe_event(EventId::new(), EventStart::Fresh(None), None)
            .expect("sub");
        hub.close();
        assert!(drain(&mut sub).iter().any(|f| f.event == RECONNECT));
        assert!(matches!(
            hub.subscribe_user(UserId("x".into()), None, None),
            Err(SubscribeError::Closed)
        ));
    }
}
