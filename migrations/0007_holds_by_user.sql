-- `GET /v1/me/holds`: a user's live holds across events, newest first.
CREATE INDEX holds_by_user_active ON holds (user_id, created_at DESC) WHERE status = 'active';
