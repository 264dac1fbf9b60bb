-- Seating rules: price categories and seat attributes per seat range, and the two event
-- settings the consumer enforces when it decides a hold.
--
-- A venue's layout never changes once it exists, so these are written with the venue and
-- read once per service into the cached layout (common/src/layout.rs).

-- Price categories of a venue ("Premium", "Restricted view"): a seat range may name one,
-- and the seat then costs the category's price instead of its section's.
CREATE TABLE price_categories (
    venue_id     uuid NOT NULL REFERENCES venues (id),
    code         text NOT NULL CHECK (code ~ '^[A-Za-z0-9_]{1,16}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_cents  bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    ordinal      int NOT NULL CHECK (ordinal >= 0),
    PRIMARY KEY (venue_id, code),
    UNIQUE (venue_id, ordinal)
);

-- Rectangles of a reserved section (rows × seats, 1-based, inclusive) with attributes
-- and/or a price category. A seat's attributes are the union over the ranges covering
-- it; its price is that of the last covering range (by ordinal) naming a category.
CREATE TABLE seat_ranges (
    section_id      uuid NOT NULL REFERENCES sections (id),
    ordinal         int NOT NULL CHECK (ordinal >= 0),
    row_from        int NOT NULL CHECK (row_from >= 1),
    row_to          int NOT NULL,
    seat_from       int NOT NULL CHECK (seat_from >= 1),
    seat_to         int NOT NULL,
    attributes      text[] NOT NULL DEFAULT '{}'
        CHECK (attributes <@ ARRAY['accessible', 'companion', 'restricted_view', 'aisle']),
    price_category  text,
    PRIMARY KEY (section_id, ordinal),
    CHECK (row_to >= row_from AND seat_to >= seat_from)
);

-- no_single_seats: a hold may not leave a lone free seat in a reserved section.
-- accessible_release_at: until then accessible and companion seats are kept for buyers
-- who say they need an accessible space (NULL: kept until the event starts).
-- Events already on sale keep selling as they did (the rule starts off for them); new
-- events get it unless the organiser turns it off, as the API's default says too.
ALTER TABLE events
    ADD COLUMN no_single_seats boolean NOT NULL DEFAULT false,
    ADD COLUMN accessible_release_at timestamptz;
ALTER TABLE events ALTER COLUMN no_single_seats SET DEFAULT true;
