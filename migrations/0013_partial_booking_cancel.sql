-- A buyer cancels only the tickets that are still theirs: a ticket transferred to someone
-- else, or already used at the door, stays valid, so a booking can be cancelled in parts,
-- each part refunded pro rata (by the event's policy). A payment can therefore have several
-- `booking_cancelled` refunds, one per cancellation; every other kind of refund gives the
-- whole payment back and happens at most once. The sum never exceeds what was paid (the
-- tests' invariants check it).
ALTER TABLE refunds ADD COLUMN request_id uuid;
ALTER TABLE refunds DROP CONSTRAINT refunds_payment_id_key;
CREATE UNIQUE INDEX refunds_whole_once ON refunds (payment_id) WHERE reason <> 'booking_cancelled';
CREATE UNIQUE INDEX refunds_cancel_once ON refunds (payment_id, request_id)
    WHERE reason = 'booking_cancelled';
