//! Holdbacks: an organiser takes seats off sale (press, production, allocations) and puts
//! them on sale later — by hand, or at a set time. Several holdbacks with staggered release
//! times turn one mega on-sale into waves.
//!
//! A holdback is a `block_seats` command, decided by the consumer like any other seat
//! change: the seats are held by `system:holdback` (all or none; before the sale opens
//! too), with a timer for the release time. The release — the timer firing, or
//! `POST /v1/admin/holdbacks/{id}/release` (an admin cancel) — goes through the pipeline as
//! well, so released seats go to their waitlists first and then back on the map.

use std::time::Duration;

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::command::{never, BlockSeats, Command, HOLDBACK_USER, MAX_BLOCKED_SEATS};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{HoldId, RequestId};
use seatq_common::layout::SectionKind;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::commands;
use crate::state::AppState;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHoldback {
    /// Seats to take off sale (`A-1-5`, …), or
    pub seat_ids: Option<Vec<String>>,
    /// every seat of a reserved section (by code).
    pub section: Option<String>,
    /// Why, for organisers: "press", "production", "wave 2"…
    #[serde(default)]
    pub note: String,
    /// Put them on sale by themselves at this time; none: until released by hand.
    pub release_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldbackView {
    pub hold_id: HoldId,
    pub seat_ids: Vec<String>,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_at: Option<DateTime<Utc>>,
    /// `active`, or `released` (`cancelled` or `expired` hold).
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldbackList {
    pub holdbacks: Vec<HoldbackView>,
}

#[derive(sqlx::FromRow)]
struct HoldbackRow {
    id: HoldId,
    seat_nos: Vec<i32>,
    expires_at: DateTime<Utc>,
    status: String,
    created_at: DateTime<Utc>,
    note: Option<String>,
}

const LIST: &str = "SELECT h.id, h.seat_nos, h.expires_at, h.status, h.created_at, \
       r.detail->>'note' AS note \
     FROM holds h LEFT JOIN requests r ON r.request_id = h.request_id \
     WHERE h.event_id = $1 AND h.user_id = $2 ORDER BY h.created_at";

/// How long an organiser's request waits for the consumer's answer before it is answered
/// `202` with a status URL: well inside the request timeout, so never a 408.
const DECISION_WAIT: Duration = Duration::from_secs(5);
const MAX_NOTE_CHARS: usize = 200;

/// How long an organiser's command (a holdback, a sale change) waits for its decision.
pub fn organiser_wait(state: &AppState) -> Duration {
    let timeout = Duration::from_millis(state.settings.gateway.request_timeout_ms);
    DECISION_WAIT.min(timeout / 2)
}

/// An organiser's note (shown in the event's history): at most 200 printable characters.
pub fn check_note(note: &str) -> AppResult<()> {
    if note.chars().count() > MAX_NOTE_CHARS || note.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            "invalid_note",
            format!("note: at most {MAX_NOTE_CHARS} printable characters"),
        ));
    }
    Ok(())
}

fn seat_nos(entry: &EventEntry, body: &NewHoldback) -> AppResult<Vec<i32>> {
    let layout = &entry.layout;
    let nos: Vec<i32> = match (&body.seat_ids, &body.section) {
        (Some(ids), None) if !ids.is_empty() => {
            let mut nos = Vec::with_capacity(ids.len());
            for id in ids {
                let no = layout.parse_seat_label(id).ok_or_else(|| {
                    AppError::unprocessable("unknown_seat", format!("no seat {id}"))
                        .with("seat_id", id)
                })?;
                nos.push(no);
            }
            nos
        }
        (None, Some(code)) => {
            let section = layout.section_by_code(code).ok_or_else(|| {
                AppError::unprocessable("unknown_section", format!("no section {code}"))
            })?;
            if section.kind != SectionKind::Reserved {
                return Err(AppError::unprocessable(
                    "general_admission_section",
                    "holdbacks take seats; a standing section has no seats to take",
                ));
            }
            (section.first_seat_no..section.first_seat_no + section.capacity).collect()
        }
        _ => {
            return Err(AppError::unprocessable(
                "invalid_holdback",
                "give either seat_ids (not empty) or section",
            ))
        }
    };
    let mut unique = nos.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != nos.len() {
        return Err(AppError::unprocessable(
            "duplicate_seat",
            "a seat is listed twice",
        ));
    }
    if nos.len() > MAX_BLOCKED_SEATS {
        return Err(AppError::unprocessable(
            "holdback_too_large",
            format!("at most {MAX_BLOCKED_SEATS} seats per holdback: use several"),
        ));
    }
    Ok(nos)
}

/// What became of a holdback request: made, or still queued.
pub enum Created {
    Made(HoldbackView),
    /// Not decided within the wait; `GET /v1/admin/requests/{request_id}` tells.
    Queued(RequestId),
}

/// Take seats off sale; answers once the consumer decided, or as queued.
pub async fn create(
    state: &AppState,
    admin: &AuthUser,
    entry: &EventEntry,
    body: &NewHoldback,
) -> AppResult<Created> {
    check_note(&body.note)?;
    if body.release_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::unprocessable(
            "invalid_release_at",
            "release_at must be in the future (release now instead)",
        ));
    }
    let nos = seat_nos(entry, body)?;
    let request_id = RequestId::new();
    let command = Command::BlockSeats(BlockSeats {
        seat_nos: nos.clone(),
        note: body.note.clone(),
        release_at: body.release_at,
    });
    let wait = organiser_wait(state);
    let Some(decision) = commands::send(
        state,
        entry,
        &admin.user_id,
        (request_id, commands::IdOrigin::Fresh),
        command,
        Some(wait),
    )
    .await?
    else {
        return Ok(Created::Queued(request_id));
    };
    if let Some(err) = commands::rejection_error(&decision) {
        return Err(err);
    }
    let hold_id = decision
        .hold_id
        .ok_or_else(|| AppError::internal("holdback", "decision without a hold"))?;
    tracing::info!(event_id = %entry.info.id, %hold_id, seats = nos.len(), "seats held back");
    Ok(Created::Made(HoldbackView {
        hold_id,
        seat_ids: nos
            .iter()
            .filter_map(|n| entry.layout.seat_label(*n))
            .collect(),
        note: body.note.clone(),
        release_at: body.release_at,
        status: "active".into(),
        created_at: Utc::now(),
    }))
}

/// The event's holdbacks, oldest first.
pub async fn list(state: &AppState, entry: &EventEntry) -> AppResult<HoldbackList> {
    let rows: Vec<HoldbackRow> = sqlx::query_as(LIST)
        .bind(entry.info.id)
        .bind(HOLDBACK_USER)
        .fetch_all(&state.pool)
        .await?;
    let forever = never();
    Ok(HoldbackList {
        holdbacks: rows
            .into_iter()
            .map(|r| HoldbackView {
                hold_id: r.id,
                seat_ids: r
                    .seat_nos
                    .iter()
                    .filter_map(|n| entry.layout.seat_label(*n))
                    .collect(),
                note: r.note.unwrap_or_default(),
                release_at: (r.expires_at < forever).then_some(r.expires_at),
                status: if r.status == "active" {
                    "active".into()
                } else {
                    "released".into()
                },
                created_at: r.created_at,
            })
            .collect(),
    })
}
