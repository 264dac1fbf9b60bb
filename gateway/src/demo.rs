//! The demo data the local stack starts with: a 50,000-seat stadium (plus a standing
//! pitch) and a small hall, each with an event on sale now. Idempotent: run twice, get
//! the same events.

use chrono::{Duration, Utc};
use seatq_common::http::error::AppResult;
use seatq_common::ids::{EventId, VenueId};
use seatq_common::seating::{PriceCategory, SeatAttribute, SeatRange};
use serde::Serialize;
use sqlx::PgPool;

use crate::inventory::{self, NewEvent, NewSection, NewVenue};

pub const STADIUM: &str = "seatq Demo Stadium";
pub const HALL: &str = "seatq Demo Hall";

#[derive(Debug, Serialize)]
pub struct DemoEvents {
    pub stadium_event_id: EventId,
    pub hall_event_id: EventId,
}

fn stadium() -> NewVenue {
    let lower = (1..=20).map(|i| NewSection::Reserved {
        code: format!("L{}", 100 + i),
        name: format!("Lower {}", 100 + i),
        rows: 25,
        seats_per_row: 60,
        price_cents: if (8..=13).contains(&i) {
            18_000
        } else {
            12_000
        },
        seat_ranges: vec![
            range([1, 3], [1, 60], &[], Some("FRONT")),
            // An aisle down the middle of every row.
            range([1, 25], [30, 31], &[SeatAttribute::Aisle], None),
            // A wheelchair platform at the back, companion seats beside each space.
            range([25, 25], [1, 1], &[SeatAttribute::Accessible], None),
            range([25, 25], [2, 2], &[SeatAttribute::Companion], None),
            range([25, 25], [59, 59], &[SeatAttribute::Companion], None),
            range([25, 25], [60, 60], &[SeatAttribute::Accessible], None),
        ],
    });
    let upper = (1..=20).map(|i| NewSection::Reserved {
        code: format!("U{}", 200 + i),
        name: format!("Upper {}", 200 + i),
        rows: 20,
        seats_per_row: 50,
        price_cents: 6_500,
        seat_ranges: vec![range(
            [20, 20],
            [1, 50],
            &[SeatAttribute::RestrictedView],
            Some("VIEW"),
        )],
    });
    let pitch = std::iter::once(NewSection::GeneralAdmission {
        code: "PITCH".into(),
        name: "Pitch (standing)".into(),
        capacity: 8_000,
        price_cents: 8_500,
    });
    NewVenue {
        name: STADIUM.into(),
        city: "Lisbon".into(),
        sections: lower.chain(upper).chain(pitch).collect(),
        price_categories: vec![
            category("FRONT", "Front rows", 22_000),
            category("VIEW", "Restricted view", 4_000),
        ],
    }
}

fn range(
    rows: [i32; 2],
    seats: [i32; 2],
    attributes: &[SeatAttribute],
    price_category: Option<&str>,
) -> SeatRange {
    SeatRange {
        rows,
        seats,
        attributes: attributes.to_vec(),
        price_category: price_category.map(String::from),
    }
}

fn category(code: &str, name: &str, price_cents: i64) -> PriceCategory {
    PriceCategory {
        code: code.into(),
        name: name.into(),
        price_cents,
    }
}

fn hall() -> NewVenue {
    NewVenue {
        name: HALL.into(),
        city: "Porto".into(),
        sections: vec![
            NewSection::Reserved {
                code: "STALLS".into(),
                name: "Stalls".into(),
                rows: 12,
                seats_per_row: 20,
                price_cents: 4_500,
                seat_ranges: vec![
                    range([1, 4], [1, 20], &[], Some("PREMIUM")),
                    range([1, 12], [10, 11], &[SeatAttribute::Aisle], None),
                    range([12, 12], [1, 2], &[SeatAttribute::Accessible], None),
                    range([12, 12], [3, 4], &[SeatAttribute::Companion], None),
                ],
            },
            NewSection::Reserved {
                code: "BALCONY".into(),
                name: "Balcony".into(),
                rows: 4,
                seats_per_row: 15,
                price_cents: 3_000,
                seat_ranges: vec![range(
                    [4, 4],
                    [1, 15],
                    &[SeatAttribute::RestrictedView],
                    None,
                )],
            },
        ],
        price_categories: vec![category("PREMIUM", "Premium stalls", 6_500)],
    }
}

const FIND_DEMO_EVENT: &str = "SELECT e.id FROM events e JOIN venues v ON v.id = e.venue_id \
     WHERE v.name = $1 ORDER BY e.created_at LIMIT 1";

async fn ensure(
    pool: &PgPool,
    venue: NewVenue,
    title: &str,
    performer: &str,
    limits: inventory::EventLimits,
) -> AppResult<EventId> {
    if let Some(id) = sqlx::query_scalar::<_, EventId>(FIND_DEMO_EVENT)
        .bind(&venue.name)
        .fetch_optional(pool)
        .await?
    {
        return Ok(id);
    }
    let venue_id: VenueId = inventory::create_venue(pool, &venue).await?.id;
    let event = NewEvent {
        venue_id,
        title: title.into(),
        performer: performer.into(),
        starts_at: Utc::now() + Duration::days(30),
        on_sale_at: Some(Utc::now() - Duration::minutes(1)),
        hold_ttl_secs: None,
        max_seats_per_user: None,
        // The demo is for trying seats right away; the waiting room is shown by its tests.
        waiting_room_enabled: Some(false),
        pow_difficulty: None,
        refund_cutoff_hours: None,
        no_single_seats: None,
        accessible_release_at: Some(Utc::now() + Duration::days(28)),
    };
    inventory::create_event(pool, &event, limits).await
}

pub async fn seed(pool: &PgPool, limits: inventory::EventLimits) -> AppResult<DemoEvents> {
    Ok(DemoEvents {
        stadium_event_id: ensure(
            pool,
            stadium(),
            "Stadium Night",
            "The Queue Jumpers",
            limits,
        )
        .await?,
        hall_event_id: ensure(pool, hall(), "Chamber Evening", "The FIFO Quartet", limits).await?,
    })
}
