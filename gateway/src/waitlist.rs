//! Seat waitlists: join, see your place, leave.
//!
//! Joining and leaving are commands (decided by the consumer in order with the seat's
//! holds, so "only for a seat that is taken" and "first in line gets it when released"
//! are exact); positions are read from the Redis mirror (`waitlist_mirror`).
//!
//! `estimated_wait_secs` is a rough, documented estimate, not a promise:
//! `remaining + (position - 1) × released_offer_life`, where `remaining` is the time left
//! on the seat's current hold (unknown for a sold seat: no estimate), and
//! `released_offer_life` is the mean time that the event's recent waitlist offers (the
//! last 200) lived before they were given up or expired — how long each person ahead of
//! you is likely to take to pass — falling back to the offer window when there is no
//! history yet. It assumes nobody ahead buys; if someone does, you are not offered the seat.

use std::time::Duration;

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::command::{Command, WaitlistSeat};
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{EventId, HoldId, RequestId};
use serde::Serialize;

use crate::auth::AuthUser;
use crate::commands::{self, CommandDecision};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WaitlistPlace {
    pub event_id: EventId,
    pub seat_id: String,
    /// `waiting`, or `offered`: the seat was released and is now held for you
    /// (`hold_id`); pay for it before the hold expires, or cancel it.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<HoldId>,
    /// 1 = next in line (0 once offered).
    pub position: i64,
    /// People on this seat's waitlist.
    pub length: i64,
    /// See the module docs for how this is estimated; absent when it cannot be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_secs: Option<i64>,
}

/// A join or leave not decided within the wait: poll the waitlist (GET) for the result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WaitlistPending {
    pub request_id: RequestId,
    pub status: String,
}

pub enum Joined {
    Place(WaitlistPlace),
    Pending(WaitlistPending),
}

const SEAT_HOLD: &str = "SELECT s.status, h.expires_at FROM seats s \
     LEFT JOIN holds h ON h.id = s.hold_id WHERE s.event_id = $1 AND s.seat_no = $2";
const OFFER_LIFE: &str = "SELECT avg(extract(epoch FROM ended_at - created_at))::float8 FROM ( \
       SELECT ended_at, created_at FROM holds \
       WHERE event_id = $1 AND offered_from IS NOT NULL AND status IN ('expired', 'cancelled') \
       ORDER BY ended_at DESC LIMIT 200) recent";

/// The user's live offer for the seat, if the waitlist handed it to them.
const LIVE_OFFER: &str = "SELECT w.offered_hold_id FROM waitlist_entries w \
     JOIN holds h ON h.id = w.offered_hold_id \
     WHERE w.event_id = $1 AND w.seat_no = $2 AND w.user_id = $3 AND w.status = 'offered' \
       AND h.status = 'active' ORDER BY w.id DESC LIMIT 1";

/// The seats a user waits for or has been offered from a waitlist, oldest first; bounded
/// (one user waits for at most `waitlist.max_per_user` seats per event).
const MY_WAITLISTS: &str = "SELECT w.event_id, w.seat_no FROM waitlist_entries w \
     LEFT JOIN holds h ON h.id = w.offered_hold_id \
     WHERE w.user_id = $1 AND (w.status = 'waiting' OR (w.status = 'offered' AND h.status = 'active')) \
     ORDER BY w.joined_at, w.id LIMIT $2";
const MY_WAITLISTS_MAX: i64 = 200;

const DECISION_WAIT: Duration = Duration::from_secs(5);

fn seat_no(entry: &EventEntry, seat_id: &str) -> AppResult<i32> {
    entry
        .layout
        .parse_seat_label(seat_id)
        .ok_or_else(|| AppError::not_found("seat_not_found", format!("no seat {seat_id}")))
}

pub async fn join(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    seat_id: &str,
) -> AppResult<Joined> {
    let seat = seat_no(entry, seat_id)?;
    let request_id = RequestId::new();
    let decision = commands::send(
        state,
        entry,
        &user.user_id,
        (request_id, commands::IdOrigin::Fresh),
        Command::JoinWaitlist(WaitlistSeat { seat_no: seat }),
        Some(DECISION_WAIT),
    )
    .await?;
    match decision {
        Some(d) => {
            if let Some(err) = commands::rejection_error(&d) {
                return Err(err);
            }
            refresh_mirror(state, entry, seat).await;
            let position = d.detail["position"].as_i64().unwrap_or(1);
            place(state, entry, seat_id, seat, position, None)
                .await
                .map(Joined::Place)
        }
        None => Ok(Joined::Pending(WaitlistPending {
            request_id,
            status: "pending".into(),
        })),
    }
}

pub async fn leave(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    seat_id: &str,
) -> AppResult<(RequestId, Option<CommandDecision>)> {
    let seat = seat_no(entry, seat_id)?;
    let request_id = RequestId::new();
    let decision = commands::send(
        state,
        entry,
        &user.user_id,
        (request_id, commands::IdOrigin::Fresh),
        Command::LeaveWaitlist(WaitlistSeat { seat_no: seat }),
        Some(DECISION_WAIT),
    )
    .await?;
    if let Some(err) = decision.as_ref().and_then(commands::rejection_error) {
        return Err(err);
    }
    if decision.is_some() {
        refresh_mirror(state, entry, seat).await;
    }
    Ok((request_id, decision))
}

/// Bring the seat's Redis list up to date now that the caller's join or leave is decided,
/// so the caller's next read sees it (the outbox relay's rebuild comes a moment later).
async fn refresh_mirror(state: &AppState, entry: &EventEntry, seat: i32) {
    let mut redis = state.redis.clone();
    if let Err(e) =
        seatq_common::waitlist_mirror::rebuild(&state.pool, &mut redis, entry.info.id, seat).await
    {
        tracing::warn!(error = %e, seat, "waitlist mirror not refreshed; the relay will");
    }
}

/// The caller's place on the seat's waitlist.
pub async fn position(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    seat_id: &str,
) -> AppResult<WaitlistPlace> {
    let seat = seat_no(entry, seat_id)?;
    let mut redis = state.redis.clone();
    let (at, length) = seatq_common::waitlist_mirror::position(
        &state.pool,
        &mut redis,
        entry.info.id,
        seat,
        &user.user_id,
    )
    .await
    .map_err(|e| AppError::unavailable("waitlist_unavailable", e.to_string(), 1))?;
    if let Some(at) = at {
        return place(state, entry, seat_id, seat, at, Some(length)).await;
    }
    let offer: Option<HoldId> = sqlx::query_scalar(LIVE_OFFER)
        .bind(entry.info.id)
        .bind(seat)
        .bind(&user.user_id)
        .fetch_optional(&state.pool)
        .await?;
    match offer {
        Some(hold_id) => Ok(WaitlistPlace {
            event_id: entry.info.id,
            seat_id: seat_id.to_owned(),
            status: "offered".into(),
            hold_id: Some(hold_id),
            position: 0,
            length,
            estimated_wait_secs: Some(0),
        }),
        None => Err(AppError::not_found(
            "not_waiting",
            format!("you are not on the waitlist of {seat_id}"),
        )),
    }
}

/// Every waitlist place of the caller (waiting, or offered and not yet ended), across
/// events, each as `GET …/seats/{seat_id}/waitlist` would answer it.
pub async fn my_places(state: &AppState, user: &AuthUser) -> AppResult<Vec<WaitlistPlace>> {
    let entries: Vec<(EventId, i32)> = sqlx::query_as(MY_WAITLISTS)
        .bind(&user.user_id)
        .bind(MY_WAITLISTS_MAX)
        .fetch_all(&state.pool)
        .await?;
    let mut places = Vec::with_capacity(entries.len());
    for (event_id, seat) in entries {
        let Some(entry) = state.catalog.event(event_id).await? else {
            continue;
        };
        let Some(label) = entry.layout.seat_label(seat) else {
            continue;
        };
        match position(state, user, &entry, &label).await {
            Ok(place) => places.push(place),
            // Left or handed on between the two reads.
            Err(e) if e.code == "not_waiting" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(places)
}

async fn place(
    state: &AppState,
    entry: &EventEntry,
    seat_id: &str,
    seat: i32,
    position: i64,
    length: Option<i64>,
) -> AppResult<WaitlistPlace> {
    let hold: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(SEAT_HOLD)
        .bind(entry.info.id)
        .bind(seat)
        .fetch_optional(&state.pool)
        .await?;
    let life: Option<f64> = sqlx::query_scalar(OFFER_LIFE)
        .bind(entry.info.id)
        .fetch_one(&state.pool)
        .await?;
    let per_person = life.unwrap_or(state.settings.waitlist.offer_ttl_secs as f64);
    let estimated_wait_secs = match hold {
        Some((status, Some(expires_at))) if status == "held" => {
            let remaining = (expires_at - Utc::now()).num_seconds().max(0);
            Some(remaining + ((position - 1).max(0) as f64 * per_person).round() as i64)
        }
        _ => None,
    };
    Ok(WaitlistPlace {
        event_id: entry.info.id,
        seat_id: seat_id.to_owned(),
        status: "waiting".into(),
        hold_id: None,
        position,
        length: length.unwrap_or(position),
        estimated_wait_secs,
    })
}
