//! The virtual waiting room: join (after a proof of work), see your place, get let in.
//!
//! Joining writes a ticket to PostgreSQL (one per user and event: joining again gives the
//! same ticket back) and adds it to the event's line in Redis (`waiting_room`). Its place
//! in line is decided at join time:
//! - **before the sale opens** everyone who joins gets a lottery draw, so the whole
//!   pre-queue is shuffled at on-sale and arriving at 09:59:59.999 is no better than at
//!   09:30 (as Queue-it and Cloudflare do); positions shown before on-sale are provisional;
//! - **after it opens**, first come, first served by arrival time, behind the pre-queue.
//!
//! The scheduler lets people in from the front of the line at a rate that follows the
//! pipeline's health (`scheduler::admission`). Once admitted, reading the ticket hands out
//! the admission token that hold requests need (`admission`).

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::{EventId, UserId};
use seatq_common::pow;
use seatq_common::waiting_room;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Challenge {
    /// Find a `nonce` such that SHA-256(`challenge` + ":" + `nonce`) starts with
    /// `difficulty` zero bits, then send both to `POST …/queue`.
    pub challenge: String,
    pub difficulty: i32,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    pub challenge: Option<String>,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueTicketView {
    pub ticket: Uuid,
    pub event_id: EventId,
    /// `waiting` or `admitted`.
    pub status: String,
    /// 1 = next to be let in (while waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// People waiting in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
    /// Estimated seconds until admission, from the current admission rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<i64>,
    /// Before the sale opens the line is a lottery draw: the position is provisional.
    pub provisional: bool,
    pub on_sale_at: DateTime<Utc>,
    /// Send as `X-Admission-Token` with hold requests (once admitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    user_id: UserId,
    status: String,
    admitted_at: Option<DateTime<Utc>>,
}

const INSERT_TICKET: &str =
    "INSERT INTO queue_tickets (id, event_id, user_id, joined_at, sort_key, status, lottery_tag) \
     VALUES ($1, $2, $3, $4, $5, 'waiting', $6) ON CONFLICT (event_id, user_id) DO NOTHING";
const TICKET_OF_USER: &str = "SELECT id, user_id, status, admitted_at FROM queue_tickets \
     WHERE event_id = $1 AND user_id = $2";
const TICKET: &str = "SELECT id, user_id, status, admitted_at FROM queue_tickets \
     WHERE id = $1 AND event_id = $2";
/// Back in line after an admission expired: the same ticket, behind everyone waiting.
const REQUEUE: &str = "UPDATE queue_tickets SET status = 'waiting', admitted_at = NULL, \
       sort_key = $3, joined_at = now() \
     WHERE event_id = $1 AND user_id = $2 AND status = 'admitted' \
     RETURNING id, user_id, status, admitted_at";
const RATE: &str = "SELECT rate FROM admission_control WHERE event_id = $1";

fn waiting_room_off(entry: &EventEntry) -> AppError {
    AppError::conflict(
        "waiting_room_off",
        format!(
            "{} has no waiting room: hold seats directly",
            entry.info.title
        ),
    )
}

fn secret(state: &AppState) -> &[u8] {
    state.settings.waiting_room.secret.as_bytes()
}

/// A proof-of-work challenge for joining (difficulty 0 when the event asks for none).
pub fn challenge(state: &AppState, entry: &EventEntry) -> AppResult<Challenge> {
    if !entry.info.waiting_room_enabled {
        return Err(waiting_room_off(entry));
    }
    let expires_at = Utc::now()
        + chrono::Duration::seconds(state.settings.waiting_room.challenge_ttl_secs.max(10));
    Ok(Challenge {
        challenge: pow::issue(secret(state), entry.info.id.0, expires_at.timestamp()),
        difficulty: entry.info.pow_difficulty,
        expires_at,
    })
}

/// Join the event's waiting room (or get back the ticket already held; a ticket whose
/// admission expired goes back in line). True if the user now waits anew.
pub async fn join(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    body: &JoinBody,
) -> AppResult<(QueueTicketView, bool)> {
    if !entry.info.waiting_room_enabled {
        return Err(waiting_room_off(entry));
    }
    let event_id = entry.info.id;
    let existing = ticket_of_user(state, event_id, &user.user_id).await?;
    let expired = existing.as_ref().is_some_and(|t| {
        t.admitted_at.is_some_and(|at| {
            at + chrono::Duration::seconds(state.settings.waiting_room.admission_ttl_secs)
                <= Utc::now()
        })
    });
    if let Some(existing) = existing {
        if !expired {
            return Ok((view(state, entry, existing).await?, false));
        }
    }
    if expired {
        // Their time to shop ran out: they may queue again, at the back of the line (after
        // a fresh proof of work), with the same ticket.
        if entry.info.pow_difficulty > 0 {
            check_work(state, entry, body).await?;
        }
        let now = Utc::now();
        let sort_key = now.timestamp_micros() as f64 / 1e6;
        let requeued: Option<TicketRow> = sqlx::query_as(REQUEUE)
            .bind(event_id)
            .bind(&user.user_id)
            .bind(sort_key)
            .fetch_optional(&state.pool)
            .await?;
        if let Some(row) = requeued {
            let mut redis = state.redis.clone();
            if let Err(e) = waiting_room::add(&mut redis, event_id, row.id, sort_key).await {
                tracing::warn!(%event_id, error = %e, "requeued ticket not added to the Redis line");
            }
            return Ok((view(state, entry, row).await?, true));
        }
    }
    if entry.info.pow_difficulty > 0 {
        check_work(state, entry, body).await?;
    }
    let ticket = Uuid::new_v4();
    let now = Utc::now();
    let (sort_key, tag) = if now < entry.info.on_sale_at {
        let tag = waiting_room::entrant_tag(event_id, &user.user_id.0);
        let seed = waiting_room::lottery_seed(secret(state), event_id);
        (waiting_room::lottery_draw(&seed, &tag), Some(tag))
    } else {
        (now.timestamp_micros() as f64 / 1e6, None)
    };
    let inserted = sqlx::query(INSERT_TICKET)
        .bind(ticket)
        .bind(event_id)
        .bind(&user.user_id)
        .bind(now)
        .bind(sort_key)
        .bind(tag)
        .execute(&state.pool)
        .await?
        .rows_affected();
    let row = ticket_of_user(state, event_id, &user.user_id)
        .await?
        .ok_or_else(|| AppError::internal("queue", "ticket vanished after insert"))?;
    if inserted == 1 {
        let mut redis = state.redis.clone();
        if let Err(e) = waiting_room::add(&mut redis, event_id, ticket, sort_key).await {
            // PostgreSQL has it; the line is rebuilt from there on the next read.
            tracing::warn!(%event_id, error = %e, "ticket not added to the Redis line");
        }
        tracing::debug!(%event_id, %ticket, "joined the waiting room");
    }
    Ok((view(state, entry, row).await?, inserted == 1))
}

/// A ticket's state, position and (once admitted) admission token.
pub async fn status(
    state: &AppState,
    user: &AuthUser,
    entry: &EventEntry,
    ticket: Uuid,
) -> AppResult<QueueTicketView> {
    let row: TicketRow = sqlx::query_as(TICKET)
        .bind(ticket)
        .bind(entry.info.id)
        .fetch_optional(&state.pool)
        .await?
        .filter(|r: &TicketRow| user.may_see(&r.user_id))
        .ok_or_else(|| {
            AppError::not_found("ticket_not_found", format!("no queue ticket {ticket}"))
        })?;
    view(state, entry, row).await
}

async fn ticket_of_user(
    state: &AppState,
    event_id: EventId,
    user: &UserId,
) -> AppResult<Option<TicketRow>> {
    Ok(sqlx::query_as(TICKET_OF_USER)
        .bind(event_id)
        .bind(user)
        .fetch_optional(&state.pool)
        .await?)
}

async fn check_work(state: &AppState, entry: &EventEntry, body: &JoinBody) -> AppResult<()> {
    let (Some(challenge), Some(nonce)) = (&body.challenge, &body.nonce) else {
        return Err(AppError::forbidden(
            "challenge_required",
            "solve a challenge from POST …/queue/challenge first",
        ));
    };
    let solved = pow::verify(
        secret(state),
        challenge,
        nonce,
        entry.info.id.0,
        entry.info.pow_difficulty.max(0) as u32,
        Utc::now().timestamp(),
    )
    .map_err(|e| AppError::forbidden(e.code(), e.to_string()))?;
    // Single use: remembered until it would have expired anyway.
    let ttl = (solved.expires_at - Utc::now().timestamp()).max(1);
    let mut redis = state.redis.clone();
    let fresh: Option<String> = redis::cmd("SET")
        .arg(format!("pow:{}", solved.id))
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(ttl)
        .query_async(&mut redis)
        .await
        .map_err(|e| AppError::unavailable("waiting_room_unavailable", e.to_string(), 1))?;
    if fresh.is_none() {
        return Err(AppError::forbidden(
            "challenge_used",
            "this challenge was already used: get a new one",
        ));
    }
    Ok(())
}

async fn view(state: &AppState, entry: &EventEntry, row: TicketRow) -> AppResult<QueueTicketView> {
    let event_id = entry.info.id;
    let provisional = Utc::now() < entry.info.on_sale_at;
    let mut view = QueueTicketView {
        ticket: row.id,
        event_id,
        status: row.status.clone(),
        position: None,
        length: None,
        eta_secs: None,
        provisional,
        on_sale_at: entry.info.on_sale_at,
        admission_token: None,
        admission_expires_at: None,
    };
    if let Some(admitted_at) = row.admitted_at {
        let (token, expires_at) = state.admission.issue(
            &row.user_id,
            event_id,
            row.id,
            admitted_at,
            state.settings.waiting_room.admission_ttl_secs,
        )?;
        view.admission_token = Some(token);
        view.admission_expires_at = Some(expires_at);
        return Ok(view);
    }
    let mut redis = state.redis.clone();
    let place = waiting_room::position(&state.pool, &mut redis, event_id, row.id)
        .await
        .map_err(|e| AppError::unavailable("waiting_room_unavailable", e.to_string(), 1))?;
    if let Some((position, length)) = place {
        let rate: Option<f64> = sqlx::query_scalar(RATE)
            .bind(event_id)
            .fetch_optional(&state.pool)
            .await?;
        let rate = rate
            .unwrap_or(state.settings.waiting_room.initial_rate)
            .max(0.1);
        let until_sale = (entry.info.on_sale_at - Utc::now()).num_seconds().max(0);
        view.position = Some(position);
        view.length = Some(length);
        view.eta_secs = Some(until_sale + (position as f64 / rate).ceil() as i64);
    }
    Ok(view)
}
