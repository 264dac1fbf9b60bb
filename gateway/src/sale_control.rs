//! Pausing, resuming and ending a sale.
//!
//! The change is a command (`set_sale_state`) through the event's partition, like a hold:
//! so it takes effect at one place in queue order. Every hold request queued behind a
//! pause is refused `sale_paused`, every one before it is decided as usual, and holds
//! already made keep their windows. The consumer keeps the state in `events.sale_state`;
//! the scheduler admits nobody from the waiting room while it is not `open`.

use seatq_common::catalog::EventEntry;
use seatq_common::command::{Command, SaleState, SetSaleState};
use seatq_common::http::error::AppResult;
use seatq_common::ids::{EventId, RequestId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::AuthUser;
use crate::commands::{self, CommandDecision};
use crate::state::AppState;

const SALE_STATE: &str = "SELECT sale_state, sale_state_changed_at FROM events WHERE id = $1";

/// An organiser's change of the sale.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleChange {
    /// `paused` stops the sale at this point of the queue, `open` resumes it, `ended`
    /// closes it for good.
    pub state: SaleState,
    /// Why, for the event's history (at most 200 characters, no control characters).
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub note: String,
}

/// The sale's state as the consumer last decided it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SaleStatus {
    pub sale_state: SaleState,
    /// When it last changed (none: never).
    pub changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What became of a change: decided (`applied` or refused), or still queued.
pub enum Changed {
    Decided(CommandDecision),
    Queued(RequestId),
}

/// The event's sale state as stored.
pub async fn status(pool: &PgPool, event_id: EventId) -> AppResult<SaleStatus> {
    let row: Option<(SaleState, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as(SALE_STATE)
            .bind(event_id)
            .fetch_optional(pool)
            .await?;
    let (sale_state, changed_at) =
        row.ok_or_else(|| crate::routes::events::event_not_found(event_id))?;
    Ok(SaleStatus {
        sale_state,
        changed_at,
    })
}

/// Send the change through the event's partition and wait a little for its decision.
pub async fn change(
    state: &AppState,
    admin: &AuthUser,
    entry: &EventEntry,
    body: &SaleChange,
) -> AppResult<Changed> {
    crate::holdbacks::check_note(&body.note)?;
    let request_id = RequestId::new();
    let command = Command::SetSaleState(SetSaleState {
        state: body.state,
        note: body.note.clone(),
    });
    let wait = crate::holdbacks::organiser_wait(state);
    let decision = commands::send(
        state,
        entry,
        &admin.user_id,
        (request_id, commands::IdOrigin::Fresh),
        command,
        Some(wait),
    )
    .await?;
    let Some(decision) = decision else {
        return Ok(Changed::Queued(request_id));
    };
    if let Some(err) = commands::rejection_error(&decision) {
        return Err(err);
    }
    tracing::info!(event_id = %entry.info.id, state = body.state.as_str(), admin = %admin.user_id,
        "sale state changed");
    Ok(Changed::Decided(decision))
}
