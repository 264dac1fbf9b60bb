//! Setting up what is for sale: venues with their sections, and events with their seats.
//!
//! Creating an event materialises one `seats` row per reserved seat and one
//! `ga_inventory` counter per general-admission section, in one transaction, so an event
//! is either fully on sale or not there at all. Each event is pinned to a partition of the
//! commands topic here, for its whole life.

use chrono::{DateTime, Utc};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{EventId, SectionId, VenueId};
use seatq_common::layout::{SectionKind, SectionLayout, VenueLayout};
use seatq_common::seating::{PriceCategory, SeatRange};
use serde::Deserialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::search::EventSearch;
use crate::views::{EventSummary, PriceRange, VenueRef, VenueView};

const MAX_SECTIONS: usize = 500;
const MAX_RESERVED_SEATS: i64 = 200_000;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    /// 1 to 200 characters, no control characters.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,200}$")]
    pub name: String,
    /// At most 100 characters, no control characters.
    #[serde(default)]
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{0,100}$")]
    pub city: String,
    /// 1 to 500 sections, their codes distinct, at most 200,000 reserved seats in all.
    #[schema(min_items = 1, max_items = 500)]
    pub sections: Vec<NewSection>,
    /// Up to 100 prices that seat ranges can name instead of their section's price.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub price_categories: Vec<PriceCategory>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewSection {
    Reserved {
        /// 1 to 16 letters, digits or `_`, distinct within the venue.
        #[schema(pattern = "^[A-Za-z0-9_]{1,16}$")]
        code: String,
        #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,100}$")]
        name: String,
        #[schema(minimum = 1, maximum = 1000)]
        rows: i32,
        #[schema(minimum = 1, maximum = 1000)]
        seats_per_row: i32,
        #[schema(minimum = 0, maximum = 100000000)]
        price_cents: i64,
        /// Wheelchair spaces, companion seats, restricted views, aisles and price
        /// categories, by range of rows × seats (at most 10,000 ranges per venue).
        #[serde(default)]
        seat_ranges: Vec<SeatRange>,
    },
    GeneralAdmission {
        /// 1 to 16 letters, digits or `_`, distinct within the venue.
        #[schema(pattern = "^[A-Za-z0-9_]{1,16}$")]
        code: String,
        #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,100}$")]
        name: String,
        #[schema(minimum = 1, maximum = 1000000)]
        capacity: i32,
        #[schema(minimum = 0, maximum = 100000000)]
        price_cents: i64,
    },
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub venue_id: VenueId,
    /// 1 to 200 characters, no control characters.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,200}$")]
    pub title: String,
    /// At most 200 characters, no control characters.
    #[serde(default)]
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]{0,200}$")]
    pub performer: String,
    pub starts_at: DateTime<Utc>,
    /// Defaults to now; not after `starts_at`.
    pub on_sale_at: Option<DateTime<Utc>>,
    /// Defaults to 600; at least `gateway.min_hold_ttl_secs` (30 unless configured).
    #[schema(minimum = 30, maximum = 86400)]
    pub hold_ttl_secs: Option<i32>,
    /// Defaults to 8.
    #[schema(minimum = 1, maximum = 100)]
    pub max_seats_per_user: Option<i32>,
    /// Defaults to on for events of at least `waiting_room.default_min_capacity` places.
    pub waiting_room_enabled: Option<bool>,
    /// Proof-of-work difficulty for joining the waiting room (leading zero bits, 0–32);
    /// defaults to `waiting_room.default_pow_difficulty` when the waiting room is on.
    #[schema(minimum = 0, maximum = 32)]
    pub pow_difficulty: Option<i32>,
    /// Refund policy: a cancelled booking is refunded in full until this many hours
    /// before `starts_at`, not at all after. Defaults to 24.
    #[schema(minimum = 0, maximum = 8760)]
    pub refund_cutoff_hours: Option<i32>,
    /// No hold may leave a lone free seat in a reserved section. Defaults to on.
    pub no_single_seats: Option<bool>,
    /// Until then wheelchair spaces and companion seats are kept for buyers who say they
    /// need one; after, anyone may buy them. Not after `starts_at`; absent: kept until
    /// the event starts.
    pub accessible_release_at: Option<DateTime<Utc>>,
}

fn check_text(field: &str, value: &str, min: usize, max: usize) -> AppResult<()> {
    let n = value.chars().count();
    if n < min || n > max || value.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "invalid_field",
            format!("{field} must be {min} to {max} characters without control characters"),
        )
        .with("field", field));
    }
    Ok(())
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> AppResult<()> {
    if value < min || value > max {
        return Err(AppError::unprocessable(
            "invalid_field",
            format!("{field} must be between {min} and {max}"),
        )
        .with("field", field));
    }
    Ok(())
}

struct SectionRow {
    id: SectionId,
    seat_ranges: Vec<SeatRange>,
    code: String,
    name: String,
    kind: SectionKind,
    rows: Option<i32>,
    seats_per_row: Option<i32>,
    first_seat_no: Option<i32>,
    capacity: i32,
    price_cents: i64,
}

const MAX_PRICE_CATEGORIES: usize = 100;
const MAX_SEAT_RANGES: usize = 10_000;

fn check_categories(categories: &[PriceCategory]) -> AppResult<()> {
    if categories.len() > MAX_PRICE_CATEGORIES {
        return Err(AppError::unprocessable(
            "invalid_field",
            format!("a venue has at most {MAX_PRICE_CATEGORIES} price categories"),
        )
        .with("field", "price_categories"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in categories {
        if !valid_code(&c.code) {
            return Err(AppError::unprocessable(
                "invalid_field",
                format!(
                    "price category code {:?} must be 1 to 16 letters, digits or _",
                    c.code
                ),
            )
            .with("field", "price_categories.code"));
        }
        if !seen.insert(c.code.as_str()) {
            return Err(AppError::unprocessable(
                "duplicate_price_category",
                format!("price category {:?} appears twice", c.code),
            ));
        }
        check_text("price_categories.name", &c.name, 1, 100)?;
        check_range(
            "price_categories.price_cents",
            c.price_cents,
            0,
            100_000_000,
        )?;
    }
    Ok(())
}

/// Each range inside its section (rows and seats from ≤ to), naming a known category.
fn check_ranges(
    code: &str,
    rows: i32,
    seats_per_row: i32,
    ranges: &[SeatRange],
    categories: &[PriceCategory],
) -> AppResult<()> {
    for (i, r) in ranges.iter().enumerate() {
        let inside = |[from, to]: [i32; 2], max: i32| 1 <= from && from <= to && to <= max;
        if !inside(r.rows, rows) || !inside(r.seats, seats_per_row) {
            return Err(AppError::unprocessable(
                "invalid_seat_range",
                format!(
                    "seat range {i} of section {code} must lie within rows 1–{rows} and seats \
                     1–{seats_per_row}, each [from, to] with from ≤ to"
                ),
            )
            .with("section", code)
            .with("range", i));
        }
        if let Some(cat) = &r.price_category {
            if !categories.iter().any(|c| &c.code == cat) {
                return Err(AppError::unprocessable(
                    "unknown_price_category",
                    format!("seat range {i} of section {code} names no price category {cat:?}"),
                )
                .with("section", code)
                .with("range", i));
            }
        }
    }
    Ok(())
}

fn valid_code(code: &str) -> bool {
    (1..=16).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn plan_sections(
    sections: &[NewSection],
    categories: &[PriceCategory],
) -> AppResult<Vec<SectionRow>> {
    check_categories(categories)?;
    let ranges: usize = sections
        .iter()
        .map(|s| match s {
            NewSection::Reserved { seat_ranges, .. } => seat_ranges.len(),
            NewSection::GeneralAdmission { .. } => 0,
        })
        .sum();
    if ranges > MAX_SEAT_RANGES {
        return Err(AppError::unprocessable(
            "invalid_seat_range",
            format!("a venue has at most {MAX_SEAT_RANGES} seat ranges"),
        ));
    }
    if sections.is_empty() || sections.len() > MAX_SECTIONS {
        return Err(AppError::unprocessable(
            "invalid_field",
            format!("a venue has 1 to {MAX_SECTIONS} sections"),
        )
        .with("field", "sections"));
    }
    let mut next_seat_no: i64 = 0;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(sections.len());
    for section in sections {
        let (code, name, price) = match section {
            NewSection::Reserved {
                code,
                name,
                price_cents,
                ..
            }
            | NewSection::GeneralAdmission {
                code,
                name,
                price_cents,
                ..
            } => (code, name, *price_cents),
        };
        if !valid_code(code) {
            return Err(AppError::unprocessable(
                "invalid_section_code",
                format!("section code {code:?} must be 1 to 16 letters, digits or _"),
            ));
        }
        if !seen.insert(code.clone()) {
            return Err(AppError::unprocessable(
                "duplicate_section_code",
                format!("section code {code:?} appears twice"),
            ));
        }
        check_text("sections.name", name, 1, 100)?;
        check_range("sections.price_cents", price, 0, 100_000_000)?;
        let row = match section {
            NewSection::Reserved {
                rows,
                seats_per_row,
                seat_ranges,
                ..
            } => {
                check_range("sections.rows", i64::from(*rows), 1, 1000)?;
                check_range("sections.seats_per_row", i64::from(*seats_per_row), 1, 1000)?;
                check_ranges(code, *rows, *seats_per_row, seat_ranges, categories)?;
                let capacity = rows * seats_per_row;
                let first = next_seat_no;
                next_seat_no += i64::from(capacity);
                if next_seat_no > MAX_RESERVED_SEATS {
                    return Err(AppError::unprocessable(
                        "venue_too_large",
                        format!("a venue has at most {MAX_RESERVED_SEATS} reserved seats"),
                    ));
                }
                SectionRow {
                    id: SectionId::new(),
                    seat_ranges: seat_ranges.clone(),
                    code: code.clone(),
                    name: name.clone(),
                    kind: SectionKind::Reserved,
                    rows: Some(*rows),
                    seats_per_row: Some(*seats_per_row),
                    first_seat_no: Some(first as i32),
                    capacity,
                    price_cents: price,
                }
            }
            NewSection::GeneralAdmission { capacity, .. } => {
                check_range("sections.capacity", i64::from(*capacity), 1, 1_000_000)?;
                SectionRow {
                    id: SectionId::new(),
                    seat_ranges: Vec::new(),
                    code: code.clone(),
                    name: name.clone(),
                    kind: SectionKind::GeneralAdmission,
                    rows: None,
                    seats_per_row: None,
                    first_seat_no: None,
                    capacity: *capacity,
                    price_cents: price,
                }
            }
        };
        out.push(row);
    }
    Ok(out)
}

const INSERT_VENUE: &str = "INSERT INTO venues (id, name, city) VALUES ($1, $2, $3)";
const INSERT_SECTION: &str = "INSERT INTO sections (id, venue_id, code, name, kind, ordinal, \
     seat_rows, seats_per_row, first_seat_no, capacity, price_cents) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const INSERT_PRICE_CATEGORIES: &str = "INSERT INTO price_categories \
     (venue_id, code, name, price_cents, ordinal) \
     SELECT $1, c.code, c.name, c.price_cents, c.ordinal - 1 \
     FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY \
       AS c(code, name, price_cents, ordinal)";
/// Attributes travel as one comma-separated string per range (arrays of arrays must be
/// rectangular in PostgreSQL).
const INSERT_SEAT_RANGES: &str = "INSERT INTO seat_ranges (section_id, ordinal, row_from, \
     row_to, seat_from, seat_to, attributes, price_category) \
     SELECT r.section_id, r.ordinal, r.row_from, r.row_to, r.seat_from, r.seat_to, \
            coalesce(string_to_array(nullif(r.attributes, ''), ','), '{}'), r.price_category \
     FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], \
                 $7::text[], $8::text[]) \
       AS r(section_id, ordinal, row_from, row_to, seat_from, seat_to, attributes, price_category)";

pub async fn create_venue(pool: &PgPool, venue: &NewVenue) -> AppResult<VenueView> {
    check_text("name", &venue.name, 1, 200)?;
    check_text("city", &venue.city, 0, 100)?;
    let sections = plan_sections(&venue.sections, &venue.price_categories)?;
    let id = VenueId::new();
    let mut tx = pool.begin().await?;
    sqlx::query(INSERT_VENUE)
        .bind(id)
        .bind(&venue.name)
        .bind(&venue.city)
        .execute(&mut *tx)
        .await?;
    for (ordinal, s) in sections.iter().enumerate() {
        sqlx::query(INSERT_SECTION)
            .bind(s.id)
            .bind(id)
            .bind(&s.code)
            .bind(&s.name)
            .bind(s.kind.as_db())
            .bind(ordinal as i32)
            .bind(s.rows)
            .bind(s.seats_per_row)
            .bind(s.first_seat_no)
            .bind(s.capacity)
            .bind(s.price_cents)
            .execute(&mut *tx)
            .await?;
    }
    let categories = &venue.price_categories;
    if !categories.is_empty() {
        sqlx::query(INSERT_PRICE_CATEGORIES)
            .bind(id)
            .bind(
                categories
                    .iter()
                    .map(|c| c.code.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                categories
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(categories.iter().map(|c| c.price_cents).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    let ranges: Vec<(SectionId, i32, &SeatRange)> = sections
        .iter()
        .flat_map(|s| {
            s.seat_ranges
                .iter()
                .enumerate()
                .map(move |(i, r)| (s.id, i as i32, r))
        })
        .collect();
    if !ranges.is_empty() {
        sqlx::query(INSERT_SEAT_RANGES)
            .bind(ranges.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(ranges.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(ranges.iter().map(|r| r.2.rows[0]).collect::<Vec<_>>())
            .bind(ranges.iter().map(|r| r.2.rows[1]).collect::<Vec<_>>())
            .bind(ranges.iter().map(|r| r.2.seats[0]).collect::<Vec<_>>())
            .bind(ranges.iter().map(|r| r.2.seats[1]).collect::<Vec<_>>())
            .bind(
                ranges
                    .iter()
                    .map(|r| {
                        let mut names: Vec<&str> =
                            r.2.attributes.iter().map(|a| a.as_db()).collect();
                        names.sort_unstable();
                        names.dedup();
                        names.join(",")
                    })
                    .collect::<Vec<_>>(),
            )
            .bind(
                ranges
                    .iter()
                    .map(|r| r.2.price_category.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let layout = VenueLayout::new(
        sections
            .iter()
            .map(|s| SectionLayout {
                id: s.id,
                code: s.code.clone(),
                name: s.name.clone(),
                kind: s.kind,
                rows: s.rows.unwrap_or(0),
                seats_per_row: s.seats_per_row.unwrap_or(0),
                first_seat_no: s.first_seat_no.unwrap_or(0),
                capacity: s.capacity,
                price_cents: s.price_cents,
            })
            .collect(),
    )
    .with_seating(
        categories.clone(),
        sections
            .iter()
            .filter(|s| !s.seat_ranges.is_empty())
            .map(|s| (s.id, s.seat_ranges.clone()))
            .collect(),
    );
    Ok(VenueView::of(
        id,
        venue.name.clone(),
        venue.city.clone(),
        &layout,
    ))
}

/// With its search document (title, performer; the venue's name and city), which
/// `search_events` matches: see migrations/0009_event_search.sql.
const INSERT_EVENT: &str = "INSERT INTO events (id, venue_id, title, performer, starts_at, \
     on_sale_at, hold_ttl_secs, max_seats_per_user, waiting_room_enabled, kafka_partition, \
     refund_cutoff_hours, pow_difficulty, no_single_seats, accessible_release_at, search) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
            event_search_document($3, $4, v.name, v.city) \
     FROM venues v WHERE v.id = $2";

const INSERT_EVENT_SEATS: &str =
    "INSERT INTO seats (event_id, seat_no, section_id, row_no, seat_number) \
     SELECT $1, s.first_seat_no + (r - 1) * s.seats_per_row + (n - 1), s.id, r, n \
     FROM sections s \
     CROSS JOIN LATERAL generate_series(1, s.seat_rows) AS r \
     CROSS JOIN LATERAL generate_series(1, s.seats_per_row) AS n \
     WHERE s.venue_id = $2 AND s.kind = 'reserved'";

const INSERT_EVENT_GA: &str = "INSERT INTO ga_inventory (event_id, section_id, capacity) \
     SELECT $1, id, capacity FROM sections \
     WHERE venue_id = $2 AND kind = 'general_admission'";

const VENUE_CAPACITY: &str =
    "SELECT coalesce(sum(capacity), 0)::bigint FROM sections WHERE venue_id = $1";

const VENUE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM venues WHERE id = $1)";

/// What the deployment allows organisers to set.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Partitions of the commands topic; a new event is pinned to one of them.
    pub partitions: i32,
    pub min_hold_ttl_secs: i32,
    /// Events this large get a waiting room unless the organiser says otherwise.
    pub waiting_room_min_capacity: i64,
    pub default_pow_difficulty: i32,
}

/// Create an event and put all its seats on sale; returns its id.
pub async fn create_event(
    pool: &PgPool,
    event: &NewEvent,
    limits: EventLimits,
) -> AppResult<EventId> {
    check_text("title", &event.title, 1, 200)?;
    check_text("performer", &event.performer, 0, 200)?;
    let hold_ttl_secs = event.hold_ttl_secs.unwrap_or(600);
    let max_seats = event.max_seats_per_user.unwrap_or(8);
    let refund_cutoff_hours = event.refund_cutoff_hours.unwrap_or(24);
    check_range(
        "hold_ttl_secs",
        i64::from(hold_ttl_secs),
        i64::from(limits.min_hold_ttl_secs.clamp(1, 86_400)),
        86_400,
    )?;
    check_range("max_seats_per_user", i64::from(max_seats), 1, 100)?;
    check_range(
        "refund_cutoff_hours",
        i64::from(refund_cutoff_hours),
        0,
        8_760,
    )?;
    if let Some(d) = event.pow_difficulty {
        check_range("pow_difficulty", i64::from(d), 0, 32)?;
    }
    let on_sale_at = event.on_sale_at.unwrap_or_else(Utc::now);
    if on_sale_at > event.starts_at {
        return Err(AppError::unprocessable(
            "invalid_field",
            "on_sale_at must not be after starts_at",
        )
        .with("field", "on_sale_at"));
    }
    if event
        .accessible_release_at
        .is_some_and(|at| at > event.starts_at)
    {
        return Err(AppError::unprocessable(
            "invalid_field",
            "accessible_release_at must not be after starts_at",
        )
        .with("field", "accessible_release_at"));
    }
    let exists: bool = sqlx::query_scalar(VENUE_EXISTS)
        .bind(event.venue_id)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Err(AppError::unprocessable(
            "venue_not_found",
            format!("there is no venue {}", event.venue_id),
        ));
    }
    let capacity: i64 = sqlx::query_scalar(VENUE_CAPACITY)
        .bind(event.venue_id)
        .fetch_one(pool)
        .await?;
    let waiting_room = event
        .waiting_room_enabled
        .unwrap_or(capacity >= limits.waiting_room_min_capacity);
    let pow_difficulty = match (waiting_room, event.pow_difficulty) {
        (_, Some(d)) => d,
        (true, None) => limits.default_pow_difficulty.clamp(0, 32),
        (false, None) => 0,
    };
    let id = EventId::new();
    let partition =
        seatq_common::kafka::partition_for_key(id.to_string().as_bytes(), limits.partitions.max(1));
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(INSERT_EVENT)
        .bind(id)
        .bind(event.venue_id)
        .bind(&event.title)
        .bind(&event.performer)
        .bind(event.starts_at)
        .bind(on_sale_at)
        .bind(hold_ttl_secs)
        .bind(max_seats)
        .bind(waiting_room)
        .bind(partition)
        .bind(refund_cutoff_hours)
        .bind(pow_difficulty)
        .bind(event.no_single_seats.unwrap_or(true))
        .bind(event.accessible_release_at)
        .execute(&mut *tx)
        .await?;
    if inserted.rows_affected() != 1 {
        return Err(AppError::unprocessable(
            "venue_not_found",
            format!("there is no venue {}", event.venue_id),
        ));
    }
    sqlx::query(INSERT_EVENT_SEATS)
        .bind(id)
        .bind(event.venue_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(INSERT_EVENT_GA)
        .bind(id)
        .bind(event.venue_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(event_id = %id, partition, "event created");
    Ok(id)
}

const SELECT_VENUE_REF: &str = "SELECT id, name, city FROM venues WHERE id = $1";

pub async fn venue_ref(pool: &PgPool, id: VenueId) -> AppResult<VenueRef> {
    let (id, name, city): (VenueId, String, String) = sqlx::query_as(SELECT_VENUE_REF)
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(VenueRef { id, name, city })
}

/// The search text as a tsquery: PostgreSQL's parser splits it into words the way it split
/// the documents (`simple`: lowercased, no stemming), hyphenated compounds count by their
/// parts, and every word becomes a quoted prefix term (`'jump':*`), joined by AND. Quotes and
/// backslashes in a word are escaped, so nothing typed is read as tsquery syntax; at most
/// `MAX_TSQUERY_TERMS` words. NULL when the text has no words (only punctuation or symbols).
const BUILD_TSQUERY: &str = r#"SELECT string_agg(DISTINCT
           '''' || replace(replace(w, '\', '\\'), '''', '''''') || ''':*', ' & ')
     FROM (SELECT unnest(d.lexemes) AS w
             FROM ts_debug('simple', $1) AS d
            WHERE d.alias NOT IN ('asciihword', 'hword', 'numhword')
            LIMIT $2) words"#;

const MAX_TSQUERY_TERMS: i64 = 16;

/// Price range and capacity of the page's events only (not of every match).
const SEARCH_PAGE_COLUMNS: &str = ") \
     SELECT e.id, e.title, e.performer, e.starts_at, e.on_sale_at, \
            v.id, v.name, v.city, p.min_price, p.max_price, p.capacity, page.total \
     FROM page JOIN events e ON e.id = page.id JOIN venues v ON v.id = e.venue_id \
     CROSS JOIN LATERAL (SELECT min(price_cents) AS min_price, max(price_cents) AS max_price, \
                                sum(capacity)::bigint AS capacity \
                         FROM sections WHERE venue_id = v.id) p \
     ORDER BY page.rank DESC, page.starts_at, page.id";

type ListRow = (
    EventId,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    VenueId,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

/// `FROM … WHERE …` of a search, with only the filters it uses (so each combination gets
/// its own plan: the GIN index for text, `events_starts_at` for dates).
fn push_search_filters<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    search: &'a EventSearch,
    tsquery: Option<&'a str>,
) {
    sql.push(" FROM events e");
    if search.city.is_some() {
        sql.push(" JOIN venues v ON v.id = e.venue_id");
    }
    sql.push(" WHERE true");
    if let Some(q) = tsquery {
        sql.push(" AND e.search @@ ").push_bind(q).push("::tsquery");
    }
    if let Some(city) = &search.city {
        sql.push(" AND lower(v.city) = lower(")
            .push_bind(city)
            .push(")");
    }
    if let Some(from) = search.from {
        sql.push(" AND e.starts_at >= ").push_bind(from);
    }
    if let Some(to) = search.to {
        sql.push(" AND e.starts_at <= ").push_bind(to);
    }
}

/// One page of events matching `search` and the number of all matches: by start time, or
/// with a text query by rank (title and performer above venue and city) then start time.
pub async fn search_events(
    pool: &PgPool,
    search: &EventSearch,
) -> AppResult<(Vec<EventSummary>, i64)> {
    let tsquery: Option<String> = match &search.query {
        None => None,
        Some(text) => {
            let built: Option<String> = sqlx::query_scalar(BUILD_TSQUERY)
                .bind(text)
                .bind(MAX_TSQUERY_TERMS)
                .fetch_one(pool)
                .await?;
            match built {
                Some(q) => Some(q),
                // Nothing searchable in the text: nothing matches.
                None => return Ok((Vec::new(), 0)),
            }
        }
    };
    // With a text query the matches are few or must all be ranked anyway, so they are
    // counted in the same pass; without one, the page comes straight from the start-time
    // index and the count (a scan of every event) is run only when the page cannot tell.
    let mut sql = QueryBuilder::<Postgres>::new("WITH page AS (SELECT e.id, e.starts_at, ");
    match &tsquery {
        Some(q) => sql
            .push("ts_rank(e.search, ")
            .push_bind(q)
            .push("::tsquery) AS rank, count(*) OVER () AS total"),
        None => sql.push("0::real AS rank, 0::bigint AS total"),
    };
    push_search_filters(&mut sql, search, tsquery.as_deref());
    sql.push(match tsquery {
        Some(_) => " ORDER BY rank DESC, e.starts_at, e.id LIMIT ",
        None => " ORDER BY e.starts_at, e.id LIMIT ",
    })
    .push_bind(i64::from(search.per_page))
    .push(" OFFSET ")
    .push_bind(search.offset());
    sql.push(SEARCH_PAGE_COLUMNS);
    let rows: Vec<ListRow> = sql.build_query_as().fetch_all(pool).await?;
    let on_page = rows.len() as i64;
    let total = match rows.first() {
        Some(r) if tsquery.is_some() => r.11,
        // A page that is not full is the last one.
        Some(_) if on_page < i64::from(search.per_page) => search.offset() + on_page,
        None if search.page == 1 => 0,
        // A full page, or past the last page: count.
        _ => {
            let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
            push_search_filters(&mut count, search, tsquery.as_deref());
            count.build_query_scalar().fetch_one(pool).await?
        }
    };
    let now = Utc::now();
    let events = rows
        .into_iter()
        .map(|r| EventSummary {
            id: r.0,
            title: r.1,
            performer: r.2,
            starts_at: r.3,
            on_sale_at: r.4,
            sale_open: r.4 <= now,
            venue: VenueRef {
                id: r.5,
                name: r.6,
                city: r.7,
            },
            price_range: PriceRange {
                min_cents: r.8.unwrap_or(0),
                max_cents: r.9.unwrap_or(0),
            },
            capacity: r.10.unwrap_or(0),
        })
        .collect();
    Ok((events, total))
}
