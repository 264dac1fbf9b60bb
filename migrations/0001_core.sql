-- seatq core schema: venues, events, per-event seat state, holds, request decisions,
-- the consumer's applied offsets and the outbox.
--
-- The constraints here are the last line of defence: even a buggy consumer cannot write
-- a seat held by two holds (a seat row has exactly one hold_id), a held seat without a hold,
-- or a general-admission section with more seats held + sold than its capacity.

CREATE TABLE venues (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city        text NOT NULL DEFAULT '' CHECK (length(city) <= 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A section is either reserved seating (rows x seats, every seat its own row in `seats`)
-- or general admission (a counter in `ga_inventory`).
CREATE TABLE sections (
    id              uuid PRIMARY KEY,
    venue_id        uuid NOT NULL REFERENCES venues (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9_]{1,16}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind            text NOT NULL CHECK (kind IN ('reserved', 'general_admission')),
    ordinal         int  NOT NULL CHECK (ordinal >= 0),
    seat_rows       int  CHECK (seat_rows BETWEEN 1 AND 1000),
    seats_per_row   int  CHECK (seats_per_row BETWEEN 1 AND 1000),
    -- Position of this section's first seat in the venue's seat numbering (reserved only).
    first_seat_no   int  CHECK (first_seat_no >= 0),
    capacity        int  NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
    price_cents     bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    UNIQUE (venue_id, code),
    UNIQUE (venue_id, ordinal),
    CHECK ((kind = 'reserved') = (seat_rows IS NOT NULL AND seats_per_row IS NOT NULL AND first_seat_no IS NOT NULL)),
    CHECK (kind <> 'reserved' OR capacity = seat_rows * seats_per_row)
);

CREATE TABLE events (
    id                    uuid PRIMARY KEY,
    venue_id              uuid NOT NULL REFERENCES venues (id),
    title                 text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    performer             text NOT NULL DEFAULT '' CHECK (length(performer) <= 200),
    starts_at             timestamptz NOT NULL,
    on_sale_at            timestamptz NOT NULL,
    hold_ttl_secs         int  NOT NULL DEFAULT 600 CHECK (hold_ttl_secs BETWEEN 30 AND 86400),
    max_seats_per_user    int  NOT NULL DEFAULT 8 CHECK (max_seats_per_user BETWEEN 1 AND 100),
    waiting_room_enabled  boolean NOT NULL DEFAULT false,
    -- The partition of the commands topic that carries this event's commands. Fixed at
    -- creation so growing the topic never splits an event across two writers.
    kafka_partition       int  NOT NULL CHECK (kafka_partition >= 0),
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_starts_at ON events (starts_at);

CREATE TABLE holds (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES events (id),
    user_id         text NOT NULL,
    request_id      uuid NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('active', 'sold', 'cancelled', 'expired')),
    -- Reserved seats of the hold (seat_no values), or a general-admission section + quantity.
    seat_nos        int[] NOT NULL DEFAULT '{}',
    ga_section_id   uuid REFERENCES sections (id),
    quantity        int  NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    UNIQUE (event_id, id),
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CHECK (expires_at > created_at),
    CHECK (CASE WHEN ga_section_id IS NULL THEN cardinality(seat_nos) = quantity
                ELSE cardinality(seat_nos) = 0 END)
);
-- Per-user limit: the consumer sums a user's active and sold holds for an event.
CREATE INDEX holds_user_live ON holds (event_id, user_id) WHERE status IN ('active', 'sold');
-- Expiry sweeps look for active holds past their deadline.
CREATE INDEX holds_active_expiry ON holds (expires_at) WHERE status = 'active';

-- Seat state, one row per reserved seat per event. A seat has at most one hold_id, so no
-- seat can ever be held or sold by two holds; the composite key keeps the hold in-event.
CREATE TABLE seats (
    event_id     uuid NOT NULL REFERENCES events (id),
    seat_no      int  NOT NULL CHECK (seat_no >= 0),
    section_id   uuid NOT NULL REFERENCES sections (id),
    row_no       int  NOT NULL CHECK (row_no >= 1),
    seat_number  int  NOT NULL CHECK (seat_number >= 1),
    status       text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'held', 'sold')),
    hold_id      uuid,
    PRIMARY KEY (event_id, seat_no),
    UNIQUE (event_id, section_id, row_no, seat_number),
    FOREIGN KEY (event_id, hold_id) REFERENCES holds (event_id, id),
    CHECK ((status = 'available') = (hold_id IS NULL))
);

-- General admission: a counter per event and section; never more held + sold than capacity.
CREATE TABLE ga_inventory (
    event_id    uuid NOT NULL REFERENCES events (id),
    section_id  uuid NOT NULL REFERENCES sections (id),
    capacity    int  NOT NULL CHECK (capacity >= 1),
    held        int  NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold        int  NOT NULL DEFAULT 0 CHECK (sold >= 0),
    PRIMARY KEY (event_id, section_id),
    CHECK (held + sold <= capacity)
);

-- The decision for every command the consumer applied, by request_id: dedupe for
-- redelivered commands and the answer to status polling. No row means "pending".
CREATE TABLE requests (
    request_id       uuid PRIMARY KEY,
    event_id         uuid NOT NULL,
    user_id          text NOT NULL,
    kind             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('held', 'rejected')),
    reason           text,
    detail           jsonb,
    hold_id          uuid REFERENCES holds (id),
    kafka_partition  int NOT NULL,
    kafka_offset     bigint NOT NULL,
    issued_at        timestamptz NOT NULL,
    decided_at       timestamptz NOT NULL,
    CHECK ((status = 'held') = (hold_id IS NOT NULL)),
    CHECK ((status = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX requests_position ON requests (kafka_partition, kafka_offset);

-- Messages that could not even be read as a command (bad JSON, unknown kind without a
-- request id): kept for operators, skipped by the consumer so they never block a partition.
CREATE TABLE dead_letters (
    topic            text NOT NULL,
    kafka_partition  int NOT NULL,
    kafka_offset     bigint NOT NULL,
    reason           text NOT NULL,
    payload          bytea,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);

-- The next offset to apply per partition of the commands topic. Written in the same
-- transaction as the batch it covers and compared-and-set: the fence that makes a batch
-- commit at most once even when two consumers briefly own one partition.
CREATE TABLE consumer_offsets (
    topic            text NOT NULL,
    kafka_partition  int  NOT NULL,
    next_offset      bigint NOT NULL CHECK (next_offset >= 0),
    owner            text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- Transactional outbox: messages produced by a batch, published after commit by the
-- relay of the partition that wrote them (so per-event order is kept), then deleted.
CREATE TABLE outbox (
    id                bigserial PRIMARY KEY,
    source_partition  int  NOT NULL,
    stream            text NOT NULL CHECK (stream IN ('seat_events', 'hold_timers')),
    message_key       text NOT NULL,
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_partition ON outbox (source_partition, id);

-- Consumer processes alive for a topic, by heartbeat. Every process divides the
-- partitions among the live members the same way (rendezvous hashing); a process that
-- stops heartbeating loses its partitions after a few seconds.
CREATE TABLE consumer_members (
    topic         text NOT NULL,
    member        text NOT NULL,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, member)
);
