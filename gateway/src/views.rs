//! Response bodies shared by several routes (events and sections look the same whether
//! an organiser just created them or a buyer browses them).

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::ids::{EventId, VenueId};
use seatq_common::layout::{SectionKind, SectionLayout, VenueLayout};
use seatq_common::seating::{PriceCategory, SeatRange};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SectionView {
    pub code: String,
    pub name: String,
    pub kind: SectionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seats_per_row: Option<i32>,
    pub capacity: i32,
    pub price_cents: i64,
    /// Reserved sections: seat attributes and price categories by range of rows × seats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seat_ranges: Vec<SeatRange>,
}

impl SectionView {
    pub fn of(s: &SectionLayout, layout: &VenueLayout) -> Self {
        let reserved = s.is_reserved();
        Self {
            code: s.code.clone(),
            name: s.name.clone(),
            kind: s.kind,
            rows: reserved.then_some(s.rows),
            seats_per_row: reserved.then_some(s.seats_per_row),
            capacity: s.capacity,
            price_cents: s.price_cents,
            seat_ranges: layout.seat_ranges(s.id).to_vec(),
        }
    }
}

/// A venue as organisers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VenueView {
    pub id: VenueId,
    pub name: String,
    pub city: String,
    pub reserved_seats: i64,
    /// Prices that seat ranges name instead of their section's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_categories: Vec<PriceCategory>,
    pub sections: Vec<SectionView>,
}

impl VenueView {
    pub fn of(id: VenueId, name: String, city: String, layout: &VenueLayout) -> Self {
        Self {
            id,
            name,
            city,
            reserved_seats: i64::from(layout.reserved_seats()),
            price_categories: layout.price_categories().to_vec(),
            sections: layout
                .sections()
                .iter()
                .map(|s| SectionView::of(s, layout))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VenueRef {
    pub id: VenueId,
    pub name: String,
    pub city: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceRange {
    pub min_cents: i64,
    pub max_cents: i64,
}

/// An event as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: EventId,
    pub title: String,
    pub performer: String,
    pub venue: VenueRef,
    pub starts_at: DateTime<Utc>,
    pub on_sale_at: DateTime<Utc>,
    pub sale_open: bool,
    pub price_range: PriceRange,
    pub capacity: i64,
}

/// An event with its rules and sections.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub hold_ttl_secs: i32,
    pub max_seats_per_user: i32,
    pub waiting_room_enabled: bool,
    /// Cancelled bookings are refunded in full until this many hours before the start.
    pub refund_cutoff_hours: i32,
    /// Proof-of-work difficulty of joining the waiting room (0: none).
    pub pow_difficulty: i32,
    /// `open`, `paused` (hold requests are refused `sale_paused` until it resumes) or
    /// `ended`.
    pub sale_state: seatq_common::command::SaleState,
    /// No hold may leave a lone free seat in a reserved section (`would_strand_seat`).
    pub no_single_seats: bool,
    /// When wheelchair spaces and companion seats go on general sale; null: they are
    /// kept for buyers who need them until the event starts.
    pub accessible_release_at: Option<DateTime<Utc>>,
    /// Whether they are kept now: only hold requests with `accessible: true` get them.
    pub accessible_reserved: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub price_categories: Vec<PriceCategory>,
    pub sections: Vec<SectionView>,
}

pub fn price_range(layout: &VenueLayout) -> PriceRange {
    let prices = layout.sections().iter().map(|s| s.price_cents);
    PriceRange {
        min_cents: prices.clone().min().unwrap_or(0),
        max_cents: prices.max().unwrap_or(0),
    }
}

impl EventDetail {
    pub fn new(
        entry: &EventEntry,
        venue: VenueRef,
        sale_state: seatq_common::command::SaleState,
    ) -> Self {
        let info = &entry.info;
        Self {
            summary: EventSummary {
                id: info.id,
                title: info.title.clone(),
                performer: info.performer.clone(),
                venue,
                starts_at: info.starts_at,
                on_sale_at: info.on_sale_at,
                sale_open: info.on_sale_at <= Utc::now()
                    && sale_state == seatq_common::command::SaleState::Open,
                price_range: price_range(&entry.layout),
                capacity: entry
                    .layout
                    .sections()
                    .iter()
                    .map(|s| i64::from(s.capacity))
                    .sum(),
            },
            hold_ttl_secs: info.hold_ttl_secs,
            max_seats_per_user: info.max_seats_per_user,
            waiting_room_enabled: info.waiting_room_enabled,
            refund_cutoff_hours: info.refund_cutoff_hours,
            pow_difficulty: info.pow_difficulty,
            sale_state,
            no_single_seats: info.no_single_seats,
            accessible_release_at: info.accessible_release_at,
            accessible_reserved: info.accessible_reserved(Utc::now()),
            price_categories: entry.layout.price_categories().to_vec(),
            sections: entry
                .layout
                .sections()
                .iter()
                .map(|s| SectionView::of(s, &entry.layout))
                .collect(),
        }
    }
}
