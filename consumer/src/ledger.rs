//! The ledger: everything one batch touches, loaded from PostgreSQL, changed in memory
//! as its commands are decided in Kafka order, then written back in one transaction.
//!
//! This module is the data and its bookkeeping only: the slots (seats, general-admission
//! counters, holds, waitlists, bookings), what a decision produced ([`Outcome`]), and the
//! few changes every rule makes the same way (take seats, free a seat, end a hold, make a
//! hold), so that the indexes kept beside the slots (`section_free`, `changed_seats`,
//! `new_holds`, `changed_holds`) never disagree. The rules live in `decide` (hold
//! requests) and `lifecycle` (everything after); the SQL that fills and writes a ledger in
//! `store`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use seatq_common::catalog::EventInfo;
use seatq_common::command::{HoldSeats, SaleState};
use seatq_common::ids::{
    BookingId, EventId, HoldId, PaymentId, RequestId, SectionId, TicketId, UserId,
};
use seatq_common::layout::VenueLayout;
use seatq_common::message::{ArmedTimer, HoldTimer, SeatEvent, SeatStatus};

/// A command's place in Kafka order: the record's offset, then its index in the record.
pub type Position = (i64, i32);

/// An event's rules as the consumer needs them.
#[derive(Debug, Clone)]
pub struct EventRules {
    pub info: EventInfo,
    pub layout: Arc<VenueLayout>,
}

/// A hold request waiting for its decision.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub request_id: RequestId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub hold: HoldSeats,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Held(NewHold),
    Rejected(Rejection),
    /// A lifecycle command took effect (or was a harmless no-op): what happened.
    Applied(Applied),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The hold the command was about.
    pub hold_id: Option<HoldId>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    pub hold_id: HoldId,
    /// Reserved seats, or empty for general admission.
    pub seat_nos: Vec<i32>,
    pub ga_section: Option<SectionId>,
    pub quantity: i32,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    /// Requested seats that were taken.
    pub unavailable: Vec<i32>,
    /// Filled in after deciding: nearby seats that were free.
    pub alternatives: Vec<i32>,
    /// `would_strand_seat`: the seats the hold would have left alone.
    pub stranded: Vec<i32>,
    /// `would_strand_seat`, filled in after deciding: the nearest seats, as many as asked
    /// for, that strand none.
    pub suggestion: Vec<i32>,
}

impl Rejection {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self {
            reason,
            unavailable: Vec::new(),
            alternatives: Vec::new(),
            stranded: Vec::new(),
            suggestion: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SeatSlot {
    pub status: SeatStatus,
    pub hold_id: Option<HoldId>,
}

#[derive(Debug, Clone, Copy)]
pub struct GaSlot {
    pub capacity: i32,
    pub held: i32,
    pub sold: i32,
}

/// The state a batch touches, changed in memory as commands are decided.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Seats loaded for this batch: those named by a command or a hold are locked; the free
    /// seats of best-available sections are read without a lock (see `unlocked_seats`).
    pub seats: HashMap<(EventId, i32), SeatSlot>,
    /// Seats read as available but not locked: written only if still available.
    pub unlocked_seats: HashSet<(EventId, i32)>,
    /// Available seats of sections asked for "best available", kept in step with `seats`.
    pub section_free: HashMap<(EventId, SectionId), BTreeSet<i32>>,
    pub ga: HashMap<(EventId, SectionId), GaSlot>,
    /// Seats held or sold by each user per event (active + sold holds).
    pub user_seats: HashMap<(EventId, UserId), i32>,
    /// Seats this batch changed, in order (a seat may appear twice), for writing and for
    /// the seat-map deltas; their final state is in `seats`.
    pub changed_seats: Vec<(EventId, i32)>,
    /// General-admission counters this batch changed: (held, sold) deltas.
    pub ga_changed: HashMap<(EventId, SectionId), (i32, i32)>,
    /// Holds this batch created or loaded (for lifecycle commands), in their current state.
    pub holds: HashMap<HoldId, HoldSlot>,
    /// Holds created by this batch, in order.
    pub new_holds: Vec<HoldId>,
    /// Loaded holds this batch changed.
    pub changed_holds: BTreeSet<HoldId>,
    /// The rest of the lifecycle state (waitlists, payments, bookings, messages).
    pub life: LifeState,
    /// The sale state of the events whose commands depend on it (holds, waitlist joins,
    /// sale changes), as it stands at this point of the batch.
    pub sales: HashMap<EventId, SaleState>,
    /// Events whose sale state this batch changed.
    pub sales_changed: BTreeSet<EventId>,
}

/// A hold as the batch sees it.
#[derive(Debug, Clone)]
pub struct HoldSlot {
    pub id: HoldId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub request_id: RequestId,
    pub status: HoldStatus,
    pub seat_nos: Vec<i32>,
    pub ga_section: Option<SectionId>,
    pub quantity: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub extended: bool,
    pub offered_from: Option<HoldId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    Active,
    Sold,
    Cancelled,
    Expired,
}

impl HoldStatus {
    pub fn as_db(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Sold => "sold",
            HoldStatus::Cancelled => "cancelled",
            HoldStatus::Expired => "expired",
        }
    }

    pub fn from_db(s: &str) -> Self {
        match s {
            "active" => HoldStatus::Active,
            "sold" => HoldStatus::Sold,
            "cancelled" => HoldStatus::Cancelled,
            _ => HoldStatus::Expired,
        }
    }
}

/// A decided command, ready to be written.
pub(crate) struct Decided {
    pub position: Position,
    pub request_id: RequestId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub kind: String,
    pub issued_at: DateTime<Utc>,
    pub reply: bool,
    pub outcome: Outcome,
    /// The reserved seats the command named (or, held by best available, got): a seat's
    /// history is the commands naming it.
    pub seat_nos: Vec<i32>,
}

/// A `waiting` entry of a seat's waitlist.
#[derive(Debug, Clone)]
pub struct WaitEntry {
    pub id: i64,
    pub user_id: UserId,
}

/// A waitlist entry this batch created.
#[derive(Debug, Clone)]
pub struct NewWaitEntry {
    pub id: i64,
    pub event_id: EventId,
    pub seat_no: i32,
    pub user_id: UserId,
    pub request_id: RequestId,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct BookingSlot {
    pub event_id: EventId,
    pub hold_id: HoldId,
    pub user_id: UserId,
    pub payment_id: PaymentId,
    pub amount_cents: i64,
    pub cancelled: bool,
    /// Refunded so far (cancellations of some of its tickets).
    pub refund_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// Every ticket the booking was issued (loaded, locked, for a cancellation).
    pub tickets: Vec<TicketSlot>,
}

/// A ticket of a booking being cancelled, as it is now.
#[derive(Debug, Clone)]
pub struct TicketSlot {
    pub id: TicketId,
    pub seat_no: Option<i32>,
    pub holder: UserId,
    pub valid: bool,
    pub checked_in: bool,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub id: TicketId,
    pub booking_id: BookingId,
    pub event_id: EventId,
    pub seat_no: Option<i32>,
    pub section_id: seatq_common::ids::SectionId,
    pub holder: UserId,
}

#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_id: PaymentId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub amount_cents: i64,
    pub reason: &'static str,
    /// The command that decided it.
    pub request_id: RequestId,
}

/// Lifecycle state of a batch: loaded under lock, changed in order, written at the end.
#[derive(Debug, Default)]
pub struct LifeState {
    /// Holds with a payment in progress (checkout started, not yet applied).
    /// Holds with payments in progress, and which (a failure of one leaves the others).
    pub paying: HashMap<HoldId, HashSet<PaymentId>>,
    /// Who holds the seats of the batch's waitlist joins, as stored before the batch.
    pub holders: HashMap<HoldId, UserId>,
    /// `waiting` entries of the seats the batch touches, first in line first.
    pub waitlists: HashMap<(EventId, i32), VecDeque<WaitEntry>>,
    /// `waiting` entries per user and event (for the per-user waitlist limit).
    pub waiting_per_user: HashMap<(EventId, UserId), i64>,
    /// Ids for new waitlist entries, taken from the table's sequence before deciding.
    pub spare_waitlist_ids: VecDeque<i64>,
    pub waitlist_new: Vec<NewWaitEntry>,
    /// Entries that stopped waiting: (id, new status, offered hold).
    pub waitlist_ended: Vec<(i64, &'static str, Option<HoldId>)>,
    /// Seats whose Redis waitlist mirror must be rebuilt after commit.
    pub waitlist_sync: std::collections::BTreeSet<(EventId, i32)>,
    /// Bookings loaded (for cancellation) or created by this batch.
    pub bookings: BTreeMap<BookingId, BookingSlot>,
    pub new_bookings: Vec<BookingId>,
    /// Loaded bookings this batch cancelled, wholly or in part.
    pub changed_bookings: Vec<BookingId>,
    pub tickets: Vec<NewTicket>,
    /// Tickets this batch made void (their bookings were cancelled).
    pub voided_tickets: Vec<TicketId>,
    pub refunds: Vec<NewRefund>,
    /// Payments this batch gives back whole (at most once per payment).
    pub refunded: HashSet<PaymentId>,
    /// Users let in by the waiting room of the events of the batch's waitlist commands.
    pub admitted: HashSet<(EventId, UserId)>,
    /// Per-user notifications and timers, in decision order.
    pub notices: Vec<(EventId, SeatEvent)>,
    pub timers: Vec<HoldTimer>,
    /// Expiries that came before the hold was due, sent to the scheduler again.
    pub rearmed_timers: Vec<ArmedTimer>,
}

impl HoldSlot {
    /// A new active hold of nothing yet: callers fill in its seats or quantity.
    pub fn active(
        id: HoldId,
        event_id: EventId,
        user_id: UserId,
        request_id: RequestId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            event_id,
            user_id,
            request_id,
            status: HoldStatus::Active,
            seat_nos: Vec::new(),
            ga_section: None,
            quantity: 0,
            created_at: now,
            expires_at,
            ended_at: None,
            extended: false,
            offered_from: None,
        }
    }
}

impl Ledger {
    /// The event's sale state at this point of the batch (open unless loaded otherwise).
    pub fn sale_state(&self, event_id: EventId) -> SaleState {
        self.sales
            .get(&event_id)
            .copied()
            .unwrap_or(SaleState::Open)
    }

    /// Requests to buy are refused while the sale is paused or after it ended.
    pub fn sale_refusal(&self, event_id: EventId) -> Option<Rejection> {
        match self.sale_state(event_id) {
            SaleState::Open => None,
            SaleState::Paused => Some(Rejection::new("sale_paused")),
            SaleState::Ended => Some(Rejection::new("sale_ended")),
        }
    }

    /// Record a hold made by this batch (its seats already taken, or its general-admission
    /// quantity already counted): a request, a holdback and a waitlist offer all come
    /// into being here.
    pub fn create_hold(&mut self, hold: HoldSlot) {
        self.new_holds.push(hold.id);
        self.holds.insert(hold.id, hold);
    }

    /// Is the seat free at this point of the batch (as far as the batch loaded it)?
    pub fn is_free(&self, event_id: EventId, seat_no: i32) -> bool {
        self.seats
            .get(&(event_id, seat_no))
            .is_some_and(|slot| slot.status == SeatStatus::Available)
    }

    /// All of `seat_nos` for `hold_id`, or none of them.
    pub fn take_seats(
        &mut self,
        event_id: EventId,
        layout: &VenueLayout,
        seat_nos: &[i32],
        hold_id: HoldId,
    ) -> Result<(), Rejection> {
        self.check_free(event_id, layout, seat_nos)?;
        for &seat in seat_nos {
            self.set_seat(layout, event_id, seat, SeatStatus::Held, Some(hold_id));
        }
        Ok(())
    }

    /// `seat_nos` are distinct seats of the venue, all free.
    pub fn check_free(
        &self,
        event_id: EventId,
        layout: &VenueLayout,
        seat_nos: &[i32],
    ) -> Result<(), Rejection> {
        let mut unique = BTreeSet::new();
        if !seat_nos.iter().all(|s| unique.insert(*s)) {
            return Err(Rejection::new("invalid_command"));
        }
        if seat_nos.iter().any(|s| layout.section_of(*s).is_none()) {
            return Err(Rejection::new("unknown_seat"));
        }
        let unavailable: Vec<i32> = seat_nos
            .iter()
            .copied()
            .filter(|s| {
                self.seats
                    .get(&(event_id, *s))
                    .is_none_or(|slot| slot.status != SeatStatus::Available)
            })
            .collect();
        if !unavailable.is_empty() {
            return Err(Rejection {
                unavailable,
                ..Rejection::new("seats_unavailable")
            });
        }
        Ok(())
    }

    /// Set a seat's state, remember it changed, and keep its section's free seats (for a
    /// best-available request later in the batch) in step with it.
    pub fn set_seat(
        &mut self,
        layout: &VenueLayout,
        event_id: EventId,
        seat: i32,
        status: SeatStatus,
        hold_id: Option<HoldId>,
    ) {
        self.seats
            .insert((event_id, seat), SeatSlot { status, hold_id });
        self.changed_seats.push((event_id, seat));
        if let Some(free) = layout
            .section_of(seat)
            .and_then(|section| self.section_free.get_mut(&(event_id, section.id)))
        {
            if status == SeatStatus::Available {
                free.insert(seat);
            } else {
                free.remove(&seat);
            }
        }
    }

    /// End a hold (sold, cancelled or expired); its payments are no longer awaited.
    pub fn end_hold(&mut self, hold_id: HoldId, status: HoldStatus, now: DateTime<Utc>) {
        if let Some(h) = self.holds.get_mut(&hold_id) {
            h.status = status;
            h.ended_at = Some(now);
        }
        self.life.paying.remove(&hold_id);
        self.changed_holds.insert(hold_id);
    }
}

/// A small event for the rules' unit tests: reserved section A (seats 0–9, two rows of
/// five) and a general-admission section of 3, on sale since an hour ago.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use chrono::Duration;
    use seatq_common::ids::VenueId;
    use seatq_common::layout::{SectionKind, SectionLayout};

    pub fn rules(max: i32) -> (EventRules, SectionId, SectionId) {
        let a = SectionId::new();
        let ga = SectionId::new();
        let layout = VenueLayout::new(vec![
            SectionLayout {
                id: a,
                code: "A".into(),
                name: "A".into(),
                kind: SectionKind::Reserved,
                rows: 2,
                seats_per_row: 5,
                first_seat_no: 0,
                capacity: 10,
                price_cents: 1,
            },
            SectionLayout {
                id: ga,
                code: "GA".into(),
                name: "GA".into(),
                kind: SectionKind::GeneralAdmission,
                rows: 0,
                seats_per_row: 0,
                first_seat_no: 0,
                capacity: 3,
                price_cents: 1,
            },
        ]);
        let info = EventInfo {
            id: EventId::new(),
            venue_id: VenueId::new(),
            title: "t".into(),
            performer: String::new(),
            starts_at: Utc::now(),
            on_sale_at: Utc::now() - Duration::hours(1),
            hold_ttl_secs: 600,
            max_seats_per_user: max,
            waiting_room_enabled: false,
            kafka_partition: 0,
            refund_cutoff_hours: 24,
            pow_difficulty: 0,
            no_single_seats: false,
            accessible_release_at: None,
        };
        (
            EventRules {
                info,
                layout: Arc::new(layout),
            },
            a,
            ga,
        )
    }

    pub fn ledger(rules: &EventRules, a: SectionId, ga: SectionId) -> Ledger {
        let id = rules.info.id;
        let mut l = Ledger::default();
        for s in 0..10 {
            l.seats.insert(
                (id, s),
                SeatSlot {
                    status: SeatStatus::Available,
                    hold_id: None,
                },
            );
        }
        l.section_free.insert((id, a), (0..10).collect());
        l.ga.insert(
            (id, ga),
            GaSlot {
                capacity: 3,
                held: 0,
                sold: 0,
            },
        );
        l
    }
}
