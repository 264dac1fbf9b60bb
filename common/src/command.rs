//! Commands: the only way seat state changes.
//!
//! Every change is a JSON command in the commands topic, keyed by event id, applied in
//! partition order by one consumer. The wire shape is a flat envelope
//! `{request_id, kind, event_id, user_id, issued_at, body}`: the envelope is decoded first
//! and the body by `kind` second, so a command with a garbled body or an unknown kind is
//! still recorded as a rejected request under its request_id instead of stalling the
//! partition.
//!
//! A record on the topic carries one envelope or a JSON array of them: the gateway packs
//! the commands that arrive together for one partition into one record, because the
//! broker's cost is per record (nisshi writes each as a PostgreSQL row; see
//! `crate::record`), far more than per byte. Kafka order is then (offset, position in the array).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, PaymentId, RequestId, SectionId, UserId};
pub use crate::payment_provider::Capture;

/// What the consumer is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    HoldSeats(HoldSeats),
    /// The owner (or an admin) gives a hold up.
    CancelHold(CancelHold),
    /// A hold's timer fired (or the sweeper found it overdue).
    ExpireHold(ExpireHold),
    /// The provider captured the payment for a hold.
    PaymentSucceeded(PaymentOutcome),
    /// The provider declined the payment; the hold stays until it expires.
    PaymentFailed(PaymentOutcome),
    /// The booking's owner gives it back: refund by the event's policy, seats back on sale.
    CancelBooking(CancelBooking),
    JoinWaitlist(WaitlistSeat),
    LeaveWaitlist(WaitlistSeat),
    /// An organiser takes seats off sale (press, production, allocations, a later wave).
    BlockSeats(BlockSeats),
    /// An organiser pauses, resumes or ends the sale. Through the event's partition, so
    /// it takes effect at one place in queue order: every hold request behind it sees it.
    SetSaleState(SetSaleState),
}

/// Hold specific seats, or the best `quantity` in a section (general admission: places).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum HoldSeats {
    /// Exactly these seats, all or nothing.
    Seats {
        seat_nos: Vec<i32>,
        /// The buyer needs an accessible space (self-declared): they may hold seats kept
        /// for access, and the seats must include one with its companions beside it.
        #[serde(default, skip_serializing_if = "is_false")]
        accessible: bool,
    },
    /// The best adjacent block in a reserved section, or places in a GA section.
    BestAvailable {
        section_id: SectionId,
        quantity: i32,
        /// The best wheelchair space with `quantity - 1` companion seats beside it.
        #[serde(default, skip_serializing_if = "is_false")]
        accessible: bool,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl HoldSeats {
    /// Named seats, for a buyer without access needs.
    pub fn seats(seat_nos: Vec<i32>) -> Self {
        HoldSeats::Seats {
            seat_nos,
            accessible: false,
        }
    }

    /// The best `quantity` in a section, for a buyer without access needs.
    pub fn best(section_id: SectionId, quantity: i32) -> Self {
        HoldSeats::BestAvailable {
            section_id,
            quantity,
            accessible: false,
        }
    }

    pub fn accessible(&self) -> bool {
        match self {
            HoldSeats::Seats { accessible, .. } | HoldSeats::BestAvailable { accessible, .. } => {
                *accessible
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelHold {
    pub hold_id: HoldId,
    /// An admin may cancel anyone's hold; otherwise only its owner may.
    #[serde(default)]
    pub by_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireHold {
    pub hold_id: HoldId,
    /// The expiry this timer was set for: a hold extended since then is not expired by
    /// its old timer.
    pub expires_at: DateTime<Utc>,
    /// 0 for the hold's own timer; n when the consumer re-armed it n times because it
    /// came before the hold was due by the consumer's clock (see `message::ArmedTimer`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOutcome {
    pub hold_id: HoldId,
    pub payment_id: PaymentId,
    /// What seatq asked for (the payment record).
    pub amount_cents: i64,
    /// The currency asked for; absent from commands older than the check (USD then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// What the provider reports it captured (a success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Capture>,
}

/// How a capture differs from what was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    Amount,
    Currency,
}

impl Mismatch {
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::Amount => "amount",
            Mismatch::Currency => "currency",
        }
    }
}

/// The currency of payments recorded before payments had one.
pub const DEFAULT_CURRENCY: &str = "USD";

impl PaymentOutcome {
    /// Whether the capture differs from what was asked for (currency first: an amount in
    /// another currency is not comparable). None without a capture.
    pub fn mismatch(&self) -> Option<Mismatch> {
        let captured = self.captured.as_ref()?;
        let asked = self.currency.as_deref().unwrap_or(DEFAULT_CURRENCY);
        if !captured.currency.eq_ignore_ascii_case(asked) {
            Some(Mismatch::Currency)
        } else if captured.amount_cents != self.amount_cents {
            Some(Mismatch::Amount)
        } else {
            None
        }
    }

    /// The money the provider holds for this payment: the capture, or what was asked for
    /// when the command carries no capture.
    pub fn captured_cents(&self) -> i64 {
        self.captured
            .as_ref()
            .map_or(self.amount_cents, |c| c.amount_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelBooking {
    pub booking_id: BookingId,
    #[serde(default)]
    pub by_admin: bool,
}

/// A holdback: the seats are held by [`HOLDBACK_USER`] until `release_at` (or until an
/// admin releases them), then go back on sale through the pipeline, waitlists first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSeats {
    pub seat_nos: Vec<i32>,
    /// Why (shown to organisers): "press", "production", "wave 2"…
    pub note: String,
    /// When the seats go on sale by themselves; none: until released by hand.
    pub release_at: Option<DateTime<Utc>>,
}

/// Who holds a holdback's seats.
pub const HOLDBACK_USER: &str = "system:holdback";

/// Seats one holdback may take (larger allocations are several holdbacks).
pub const MAX_BLOCKED_SEATS: usize = 5_000;

/// The expiry of a hold that has none (a holdback released by hand): far enough to never
/// come, near enough for every client's date handling.
pub fn never() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether an event's sale takes hold requests. `ended` is final.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SaleState {
    Open,
    Paused,
    Ended,
}

impl SaleState {
    pub fn as_str(self) -> &'static str {
        match self {
            SaleState::Open => "open",
            SaleState::Paused => "paused",
            SaleState::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSaleState {
    pub state: SaleState,
    /// Shown to organisers in the event's history ("artist delayed", "sold out early").
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistSeat {
    pub seat_no: i32,
}

impl Command {
    pub fn kind(&self) -> &'static str {
        match self {
            Command::HoldSeats(_) => "hold_seats",
            Command::CancelHold(_) => "cancel_hold",
            Command::ExpireHold(_) => "expire_hold",
            Command::PaymentSucceeded(_) => "payment_succeeded",
            Command::PaymentFailed(_) => "payment_failed",
            Command::CancelBooking(_) => "cancel_booking",
            Command::JoinWaitlist(_) => "join_waitlist",
            Command::LeaveWaitlist(_) => "leave_waitlist",
            Command::BlockSeats(_) => "block_seats",
            Command::SetSaleState(_) => "set_sale_state",
        }
    }

    fn body(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Command::HoldSeats(body) => serde_json::to_value(body),
            Command::CancelHold(body) => serde_json::to_value(body),
            Command::ExpireHold(body) => serde_json::to_value(body),
            Command::PaymentSucceeded(body) | Command::PaymentFailed(body) => {
                serde_json::to_value(body)
            }
            Command::CancelBooking(body) => serde_json::to_value(body),
            Command::JoinWaitlist(body) | Command::LeaveWaitlist(body) => {
                serde_json::to_value(body)
            }
            Command::BlockSeats(body) => serde_json::to_value(body),
            Command::SetSaleState(body) => serde_json::to_value(body),
        }
    }

    fn from_parts(kind: &str, body: serde_json::Value) -> Result<Self, CommandError> {
        fn parse<T: serde::de::DeserializeOwned>(
            body: serde_json::Value,
        ) -> Result<T, CommandError> {
            serde_json::from_value(body).map_err(|e| CommandError::InvalidBody(e.to_string()))
        }
        Ok(match kind {
            "hold_seats" => Command::HoldSeats(parse(body)?),
            "cancel_hold" => Command::CancelHold(parse(body)?),
            "expire_hold" => Command::ExpireHold(parse(body)?),
            "payment_succeeded" => Command::PaymentSucceeded(parse(body)?),
            "payment_failed" => Command::PaymentFailed(parse(body)?),
            "cancel_booking" => Command::CancelBooking(parse(body)?),
            "join_waitlist" => Command::JoinWaitlist(parse(body)?),
            "leave_waitlist" => Command::LeaveWaitlist(parse(body)?),
            "block_seats" => Command::BlockSeats(parse(body)?),
            "set_sale_state" => Command::SetSaleState(parse(body)?),
            other => return Err(CommandError::UnknownKind(other.chars().take(64).collect())),
        })
    }

    /// The reserved seats a command names (a seat's history lists the commands naming it).
    pub fn named_seats(&self) -> &[i32] {
        match self {
            Command::HoldSeats(HoldSeats::Seats { seat_nos, .. }) => seat_nos,
            Command::BlockSeats(b) => &b.seat_nos,
            Command::JoinWaitlist(w) | Command::LeaveWaitlist(w) => {
                std::slice::from_ref(&w.seat_no)
            }
            _ => &[],
        }
    }

    /// The hold a lifecycle command is about.
    pub fn hold_id(&self) -> Option<HoldId> {
        match self {
            Command::CancelHold(c) => Some(c.hold_id),
            Command::ExpireHold(c) => Some(c.hold_id),
            Command::PaymentSucceeded(c) | Command::PaymentFailed(c) => Some(c.hold_id),
            _ => None,
        }
    }
}

/// A command with who sent it, when, and its request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEnvelope {
    pub request_id: RequestId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    pub command: Command,
    /// The sender waits for the decision: the consumer signals it when it commits.
    pub reply: bool,
}

/// The envelope as it is on the wire; `body` is decoded by `kind` afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireEnvelope {
    pub request_id: RequestId,
    pub kind: String,
    pub event_id: EventId,
    pub user_id: UserId,
    pub issued_at: DateTime<Utc>,
    #[serde(default)]
    pub body: serde_json::Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reply: bool,
}

/// What a message on the commands topic turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Command(CommandEnvelope),
    /// An envelope whose kind or body is wrong: rejected under its request id.
    Invalid(Box<WireEnvelope>, CommandError),
    /// Not an envelope at all: dead-lettered.
    Unreadable(CommandError),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// Not even an envelope: no request id to answer to.
    #[error("not a command envelope: {0}")]
    Unreadable(String),
    #[error("unknown command kind {0:?}")]
    UnknownKind(String),
    #[error("invalid command body: {0}")]
    InvalidBody(String),
}

impl CommandError {
    /// Stable reason code recorded for the rejected request.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandError::Unreadable(_) => "unreadable_command",
            CommandError::UnknownKind(_) => "unknown_command_kind",
            CommandError::InvalidBody(_) => "invalid_command",
        }
    }
}

impl CommandEnvelope {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&WireEnvelope {
            request_id: self.request_id,
            kind: self.command.kind().to_owned(),
            event_id: self.event_id,
            user_id: self.user_id.clone(),
            issued_at: self.issued_at,
            body: self.command.body()?,
            reply: self.reply,
        })
    }

    /// Decode a message. A bad body keeps its envelope, so the request can be answered.
    pub fn decode(bytes: &[u8]) -> Decoded {
        let wire: WireEnvelope = match serde_json::from_slice(bytes) {
            Ok(wire) => wire,
            Err(e) => return Decoded::Unreadable(CommandError::Unreadable(e.to_string())),
        };
        match Command::from_parts(&wire.kind, wire.body.clone()) {
            Ok(command) => Decoded::Command(CommandEnvelope {
                request_id: wire.request_id,
                event_id: wire.event_id,
                user_id: wire.user_id,
                issued_at: wire.issued_at,
                command,
                reply: wire.reply,
            }),
            Err(e) => Decoded::Invalid(Box::new(wire), e),
        }
    }
}

/// Decode a commands-topic record: one envelope or a pack of them (`record`), in order.
/// Each element is decoded on its own, so one bad element does not take its neighbours
/// with it; a record that is not even an array of JSON values is one unreadable item.
pub fn decode_record(bytes: &[u8]) -> Vec<Decoded> {
    match crate::record::messages(bytes) {
        Ok(items) => items.into_iter().map(CommandEnvelope::decode).collect(),
        Err(e) => vec![Decoded::Unreadable(CommandError::Unreadable(e.to_string()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CommandEnvelope {
        CommandEnvelope {
            request_id: RequestId::new(),
            event_id: EventId::new(),
            user_id: UserId("u1".into()),
            issued_at: Utc::now(),
            command: Command::HoldSeats(HoldSeats::seats(vec![1, 2])),
            reply: true,
        }
    }

    #[test]
    fn round_trips_through_the_wire_shape() {
        let cmd = sample();
        let bytes = cmd.encode().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["kind"], "hold_seats");
        assert_eq!(json["body"]["mode"], "seats");
        match CommandEnvelope::decode(&bytes) {
            Decoded::Command(decoded) => assert_eq!(decoded, cmd),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_body_keeps_the_envelope() {
        let mut json: serde_json::Value =
            serde_json::from_slice(&sample().encode().unwrap()).unwrap();
        json["body"] = serde_json::json!({"mode": "seats", "seat_nos": "nope"});
        let reason = |bytes: &[u8]| match CommandEnvelope::decode(bytes) {
            Decoded::Invalid(_, e) => e.reason(),
            Decoded::Unreadable(e) => e.reason(),
            Decoded::Command(c) => panic!("decoded {c:?}"),
        };
        assert_eq!(
            reason(&serde_json::to_vec(&json).unwrap()),
            "invalid_command"
        );

        json["kind"] = "launch_rockets".into();
        assert_eq!(
            reason(&serde_json::to_vec(&json).unwrap()),
            "unknown_command_kind"
        );
        assert_eq!(reason(b"{not json"), "unreadable_command");
    }

    #[test]
    fn a_batch_record_decodes_in_order_and_isolates_a_bad_element() {
        let (a, b) = (sample(), sample());
        let mut bad: serde_json::Value = serde_json::from_slice(&a.encode().unwrap()).unwrap();
        bad["kind"] = "launch_rockets".into();
        let parts = vec![
            a.encode().unwrap(),
            serde_json::to_vec(&bad).unwrap(),
            b"42".to_vec(),
            b.encode().unwrap(),
        ];
        let decoded = decode_record(&crate::record::pack(&parts));
        assert_eq!(decoded.len(), 4);
        assert!(matches!(&decoded[0], Decoded::Command(c) if *c == a));
        assert!(matches!(&decoded[1], Decoded::Invalid(w, _) if w.request_id == a.request_id));
        assert!(matches!(&decoded[2], Decoded::Unreadable(_)));
        assert!(matches!(&decoded[3], Decoded::Command(c) if *c == b));

        // A single envelope is a record of one; garbage is one unreadable item.
        assert!(matches!(
            &decode_record(&a.encode().unwrap())[..],
            [Decoded::Command(_)]
        ));
        assert!(matches!(
            &decode_record(b"[1, 2")[..],
            [Decoded::Unreadable(_)]
        ));
    }

    #[test]
    fn a_capture_is_compared_with_what_was_asked_for() {
        let outcome = |captured: Option<(i64, &str)>| PaymentOutcome {
            hold_id: HoldId::new(),
            payment_id: PaymentId::new(),
            amount_cents: 5000,
            currency: Some("USD".into()),
            captured: captured.map(|(amount_cents, currency)| Capture {
                amount_cents,
                currency: currency.into(),
            }),
        };
        assert_eq!(outcome(None).mismatch(), None);
        assert_eq!(outcome(Some((5000, "USD"))).mismatch(), None);
        assert_eq!(outcome(Some((5000, "usd"))).mismatch(), None);
        assert_eq!(
            outcome(Some((4000, "USD"))).mismatch(),
            Some(Mismatch::Amount)
        );
        assert_eq!(
            outcome(Some((5000, "EUR"))).mismatch(),
            Some(Mismatch::Currency)
        );
        assert_eq!(outcome(Some((4000, "EUR"))).captured_cents(), 4000);
        // Commands from before the check carry no capture and no currency.
        let old: PaymentOutcome = serde_json::from_value(serde_json::json!({
            "hold_id": HoldId::new(), "payment_id": PaymentId::new(), "amount_cents": 5000
        }))
        .unwrap();
        assert_eq!((old.mismatch(), old.captured_cents()), (None, 5000));
        let old: ExpireHold = serde_json::from_value(serde_json::json!({
            "hold_id": HoldId::new(), "expires_at": Utc::now()
        }))
        .unwrap();
        assert_eq!(old.attempt, 0);
        assert!(serde_json::to_value(&old).unwrap().get("attempt").is_none());
    }
}
