//! Events and venue layouts as every service reads them, with a small in-process cache.
//!
//! The gateway checks every hold request against its event (sale open? seat exists?) and
//! the consumer needs the same rules and the layout to name seats; neither should hit
//! PostgreSQL for that on every request. Layouts never change once a venue exists; event
//! settings are re-read after a short TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::ids::{EventId, SectionId, VenueId};
use crate::layout::{SectionKind, SectionLayout, VenueLayout};
use crate::seating::{PriceCategory, SeatAttribute, SeatRange};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventInfo {
    pub id: EventId,
    pub venue_id: VenueId,
    pub title: String,
    pub performer: String,
    pub starts_at: DateTime<Utc>,
    pub on_sale_at: DateTime<Utc>,
    pub hold_ttl_secs: i32,
    pub max_seats_per_user: i32,
    pub waiting_room_enabled: bool,
    pub kafka_partition: i32,
    /// Cancelled bookings are refunded in full until this many hours before `starts_at`.
    pub refund_cutoff_hours: i32,
    /// Proof-of-work difficulty for joining the waiting room (0: none).
    pub pow_difficulty: i32,
    /// No hold may leave a lone free seat in a reserved section (`seating`).
    pub no_single_seats: bool,
    /// Until then accessible and companion seats are kept for buyers who need an
    /// accessible space; None: kept until the event starts.
    pub accessible_release_at: Option<DateTime<Utc>>,
}

impl EventInfo {
    /// Are accessible and companion seats still kept for buyers who need them at `at`?
    pub fn accessible_reserved(&self, at: DateTime<Utc>) -> bool {
        at < self.accessible_release_at.unwrap_or(self.starts_at)
    }
}

/// An event with the layout of its venue.
#[derive(Debug, Clone)]
pub struct EventEntry {
    pub info: EventInfo,
    pub layout: Arc<VenueLayout>,
}

const SELECT_EVENT: &str = "SELECT id, venue_id, title, performer, starts_at, on_sale_at, \
     hold_ttl_secs, max_seats_per_user, waiting_room_enabled, kafka_partition, \
     refund_cutoff_hours, pow_difficulty, no_single_seats, accessible_release_at \
     FROM events WHERE id = $1";

const SELECT_SECTIONS: &str = "SELECT id, code, name, kind, seat_rows, seats_per_row, \
     first_seat_no, capacity, price_cents FROM sections WHERE venue_id = $1 ORDER BY ordinal";

const SELECT_PRICE_CATEGORIES: &str = "SELECT code, name, price_cents FROM price_categories \
     WHERE venue_id = $1 ORDER BY ordinal";

const SELECT_SEAT_RANGES: &str = "SELECT r.section_id, r.row_from, r.row_to, r.seat_from, \
     r.seat_to, r.attributes, r.price_category FROM seat_ranges r \
     JOIN sections s ON s.id = r.section_id WHERE s.venue_id = $1 ORDER BY s.ordinal, r.ordinal";

type RangeRow = (SectionId, i32, i32, i32, i32, Vec<String>, Option<String>);

type SectionRow = (
    SectionId,
    String,
    String,
    String,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    i32,
    i64,
);

pub async fn load_event(pool: &PgPool, id: EventId) -> Result<Option<EventInfo>, sqlx::Error> {
    sqlx::query_as::<_, EventInfo>(SELECT_EVENT)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn load_layout(pool: &PgPool, venue_id: VenueId) -> Result<VenueLayout, sqlx::Error> {
    let rows: Vec<SectionRow> = sqlx::query_as(SELECT_SECTIONS)
        .bind(venue_id)
        .fetch_all(pool)
        .await?;
    let sections = rows
        .into_iter()
        .map(
            |(id, code, name, kind, rows, per_row, first, capacity, price_cents)| SectionLayout {
                id,
                code,
                name,
                // The schema's CHECK allows only the two kinds.
                kind: SectionKind::from_db(&kind).unwrap_or(SectionKind::GeneralAdmission),
                rows: rows.unwrap_or(0),
                seats_per_row: per_row.unwrap_or(0),
                first_seat_no: first.unwrap_or(0),
                capacity,
                price_cents,
            },
        )
        .collect();
    let categories: Vec<(String, String, i64)> = sqlx::query_as(SELECT_PRICE_CATEGORIES)
        .bind(venue_id)
        .fetch_all(pool)
        .await?;
    let categories = categories
        .into_iter()
        .map(|(code, name, price_cents)| PriceCategory {
            code,
            name,
            price_cents,
        })
        .collect();
    let rows: Vec<RangeRow> = sqlx::query_as(SELECT_SEAT_RANGES)
        .bind(venue_id)
        .fetch_all(pool)
        .await?;
    let mut ranges: Vec<(SectionId, Vec<SeatRange>)> = Vec::new();
    for (section_id, row_from, row_to, seat_from, seat_to, attributes, price_category) in rows {
        let range = SeatRange {
            rows: [row_from, row_to],
            seats: [seat_from, seat_to],
            // The schema's CHECK allows only known attributes.
            attributes: attributes
                .iter()
                .filter_map(|a| SeatAttribute::from_db(a))
                .collect(),
            price_category,
        };
        match ranges.last_mut() {
            Some((id, list)) if *id == section_id => list.push(range),
            _ => ranges.push((section_id, vec![range])),
        }
    }
    Ok(VenueLayout::new(sections).with_seating(categories, ranges))
}

/// Cache of events (refreshed after `ttl`) and venue layouts (kept: they never change).
pub struct Catalog {
    pool: PgPool,
    ttl: Duration,
    events: Mutex<HashMap<EventId, (Instant, Arc<EventEntry>)>>,
    layouts: Mutex<HashMap<VenueId, Arc<VenueLayout>>>,
}

impl Catalog {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            events: Mutex::default(),
            layouts: Mutex::default(),
        }
    }

    /// The event and its layout; None if there is no such event.
    pub async fn event(&self, id: EventId) -> Result<Option<Arc<EventEntry>>, sqlx::Error> {
        if let Some((at, entry)) = lock(&self.events).get(&id) {
            if at.elapsed() < self.ttl {
                return Ok(Some(entry.clone()));
            }
        }
        let Some(info) = load_event(&self.pool, id).await? else {
            return Ok(None);
        };
        let layout = self.layout(info.venue_id).await?;
        let entry = Arc::new(EventEntry { info, layout });
        lock(&self.events).insert(id, (Instant::now(), entry.clone()));
        Ok(Some(entry))
    }

    pub async fn layout(&self, venue_id: VenueId) -> Result<Arc<VenueLayout>, sqlx::Error> {
        if let Some(layout) = lock(&self.layouts).get(&venue_id) {
            return Ok(layout.clone());
        }
        let layout = Arc::new(load_layout(&self.pool, venue_id).await?);
        lock(&self.layouts).insert(venue_id, layout.clone());
        Ok(layout)
    }
}

/// The maps hold plain data; a panic elsewhere cannot leave them half-written, so a
/// poisoned lock is still safe to use.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
