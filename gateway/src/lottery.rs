//! The pre-sale lottery, published so that anyone can check it (docs/lottery.md).
//!
//! Before the draw closes (the sale opens) only the commitment is public: SHA-256 of the
//! event's seed, fixed when the event was created. [`REVEAL_AFTER`] the sale opened, the
//! seed and the entrant list are published too: the tags of every ticket that joined
//! before the sale opened (`queue_tickets.lottery_tag`, set once at join), sorted, one per
//! line, with the SHA-256 of that list as its fingerprint. With them anyone recomputes
//! every draw and so the order, and each entrant finds their place by their own tag —
//! nobody else's identity is revealed. The algorithm is in `common::waiting_room`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventEntry;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::ids::EventId;
use seatq_common::waiting_room;
use serde::Serialize;

use crate::state::AppState;

/// How long after the sale opens the seed is revealed: joins in flight at the moment the
/// sale opened have landed by then, so the entrant list no longer changes.
pub const REVEAL_AFTER: Duration = Duration::from_secs(5);

const ENTRANTS: &str = "SELECT lottery_tag FROM queue_tickets \
     WHERE event_id = $1 AND lottery_tag IS NOT NULL ORDER BY lottery_tag";

/// How the draw is made, in one line (docs/lottery.md has it with an example).
pub const ALGORITHM: &str = "seatq-lottery-v1: tag = hex(SHA-256(\"{event_id}:{user_id}\")); \
     draw = (first 8 bytes of HMAC-SHA256(key = seed, message = tag), big-endian) >> 11, \
     divided by 2^53; entrants are let in by draw, lowest first; commitment = hex(SHA-256(seed)); \
     entrants_fingerprint = hex(SHA-256(the entrant list: sorted tags, each followed by \\n))";

/// An event's lottery: the commitment always, the rest once revealed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LotteryView {
    pub event_id: EventId,
    pub algorithm: String,
    /// hex(SHA-256(seed)), public from the event's creation.
    pub commitment: String,
    /// Who joins before this time is in the lottery (the sale's opening).
    pub draw_closes_at: DateTime<Utc>,
    /// When the seed and entrants are (or were) published.
    pub reveal_at: DateTime<Utc>,
    pub revealed: bool,
    /// The seed, hex (once revealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrants: Option<i64>,
    /// hex(SHA-256) of the entrant list as served at `entrants_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrants_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrants_url: Option<String>,
}

fn reveal_at(entry: &EventEntry) -> DateTime<Utc> {
    entry.info.on_sale_at
        + chrono::Duration::from_std(REVEAL_AFTER).unwrap_or_else(|_| chrono::Duration::zero())
}

fn check_room(entry: &EventEntry) -> AppResult<()> {
    if entry.info.waiting_room_enabled {
        Ok(())
    } else {
        Err(AppError::conflict(
            "waiting_room_off",
            format!("{} has no waiting room, so no lottery", entry.info.title),
        ))
    }
}

/// The entrant list as published: sorted tags, one per line.
async fn entrant_list(state: &AppState, entry: &EventEntry) -> AppResult<(i64, String)> {
    let tags: Vec<String> = sqlx::query_scalar(ENTRANTS)
        .bind(entry.info.id)
        .fetch_all(&state.pool)
        .await?;
    let mut body = String::with_capacity(tags.len() * 65);
    for tag in &tags {
        body.push_str(tag);
        body.push('\n');
    }
    Ok((tags.len() as i64, body))
}

pub async fn view(state: &AppState, entry: &EventEntry) -> AppResult<LotteryView> {
    check_room(entry)?;
    let seed =
        waiting_room::lottery_seed(state.settings.waiting_room.secret.as_bytes(), entry.info.id);
    let reveal_at = reveal_at(entry);
    let revealed = Utc::now() >= reveal_at;
    let mut view = LotteryView {
        event_id: entry.info.id,
        algorithm: ALGORITHM.into(),
        commitment: waiting_room::lottery_commitment(&seed),
        draw_closes_at: entry.info.on_sale_at,
        reveal_at,
        revealed,
        seed: None,
        entrants: None,
        entrants_fingerprint: None,
        entrants_url: None,
    };
    if revealed {
        let (count, list) = entrant_list(state, entry).await?;
        view.seed = Some(waiting_room::seed_hex(&seed));
        view.entrants = Some(count);
        view.entrants_fingerprint = Some(waiting_room::entrants_fingerprint(&list));
        view.entrants_url = Some(format!("/v1/events/{}/lottery/entrants", entry.info.id));
    }
    Ok(view)
}

/// The published entrant list (after the reveal).
pub async fn entrants(state: &AppState, entry: &EventEntry) -> AppResult<String> {
    check_room(entry)?;
    if Utc::now() < reveal_at(entry) {
        return Err(AppError::conflict(
            "lottery_not_revealed",
            format!("the entrant list is published at {}", reveal_at(entry)),
        ));
    }
    Ok(entrant_list(state, entry).await?.1)
}
