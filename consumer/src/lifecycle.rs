//! Deciding what happens to holds after they are made: cancel, expiry (or a grace period
//! when a payment is in progress; or, for an expiry that came early by our clock, a new
//! timer), sale on payment, refund of a payment that came too late or captured something
//! else than was asked for, booking cancellation, and the seats' waitlists.
//!
//! Like `decide`, this is pure: it works on the [`Ledger`] the batch loaded, in
//! Kafka order. That is what makes a waitlist hand-off gapless: releasing a seat and holding
//! it for the first person in line are two changes to the same in-memory seat inside one
//! transaction, so no other command can ever see the seat free in between.

use chrono::{DateTime, Duration, Utc};
use seatq_common::command::{
    BlockSeats, CancelBooking, CancelHold, Command, CommandEnvelope, ExpireHold, Mismatch,
    PaymentOutcome, SaleState, SetSaleState, WaitlistSeat, HOLDBACK_USER, MAX_BLOCKED_SEATS,
};
use seatq_common::ids::{BookingId, EventId, HoldId, PaymentId, RequestId, TicketId, UserId};
use seatq_common::message::{ArmedTimer, HoldTimer, SeatEvent, SeatStatus};
use serde_json::json;

use crate::ledger::{
    Applied, BookingSlot, EventRules, HoldSlot, HoldStatus, Ledger, NewRefund, NewTicket,
    NewWaitEntry, Outcome, Rejection, TicketSlot, WaitEntry,
};

/// The lifecycle rules' settings.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// How long a waitlist offer holds the seat for its new owner.
    pub offer_ttl_secs: i64,
    /// Extension of a hold whose payment is in progress at expiry (once).
    pub payment_grace_secs: i64,
    /// Seats one user may wait for at once, per event.
    pub waitlist_max_per_user: i64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            offer_ttl_secs: 300,
            payment_grace_secs: 120,
            waitlist_max_per_user: 5,
        }
    }
}

impl LifecycleConfig {
    pub fn from_settings(settings: &seatq_common::config::Settings) -> Self {
        Self {
            offer_ttl_secs: settings.waitlist.offer_ttl_secs.max(1),
            payment_grace_secs: settings.payments.grace_secs.max(0),
            waitlist_max_per_user: settings.waitlist.max_per_user.max(1),
        }
    }
}

/// How early (clock skew between scheduler and consumer) an expiry may be applied.
const EXPIRY_SKEW: Duration = Duration::seconds(2);
/// How many times one expiry is re-armed at most; past that the sweeper expires the hold.
/// One is enough when the scheduler's clock is steadily ahead (the re-arm corrects for
/// it); the rest absorb a skew that changes or commands that wait in a backlog.
const MAX_EXPIRY_REARMS: u32 = 5;

impl Ledger {
    /// Decide a lifecycle command (anything but `hold_seats`).
    pub fn apply(
        &mut self,
        cmd: &CommandEnvelope,
        rules: Option<&EventRules>,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(rules) = rules else {
            return Outcome::Rejected(Rejection::new("event_not_found"));
        };
        let result = match &cmd.command {
            Command::HoldSeats(_) => Err(Rejection::new("invalid_command")),
            Command::CancelHold(c) => self.cancel_hold(cmd, c, rules, config, now),
            Command::ExpireHold(c) => self.expire_hold(cmd, c, rules, config, now),
            Command::PaymentSucceeded(p) => self.payment_succeeded(cmd, p, rules, now),
            Command::PaymentFailed(p) => self.payment_failed(cmd, p),
            Command::CancelBooking(c) => self.cancel_booking(cmd, c, rules, config, now),
            Command::JoinWaitlist(w) => self.join_waitlist(cmd, w, rules, config, now),
            Command::LeaveWaitlist(w) => self.leave_waitlist(cmd, w, rules),
            Command::BlockSeats(b) => self.block_seats(cmd, b, rules, now),
            Command::SetSaleState(s) => self.set_sale_state(cmd, s),
        };
        match result {
            Ok(applied) => Outcome::Applied(applied),
            Err(rejection) => Outcome::Rejected(rejection),
        }
    }

    /// The hold `hold_id` of the command's event, or `hold_not_found`.
    fn hold_of(&self, cmd: &CommandEnvelope, hold_id: HoldId) -> Result<&HoldSlot, Rejection> {
        self.holds
            .get(&hold_id)
            .filter(|h| h.event_id == cmd.event_id)
            .ok_or(Rejection::new("hold_not_found"))
    }

    fn cancel_hold(
        &mut self,
        cmd: &CommandEnvelope,
        c: &CancelHold,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        let hold = self.hold_of(cmd, c.hold_id)?;
        if hold.user_id != cmd.user_id && !c.by_admin {
            return Err(Rejection::new("not_hold_owner"));
        }
        if hold.status != HoldStatus::Active {
            return Err(Rejection::new("hold_not_active"));
        }
        let offers = self.release(c.hold_id, HoldStatus::Cancelled, cmd, rules, config, now);
        Ok(applied(
            c.hold_id,
            json!({"outcome": "cancelled", "offers": offers}),
        ))
    }

    fn expire_hold(
        &mut self,
        cmd: &CommandEnvelope,
        c: &ExpireHold,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        let hold = self.hold_of(cmd, c.hold_id)?;
        // A timer that lost a race is not an error: the hold ended, or it was extended and
        // a newer timer exists. Recorded as applied so it is never retried.
        if hold.status != HoldStatus::Active {
            return Ok(applied(c.hold_id, json!({"outcome": "already_ended"})));
        }
        // Extended past this timer: the extension has its own timer.
        if hold.expires_at > c.expires_at {
            return Ok(applied(c.hold_id, json!({"outcome": "not_due"})));
        }
        if hold.expires_at > now + EXPIRY_SKEW {
            // The sender's clock is ahead of ours. This request id is now decided, so its
            // timer can never fire again: send the scheduler a new one.
            let rearmed = self.rearm_expiry(cmd, c, hold.event_id, hold.expires_at, now);
            return Ok(applied(
                c.hold_id,
                json!({"outcome": "not_due", "rearmed": rearmed}),
            ));
        }
        if self.life.paying.contains_key(&c.hold_id) && !hold.extended {
            let expires_at = now + Duration::seconds(config.payment_grace_secs);
            let (event_id, user_id) = (hold.event_id, hold.user_id.clone());
            if let Some(h) = self.holds.get_mut(&c.hold_id) {
                h.expires_at = expires_at;
                h.extended = true;
            }
            self.changed_holds.insert(c.hold_id);
            self.life.timers.push(HoldTimer {
                hold_id: c.hold_id,
                event_id,
                expires_at,
            });
            self.life.notices.push((
                event_id,
                SeatEvent::HoldExtended {
                    hold_id: c.hold_id,
                    user_id,
                    expires_at,
                },
            ));
            return Ok(applied(
                c.hold_id,
                json!({"outcome": "extended", "expires_at": expires_at}),
            ));
        }
        let offers = self.release(c.hold_id, HoldStatus::Expired, cmd, rules, config, now);
        Ok(applied(
            c.hold_id,
            json!({"outcome": "expired", "offers": offers}),
        ))
    }

    /// Re-arm an expiry that came before the hold was due by our clock: a timer for the
    /// same expiry with the next attempt number (a new request id when it fires), due at
    /// the expiry on the sender's clock, estimated from the command's `issued_at` (the
    /// sender's clock when it fired, a little before our `now`). Returns the attempt, or
    /// None once the re-arms are used up (the sweeper then expires the hold).
    fn rearm_expiry(
        &mut self,
        cmd: &CommandEnvelope,
        c: &ExpireHold,
        event_id: EventId,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<u32> {
        let attempt = c.attempt + 1;
        if attempt > MAX_EXPIRY_REARMS {
            return None;
        }
        let ahead = (cmd.issued_at - now).max(Duration::zero());
        self.life.rearmed_timers.push(ArmedTimer {
            timer: HoldTimer {
                hold_id: c.hold_id,
                event_id,
                expires_at,
            },
            attempt,
            fire_at: Some(expires_at + ahead),
        });
        Some(attempt)
    }

    fn payment_succeeded(
        &mut self,
        cmd: &CommandEnvelope,
        p: &PaymentOutcome,
        rules: &EventRules,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        let hold = self.hold_of(cmd, p.hold_id)?.clone();
        if let Some(mismatch) = p.mismatch() {
            return Ok(self.payment_mismatched(cmd, p, &hold, mismatch));
        }
        if hold.status != HoldStatus::Active {
            // The hold was released (expired, cancelled, handed on) or already paid: the
            // money goes back, the seats stay with whoever has them now.
            self.refund(
                p.payment_id,
                &hold,
                p.amount_cents,
                "hold_released",
                cmd.request_id,
            );
            return Ok(applied(
                p.hold_id,
                json!({"outcome": "refund", "payment_id": p.payment_id, "hold_status": hold.status.as_db()}),
            ));
        }
        for &seat in &hold.seat_nos {
            self.set_seat(
                &rules.layout,
                hold.event_id,
                seat,
                SeatStatus::Sold,
                Some(p.hold_id),
            );
        }
        if let Some(section) = hold.ga_section {
            let delta = self.ga_changed.entry((hold.event_id, section)).or_default();
            delta.0 -= hold.quantity;
            delta.1 += hold.quantity;
            if let Some(slot) = self.ga.get_mut(&(hold.event_id, section)) {
                slot.held -= hold.quantity;
                slot.sold += hold.quantity;
            }
        }
        self.end_hold(p.hold_id, HoldStatus::Sold, now);
        let booking_id = BookingId::new();
        let mut ticket_ids = Vec::with_capacity(hold.quantity.max(0) as usize);
        let mut tickets = Vec::with_capacity(hold.quantity.max(0) as usize);
        let places: Vec<(Option<i32>, Option<seatq_common::ids::SectionId>)> = match hold.ga_section
        {
            Some(section) => (0..hold.quantity).map(|_| (None, Some(section))).collect(),
            None => hold
                .seat_nos
                .iter()
                .map(|&s| (Some(s), rules.layout.section_of(s).map(|x| x.id)))
                .collect(),
        };
        for (seat_no, section) in places {
            let Some(section_id) = section else { continue };
            let id = TicketId::new();
            ticket_ids.push(id);
            tickets.push(TicketSlot {
                id,
                seat_no,
                holder: hold.user_id.clone(),
                valid: true,
                checked_in: false,
            });
            self.life.tickets.push(NewTicket {
                id,
                booking_id,
                event_id: hold.event_id,
                seat_no,
                section_id,
                holder: hold.user_id.clone(),
            });
        }
        self.life.bookings.insert(
            booking_id,
            BookingSlot {
                event_id: hold.event_id,
                hold_id: p.hold_id,
                user_id: hold.user_id.clone(),
                payment_id: p.payment_id,
                amount_cents: p.amount_cents,
                cancelled: false,
                refund_cents: None,
                created_at: now,
                tickets,
            },
        );
        self.life.new_bookings.push(booking_id);
        self.life.notices.push((
            hold.event_id,
            SeatEvent::BookingConfirmed {
                booking_id,
                hold_id: p.hold_id,
                user_id: hold.user_id.clone(),
                amount_cents: p.amount_cents,
                ticket_ids,
            },
        ));
        Ok(applied(
            p.hold_id,
            json!({"outcome": "booked", "booking_id": booking_id}),
        ))
    }

    /// The provider captured something else than the payment asked for: never a sale.
    /// What was captured goes back; a live hold stays, so the buyer can pay again.
    fn payment_mismatched(
        &mut self,
        cmd: &CommandEnvelope,
        p: &PaymentOutcome,
        hold: &HoldSlot,
        mismatch: Mismatch,
    ) -> Applied {
        let captured = p.captured_cents();
        if captured > 0 {
            self.refund(
                p.payment_id,
                hold,
                captured,
                "payment_mismatch",
                cmd.request_id,
            );
        }
        self.payment_ended(p.hold_id, p.payment_id);
        if hold.status == HoldStatus::Active {
            self.life.notices.push((
                hold.event_id,
                SeatEvent::PaymentFailed {
                    hold_id: p.hold_id,
                    user_id: hold.user_id.clone(),
                    payment_id: p.payment_id,
                },
            ));
        }
        applied(
            p.hold_id,
            json!({"outcome": "refund", "payment_id": p.payment_id, "reason": "payment_mismatch",
                   "mismatch": mismatch.as_str(), "refund_cents": captured}),
        )
    }

    fn payment_failed(
        &mut self,
        cmd: &CommandEnvelope,
        p: &PaymentOutcome,
    ) -> Result<Applied, Rejection> {
        let (event_id, user_id) = {
            let hold = self.hold_of(cmd, p.hold_id)?;
            (hold.event_id, hold.user_id.clone())
        };
        // The hold stays until it expires, so the user can try again; it is no longer
        // "paying" for this payment, so it will not be extended for it; another payment of
        // the same hold still in progress keeps its grace.
        self.payment_ended(p.hold_id, p.payment_id);
        self.life.notices.push((
            event_id,
            SeatEvent::PaymentFailed {
                hold_id: p.hold_id,
                user_id,
                payment_id: p.payment_id,
            },
        ));
        Ok(applied(p.hold_id, json!({"outcome": "payment_failed"})))
    }

    /// The buyer gives back the tickets of a booking that are still theirs: not
    /// transferred to someone else, not used at the door. Those become void, their seats go
    /// back on sale (waitlists first) and they are refunded pro rata by the event's policy;
    /// transferred and checked-in tickets stay valid. A booking with none left to give
    /// back is refused (`tickets_transferred`, `ticket_checked_in`).
    fn cancel_booking(
        &mut self,
        cmd: &CommandEnvelope,
        c: &CancelBooking,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        let booking = self
            .life
            .bookings
            .get(&c.booking_id)
            .filter(|b| b.event_id == cmd.event_id)
            .ok_or(Rejection::new("booking_not_found"))?
            .clone();
        if booking.user_id != cmd.user_id && !c.by_admin {
            return Err(Rejection::new("not_booking_owner"));
        }
        if booking.cancelled {
            return Err(Rejection::new("booking_cancelled"));
        }
        if now >= rules.info.starts_at {
            return Err(Rejection::new("event_started"));
        }
        let valid: Vec<&TicketSlot> = booking.tickets.iter().filter(|t| t.valid).collect();
        let giving_back: Vec<TicketSlot> = valid
            .iter()
            .filter(|t| t.holder == booking.user_id && !t.checked_in)
            .map(|t| (*t).clone())
            .collect();
        if giving_back.is_empty() {
            if valid.is_empty() {
                return Err(Rejection::new("booking_cancelled"));
            }
            let used = valid
                .iter()
                .any(|t| t.holder == booking.user_id && t.checked_in);
            return Err(Rejection::new(if used {
                "ticket_checked_in"
            } else {
                "tickets_transferred"
            }));
        }
        let hold = self.hold_of(cmd, booking.hold_id)?.clone();
        // The whole booking if nothing else remains valid; else these tickets only.
        let whole = giving_back.len() == valid.len();
        // Each ticket's share of what was paid is its seat's price over the booking's
        // (price categories make seats of one booking cost differently); places of a
        // general-admission section share equally.
        let share = |seat_no: Option<i32>| {
            seat_no
                .and_then(|s| rules.layout.seat_price(s))
                .unwrap_or(1)
                .max(1)
        };
        let issued: i64 = booking
            .tickets
            .iter()
            .map(|t| share(t.seat_no))
            .sum::<i64>()
            .max(1);
        let given_back: i64 = giving_back.iter().map(|t| share(t.seat_no)).sum();
        let refunded_before = booking.refund_cents.unwrap_or(0);
        let cutoff =
            rules.info.starts_at - Duration::hours(i64::from(rules.info.refund_cutoff_hours));
        let refund_cents = if now > cutoff {
            0
        } else if whole && valid.len() == booking.tickets.len() {
            booking.amount_cents
        } else {
            (i128::from(booking.amount_cents) * i128::from(given_back) / i128::from(issued)) as i64
        }
        .min(booking.amount_cents - refunded_before)
        .max(0);
        let count = giving_back.len() as i32;
        if let Some(b) = self.life.bookings.get_mut(&c.booking_id) {
            b.cancelled = whole;
            b.refund_cents = Some(refunded_before + refund_cents);
            for t in b.tickets.iter_mut() {
                if giving_back.iter().any(|g| g.id == t.id) {
                    t.valid = false;
                }
            }
        }
        self.life.changed_bookings.push(c.booking_id);
        self.life
            .voided_tickets
            .extend(giving_back.iter().map(|t| t.id));
        if refund_cents > 0 {
            self.life.refunds.push(NewRefund {
                payment_id: booking.payment_id,
                event_id: hold.event_id,
                user_id: hold.user_id.clone(),
                amount_cents: refund_cents,
                reason: "booking_cancelled",
                request_id: cmd.request_id,
            });
        }
        // The seats (or places) go back on sale, to the waitlist first.
        if let Some(section) = hold.ga_section {
            self.ga_changed
                .entry((hold.event_id, section))
                .or_default()
                .1 -= count;
            if let Some(slot) = self.ga.get_mut(&(hold.event_id, section)) {
                slot.sold -= count;
            }
        }
        let seats: Vec<i32> = giving_back.iter().filter_map(|t| t.seat_no).collect();
        if let Some(h) = self.holds.get_mut(&booking.hold_id) {
            if whole {
                h.status = HoldStatus::Cancelled;
            } else {
                // The hold keeps what is still sold: the transferred and used tickets.
                h.seat_nos.retain(|s| !seats.contains(s));
                h.quantity -= count;
            }
        }
        self.changed_holds.insert(booking.hold_id);
        if let Some(n) = self
            .user_seats
            .get_mut(&(hold.event_id, hold.user_id.clone()))
        {
            *n -= count;
        }
        let released = HoldSlot {
            seat_nos: seats,
            ..hold.clone()
        };
        let offers = self.hand_on(&released, cmd.request_id, rules, config, now);
        self.life.notices.push((
            hold.event_id,
            SeatEvent::BookingCancelled {
                booking_id: c.booking_id,
                user_id: hold.user_id.clone(),
                refund_cents,
            },
        ));
        let tickets: Vec<TicketId> = giving_back.iter().map(|t| t.id).collect();
        Ok(applied(
            booking.hold_id,
            json!({
                "outcome": if whole { "booking_cancelled" } else { "tickets_cancelled" },
                "refund_cents": refund_cents,
                "cancelled_tickets": tickets,
                "offers": offers,
            }),
        ))
    }

    /// Take seats off sale: a hold by [`HOLDBACK_USER`], all of them or none, with a timer
    /// when it has a release time (the usual expiry then puts them back on sale, waitlists
    /// first). Organisers may block before the sale opens and beyond any per-user limit.
    fn block_seats(
        &mut self,
        cmd: &CommandEnvelope,
        b: &BlockSeats,
        rules: &EventRules,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        if b.seat_nos.is_empty() || b.seat_nos.len() > MAX_BLOCKED_SEATS {
            return Err(Rejection::new("invalid_command"));
        }
        // The release time passed before the holdback could be decided (the queue was
        // slow): the seats are where the organiser wanted them by now, on sale. Blocking
        // them now would hold seats past their release with an expiry in the past.
        if b.release_at.is_some_and(|at| at <= now) {
            return Err(Rejection::new("release_time_passed"));
        }
        let hold_id = HoldId::new();
        self.take_seats(cmd.event_id, &rules.layout, &b.seat_nos, hold_id)?;
        let expires_at = b.release_at.unwrap_or_else(seatq_common::command::never);
        self.create_hold(HoldSlot {
            seat_nos: b.seat_nos.clone(),
            quantity: b.seat_nos.len() as i32,
            ..HoldSlot::active(
                hold_id,
                cmd.event_id,
                UserId(HOLDBACK_USER.into()),
                cmd.request_id,
                now,
                expires_at,
            )
        });
        if let Some(at) = b.release_at {
            self.life.timers.push(HoldTimer {
                hold_id,
                event_id: cmd.event_id,
                expires_at: at,
            });
        }
        let seat_ids: Vec<String> = b
            .seat_nos
            .iter()
            .filter_map(|n| rules.layout.seat_label(*n))
            .collect();
        Ok(applied(
            hold_id,
            json!({"outcome": "blocked", "note": b.note, "release_at": b.release_at, "seat_ids": seat_ids}),
        ))
    }

    /// Pause, resume or end the sale. From here on in queue order, requests to buy (holds,
    /// waitlist joins) are refused while it is not open; holds already made keep their
    /// windows, and seats they release still go to their waitlists. Ending is final.
    fn set_sale_state(
        &mut self,
        cmd: &CommandEnvelope,
        s: &SetSaleState,
    ) -> Result<Applied, Rejection> {
        let was = self.sale_state(cmd.event_id);
        if was == SaleState::Ended && s.state != SaleState::Ended {
            return Err(Rejection::new("sale_ended"));
        }
        if was != s.state {
            self.sales.insert(cmd.event_id, s.state);
            self.sales_changed.insert(cmd.event_id);
        }
        Ok(Applied {
            hold_id: None,
            detail: json!({
                "outcome": if was == s.state { "unchanged" } else { "changed" },
                "from": was.as_str(),
                "sale_state": s.state.as_str(),
                "note": s.note,
            }),
        })
    }

    fn join_waitlist(
        &mut self,
        cmd: &CommandEnvelope,
        w: &WaitlistSeat,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Result<Applied, Rejection> {
        if rules.layout.section_of(w.seat_no).is_none() {
            return Err(Rejection::new("unknown_seat"));
        }
        // A waitlist is a way to buy: it opens with the sale and, where there is a waiting
        // room, only to those it let in.
        if cmd.issued_at < rules.info.on_sale_at {
            return Err(Rejection::new("sale_not_open"));
        }
        if let Some(refusal) = self.sale_refusal(cmd.event_id) {
            return Err(refusal);
        }
        if !self.may_buy(rules, &cmd.user_id) {
            return Err(Rejection::new("admission_required"));
        }
        // A waitlist offer is not chosen, so it cannot ask whether the buyer needs an
        // accessible space: a seat kept for access has no waitlist until it is released.
        if rules.info.accessible_reserved(cmd.issued_at)
            && rules.layout.attributes(w.seat_no).kept_for_access()
        {
            return Err(Rejection::new("seats_reserved_for_access"));
        }
        let key = (cmd.event_id, w.seat_no);
        let slot = self
            .seats
            .get(&key)
            .copied()
            .ok_or(Rejection::new("unknown_seat"))?;
        if slot.status == SeatStatus::Available {
            return Err(Rejection::new("seat_available"));
        }
        let holder = slot.hold_id.and_then(|h| {
            self.holds
                .get(&h)
                .map(|h| &h.user_id)
                .or_else(|| self.life.holders.get(&h))
        });
        if holder == Some(&cmd.user_id) {
            return Err(Rejection::new("seat_is_yours"));
        }
        let queue = self.life.waitlists.entry(key).or_default();
        if queue.iter().any(|e| e.user_id == cmd.user_id) {
            return Err(Rejection::new("already_waiting"));
        }
        let count = self
            .life
            .waiting_per_user
            .entry((cmd.event_id, cmd.user_id.clone()))
            .or_default();
        if *count >= config.waitlist_max_per_user {
            return Err(Rejection::new("waitlist_limit_exceeded"));
        }
        let Some(id) = self.life.spare_waitlist_ids.pop_front() else {
            // The batch reserves an id per join before deciding; running out is a bug.
            return Err(Rejection::new("invalid_command"));
        };
        *count += 1;
        queue.push_back(WaitEntry {
            id,
            user_id: cmd.user_id.clone(),
        });
        let position = queue.len();
        self.life.waitlist_new.push(NewWaitEntry {
            id,
            event_id: cmd.event_id,
            seat_no: w.seat_no,
            user_id: cmd.user_id.clone(),
            request_id: cmd.request_id,
            joined_at: now,
        });
        self.life.waitlist_sync.insert(key);
        self.notify_waitlist(cmd, rules, w.seat_no, "joined");
        Ok(Applied {
            hold_id: None,
            detail: json!({"outcome": "joined", "position": position}),
        })
    }

    fn leave_waitlist(
        &mut self,
        cmd: &CommandEnvelope,
        w: &WaitlistSeat,
        rules: &EventRules,
    ) -> Result<Applied, Rejection> {
        let key = (cmd.event_id, w.seat_no);
        let queue = self.life.waitlists.entry(key).or_default();
        let at = queue
            .iter()
            .position(|e| e.user_id == cmd.user_id)
            .ok_or(Rejection::new("not_waiting"))?;
        if let Some(entry) = queue.remove(at) {
            self.life.waitlist_ended.push((entry.id, "left", None));
            self.life.waitlist_new.retain(|n| n.id != entry.id);
        }
        if let Some(n) = self
            .life
            .waiting_per_user
            .get_mut(&(cmd.event_id, cmd.user_id.clone()))
        {
            *n -= 1;
        }
        self.life.waitlist_sync.insert(key);
        self.notify_waitlist(cmd, rules, w.seat_no, "left");
        Ok(Applied {
            hold_id: None,
            detail: json!({"outcome": "left"}),
        })
    }

    fn notify_waitlist(
        &mut self,
        cmd: &CommandEnvelope,
        rules: &EventRules,
        seat: i32,
        status: &str,
    ) {
        if let Some(seat_id) = rules.layout.seat_label(seat) {
            self.life.notices.push((
                cmd.event_id,
                SeatEvent::WaitlistUpdated {
                    request_id: cmd.request_id,
                    user_id: cmd.user_id.clone(),
                    seat_id,
                    status: status.to_owned(),
                },
            ));
        }
    }

    /// End an active hold without a sale and hand its seats on. Returns the offers made.
    fn release(
        &mut self,
        hold_id: HoldId,
        status: HoldStatus,
        cmd: &CommandEnvelope,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Vec<serde_json::Value> {
        let Some(hold) = self.holds.get(&hold_id).cloned() else {
            return Vec::new();
        };
        if let Some(section) = hold.ga_section {
            self.ga_changed
                .entry((hold.event_id, section))
                .or_default()
                .0 -= hold.quantity;
            if let Some(slot) = self.ga.get_mut(&(hold.event_id, section)) {
                slot.held -= hold.quantity;
            }
        }
        self.end_hold(hold_id, status, now);
        if let Some(n) = self
            .user_seats
            .get_mut(&(hold.event_id, hold.user_id.clone()))
        {
            *n -= hold.quantity;
        }
        self.life.notices.push((
            hold.event_id,
            SeatEvent::HoldReleased {
                hold_id,
                user_id: hold.user_id.clone(),
                reason: status.as_db().to_owned(),
            },
        ));
        self.hand_on(&hold, cmd.request_id, rules, config, now)
    }

    /// Free the reserved seats of `hold` and, in the same step, hold each one for the first
    /// eligible person on its waitlist (someone already at the per-user limit is skipped).
    /// One new hold per person offered. Returns the offers made.
    fn hand_on(
        &mut self,
        hold: &HoldSlot,
        cause: RequestId,
        rules: &EventRules,
        config: &LifecycleConfig,
        now: DateTime<Utc>,
    ) -> Vec<serde_json::Value> {
        let event_id = hold.event_id;
        let max = rules.info.max_seats_per_user;
        // Before the sale (a holdback released early) nobody may buy: the seats just go
        // back, the waitlists stay as they are.
        let selling = now >= rules.info.on_sale_at;
        // Seats per offered user, in the order their offers were made.
        let mut offers: Vec<(UserId, Vec<i32>, Vec<i64>)> = Vec::new();
        for &seat in &hold.seat_nos {
            // A best-available request later in this batch may take it.
            self.set_seat(&rules.layout, event_id, seat, SeatStatus::Available, None);
            if !selling {
                continue;
            }
            // Taken out while it is worked through (the rules read the rest of the ledger),
            // put back below with whoever is still waiting.
            let Some(mut queue) = self
                .life
                .waitlists
                .get_mut(&(event_id, seat))
                .map(std::mem::take)
            else {
                continue;
            };
            while let Some(entry) = queue.pop_front() {
                self.life.waitlist_sync.insert((event_id, seat));
                if let Some(n) = self
                    .life
                    .waiting_per_user
                    .get_mut(&(event_id, entry.user_id.clone()))
                {
                    *n -= 1;
                }
                let offered_so_far = offers
                    .iter()
                    .find(|(u, _, _)| *u == entry.user_id)
                    .map_or(0, |(_, seats, _)| seats.len() as i32);
                let owned = self
                    .user_seats
                    .get(&(event_id, entry.user_id.clone()))
                    .copied()
                    .unwrap_or(0);
                let skipped = if !self.may_buy(rules, &entry.user_id) {
                    Some("skipped_not_admitted")
                } else if entry.user_id == hold.user_id || owned + offered_so_far + 1 > max {
                    Some("skipped_at_limit")
                } else {
                    None
                };
                if let Some(why) = skipped {
                    self.life.waitlist_ended.push((entry.id, "skipped", None));
                    // Tell them why they were passed over rather than leave them waiting.
                    if let Some(seat_id) = rules.layout.seat_label(seat) {
                        self.life.notices.push((
                            event_id,
                            SeatEvent::WaitlistUpdated {
                                request_id: cause,
                                user_id: entry.user_id.clone(),
                                seat_id,
                                status: why.to_owned(),
                            },
                        ));
                    }
                    continue;
                }
                match offers.iter_mut().find(|(u, _, _)| *u == entry.user_id) {
                    Some((_, seats, entries)) => {
                        seats.push(seat);
                        entries.push(entry.id);
                    }
                    None => offers.push((entry.user_id.clone(), vec![seat], vec![entry.id])),
                }
                break;
            }
            self.life.waitlists.insert((event_id, seat), queue);
        }
        let mut made = Vec::with_capacity(offers.len());
        for (user_id, seats, entries) in offers {
            let new_hold = HoldId::new();
            let expires_at = now + Duration::seconds(config.offer_ttl_secs);
            if self
                .take_seats(event_id, &rules.layout, &seats, new_hold)
                .is_err()
            {
                // Cannot happen (the seats were freed just above); leave them free.
                continue;
            }
            for id in entries {
                self.life
                    .waitlist_ended
                    .push((id, "offered", Some(new_hold)));
            }
            *self
                .user_seats
                .entry((event_id, user_id.clone()))
                .or_default() += seats.len() as i32;
            self.create_hold(HoldSlot {
                seat_nos: seats.clone(),
                quantity: seats.len() as i32,
                offered_from: Some(hold.id),
                ..HoldSlot::active(
                    new_hold,
                    event_id,
                    user_id.clone(),
                    RequestId::derived(cause.0, &format!("offer:{}", user_id.0)),
                    now,
                    expires_at,
                )
            });
            self.life.timers.push(HoldTimer {
                hold_id: new_hold,
                event_id,
                expires_at,
            });
            let seat_ids: Vec<String> = seats
                .iter()
                .filter_map(|s| rules.layout.seat_label(*s))
                .collect();
            made.push(json!({"user_id": user_id.0, "hold_id": new_hold, "seat_ids": seat_ids}));
            self.life.notices.push((
                event_id,
                SeatEvent::WaitlistOffer {
                    hold_id: new_hold,
                    user_id,
                    seat_ids,
                    expires_at,
                },
            ));
        }
        made
    }

    /// `payment` of `hold` is no longer in progress.
    fn payment_ended(&mut self, hold: HoldId, payment: PaymentId) {
        if let Some(payments) = self.life.paying.get_mut(&hold) {
            payments.remove(&payment);
            if payments.is_empty() {
                self.life.paying.remove(&hold);
            }
        }
    }

    /// May `user` buy at this event now: anyone, unless it has a waiting room, which must
    /// have let them in.
    fn may_buy(&self, rules: &EventRules, user: &UserId) -> bool {
        !rules.info.waiting_room_enabled
            || user.0 == HOLDBACK_USER
            || self.life.admitted.contains(&(rules.info.id, user.clone()))
    }

    /// Give a payment back whole (once per payment).
    fn refund(
        &mut self,
        payment_id: PaymentId,
        hold: &HoldSlot,
        amount_cents: i64,
        reason: &'static str,
        cause: RequestId,
    ) {
        if self.life.refunded.insert(payment_id) {
            self.life.refunds.push(NewRefund {
                payment_id,
                event_id: hold.event_id,
                user_id: hold.user_id.clone(),
                amount_cents,
                reason,
                request_id: cause,
            });
        }
    }
}

fn applied(hold_id: HoldId, detail: serde_json::Value) -> Applied {
    Applied {
        hold_id: Some(hold_id),
        detail,
    }
}

/// One test per rule a reader of this module needs to see at work. The whole sequences
/// (and their shrunk counterexamples) are in `tests/rules_model.rs`.
#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use seatq_common::command::{
        CancelBooking, CancelHold, Command, CommandEnvelope, ExpireHold, PaymentOutcome,
        WaitlistSeat,
    };
    use seatq_common::ids::{BookingId, HoldId, PaymentId, RequestId, UserId};

    use super::*;
    use crate::ledger::fixtures::{ledger, rules};
    use crate::ledger::HoldRequest;

    fn cmd(r: &EventRules, user: &str, command: Command) -> CommandEnvelope {
        CommandEnvelope {
            request_id: RequestId::new(),
            event_id: r.info.id,
            user_id: UserId(user.into()),
            issued_at: Utc::now(),
            command,
            reply: false,
        }
    }

    fn hold(l: &mut Ledger, r: &EventRules, user: &str, seats: &[i32]) -> HoldId {
        let req = HoldRequest {
            request_id: RequestId::new(),
            event_id: r.info.id,
            user_id: UserId(user.into()),
            issued_at: Utc::now(),
            hold: seatq_common::command::HoldSeats::seats(seats.to_vec()),
        };
        match l.decide(&req, Some(r), Utc::now()) {
            Outcome::Held(h) => h.hold_id,
            other => panic!("{other:?}"),
        }
    }

    fn detail(o: Outcome) -> serde_json::Value {
        match o {
            Outcome::Applied(a) => a.detail,
            other => panic!("{other:?}"),
        }
    }

    fn paid(hold_id: HoldId, payment_id: PaymentId) -> Command {
        Command::PaymentSucceeded(PaymentOutcome {
            hold_id,
            payment_id,
            amount_cents: 10_000,
            currency: None,
            captured: None,
        })
    }

    fn seat(l: &Ledger, r: &EventRules, no: i32) -> (SeatStatus, Option<HoldId>) {
        let s = l.seats[&(r.info.id, no)];
        (s.status, s.hold_id)
    }

    #[test]
    fn a_payment_in_progress_buys_one_grace_period_and_only_one() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let config = LifecycleConfig::default();
        let h = hold(&mut l, &r, "u1", &[3]);
        l.life.paying.insert(h, HashSet::from([PaymentId::new()]));
        let due = l.holds[&h].expires_at;
        let expire = |at| {
            Command::ExpireHold(ExpireHold {
                hold_id: h,
                expires_at: at,
                attempt: 0,
            })
        };

        let out = l.apply(&cmd(&r, "timer", expire(due)), Some(&r), &config, due);
        assert_eq!(detail(out)["outcome"], "extended");
        let extended = l.holds[&h].expires_at;
        assert_eq!(extended, due + Duration::seconds(config.payment_grace_secs));
        assert_eq!(seat(&l, &r, 3), (SeatStatus::Held, Some(h)));

        // The old timer is now early for the hold; the new one expires it, still paying.
        let out = l.apply(&cmd(&r, "timer", expire(due)), Some(&r), &config, due);
        assert_eq!(detail(out)["outcome"], "not_due");
        let out = l.apply(
            &cmd(&r, "timer", expire(extended)),
            Some(&r),
            &config,
            extended,
        );
        assert_eq!(detail(out)["outcome"], "expired");
        assert_eq!(seat(&l, &r, 3), (SeatStatus::Available, None));
    }

    #[test]
    fn an_expiry_that_comes_early_by_our_clock_is_rearmed_not_applied() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let h = hold(&mut l, &r, "u1", &[3]);
        let due = l.holds[&h].expires_at;
        let early = due - Duration::seconds(30);
        let c = cmd(
            &r,
            "timer",
            Command::ExpireHold(ExpireHold {
                hold_id: h,
                expires_at: due,
                attempt: 0,
            }),
        );
        let out = l.apply(&c, Some(&r), &LifecycleConfig::default(), early);
        assert_eq!(detail(out), json!({"outcome": "not_due", "rearmed": 1}));
        assert_eq!(l.life.rearmed_timers.len(), 1);
        assert_eq!(l.holds[&h].status, HoldStatus::Active);
    }

    #[test]
    fn a_payment_after_its_hold_ended_is_refunded_once_and_sells_nothing() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let config = LifecycleConfig::default();
        let h = hold(&mut l, &r, "u1", &[3]);
        let cancel = Command::CancelHold(CancelHold {
            hold_id: h,
            by_admin: false,
        });
        let out = l.apply(&cmd(&r, "u1", cancel), Some(&r), &config, Utc::now());
        assert_eq!(detail(out)["outcome"], "cancelled");

        let payment = PaymentId::new();
        for _ in 0..2 {
            let out = l.apply(
                &cmd(&r, "psp", paid(h, payment)),
                Some(&r),
                &config,
                Utc::now(),
            );
            assert_eq!(detail(out)["outcome"], "refund");
        }
        assert_eq!(l.life.refunds.len(), 1, "the same payment is refunded once");
        assert_eq!(l.life.refunds[0].reason, "hold_released");
        assert!(l.life.new_bookings.is_empty());
        assert_eq!(seat(&l, &r, 3), (SeatStatus::Available, None));
    }

    #[test]
    fn a_released_seat_goes_to_the_first_waiting_user_below_the_limit() {
        let (r, a, ga) = rules(2);
        let mut l = ledger(&r, a, ga);
        let config = LifecycleConfig::default();
        let now = Utc::now();
        let h = hold(&mut l, &r, "owner", &[0]);
        hold(&mut l, &r, "full", &[5, 6]);
        l.life.spare_waitlist_ids.extend([1, 2]);
        for user in ["full", "next"] {
            let join = Command::JoinWaitlist(WaitlistSeat { seat_no: 0 });
            let out = l.apply(&cmd(&r, user, join), Some(&r), &config, now);
            assert_eq!(detail(out)["outcome"], "joined");
        }

        let cancel = Command::CancelHold(CancelHold {
            hold_id: h,
            by_admin: false,
        });
        let out = detail(l.apply(&cmd(&r, "owner", cancel), Some(&r), &config, now));
        let offers = out["offers"].as_array().expect("offers");
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0]["user_id"], "next");
        let offered: HoldId = serde_json::from_value(offers[0]["hold_id"].clone()).expect("id");
        // No moment when the seat was free: it went from one hold to the next.
        assert_eq!(seat(&l, &r, 0), (SeatStatus::Held, Some(offered)));
        assert_eq!(l.holds[&offered].offered_from, Some(h));
        assert_eq!(
            l.life.waitlist_ended,
            vec![(1, "skipped", None), (2, "offered", Some(offered))]
        );
    }

    #[test]
    fn a_booking_cancelled_before_the_cutoff_is_refunded_after_it_is_not() {
        let (mut r, a, ga) = rules(8);
        let now = Utc::now();
        r.info.starts_at = now + Duration::hours(48);
        r.info.refund_cutoff_hours = 24;
        let config = LifecycleConfig::default();
        let cutoff = r.info.starts_at - Duration::hours(24);
        for (when, refund) in [(now, 10_000), (cutoff + Duration::minutes(1), 0)] {
            let mut l = ledger(&r, a, ga);
            let h = hold(&mut l, &r, "u1", &[3, 4]);
            let out = l.apply(
                &cmd(&r, "psp", paid(h, PaymentId::new())),
                Some(&r),
                &config,
                now,
            );
            let booking: BookingId =
                serde_json::from_value(detail(out)["booking_id"].clone()).expect("booking");
            assert_eq!(seat(&l, &r, 3), (SeatStatus::Sold, Some(h)));

            let cancel = Command::CancelBooking(CancelBooking {
                booking_id: booking,
                by_admin: false,
            });
            let out = detail(l.apply(&cmd(&r, "u1", cancel), Some(&r), &config, when));
            assert_eq!(out["outcome"], "booking_cancelled");
            assert_eq!(out["refund_cents"], refund, "cancelled at {when}");
            assert_eq!(l.life.voided_tickets.len(), 2);
            // The seats go back on sale either way.
            assert_eq!(seat(&l, &r, 3), (SeatStatus::Available, None));
        }
    }

    #[test]
    fn a_pause_refuses_what_comes_after_it_keeps_what_came_before_and_an_end_is_final() {
        let (r, a, ga) = rules(8);
        let mut l = ledger(&r, a, ga);
        let config = LifecycleConfig::default();
        let sale = |state| {
            Command::SetSaleState(SetSaleState {
                state,
                note: String::new(),
            })
        };
        let before = hold(&mut l, &r, "u1", &[3]);
        let out = l.apply(
            &cmd(&r, "admin", sale(SaleState::Paused)),
            Some(&r),
            &config,
            Utc::now(),
        );
        assert_eq!(detail(out)["outcome"], "changed");
        // A hold request behind the pause is refused; the hold made before keeps its seat.
        let req = HoldRequest {
            request_id: RequestId::new(),
            event_id: r.info.id,
            user_id: UserId("u2".into()),
            issued_at: Utc::now(),
            hold: seatq_common::command::HoldSeats::seats(vec![4]),
        };
        match l.decide(&req, Some(&r), Utc::now()) {
            Outcome::Rejected(rej) => assert_eq!(rej.reason, "sale_paused"),
            other => panic!("{other:?}"),
        }
        assert_eq!(seat(&l, &r, 3), (SeatStatus::Held, Some(before)));
        assert_eq!(seat(&l, &r, 4), (SeatStatus::Available, None));
        // Resumed, the same request goes through.
        l.apply(
            &cmd(&r, "admin", sale(SaleState::Open)),
            Some(&r),
            &config,
            Utc::now(),
        );
        assert!(matches!(
            l.decide(&req, Some(&r), Utc::now()),
            Outcome::Held(_)
        ));
        // Ended: nothing reopens it.
        l.apply(
            &cmd(&r, "admin", sale(SaleState::Ended)),
            Some(&r),
            &config,
            Utc::now(),
        );
        match l.apply(
            &cmd(&r, "admin", sale(SaleState::Open)),
            Some(&r),
            &config,
            Utc::now(),
        ) {
            Outcome::Rejected(rej) => assert_eq!(rej.reason, "sale_ended"),
            other => panic!("{other:?}"),
        }
        assert_eq!(l.sales_changed.len(), 1, "one event's state to write");
        assert_eq!(l.sale_state(r.info.id), SaleState::Ended);
    }
}
