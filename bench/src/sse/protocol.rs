//! What the scenario and its stream-holding worker processes say to each other: one JSON
//! object per line, a request on the worker's stdin, its reply on its stdout.
//!
//! The streams live in worker processes because a process may have at most
//! `RLIMIT_NOFILE` descriptors, and on the machines this runs on that hard limit (20,000
//! here, not raisable without `CAP_SYS_RESOURCE`) is about the number of streams wanted.

use serde::{Deserialize, Serialize};

use crate::sse::measure::{Mark, Unattributed};

/// One reserved section of a seat map, as `GET /v1/events/{id}/seats` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionStatus {
    pub code: String,
    pub rows: i32,
    pub seats_per_row: i32,
    /// One of `A`, `H`, `S` per seat, row by row.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Remember a seat map under `id` (streams start from one; the run ends at another).
    Map {
        id: u32,
        sections: Vec<SectionStatus>,
    },
    /// Open `count` more streams with `?since=since`, whose clients hold map `map`; answer
    /// once each has received `ready` (or failed, or `timeout_ms` passed).
    Open {
        count: usize,
        since: i64,
        map: u32,
        concurrency: usize,
        timeout_ms: u64,
        /// Streams per HTTP/2 connection (h2c, prior knowledge); 0: HTTP/1.1, one
        /// connection each.
        #[serde(default)]
        http2: usize,
    },
    /// Messages first seen from now on belong to `phase`.
    Phase { phase: u32 },
    /// Where the streams are (to wait until they all have the last change).
    Progress,
    /// The first receipt of each message id of `phase` in this process.
    Firsts { phase: u32 },
    /// The phase's numbers and the check of every client against map `final_map`.
    Report(ReportRequest),
    /// Close every stream and exit.
    Close,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportRequest {
    pub phase: u32,
    /// Seat changes (decided commands) of the phase: covered by `offset + 1`, from their
    /// `decided_at`.
    pub changes: Vec<Mark>,
    /// Seat-map deltas published in the phase: covered by their `next_offset`, from the
    /// record's timestamp.
    pub published: Vec<Mark>,
    /// The first receipt of each message id across all workers.
    pub firsts: Vec<(i64, i64)>,
    pub final_map: u32,
}

/// A reply line: `{"ok": ...}` or `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply<T> {
    Ok { ok: T },
    Err { error: String },
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Done {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Opened {
    pub opened: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub secs: f64,
    /// HTTP/2 connections made for the new streams.
    #[serde(default)]
    pub http2_connections: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Streams opened so far (each counts once however often it reconnected).
    pub streams: usize,
    /// Connected right now.
    pub connected: usize,
    /// The lowest message id any stream not told to resync has received (its cursor).
    pub min_cursor: i64,
    pub messages: u64,
    pub disconnects: u64,
    pub resyncs: u64,
}

/// Whether every client's seat map, built from what its stream sent, is the final map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateCheck {
    /// Clients whose state is known (opened, never told to resync).
    pub checked: u64,
    pub matching: u64,
    pub mismatching: u64,
    /// Told to resync: their state needs a new seat map, so it is not checked.
    pub resynced: u64,
    pub first_mismatch: Option<String>,
    /// Distinct message sequences the clients received (1 when every client got the
    /// same messages).
    pub distinct_sequences: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    pub streams: usize,
    pub connected: usize,
    /// Messages (`seat_status_changed`) received in the phase, by all clients.
    pub messages: u64,
    /// Their `data` bytes.
    pub data_bytes: u64,
    /// Seat changes in them.
    pub seats: u64,
    /// First and last receipt in the phase (µs since the epoch; 0 if none).
    pub first_us: i64,
    pub last_us: i64,
    pub decided_to_received: Vec<(u64, u64)>,
    pub published_to_received: Vec<(u64, u64)>,
    pub spread: Vec<(u64, u64)>,
    pub decided_unattributed: Unattributed,
    pub published_unattributed: Unattributed,
    pub disconnects: u64,
    pub reconnects: u64,
    /// `ready` whose id was not the cursor the stream was opened with.
    pub ready_mismatches: u64,
    /// Messages whose data was not a delta of this event or named unknown seats.
    pub bad_messages: u64,
    pub first_bad: Option<String>,
    /// Other events (not `ready`, `seat_status_changed`, `resync`, `reconnect`).
    pub other_events: u64,
    pub heartbeats: u64,
    pub state: StateCheck,
}
