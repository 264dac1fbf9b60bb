//! Deciding hold requests, in memory, in partition order.
//!
//! The batch transaction loads (and locks) everything the batch touches into a
//! [`Ledger`]; each command is then decided against the ledger in offset order, so a
//! later request sees what an earlier one in the same batch took. First come, first
//! served; all or nothing for several seats; the per-user limit counts the user's active
//! and sold holds. Nothing here does I/O, which keeps the rules unit-testable.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use seatq_common::catalog::EventInfo;
use seatq_common::command::HoldSeats;
use seatq_common::ids::{EventId, HoldId, RequestId, SectionId, UserId};
use seatq_common::layout::{SectionKind, VenueLayout};
use seatq_common::message::SeatStatus;

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
}

impl Rejection {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self {
            reason,
            unavailable: Vec::new(),
            alternatives: Vec::new(),
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
    pub life: crate::lifecycle::LifeState,
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

impl Ledger {
    /// Decide one request and apply it to the ledger.
    pub fn decide(
        &mut self,
        req: &HoldRequest,
        rules: Option<&EventRules>,
        now: DateTime<Utc>,
    ) -> Outcome {
        match self.try_hold(req, rules, now) {
            Ok(hold) => Outcome::Held(hold),
            Err(rejection) => Outcome::Rejected(rejection),
        }
    }

    fn try_hold(
        &mut self,
        req: &HoldRequest,
        rules: Option<&EventRules>,
        now: DateTime<Utc>,
    ) -> Result<NewHold, Rejection> {
        let rules = rules.ok_or(Rejection::new("event_not_found"))?;
        if req.issued_at < rules.info.on_sale_at {
            return Err(Rejection::new("sale_not_open"));
        }
        let quantity = match &req.hold {
            HoldSeats::Seats { seat_nos } => seat_nos.len() as i32,
            HoldSeats::BestAvailable { quantity, .. } => *quantity,
        };
        if quantity < 1 {
            return Err(Rejection::new("invalid_command"));
        }
        if quantity > rules.info.max_seats_per_user {
            return Err(Rejection::new("too_many_seats"));
        }
        let user_key = (req.event_id, req.user_id.clone());
        let already = self.user_seats.get(&user_key).copied().unwrap_or(0);
        if already + quantity > rules.info.max_seats_per_user {
            return Err(Rejection::new("user_limit_exceeded"));
        }
        let hold_id = HoldId::new();
        let expires_at = now + Duration::seconds(i64::from(rules.info.hold_ttl_secs));
        let (seat_nos, ga_section) = match &req.hold {
            HoldSeats::Seats { seat_nos } => {
                self.take_seats(req.event_id, &rules.layout, seat_nos, hold_id)?;
                (seat_nos.clone(), None)
            }
            HoldSeats::BestAvailable {
                section_id,
                quantity,
            } => {
                let section = rules
                    .layout
                    .section_by_id(*section_id)
                    .ok_or(Rejection::new("unknown_section"))?;
                match section.kind {
                    SectionKind::Reserved => {
                        let free = self
                            .section_free
                            .get(&(req.event_id, *section_id))
                            .cloned()
                            .unwrap_or_default();
                        let chosen = crate::best_available::choose(section, &free, *quantity)
                            .ok_or(Rejection::new("insufficient_seats"))?;
                        self.take_seats(req.event_id, &rules.layout, &chosen, hold_id)?;
                        (chosen, None)
                    }
                    SectionKind::GeneralAdmission => {
                        let slot = self
                            .ga
                            .get_mut(&(req.event_id, *section_id))
                            .ok_or(Rejection::new("unknown_section"))?;
                        if slot.capacity - slot.held - slot.sold < *quantity {
                            return Err(Rejection::new("insufficient_seats"));
                        }
                        slot.held += quantity;
                        self.ga_changed
                            .entry((req.event_id, *section_id))
                            .or_default()
                            .0 += quantity;
                        (Vec::new(), Some(*section_id))
                    }
                }
            }
        };
        *self.user_seats.entry(user_key).or_default() += quantity;
        self.holds.insert(
            hold_id,
            HoldSlot {
                id: hold_id,
                event_id: req.event_id,
                user_id: req.user_id.clone(),
                request_id: req.request_id,
                status: HoldStatus::Active,
                seat_nos: seat_nos.clone(),
                ga_section,
                quantity,
                created_at: now,
                expires_at,
                ended_at: None,
                extended: false,
                offered_from: None,
            },
        );
        self.new_holds.push(hold_id);
        Ok(NewHold {
            hold_id,
            seat_nos,
            ga_section,
            quantity,
            expires_at,
        })
    }

    /// All of `seat_nos` for `hold_id`, or none of them.
    pub(crate) fn take_seats(
        &mut self,
        event_id: EventId,
        layout: &VenueLayout,
        seat_nos: &[i32],
        hold_id: HoldId,
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
                reason: "seats_unavailable",
                unavailable,
                alternatives: Vec::new(),
            });
        }
        for &seat in seat_nos {
            self.seats.insert(
                (event_id, seat),
                SeatSlot {
                    status: SeatStatus::Held,
                    hold_id: Some(hold_id),
                },
            );
            if let Some(section) = layout.section_of(seat) {
                if let Some(free) = self.section_free.get_mut(&(event_id, section.id)) {
                    free.remove(&seat);
                }
            }
            self.changed_seats.push((event_id, seat));
        }
        Ok(())
    }
}

/// Up to `count` free seats of `free` nearest to `near` (by seat number), in seat order.
pub fn nearest(free: &BTreeSet<i32>, near: i32, count: usize) -> Vec<i32> {
    let mut below = free.range(..near).rev().peekable();
    let mut above = free.range(near..).peekable();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let pick = match (below.peek(), above.peek()) {
            (Some(&&b), Some(&&a)) => {
                if near - b <= a - near {
                    below.next()
                } else {
                    above.next()
                }
            }
            (Some(_), None) => below.next(),
            (None, Some(_)) => above.next(),
            (None, None) => None,
        };
        match pick {
            Some(&s) => out.push(s),
            None => break,
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use seatq_common::ids::VenueId;
    use seatq_common::layout::SectionLayout;

    fn rules(max: i32) -> (EventRules, SectionId, SectionId) {
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

    fn ledger(rules: &EventRules, a: SectionId, ga: SectionId) -> Ledger {
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

    fn req(rules: &EventRules, user: &str, hold: HoldSeats) -> HoldRequest {
        HoldRequest {
            request_id: RequestId::new(),
            event_id: rules.info.id,
            user_id: UserId(user.into()),
            issued_at: Utc::now(),
            hold,
        }
    }

    fn seats(nos: &[i32]) -> HoldSeats {
        HoldSeats::Seats {
            seat_nos: nos.to_vec(),
        }
    }

    #[test]
    fn first_request_wins_and_multi_seat_is_all_or_nothing() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let now = Utc::now();
        assert!(matches!(
            l.decide(&req(&r, "u1", seats(&[1, 2])), Some(&r), now),
            Outcome::Held(_)
        ));
        match l.decide(&req(&r, "u2", seats(&[2, 3])), Some(&r), now) {
            Outcome::Rejected(rej) => {
                assert_eq!(rej.reason, "seats_unavailable");
                assert_eq!(rej.unavailable, vec![2]);
            }
            other => panic!("{other:?}"),
        }
        // Seat 3 was not taken by the failed request.
        assert!(matches!(
            l.decide(&req(&r, "u3", seats(&[3])), Some(&r), now),
            Outcome::Held(_)
        ));
        assert_eq!(l.changed_seats.len(), 3);
    }

    #[test]
    fn user_limit_counts_earlier_holds() {
        let (r, a, ga) = rules(3);
        let mut l = ledger(&r, a, ga);
        let now = Utc::now();
        assert!(matches!(
            l.decide(&req(&r, "u1", seats(&[0, 1])), Some(&r), now),
            Outcome::Held(_)
        ));
        let Outcome::Rejected(rej) = l.decide(&req(&r, "u1", seats(&[5, 6])), Some(&r), now) else {
            panic!("over the limit")
        };
        assert_eq!(rej.reason, "user_limit_exceeded");
        assert!(matches!(
            l.decide(&req(&r, "u1", seats(&[5])), Some(&r), now),
            Outcome::Held(_)
        ));
    }

    #[test]
    fn best_available_and_general_admission() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let now = Utc::now();
        let best = HoldSeats::BestAvailable {
            section_id: a,
            quantity: 2,
        };
        let Outcome::Held(h) = l.decide(&req(&r, "u1", best.clone()), Some(&r), now) else {
            panic!()
        };
        assert_eq!(h.seat_nos, vec![1, 2]);
        let Outcome::Held(h2) = l.decide(&req(&r, "u2", best), Some(&r), now) else {
            panic!()
        };
        assert!(h2.seat_nos.iter().all(|s| !h.seat_nos.contains(s)));
        let gah = |q| HoldSeats::BestAvailable {
            section_id: ga,
            quantity: q,
        };
        assert!(matches!(
            l.decide(&req(&r, "u3", gah(2)), Some(&r), now),
            Outcome::Held(_)
        ));
        let Outcome::Rejected(rej) = l.decide(&req(&r, "u4", gah(2)), Some(&r), now) else {
            panic!()
        };
        assert_eq!(rej.reason, "insufficient_seats");
        assert_eq!(l.ga[&(r.info.id, ga)].held, 2);
    }

    #[test]
    fn rejects_before_sale_unknown_seats_and_missing_events() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let now = Utc::now();
        let mut early = req(&r, "u1", seats(&[1]));
        early.issued_at = r.info.on_sale_at - Duration::seconds(1);
        let reason = |o: Outcome| match o {
            Outcome::Rejected(rej) => rej.reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(l.decide(&early, Some(&r), now)), "sale_not_open");
        assert_eq!(
            reason(l.decide(&req(&r, "u1", seats(&[99])), Some(&r), now)),
            "unknown_seat"
        );
        assert_eq!(
            reason(l.decide(&req(&r, "u1", seats(&[1, 1])), Some(&r), now)),
            "invalid_command"
        );
        assert_eq!(
            reason(l.decide(&req(&r, "u1", seats(&[1])), None, now)),
            "event_not_found"
        );
    }

    #[test]
    fn nearest_prefers_closest_seats() {
        let free: BTreeSet<i32> = [1, 5, 6, 9].into();
        assert_eq!(nearest(&free, 6, 2), vec![5, 6]);
        assert_eq!(nearest(&free, 8, 2), vec![6, 9]);
        assert_eq!(nearest(&free, 0, 10), vec![1, 5, 6, 9]);
    }
}
