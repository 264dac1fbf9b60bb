-- Virtual waiting rooms. PostgreSQL is the truth (who joined, in which order, who was let
-- in); Redis keeps each event's waiting line as a sorted set for fast position reads and is
-- rebuilt from here when lost.

-- Proof-of-work difficulty (leading zero bits) for joining this event's waiting room.
ALTER TABLE events ADD COLUMN pow_difficulty int NOT NULL DEFAULT 0
    CHECK (pow_difficulty BETWEEN 0 AND 32);

CREATE TABLE queue_tickets (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL REFERENCES events (id),
    user_id      text NOT NULL,
    joined_at    timestamptz NOT NULL,
    -- Admission order. Joined before the sale opened: a lottery draw in [0, 1), so the
    -- whole pre-queue is shuffled; after: the join time in unix seconds (always > 1), so
    -- later arrivals queue behind the pre-queue in arrival order.
    sort_key     double precision NOT NULL,
    status       text NOT NULL CHECK (status IN ('waiting', 'admitted')),
    admitted_at  timestamptz,
    CHECK ((status = 'admitted') = (admitted_at IS NOT NULL)),
    UNIQUE (event_id, user_id)
);
CREATE INDEX queue_waiting ON queue_tickets (event_id, sort_key) WHERE status = 'waiting';
CREATE INDEX queue_admitted ON queue_tickets (event_id, admitted_at) WHERE status = 'admitted';

-- The admission controller's state per event (the scheduler's), for restarts and stats.
CREATE TABLE admission_control (
    event_id        uuid PRIMARY KEY REFERENCES events (id),
    rate            double precision NOT NULL,
    -- Fractional admissions carried over between ticks.
    carry           double precision NOT NULL DEFAULT 0,
    admitted_total  bigint NOT NULL DEFAULT 0,
    last_lag        bigint,
    last_p99_ms     double precision,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Recent decision latency per event (the controller's second signal).
CREATE INDEX requests_recent_by_event ON requests (event_id, decided_at);
