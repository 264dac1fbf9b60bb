-- Nothing stops a partition.
--
-- 1. Dead letters are every command the consumer could not apply as it is, not only
--    records it could not read: a malformed command (unknown kind, bad body), and a command
--    that made its batch fail for a reason other than a passing one (a constraint, a data
--    error, a panic in the rules). The consumer isolates such a command by splitting the
--    batch, decides it `rejected` (`internal_error` when it failed while applied), keeps it
--    here with what is known of it, and applies the rest of the batch in order.
ALTER TABLE dead_letters
    ADD COLUMN request_id uuid,
    ADD COLUMN event_id   uuid,
    ADD COLUMN kind       text,
    -- What went wrong, as the consumer saw it (the database's message, the panic).
    ADD COLUMN error      text;
CREATE INDEX dead_letters_recent ON dead_letters (recorded_at DESC);

-- 2. A holdback is not a short hold. It takes up to a whole section (`MAX_BLOCKED_SEATS`
--    in code) and lasts until released, so the per-purchase bound of 1–100 seats does not
--    apply to it; the bound in code is what the API enforces.
ALTER TABLE holds DROP CONSTRAINT holds_quantity_check;
ALTER TABLE holds ADD CONSTRAINT holds_quantity_check
    CHECK (quantity >= 1 AND (quantity <= 100 OR user_id = 'system:holdback'));

-- 3. A payment whose command was dead-lettered is refunded in the same transaction (its
--    hold is left to expire): money is never kept for a seat nobody got.
ALTER TABLE refunds DROP CONSTRAINT refunds_reason_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_check
    CHECK (reason IN ('hold_released', 'booking_cancelled', 'dead_letter'));
