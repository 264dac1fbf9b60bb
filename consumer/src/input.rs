//! A batch's records, decoded into commands in Kafka order.
//!
//! A record holds one or more commands (the gateway packs them). Every element is either
//! a command to decide, a command refused without deciding (malformed, or quarantined by
//! `poison` after it made its batch fail) or something unreadable; the last two are kept
//! as dead letters for operators. Nothing is dropped silently: a refusal still gets a
//! decision its sender can read.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use seatq_common::command::{Command, CommandEnvelope, Decoded};
use seatq_common::ids::{EventId, PaymentId, RequestId, UserId};

use crate::ledger::Position;

/// A message as the worker received it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
}

/// Commands to refuse instead of deciding, by position, with what went wrong: they failed
/// their batch when applied (see `poison`).
pub type Quarantine = BTreeMap<Position, String>;

/// Which commands of a batch to apply, and how.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Refused as `internal_error` and dead-lettered.
    pub quarantine: &'a Quarantine,
    /// A trial: only these positions (the others are left out entirely), rolled back.
    pub trial: Option<&'a BTreeSet<Position>>,
}

/// A command rejected without deciding: malformed, or quarantined.
pub(crate) struct Refused {
    pub position: Position,
    pub request_id: RequestId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub kind: String,
    pub issued_at: DateTime<Utc>,
    pub reply: bool,
    pub reason: &'static str,
}

/// A command (or record) kept for operators in `dead_letters`.
pub(crate) struct DeadLetter {
    pub position: Position,
    pub request_id: Option<RequestId>,
    pub event_id: Option<EventId>,
    pub kind: Option<String>,
    pub reason: &'static str,
    pub error: String,
    pub payload: Vec<u8>,
}

/// A batch's messages, decoded and sorted out by the plan.
#[derive(Default)]
pub(crate) struct Input {
    pub commands: Vec<(Position, CommandEnvelope)>,
    pub refused: Vec<Refused>,
    pub dead: Vec<DeadLetter>,
    /// Payments whose `payment_succeeded` was quarantined: refunded unless booked.
    pub dead_payments: Vec<PaymentId>,
}

/// Text as PostgreSQL can store it: no NUL characters, bounded.
fn storable(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .take(max_chars)
        .collect()
}

/// A time PostgreSQL can store (years 1–9999), else `now`.
fn storable_time(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    if (1..=9999).contains(&at.year()) {
        at
    } else {
        now
    }
}

/// Decode `messages` into commands in Kafka order, as `plan` says: malformed commands are
/// refused with their decoding reason, quarantined ones with `internal_error`, and both
/// are kept as dead letters, like records that are not commands at all.
pub(crate) fn decode(messages: &[Incoming], plan: &Plan<'_>, now: DateTime<Utc>) -> Input {
    let mut input = Input::default();
    for m in messages {
        let payload = m.payload.as_deref().unwrap_or_default();
        let elements = match seatq_common::record::messages(payload) {
            Ok(elements) => elements,
            // Not even an array of JSON values: one unreadable item, the whole record kept.
            Err(_) => vec![payload],
        };
        for (seq, element) in elements.into_iter().enumerate() {
            let at = (m.offset, seq as i32);
            if plan.trial.is_some_and(|t| !t.contains(&at)) {
                continue;
            }
            let decoded = CommandEnvelope::decode(element);
            if let Some(error) = plan.quarantine.get(&at) {
                input.quarantine(at, decoded, error, element, now);
                continue;
            }
            match decoded {
                Decoded::Command(cmd) => input.commands.push((at, cmd)),
                Decoded::Invalid(wire, err) => {
                    tracing::warn!(offset = at.0, seq = at.1, request_id = %wire.request_id,
                        error = %err, "rejecting a malformed command");
                    input.dead.push(DeadLetter {
                        position: at,
                        request_id: Some(wire.request_id),
                        event_id: Some(wire.event_id),
                        kind: Some(storable(&wire.kind, 64)),
                        reason: err.reason(),
                        error: storable(&err.to_string(), 2000),
                        payload: element.to_vec(),
                    });
                    input.refused.push(Refused {
                        position: at,
                        request_id: wire.request_id,
                        event_id: wire.event_id,
                        user_id: UserId(storable(&wire.user_id.0, 200)),
                        kind: storable(&wire.kind, 64),
                        issued_at: storable_time(wire.issued_at, now),
                        reply: wire.reply,
                        reason: err.reason(),
                    });
                }
                Decoded::Unreadable(err) => {
                    tracing::warn!(offset = at.0, seq = at.1, error = %err,
                        "dead-lettering an unreadable message");
                    input.dead.push(DeadLetter {
                        position: at,
                        request_id: None,
                        event_id: None,
                        kind: None,
                        reason: err.reason(),
                        error: storable(&err.to_string(), 2000),
                        // The whole record: the bad element cannot always be cut out of it
                        // reliably, and an operator wants to see what came with it.
                        payload: payload.to_vec(),
                    });
                }
            }
        }
    }
    input
}

impl Input {
    /// Refuse a command that failed its batch when applied: rejected as `internal_error`
    /// (if it has a request id to answer to), kept as a dead letter.
    pub(crate) fn quarantine(
        &mut self,
        at: Position,
        decoded: Decoded,
        error: &str,
        element: &[u8],
        now: DateTime<Utc>,
    ) {
        let (request_id, event_id, user_id, kind, issued_at, reply) = match decoded {
            Decoded::Command(cmd) => {
                if let Command::PaymentSucceeded(p) = &cmd.command {
                    self.dead_payments.push(p.payment_id);
                }
                let kind = cmd.command.kind().to_owned();
                (
                    Some(cmd.request_id),
                    Some(cmd.event_id),
                    cmd.user_id,
                    kind,
                    cmd.issued_at,
                    cmd.reply,
                )
            }
            Decoded::Invalid(wire, _) => (
                Some(wire.request_id),
                Some(wire.event_id),
                wire.user_id,
                wire.kind,
                wire.issued_at,
                wire.reply,
            ),
            Decoded::Unreadable(_) => {
                (None, None, UserId(String::new()), String::new(), now, false)
            }
        };
        let kind = storable(&kind, 64);
        self.dead.push(DeadLetter {
            position: at,
            request_id,
            event_id,
            kind: (!kind.is_empty()).then(|| kind.clone()),
            reason: "internal_error",
            error: storable(error, 2000),
            payload: element.to_vec(),
        });
        if let (Some(request_id), Some(event_id)) = (request_id, event_id) {
            self.refused.push(Refused {
                position: at,
                request_id,
                event_id,
                user_id: UserId(storable(&user_id.0, 200)),
                kind,
                issued_at: storable_time(issued_at, now),
                reply,
                reason: "internal_error",
            });
        }
    }
}
