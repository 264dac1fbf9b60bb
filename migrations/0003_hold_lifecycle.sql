-- The hold lifecycle: holds end (cancel, expiry, sale), released seats go to the first
-- person on the seat's waitlist, payments arrive by signed webhook, paid holds become
-- bookings with one ticket per seat, and money for a seat that is no longer yours goes back.
--
-- Everything here except `payments` and `webhook_events` is written by the consumer in its
-- batch transaction, so it changes in Kafka order together with the seats.

-- Cancelling a booking refunds by the event's policy: in full until this many hours before
-- the event starts, nothing after.
ALTER TABLE events ADD COLUMN refund_cutoff_hours int NOT NULL DEFAULT 24
    CHECK (refund_cutoff_hours BETWEEN 0 AND 8760);

-- A hold whose payment is in progress when it expires is extended once.
ALTER TABLE holds ADD COLUMN extended boolean NOT NULL DEFAULT false;
-- A hold created by handing a released seat to the next person on its waitlist.
ALTER TABLE holds ADD COLUMN offered_from uuid REFERENCES holds (id);

-- Decisions of commands that are not hold requests (cancel, expire, payment, waitlist):
-- `applied` with what happened in `detail`, or `rejected` with a reason.
ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
    CHECK (status IN ('held', 'rejected', 'applied'));
ALTER TABLE requests DROP CONSTRAINT requests_check;
ALTER TABLE requests ADD CONSTRAINT requests_held_has_hold
    CHECK (status <> 'held' OR hold_id IS NOT NULL);

-- Per-seat waitlists, first come first served by id. PostgreSQL is the truth (the consumer
-- hands a released seat to the first eligible `waiting` entry in the same transaction);
-- Redis keeps a mirror list per seat for fast position reads, rebuilt from here.
CREATE TABLE waitlist_entries (
    id               bigserial PRIMARY KEY,
    event_id         uuid NOT NULL,
    seat_no          int  NOT NULL,
    user_id          text NOT NULL,
    request_id       uuid NOT NULL UNIQUE,
    status           text NOT NULL CHECK (status IN ('waiting', 'offered', 'left', 'skipped')),
    offered_hold_id  uuid REFERENCES holds (id),
    joined_at        timestamptz NOT NULL,
    ended_at         timestamptz,
    FOREIGN KEY (event_id, seat_no) REFERENCES seats (event_id, seat_no),
    CHECK ((status = 'waiting') = (ended_at IS NULL)),
    CHECK ((status = 'offered') = (offered_hold_id IS NOT NULL))
);
CREATE UNIQUE INDEX waitlist_once_per_user ON waitlist_entries (event_id, seat_no, user_id)
    WHERE status = 'waiting';
CREATE INDEX waitlist_queue ON waitlist_entries (event_id, seat_no, id) WHERE status = 'waiting';
CREATE INDEX waitlist_by_user ON waitlist_entries (event_id, user_id) WHERE status = 'waiting';

-- A payment attempt for a hold (one checkout session at the provider).
CREATE TABLE payments (
    id                uuid PRIMARY KEY,
    hold_id           uuid NOT NULL REFERENCES holds (id),
    event_id          uuid NOT NULL REFERENCES events (id),
    user_id           text NOT NULL,
    amount_cents      bigint NOT NULL CHECK (amount_cents >= 0),
    status            text NOT NULL
        CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'refunded')),
    provider_session  text,
    payment_url       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- One checkout in progress per hold; a hold is paid at most once.
CREATE UNIQUE INDEX payments_one_open_per_hold ON payments (hold_id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX payments_by_hold ON payments (hold_id);

-- Webhooks already handled, by the provider's event id: a redelivered webhook is a no-op.
CREATE TABLE webhook_events (
    provider_event_id  text PRIMARY KEY,
    payment_id         uuid NOT NULL REFERENCES payments (id),
    kind               text NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);

-- A paid hold becomes a booking (in the transaction that sells its seats).
CREATE TABLE bookings (
    id              uuid PRIMARY KEY,
    hold_id         uuid NOT NULL UNIQUE REFERENCES holds (id),
    event_id        uuid NOT NULL REFERENCES events (id),
    user_id         text NOT NULL,
    payment_id      uuid NOT NULL UNIQUE REFERENCES payments (id),
    amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
    status          text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    refund_cents    bigint,
    created_at      timestamptz NOT NULL,
    cancelled_at    timestamptz,
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX bookings_by_user ON bookings (user_id, created_at DESC);

-- One ticket per seat (or per general-admission place). The code printed on it is signed
-- over (ticket id, code_version): a transfer bumps the version, which voids the old code.
CREATE TABLE tickets (
    id               uuid PRIMARY KEY,
    booking_id       uuid NOT NULL REFERENCES bookings (id),
    event_id         uuid NOT NULL REFERENCES events (id),
    seat_no          int,
    section_id       uuid NOT NULL REFERENCES sections (id),
    holder_user_id   text NOT NULL,
    code_version     int  NOT NULL DEFAULT 1 CHECK (code_version >= 1),
    status           text NOT NULL CHECK (status IN ('valid', 'void')),
    checked_in_at    timestamptz,
    checked_in_by    text,
    created_at       timestamptz NOT NULL
);
CREATE INDEX tickets_by_booking ON tickets (booking_id);

-- Money to give back: a payment that arrived for a hold already released, or a cancelled
-- booking. At most one refund per payment; the scheduler's refund worker issues it through
-- the provider (idempotently, by this id) and publishes `refund_issued`.
CREATE TABLE refunds (
    id                  uuid PRIMARY KEY,
    payment_id          uuid NOT NULL UNIQUE REFERENCES payments (id),
    event_id            uuid NOT NULL REFERENCES events (id),
    user_id             text NOT NULL,
    amount_cents        bigint NOT NULL CHECK (amount_cents >= 0),
    reason              text NOT NULL CHECK (reason IN ('hold_released', 'booking_cancelled')),
    status              text NOT NULL CHECK (status IN ('pending', 'issued')),
    provider_refund_id  text,
    attempts            int  NOT NULL DEFAULT 0,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    issued_at           timestamptz,
    CHECK ((status = 'issued') = (issued_at IS NOT NULL))
);
CREATE INDEX refunds_pending ON refunds (created_at) WHERE status = 'pending';

-- The outbox also carries Redis mirror updates of waitlists (applied after commit).
ALTER TABLE outbox DROP CONSTRAINT outbox_stream_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_stream_check
    CHECK (stream IN ('seat_events', 'hold_timers', 'waitlist_sync'));
