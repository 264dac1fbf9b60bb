// The shared state of one event page (#/events/{id}). The page is made of parts, one
// module each (event-selection, event-seat-info, event-waitlists, event-hold, event-live,
// event-pickers; event-page.js puts them together): instead of sharing the variables of
// one big closure, they all get this one plain object, so what they share is written
// down here, once. A part keeps everything else to itself.

/** Upper bound of seats in one request (the gateway's `max_seats_per_request` default). */
export const MAX_SEATS_PER_REQUEST = 10;

/** A new event page's state (for `scope`'s lifetime). */
export function eventPageState(scope, eventId) {
  return {
    scope,
    eventId,
    /** The event (`EventView`) once loaded; replaced when the sale opens. */
    event: null,
    /** The `SeatMap` (seatmap.js) once loaded. */
    seatMap: null,
    /** Set once the map has its first snapshot and the panels are drawn. */
    loaded: false,
    /** The `WaitingRoom` (waiting-room.js), when the sale has one. */
    room: null,
    /** "I need a wheelchair space" is ticked: holds ask with `accessible: true`. */
    accessible: false,
    /** The seats picked but not held yet: seat id -> seat info (from the map). */
    selected: new Map(),
    /** Seats one request may still ask for. */
    maxSel: 8,
    /** Seats this user may still hold at this event. */
    maxSelRaw: 8,
    /** A hold request is in flight ... */
    busy: false,
    /** ... for these seats (the map's changes do not drop them from the selection). */
    inFlight: new Set(),

    // The parts, set by event-page.js; they call each other through these.
    /** event-selection.js: the selection panel, what a click on a seat does. */
    selection: null,
    /** event-seat-info.js: the panel about one seat that is not simply selectable. */
    seatInfo: null,
    /** event-waitlists.js: joining a seat's waitlist, the user's waitlists here. */
    waitlists: null,
    /** event-hold.js: asking for a hold, its outcome, the user's holds at this event. */
    holding: null,
    /** event-live.js: the map's snapshot and live changes, the counts. */
    live: null,
    /** event-pickers.js: seat by number, best available per section. */
    pickers: null,
    /** event-page.js (`mapLegend`): the map's legend and seat filters. */
    legend: null,
  };
}

/** Whether this user may ask for seats now (the waiting room let them in, or there is none). */
export function admitted(page) {
  return !(page.event && page.event.waiting_room_enabled) || !page.room || !!page.room.token();
}
