-- The sandbox payment provider's own state (gateway/src/sandbox). It stands in for a real
-- provider on the local stack and in tests and only happens to share seatq's database:
-- nothing here references seatq's tables, and seatq never reads these (it learns about
-- payments only through the provider's API and signed webhooks, as it would in production).

-- One checkout session per seatq payment id (the idempotency key of session creation).
CREATE TABLE sandbox_sessions (
    id              text PRIMARY KEY,
    payment_id      uuid NOT NULL UNIQUE,
    amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
    currency        text NOT NULL,
    description     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'succeeded', 'failed')),
    -- Money taken: the full amount once succeeded; refunds may never exceed it.
    captured_cents  bigint NOT NULL DEFAULT 0
        CHECK (captured_cents >= 0 AND captured_cents <= amount_cents),
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CHECK ((status = 'open') = (completed_at IS NULL)),
    CHECK (status = 'succeeded' OR captured_cents = 0)
);

-- Money paid back, once per seatq refund id (the idempotency key of refunds).
CREATE TABLE sandbox_refunds (
    id               text PRIMARY KEY,
    idempotency_key  uuid NOT NULL UNIQUE,
    session_id       text NOT NULL REFERENCES sandbox_sessions (id),
    amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_refunds_by_session ON sandbox_refunds (session_id);
