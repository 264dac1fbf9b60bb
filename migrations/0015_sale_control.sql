-- The on-sale control room.
--
-- A sale can be paused, resumed or ended early by an organiser. The state changes by a
-- command through the event's partition (set_sale_state), so it takes effect at one
-- place in queue order; the consumer, the event's only writer, keeps it here.
ALTER TABLE events
    ADD COLUMN sale_state text NOT NULL DEFAULT 'open'
        CHECK (sale_state IN ('open', 'paused', 'ended')),
    ADD COLUMN sale_state_changed_at timestamptz;

-- Every seat's story: the reserved seats each decided command named (a hold's requested
-- seats, or the seats it got; a holdback's; a waitlist's seat). A GIN index over
-- (event, seats) finds the commands naming one seat among a storm's requests without
-- scanning them (btree_gin lets the uuid share the index).
ALTER TABLE requests ADD COLUMN seat_nos int[] NOT NULL DEFAULT '{}';
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX requests_by_seat ON requests USING gin (event_id, seat_nos)
    WHERE cardinality(seat_nos) > 0;
-- The holds a seat was in (a waitlist offer is a hold no command named the seat for),
-- and everyone who queued for it.
CREATE INDEX holds_by_seat ON holds USING gin (event_id, seat_nos)
    WHERE cardinality(seat_nos) > 0;
CREATE INDEX waitlist_by_seat ON waitlist_entries (event_id, seat_no, id);
