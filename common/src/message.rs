//! Messages the consumer publishes after a batch commits (through the outbox).
//!
//! `seatq.seat-events` carries what browsers and users need to hear about (seat map deltas,
//! hold decisions); `seatq.hold-timers` carries one timer per hold for the scheduler. Both
//! are keyed by event id, so per-event order is the commit order. A record may pack several
//! messages of one event (`record`); read them with `record::decode_all`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, HoldId, RequestId, UserId};

/// A seat-event as published, with the event it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatEventEnvelope {
    pub event_id: EventId,
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub payload: SeatEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeatEvent {
    /// Seats (and general-admission availability) that changed in one batch.
    SeatStatusChanged {
        seats: Vec<SeatChange>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sections: Vec<SectionAvailability>,
    },
    HoldCreated {
        request_id: RequestId,
        hold_id: HoldId,
        user_id: UserId,
        seat_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        section: Option<String>,
        quantity: i32,
        expires_at: DateTime<Utc>,
    },
    HoldRejected {
        request_id: RequestId,
        user_id: UserId,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    pub seat_id: String,
    pub status: SeatStatus,
}

/// Remaining places of a general-admission section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionAvailability {
    pub section: String,
    pub available: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    Available,
    Held,
    Sold,
}

impl SeatStatus {
    pub fn as_db(self) -> &'static str {
        match self {
            SeatStatus::Available => "available",
            SeatStatus::Held => "held",
            SeatStatus::Sold => "sold",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "available" => Some(SeatStatus::Available),
            "held" => Some(SeatStatus::Held),
            "sold" => Some(SeatStatus::Sold),
            _ => None,
        }
    }
}

/// The scheduler's timer for a hold: fire `expire_hold` at `expires_at` unless it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldTimer {
    pub hold_id: HoldId,
    pub event_id: EventId,
    pub expires_at: DateTime<Utc>,
}
