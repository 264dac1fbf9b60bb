//! Identifier newtypes.
//!
//! A hold id and an event id are both UUIDs; mixing them up compiles fine with bare
//! `Uuid`s and sells the wrong seat. Newtypes make the compiler check it, and stay
//! transparent in JSON, in SQL and in the OpenAPI document.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// One command sent through the pipeline; the key of its decision.
    RequestId
);
uuid_id!(
    /// An event (a show on a date at a venue).
    EventId
);
uuid_id!(
    /// A venue with its sections.
    VenueId
);
uuid_id!(
    /// A section of a venue.
    SectionId
);
uuid_id!(
    /// A hold on seats (or general-admission places) for one user.
    HoldId
);

uuid_id!(
    /// A payment attempt (one checkout session at the provider).
    PaymentId
);
uuid_id!(
    /// A paid hold: the seats are sold to its user.
    BookingId
);
uuid_id!(
    /// One seat (or general-admission place) of a booking.
    TicketId
);

impl RequestId {
    /// The same id for the same cause, every time: a command the scheduler or a webhook
    /// may send twice (a redelivered timer, a duplicate webhook) is then decided once,
    /// because the consumer skips a request id it has already decided.
    pub fn derived(cause: Uuid, what: &str) -> Self {
        Self(Uuid::new_v5(&cause, what.as_bytes()))
    }
}

/// The authenticated user (the JWT `sub`). Opaque to seatq.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[sqlx(transparent)]
#[schema(value_type = String)]
pub struct UserId(pub String);

impl UserId {
    pub const MAX_LEN: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
