//! The control room of an on-sale: one live picture of an event for every organiser and
//! operator watching it, pushed over Server-Sent Events.
//!
//! Watching must not add load that grows with the watchers: a storm is exactly when many
//! people open the page. So each event watched has one task that computes the picture
//! once a second (`event_stats::stats`: sales, holds, waiting room, lag per partition and
//! the consumers it calls for) and serializes it once; every stream of that event sends
//! the same bytes. The task ends when its last watcher leaves. Unmet demand (requests
//! refused per seat) is an aggregate over the event's refused requests, so it is computed
//! at most every [`DEMAND_EVERY`] per event and shared with `GET …/demand` and the stats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::http::error::AppResult;
use seatq_common::ids::EventId;
use seatq_common::shutdown::Shutdown;
use serde::Serialize;
use tokio::sync::watch;
use tracing::Instrument;

use crate::state::AppState;

/// How often the picture is recomputed and pushed.
pub const TICK: Duration = Duration::from_secs(1);
/// How old a demand aggregate may be.
pub const DEMAND_EVERY: Duration = Duration::from_secs(15);
/// The most refused seats a demand picture lists (the hottest first).
pub const DEMAND_SEATS: i64 = 5_000;

// Refused hold requests per seat they named (a request for 4 seats counts on each).
const REFUSED_PER_SEAT: &str = "SELECT s.no, count(*) FROM requests r \
     CROSS JOIN LATERAL unnest(r.seat_nos) AS s(no) \
     WHERE r.event_id = $1 AND cardinality(r.seat_nos) > 0 \
       AND r.kind = 'hold_seats' AND r.status = 'rejected' \
     GROUP BY s.no ORDER BY count(*) DESC, s.no";

/// Hold requests refused, per section and for the most refused seats.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Demand {
    pub event_id: EventId,
    pub generated_at: DateTime<Utc>,
    /// Requests for named seats that were refused (each counted once per seat it named).
    pub refused: i64,
    pub sections: Vec<SectionDemand>,
    /// The most refused seats, hottest first (at most 5,000): `seat_ids[i]` was named by
    /// `refused[i]` refused requests.
    pub seats: SeatDemand,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SectionDemand {
    pub section: String,
    /// Refused requests naming a seat of the section.
    pub refused: i64,
    /// Its seats that somebody was refused.
    pub seats_wanted: i64,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SeatDemand {
    pub seat_ids: Vec<String>,
    pub refused: Vec<i64>,
}

/// One push of the picture: the stats as JSON (serialized once for every watcher) and
/// the demand they go with.
#[derive(Debug)]
pub struct Frame {
    pub stats_json: String,
    pub demand: Arc<Demand>,
}

type Room = watch::Receiver<Option<Arc<Frame>>>;

/// The events being watched, and the demand aggregates of the last [`DEMAND_EVERY`].
pub struct ControlRooms {
    shutdown: Shutdown,
    rooms: Mutex<HashMap<EventId, Room>>,
    demand: Mutex<HashMap<EventId, (Instant, Arc<Demand>)>>,
}

impl ControlRooms {
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            rooms: Mutex::default(),
            demand: Mutex::default(),
        }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Watch the event: its room's frames, starting its task if nobody watched it.
    pub fn watch(state: &AppState, entry: &EventEntry) -> Room {
        let rooms = &state.control_rooms;
        let mut open = rooms.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let id = entry.info.id;
        if let Some(room) = open.get(&id) {
            // A room whose task ended (shut down) is replaced.
            if room.has_changed().is_ok() {
                return room.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        open.insert(id, rx.clone());
        let span = tracing::info_span!("control_room", event_id = %id);
        tokio::spawn(run_room(state.clone(), entry.clone(), tx).instrument(span));
        rx
    }
}

/// Counts an open control-room stream in `seatq_control_room_watchers` while it lives.
pub struct Watcher;

impl Watcher {
    pub fn open() -> Self {
        seatq_common::metrics::control_room_watchers(1.0);
        Watcher
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        seatq_common::metrics::control_room_watchers(-1.0);
    }
}

/// Compute and push the event's picture every [`TICK`] until nobody watches. Ticks are
/// fixed-rate (a slow picture does not push the next one back by its own time), and one
/// that comes while the last picture is still being made is skipped.
async fn run_room(state: AppState, entry: EventEntry, tx: watch::Sender<Option<Arc<Frame>>>) {
    let id = entry.info.id;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = state.control_rooms.shutdown.cancelled() => {}
            _ = ticks.tick() => {}
        }
        {
            // The map keeps one receiver; with no other left nobody is watching. Under the
            // lock, so a watcher arriving now finds the room gone and starts another.
            let mut open = state
                .control_rooms
                .rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if tx.receiver_count() <= 1 || state.control_rooms.shutdown.is_cancelled() {
                open.remove(&id);
                return;
            }
        }
        match frame(&state, &entry).await {
            Ok(frame) => {
                tx.send_replace(Some(Arc::new(frame)));
            }
            Err(e) => tracing::warn!(detail = %e.detail, "control room picture failed"),
        }
    }
}

async fn frame(state: &AppState, entry: &EventEntry) -> AppResult<Frame> {
    let started = Instant::now();
    let stats = crate::event_stats::stats(state, entry).await?;
    let demand = demand(state, entry).await?;
    let stats_json = serde_json::to_string(&stats)
        .map_err(|e| seatq_common::http::error::AppError::internal("encode stats", e))?;
    seatq_common::metrics::control_room_frame(started.elapsed());
    Ok(Frame { stats_json, demand })
}

/// The event's unmet demand, at most [`DEMAND_EVERY`] old.
pub async fn demand(state: &AppState, entry: &EventEntry) -> AppResult<Arc<Demand>> {
    let id = entry.info.id;
    let cached = {
        let map = state
            .control_rooms
            .demand
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.get(&id)
            .filter(|(at, _)| at.elapsed() < DEMAND_EVERY)
            .map(|(_, d)| d.clone())
    };
    if let Some(demand) = cached {
        return Ok(demand);
    }
    let rows = refused_per_seat(&state.pool, id).await?;
    let demand = Arc::new(summarize(entry, &rows));
    let mut map = state
        .control_rooms
        .demand
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.retain(|_, (at, _)| at.elapsed() < DEMAND_EVERY);
    map.insert(id, (Instant::now(), demand.clone()));
    Ok(demand)
}

/// Refused hold requests per seat named, hottest first: (seat_no, requests).
pub async fn refused_per_seat(
    pool: &sqlx::PgPool,
    event_id: EventId,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    sqlx::query_as(REFUSED_PER_SEAT)
        .bind(event_id)
        .fetch_all(pool)
        .await
}

/// Per-seat refusals (hottest first) into sections and the listed seats.
fn summarize(entry: &EventEntry, rows: &[(i32, i64)]) -> Demand {
    let layout = &entry.layout;
    let mut sections: Vec<SectionDemand> = layout
        .sections()
        .iter()
        .filter(|s| s.is_reserved())
        .map(|s| SectionDemand {
            section: s.code.clone(),
            refused: 0,
            seats_wanted: 0,
        })
        .collect();
    let mut seats = SeatDemand::default();
    let mut refused = 0;
    for &(seat_no, count) in rows {
        let Some(section) = layout.section_of(seat_no) else {
            continue;
        };
        refused += count;
        if let Some(s) = sections.iter_mut().find(|s| s.section == section.code) {
            s.refused += count;
            s.seats_wanted += 1;
        }
        if (seats.seat_ids.len() as i64) < DEMAND_SEATS {
            if let Some(label) = layout.seat_label(seat_no) {
                seats.seat_ids.push(label);
                seats.refused.push(count);
            }
        }
    }
    Demand {
        event_id: entry.info.id,
        generated_at: Utc::now(),
        refused,
        sections,
        seats,
    }
}
