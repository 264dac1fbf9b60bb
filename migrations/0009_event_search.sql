-- Event search (GET /v1/events?query=…): a full-text document per event over its title and
-- performer (weight A) and its venue's name and city (weight B), GIN-indexed.
--
-- The `simple` configuration: names and cities are not English prose, so no stemming and
-- no stop words ("The Who" must stay findable); it only lowercases. The venue's name and
-- city live in `venues`, so the document is stored on the event when it is created (the
-- gateway computes it with event_search_document in its INSERT); there is no venue update.

CREATE FUNCTION event_search_document(title text, performer text, venue text, city text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(title, '')), 'A')
        || setweight(to_tsvector('simple', coalesce(performer, '')), 'A')
        || setweight(to_tsvector('simple', coalesce(venue, '')), 'B')
        || setweight(to_tsvector('simple', coalesce(city, '')), 'B')
$$;

ALTER TABLE events ADD COLUMN search tsvector;

UPDATE events e
   SET search = event_search_document(e.title, e.performer, v.name, v.city)
  FROM venues v
 WHERE v.id = e.venue_id;

-- A writer that does not supply the document (an older gateway still running while the
-- schema moved on) gets it filled in, so no event is ever unsearchable.
CREATE FUNCTION events_fill_search() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.search IS NULL THEN
        SELECT event_search_document(NEW.title, NEW.performer, v.name, v.city)
          INTO NEW.search
          FROM venues v
         WHERE v.id = NEW.venue_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_fill_search BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_fill_search();

ALTER TABLE events ALTER COLUMN search SET NOT NULL;

CREATE INDEX events_search ON events USING gin (search);

-- city=: case-insensitive exact match.
CREATE INDEX venues_city_lower ON venues (lower(city));
