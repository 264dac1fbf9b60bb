-- Money that cannot be lost quietly (issue 17).
--
-- Refunds are issued one at a time: the refund worker claims a due refund by moving its
-- `next_attempt_at` past a lease (so no other worker takes it while the provider is being
-- asked), calls the provider outside any transaction, and records the result. A refund the
-- provider does not accept is tried again after a capped exponential backoff, and after
-- `scheduler.refund_max_attempts` tries it is `failed`: counted, alerted, and left for an
-- operator (README, operating notes). It never stands in front of the other refunds.
ALTER TABLE refunds ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE refunds ADD COLUMN last_attempt_at timestamptz;
ALTER TABLE refunds ADD COLUMN failed_at timestamptz;
ALTER TABLE refunds DROP CONSTRAINT refunds_status_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check
    CHECK (status IN ('pending', 'issued', 'failed'));
ALTER TABLE refunds ADD CONSTRAINT refunds_failed_when
    CHECK ((status = 'failed') = (failed_at IS NOT NULL));
-- A payment whose captured amount or currency is not what seatq asked for is refunded
-- (what was captured), never booked; like every refund but a booking's cancellation, at
-- most once per payment (`refunds_whole_once`, 0013).
ALTER TABLE refunds DROP CONSTRAINT refunds_reason_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_check
    CHECK (reason IN ('hold_released', 'booking_cancelled', 'dead_letter', 'payment_mismatch'));
DROP INDEX refunds_pending;
CREATE INDEX refunds_due ON refunds (next_attempt_at) WHERE status = 'pending';
CREATE INDEX refunds_failed ON refunds (failed_at) WHERE status = 'failed';

-- What a payment asked for (the currency was a constant in the gateway) and what the
-- provider reports it captured. `mismatched`: captured, but not what was asked; refunded.
ALTER TABLE payments ADD COLUMN currency text NOT NULL DEFAULT 'USD'
    CHECK (currency ~ '^[A-Z]{3}$');
ALTER TABLE payments ADD COLUMN captured_cents bigint;
ALTER TABLE payments ADD COLUMN captured_currency text;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'mismatched', 'refunded'));

-- The sandbox provider (tests and the local stack): a capture in another currency than
-- the session's, and payments whose refunds it refuses (as for a disputed charge).
ALTER TABLE sandbox_sessions ADD COLUMN captured_currency text;
ALTER TABLE sandbox_sessions ADD COLUMN refuse_refunds boolean NOT NULL DEFAULT false;
