//! Deciding hold requests, in memory, in partition order.
//!
//! The batch loads everything it touches into a [`Ledger`]; each request is then decided
//! against the ledger in offset order, so a later request sees what an earlier one in the
//! same batch took. First come, first served; all or nothing for several seats; the
//! per-user limit counts the user's active and sold holds. Nothing here does I/O, which
//! keeps the rules unit-testable.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use seatq_common::command::HoldSeats;
use seatq_common::ids::HoldId;
use seatq_common::layout::SectionKind;

use crate::ledger::{EventRules, HoldRequest, HoldSlot, Ledger, NewHold, Outcome, Rejection};

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
        if let Some(refusal) = self.sale_refusal(req.event_id) {
            return Err(refusal);
        }
        if req.issued_at < rules.info.on_sale_at {
            return Err(Rejection::new("sale_not_open"));
        }
        let quantity = match &req.hold {
            HoldSeats::Seats { seat_nos, .. } => seat_nos.len() as i32,
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
        let accessible = req.hold.accessible();
        let (seat_nos, ga_section) = match &req.hold {
            HoldSeats::Seats { seat_nos, .. } => {
                self.check_free(req.event_id, &rules.layout, seat_nos)?;
                self.check_seating(req, rules, seat_nos)?;
                self.take_seats(req.event_id, &rules.layout, seat_nos, hold_id)?;
                (seat_nos.clone(), None)
            }
            HoldSeats::BestAvailable {
                section_id,
                quantity,
                ..
            } => {
                let section = rules
                    .layout
                    .section_by_id(*section_id)
                    .ok_or(Rejection::new("unknown_section"))?;
                match section.kind {
                    SectionKind::Reserved => {
                        let chosen = self.best_available(req, rules, section, *quantity)?;
                        self.take_seats(req.event_id, &rules.layout, &chosen, hold_id)?;
                        (chosen, None)
                    }
                    SectionKind::GeneralAdmission if accessible => {
                        return Err(Rejection::new("accessible_space_required"));
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
        self.create_hold(HoldSlot {
            seat_nos: seat_nos.clone(),
            ga_section,
            quantity,
            ..HoldSlot::active(
                hold_id,
                req.event_id,
                req.user_id.clone(),
                req.request_id,
                now,
                expires_at,
            )
        });
        Ok(NewHold {
            hold_id,
            seat_nos,
            ga_section,
            quantity,
            expires_at,
        })
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
    use crate::ledger::fixtures::{ledger, rules};
    use seatq_common::ids::{RequestId, UserId};

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
        HoldSeats::seats(nos.to_vec())
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
        let best = HoldSeats::best(a, 2);
        let Outcome::Held(h) = l.decide(&req(&r, "u1", best.clone()), Some(&r), now) else {
            panic!()
        };
        assert_eq!(h.seat_nos, vec![1, 2]);
        let Outcome::Held(h2) = l.decide(&req(&r, "u2", best), Some(&r), now) else {
            panic!()
        };
        assert!(h2.seat_nos.iter().all(|s| !h.seat_nos.contains(s)));
        let gah = |q| HoldSeats::best(ga, q);
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
