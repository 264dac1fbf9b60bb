-- A lottery anyone can check: each ticket that joined before the sale opened keeps the
-- entrant tag its draw was computed from (common::waiting_room). Set once at join and
-- never changed (a requeue after an expired admission moves the ticket to the back of
-- the line, not out of the lottery's record), so the published entrant list is the
-- same whenever it is read.
ALTER TABLE queue_tickets ADD COLUMN lottery_tag text;
CREATE INDEX queue_lottery_entrants ON queue_tickets (event_id, lottery_tag)
    WHERE lottery_tag IS NOT NULL;
