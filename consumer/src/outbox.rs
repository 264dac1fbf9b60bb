//! What a batch publishes: the messages its decisions cause, written to the `outbox` table
//! in the batch transaction and sent on to Kafka by `relay` after it commits, so a message
//! exists if and only if its decision does.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use seatq_common::ids::EventId;
use seatq_common::message::{
    HoldTimer, SeatChange, SeatEvent, SeatEventEnvelope, SectionAvailability,
};

use crate::ledger::{Decided, EventRules, Ledger, Outcome};

/// The outbox rows of a batch.
#[derive(Default)]
pub(crate) struct Outbox {
    pub streams: Vec<&'static str>,
    pub keys: Vec<String>,
    pub payloads: Vec<String>,
}

impl Outbox {
    fn push(&mut self, stream: &'static str, key: EventId, payload: String) {
        self.streams.push(stream);
        self.keys.push(key.to_string());
        self.payloads.push(payload);
    }
}

/// The messages a batch publishes: per decision a user notification, per hold a timer,
/// per event one seat-map delta with every seat the batch changed (in its final state),
/// and a Redis mirror rebuild for every waitlist it changed.
pub(crate) fn collect_messages(
    outbox: &mut Outbox,
    decided: &[Decided],
    ledger: &Ledger,
    rules: &HashMap<EventId, EventRules>,
    next_offset: i64,
    now: DateTime<Utc>,
) -> Result<(), serde_json::Error> {
    let label = |event: EventId, n: i32| rules.get(&event).and_then(|r| r.layout.seat_label(n));
    let publish = |outbox: &mut Outbox, event_id: EventId, payload: SeatEvent| {
        let envelope = SeatEventEnvelope {
            event_id,
            occurred_at: now,
            payload,
        };
        serde_json::to_string(&envelope).map(|json| outbox.push("seat_events", event_id, json))
    };
    for d in decided {
        let payload = match &d.outcome {
            Outcome::Held(h) => {
                let timer = HoldTimer {
                    hold_id: h.hold_id,
                    event_id: d.event_id,
                    expires_at: h.expires_at,
                };
                outbox.push("hold_timers", d.event_id, serde_json::to_string(&timer)?);
                SeatEvent::HoldCreated {
                    request_id: d.request_id,
                    hold_id: h.hold_id,
                    user_id: d.user_id.clone(),
                    seat_ids: h
                        .seat_nos
                        .iter()
                        .filter_map(|n| label(d.event_id, *n))
                        .collect(),
                    section: h.ga_section.and_then(|s| {
                        rules
                            .get(&d.event_id)
                            .and_then(|r| r.layout.section_by_id(s).map(|x| x.code.clone()))
                    }),
                    quantity: h.quantity,
                    expires_at: h.expires_at,
                }
            }
            Outcome::Rejected(rej) => SeatEvent::HoldRejected {
                request_id: d.request_id,
                user_id: d.user_id.clone(),
                reason: rej.reason.to_owned(),
            },
            // Lifecycle commands speak through `life.notices` below.
            Outcome::Applied(_) => continue,
        };
        publish(outbox, d.event_id, payload)?;
    }
    for timer in &ledger.life.timers {
        outbox.push("hold_timers", timer.event_id, serde_json::to_string(timer)?);
    }
    for armed in &ledger.life.rearmed_timers {
        outbox.push(
            "hold_timers",
            armed.timer.event_id,
            serde_json::to_string(armed)?,
        );
    }
    for (event_id, notice) in &ledger.life.notices {
        publish(outbox, *event_id, notice.clone())?;
    }
    let mut per_event: HashMap<EventId, (Vec<SeatChange>, Vec<SectionAvailability>)> =
        HashMap::new();
    let changed: BTreeSet<(EventId, i32)> = ledger.changed_seats.iter().copied().collect();
    for (event_id, seat_no) in changed {
        if let (Some(seat_id), Some(slot)) = (
            label(event_id, seat_no),
            ledger.seats.get(&(event_id, seat_no)),
        ) {
            per_event.entry(event_id).or_default().0.push(SeatChange {
                seat_id,
                status: slot.status,
            });
        }
    }
    for (event_id, section_id) in ledger.ga_changed.keys() {
        let (Some(slot), Some(code)) = (
            ledger.ga.get(&(*event_id, *section_id)),
            rules
                .get(event_id)
                .and_then(|r| r.layout.section_by_id(*section_id).map(|s| s.code.clone())),
        ) else {
            continue;
        };
        per_event
            .entry(*event_id)
            .or_default()
            .1
            .push(SectionAvailability {
                section: code,
                available: slot.capacity - slot.held - slot.sold,
            });
    }
    for (event_id, (seats, sections)) in per_event {
        publish(
            outbox,
            event_id,
            SeatEvent::SeatStatusChanged {
                seats,
                sections,
                next_offset,
            },
        )?;
    }
    for (event_id, seat_no) in &ledger.life.waitlist_sync {
        outbox.push("waitlist_sync", *event_id, seat_no.to_string());
    }
    Ok(())
}
