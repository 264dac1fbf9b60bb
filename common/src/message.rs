//! Messages the consumer publishes after a batch commits (through the outbox).
//!
//! `seatq.seat-events` carries what browsers and users need to hear about (seat map deltas,
//! hold decisions); `seatq.hold-timers` carries one timer per hold for the scheduler. Both
//! are keyed by event id, so per-event order is the commit order. A record may pack several
//! messages of one event (`record`); read them with `record::decode_all`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, PaymentId, RequestId, TicketId, UserId};

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
        /// The commands-partition offset the event's seats reflect after this change (the
        /// consumer's next offset once the batch committed). A seat map says which offset
        /// it reflects too (`position.next_offset`): a client applies only deltas past it.
        #[serde(default)]
        next_offset: i64,
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
    /// A hold ended without a sale: `cancelled`, `expired` or `booking_cancelled`.
    HoldReleased {
        hold_id: HoldId,
        user_id: UserId,
        reason: String,
    },
    /// A hold whose payment was in progress at expiry got a grace period.
    HoldExtended {
        hold_id: HoldId,
        user_id: UserId,
        expires_at: DateTime<Utc>,
    },
    /// Sent by the scheduler shortly before a hold expires.
    ReservationExpiring {
        hold_id: HoldId,
        user_id: UserId,
        expires_at: DateTime<Utc>,
    },
    /// A released seat was handed to the first person on its waitlist: a hold for them.
    WaitlistOffer {
        hold_id: HoldId,
        user_id: UserId,
        seat_ids: Vec<String>,
        expires_at: DateTime<Utc>,
    },
    /// A join or leave of a seat's waitlist was decided.
    WaitlistUpdated {
        request_id: RequestId,
        user_id: UserId,
        seat_id: String,
        status: String,
    },
    PaymentFailed {
        hold_id: HoldId,
        user_id: UserId,
        payment_id: PaymentId,
    },
    BookingConfirmed {
        booking_id: BookingId,
        hold_id: HoldId,
        user_id: UserId,
        amount_cents: i64,
        ticket_ids: Vec<TicketId>,
    },
    BookingCancelled {
        booking_id: BookingId,
        user_id: UserId,
        refund_cents: i64,
    },
    /// Money went back to the user (the refund worker, after the provider confirmed).
    RefundIssued {
        payment_id: PaymentId,
        user_id: UserId,
        amount_cents: i64,
        reason: String,
    },
    /// Where a user waits in an event's waiting room (sent every few seconds).
    QueuePosition {
        user_id: UserId,
        ticket: uuid::Uuid,
        position: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        eta_secs: Option<i64>,
    },
    /// The user may now buy: fetch the admission token from the ticket.
    Admitted {
        user_id: UserId,
        ticket: uuid::Uuid,
        expires_at: DateTime<Utc>,
    },
}

impl SeatEvent {
    /// The `kind` tag as serialized (also the SSE event name).
    pub fn kind(&self) -> &'static str {
        match self {
            SeatEvent::SeatStatusChanged { .. } => "seat_status_changed",
            SeatEvent::HoldCreated { .. } => "hold_created",
            SeatEvent::HoldRejected { .. } => "hold_rejected",
            SeatEvent::HoldReleased { .. } => "hold_released",
            SeatEvent::HoldExtended { .. } => "hold_extended",
            SeatEvent::ReservationExpiring { .. } => "reservation_expiring",
            SeatEvent::WaitlistOffer { .. } => "waitlist_offer",
            SeatEvent::WaitlistUpdated { .. } => "waitlist_updated",
            SeatEvent::PaymentFailed { .. } => "payment_failed",
            SeatEvent::BookingConfirmed { .. } => "booking_confirmed",
            SeatEvent::BookingCancelled { .. } => "booking_cancelled",
            SeatEvent::RefundIssued { .. } => "refund_issued",
            SeatEvent::QueuePosition { .. } => "queue_position",
            SeatEvent::Admitted { .. } => "admitted",
        }
    }

    /// The hold request this answers, if it answers one (for tracing across services).
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            SeatEvent::HoldCreated { request_id, .. }
            | SeatEvent::HoldRejected { request_id, .. }
            | SeatEvent::WaitlistUpdated { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// The user a notification is for (none for seat-map deltas).
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            SeatEvent::SeatStatusChanged { .. } => None,
            SeatEvent::HoldCreated { user_id, .. }
            | SeatEvent::HoldRejected { user_id, .. }
            | SeatEvent::HoldReleased { user_id, .. }
            | SeatEvent::HoldExtended { user_id, .. }
            | SeatEvent::ReservationExpiring { user_id, .. }
            | SeatEvent::WaitlistOffer { user_id, .. }
            | SeatEvent::WaitlistUpdated { user_id, .. }
            | SeatEvent::PaymentFailed { user_id, .. }
            | SeatEvent::BookingConfirmed { user_id, .. }
            | SeatEvent::BookingCancelled { user_id, .. }
            | SeatEvent::RefundIssued { user_id, .. }
            | SeatEvent::QueuePosition { user_id, .. }
            | SeatEvent::Admitted { user_id, .. } => Some(user_id),
        }
    }
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

/// A hold timer as the scheduler reads it from `seatq.hold-timers`: a plain [`HoldTimer`]
/// (attempt 0), or one the consumer re-armed because its expiry arrived before the hold
/// was due by the consumer's clock (the scheduler's clock runs ahead). The attempt goes
/// into the next `expire_hold`'s request id, so the re-armed firing is a new request
/// rather than a duplicate of the one already decided as not due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedTimer {
    #[serde(flatten)]
    pub timer: HoldTimer,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// When to fire on the scheduler's clock (the consumer's estimate of it), if not at
    /// `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_at: Option<DateTime<Utc>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ArmedTimer {
    /// When the timer is due on the scheduler's clock.
    pub fn due(&self) -> DateTime<Utc> {
        self.fire_at.unwrap_or(self.timer.expires_at)
    }
}

impl From<HoldTimer> for ArmedTimer {
    fn from(timer: HoldTimer) -> Self {
        Self {
            timer,
            attempt: 0,
            fire_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_serialized_tag() {
        let hold = crate::ids::HoldId::new();
        let user = UserId("u".into());
        let now = Utc::now();
        for event in [
            SeatEvent::SeatStatusChanged {
                seats: vec![],
                sections: vec![],
                next_offset: 3,
            },
            SeatEvent::HoldReleased {
                hold_id: hold,
                user_id: user.clone(),
                reason: "expired".into(),
            },
            SeatEvent::ReservationExpiring {
                hold_id: hold,
                user_id: user.clone(),
                expires_at: now,
            },
            SeatEvent::WaitlistOffer {
                hold_id: hold,
                user_id: user,
                seat_ids: vec!["A-1-1".into()],
                expires_at: now,
            },
        ] {
            let json = serde_json::to_value(&event).expect("json");
            assert_eq!(json["kind"], event.kind());
        }
    }

    #[test]
    fn a_plain_timer_reads_as_attempt_zero_and_a_rearmed_one_as_a_timer() {
        let timer = HoldTimer {
            hold_id: crate::ids::HoldId::new(),
            event_id: EventId::new(),
            expires_at: Utc::now(),
        };
        let plain = serde_json::to_string(&timer).expect("json");
        let armed: ArmedTimer = serde_json::from_str(&plain).expect("armed");
        assert_eq!(armed, ArmedTimer::from(timer.clone()));
        assert_eq!(armed.due(), timer.expires_at);
        let fire_at = timer.expires_at + chrono::Duration::seconds(5);
        let rearmed = ArmedTimer {
            timer: timer.clone(),
            attempt: 2,
            fire_at: Some(fire_at),
        };
        let json = serde_json::to_string(&rearmed).expect("json");
        assert_eq!(
            serde_json::from_str::<ArmedTimer>(&json).expect("back"),
            rearmed
        );
        // Readers that know only `HoldTimer` still read it.
        assert_eq!(
            serde_json::from_str::<HoldTimer>(&json).expect("timer"),
            timer
        );
        assert_eq!(rearmed.due(), fire_at);
    }
}
