//! The seat map: every seat's status for an event, compact and cached.
//!
//! 50,000 seats as JSON objects would be megabytes; instead each reserved section carries
//! its layout (rows x seats) and one status character per seat in row-major order
//! (`A` available, `H` held, `S` sold), which gzip shrinks to a few kilobytes.
//! General-admission sections carry capacity and places left.
//!
//! The map also carries the position it reflects: the commands-topic partition of the
//! event and the next offset the consumer will apply, read in the same snapshot as the
//! seats. A client can line up live deltas (which carry positions) with the snapshot.
//!
//! During an on-sale thousands of people reload the map each second, so it is rebuilt at
//! most once per `seat_map_cache_ms` per event (one builder at a time; the rest wait for
//! it), and answered 304 when the client's ETag still matches.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::ids::{EventId, SectionId};
use seatq_common::layout::SectionKind;
use seatq_common::seating::{PriceCategory, SeatAttribute, SeatRange};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatMap {
    pub event_id: EventId,
    /// The consumer position this map reflects.
    pub position: MapPosition,
    pub generated_at: DateTime<Utc>,
    /// Meaning of the status characters.
    pub legend: Legend,
    pub counts: SeatCounts,
    /// What the seat attributes of `seat_ranges` mean, for a map's legend.
    pub attribute_legend: AttributeLegend,
    /// Prices that seat ranges name instead of their section's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub price_categories: Vec<PriceCategory>,
    /// No hold may leave a lone free seat (`would_strand_seat`).
    pub no_single_seats: bool,
    /// Wheelchair spaces and companion seats are kept for buyers who need them (holds
    /// with `accessible: true`) until `accessible_release_at` (null: the event's start).
    pub accessible_reserved: bool,
    pub accessible_release_at: Option<DateTime<Utc>>,
    pub sections: Vec<SectionMap>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttributeLegend {
    pub accessible: &'static str,
    pub companion: &'static str,
    pub restricted_view: &'static str,
    pub aisle: &'static str,
}

impl AttributeLegend {
    fn new() -> Self {
        Self {
            accessible: SeatAttribute::Accessible.label(),
            companion: SeatAttribute::Companion.label(),
            restricted_view: SeatAttribute::RestrictedView.label(),
            aisle: SeatAttribute::Aisle.label(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MapPosition {
    pub partition: i32,
    /// The next offset of the partition the consumer will apply (all before it are in).
    pub next_offset: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Legend {
    #[serde(rename = "A")]
    pub available: &'static str,
    #[serde(rename = "H")]
    pub held: &'static str,
    #[serde(rename = "S")]
    pub sold: &'static str,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct SeatCounts {
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SectionMap {
    pub code: String,
    pub name: String,
    pub kind: SectionKind,
    pub price_cents: i64,
    pub capacity: i32,
    pub available: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_per_row: Option<i32>,
    /// seat_no of the section's first seat (row 1, seat 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seat_no: Option<i32>,
    /// One status character per seat, row by row; seat ids are `"{code}-{row}-{seat}"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Attributes and price categories by range of rows × seats: a seat has the union of
    /// its ranges' attributes, and the price of the last of its ranges naming a category
    /// (else `price_cents`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seat_ranges: Vec<SeatRange>,
}

const SELECT_SEAT_STATUS: &str = "SELECT section_id, \
       string_agg(CASE status WHEN 'available' THEN 'A' WHEN 'held' THEN 'H' ELSE 'S' END, '' \
                  ORDER BY seat_no) \
     FROM seats WHERE event_id = $1 GROUP BY section_id";

const SELECT_GA: &str =
    "SELECT section_id, capacity, held, sold FROM ga_inventory WHERE event_id = $1";

/// Read the map in one snapshot so seats and position agree.
pub async fn build(
    pool: &PgPool,
    event: &EventEntry,
    commands_topic: &str,
) -> Result<SeatMap, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let next_offset =
        seatq_common::db::next_offset(&mut *tx, commands_topic, event.info.kafka_partition).await?;
    let statuses: HashMap<SectionId, String> = sqlx::query_as(SELECT_SEAT_STATUS)
        .bind(event.info.id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let ga: HashMap<SectionId, (i32, i32, i32)> =
        sqlx::query_as::<_, (SectionId, i32, i32, i32)>(SELECT_GA)
            .bind(event.info.id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, cap, held, sold)| (id, (cap, held, sold)))
            .collect();
    tx.commit().await?;

    let mut counts = SeatCounts::default();
    let sections = event
        .layout
        .sections()
        .iter()
        .map(|s| match s.kind {
            SectionKind::Reserved => {
                let status = statuses.get(&s.id).cloned().unwrap_or_default();
                let (mut a, mut h, mut so) = (0, 0, 0);
                for c in status.bytes() {
                    match c {
                        b'A' => a += 1,
                        b'H' => h += 1,
                        _ => so += 1,
                    }
                }
                counts.available += a;
                counts.held += h;
                counts.sold += so;
                SectionMap {
                    code: s.code.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    price_cents: s.price_cents,
                    capacity: s.capacity,
                    available: a as i32,
                    rows: Some(s.rows),
                    seats_per_row: Some(s.seats_per_row),
                    first_seat_no: Some(s.first_seat_no),
                    status: Some(status),
                    seat_ranges: event.layout.seat_ranges(s.id).to_vec(),
                }
            }
            SectionKind::GeneralAdmission => {
                let (capacity, held, sold) = ga.get(&s.id).copied().unwrap_or((s.capacity, 0, 0));
                let available = capacity - held - sold;
                counts.available += i64::from(available);
                counts.held += i64::from(held);
                counts.sold += i64::from(sold);
                SectionMap {
                    code: s.code.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    price_cents: s.price_cents,
                    capacity,
                    available,
                    rows: None,
                    seats_per_row: None,
                    first_seat_no: None,
                    status: None,
                    seat_ranges: Vec::new(),
                }
            }
        })
        .collect();
    Ok(SeatMap {
        event_id: event.info.id,
        position: MapPosition {
            partition: event.info.kafka_partition,
            next_offset: next_offset.unwrap_or(0),
        },
        generated_at: Utc::now(),
        legend: Legend {
            available: "available",
            held: "held",
            sold: "sold",
        },
        counts,
        attribute_legend: AttributeLegend::new(),
        price_categories: event.layout.price_categories().to_vec(),
        no_single_seats: event.info.no_single_seats,
        accessible_reserved: event.info.accessible_reserved(Utc::now()),
        accessible_release_at: event.info.accessible_release_at,
        sections,
    })
}

/// A serialized map ready to send.
pub struct CachedMap {
    built_at: Instant,
    pub body: Bytes,
    pub etag: String,
}

pub struct SeatMapCache {
    ttl: Duration,
    maps: Mutex<HashMap<EventId, Arc<CachedMap>>>,
    builders: Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<()>>>>,
}

impl SeatMapCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            maps: Mutex::default(),
            builders: Mutex::default(),
        }
    }

    fn fresh(&self, id: EventId) -> Option<Arc<CachedMap>> {
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        maps.get(&id)
            .filter(|m| m.built_at.elapsed() < self.ttl)
            .cloned()
    }

    /// The cached map if fresh, else build it (one builder per event at a time).
    pub async fn get_or_build<F, Fut, E>(&self, id: EventId, build: F) -> Result<Arc<CachedMap>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
    {
        if let Some(map) = self.fresh(id) {
            return Ok(map);
        }
        let builder = self
            .builders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .clone();
        let _guard = builder.lock().await;
        // Another request may have rebuilt it while this one waited.
        if let Some(map) = self.fresh(id) {
            return Ok(map);
        }
        let body = build().await?;
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let map = Arc::new(CachedMap {
            built_at: Instant::now(),
            etag: format!("\"{:016x}\"", hasher.finish()),
            body: Bytes::from(body),
        });
        self.maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, map.clone());
        Ok(map)
    }
}
