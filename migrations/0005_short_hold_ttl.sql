-- The shortest hold window is a product rule set in configuration
-- (`gateway.min_hold_ttl_secs`, 30 s by default), not in the schema: tests use windows of
-- a few seconds to watch holds expire through the scheduler.
ALTER TABLE events DROP CONSTRAINT events_hold_ttl_secs_check;
ALTER TABLE events ADD CONSTRAINT events_hold_ttl_secs_check
    CHECK (hold_ttl_secs BETWEEN 1 AND 86400);
