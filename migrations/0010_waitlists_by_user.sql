-- GET /v1/me/waitlists: a user's live waitlist places across events, without scanning
-- every entry ever made.
CREATE INDEX waitlist_entries_by_user ON waitlist_entries (user_id, joined_at)
    WHERE status IN ('waiting', 'offered');
