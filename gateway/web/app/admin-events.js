// #/admin/events — putting an event on sale at a venue (`POST /v1/admin/events`), with
// every setting `NewEvent` has: title, performer, start, sale opening, seats per person,
// how long a hold lasts, the waiting room and its proof-of-work difficulty, and the refund
// cutoff, and the seating rules (no single seat left alone; until when wheelchair spaces and
// companion seats are kept for buyers who need them). Checked here with the API's bounds
// first; a refusal shows the API's problem.
// Below the form, the events already on sale, each with its holdbacks and its door.
// `?venue=` preselects a venue (the venues page links here after creating one).

import { api } from '../api.js';
import { h, fill, when } from '../util.js';
import { main, toast, isAbort, focusHeading, loading, failure } from './ui.js';
import {
  adminOnly,
  adminTabs,
  checkText,
  checkInt,
  isoFromLocal,
  localFromDate,
  FieldErrors,
  field,
  problemBox,
} from './admin-ui.js';

/** #/admin/events (`venueId`: preselected, from `?venue=`). */
export function viewAdminEvents(scope, venueId = null) {
  document.title = 'Events · Organiser · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'Events');
  const body = h('div', {});
  fill(main, h('div', { class: 'page admin-page' }, adminTabs('#/admin/events'), heading, body));
  focusHeading(heading);
  const refused = adminOnly('Setting up events');
  if (refused) {
    fill(body, refused);
    return;
  }
  const list = eventList(scope);
  fill(body, h('div', { class: 'admin-layout' }, eventForm(scope, venueId, list.load), list.el));
  list.load();
}

function eventForm(scope, venueId, onCreated) {
  const errors = new FieldErrors();
  const problem = problemBox('event-problem');
  const created = h('div', { 'data-testid': 'event-created', hidden: true, class: 'notice', role: 'status' });
  const venue = h('select', { id: 'event-venue', name: 'venue_id', 'data-testid': 'event-venue', required: true }, h('option', { value: '' }, 'Loading venues…'));
  const title = h('input', { id: 'event-title-input', name: 'title', 'data-testid': 'event-title-input', maxlength: '200', required: true, autocomplete: 'off' });
  const performer = h('input', { id: 'event-performer', name: 'performer', 'data-testid': 'event-performer', maxlength: '200', autocomplete: 'off' });
  const startsAt = h('input', { id: 'event-starts', name: 'starts_at', type: 'datetime-local', 'data-testid': 'event-starts', required: true });
  const onSaleAt = h('input', { id: 'event-on-sale', name: 'on_sale_at', type: 'datetime-local', 'data-testid': 'event-on-sale' });
  const maxSeats = h('input', { id: 'event-max-seats', name: 'max_seats_per_user', type: 'number', min: '1', max: '100', step: '1', value: '8', 'data-testid': 'event-max-seats' });
  const holdTtl = h('input', { id: 'event-hold-ttl', name: 'hold_ttl_secs', type: 'number', min: '30', max: '86400', step: '1', value: '600', 'data-testid': 'event-hold-ttl' });
  const waitingRoom = h(
    'select',
    { id: 'event-waiting-room', name: 'waiting_room_enabled', 'data-testid': 'event-waiting-room' },
    h('option', { value: 'auto' }, 'Automatic (on for large venues)'),
    h('option', { value: 'on' }, 'On'),
    h('option', { value: 'off' }, 'Off'),
  );
  const pow = h('input', { id: 'event-pow', name: 'pow_difficulty', type: 'number', min: '0', max: '32', step: '1', placeholder: 'default', 'data-testid': 'event-pow' });
  const refund = h('input', { id: 'event-refund', name: 'refund_cutoff_hours', type: 'number', min: '0', max: '8760', step: '1', value: '24', 'data-testid': 'event-refund' });
  const noSingles = h('input', { id: 'event-no-single-seats', name: 'no_single_seats', type: 'checkbox', checked: true, 'data-testid': 'event-no-single-seats' });
  const accessRelease = h('input', { id: 'event-accessible-release', name: 'accessible_release_at', type: 'datetime-local', 'data-testid': 'event-accessible-release' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'event-submit' }, 'Create event');
  const powField = field('Proof-of-work difficulty (0–32)', pow, 'Leading zero bits a joiner’s browser must find; empty: the server’s default.');
  waitingRoom.addEventListener('change', () => {
    powField.hidden = waitingRoom.value === 'off';
  });
  // A week from now at 20:00 is a fine first guess.
  const start = new Date(Date.now() + 7 * 86400000);
  start.setHours(20, 0, 0, 0);
  startsAt.value = localFromDate(start);

  async function loadVenues() {
    try {
      const r = await api('GET', '/v1/admin/venues?per_page=100', { signal: scope.signal });
      if (!scope.alive) return;
      const venues = r.data.venues;
      fill(
        venue,
        h('option', { value: '' }, venues.length ? 'Choose a venue' : 'No venues yet: create one first'),
        venues.map((v) => h('option', { value: v.id }, `${v.name}${v.city ? `, ${v.city}` : ''} (${(v.reserved_seats + v.sections.filter((s) => s.kind !== 'reserved').reduce((n, s) => n + s.capacity, 0)).toLocaleString()} places)`)),
      );
      if (venueId && venues.some((v) => v.id === venueId)) venue.value = venueId;
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(venue, h('option', { value: '' }, 'Venues could not be loaded'));
      problem.show(err);
    }
  }

  /** The request body, or null after showing what is wrong (inventory.rs `NewEvent`). */
  function collect() {
    errors.clear();
    if (!venue.value) errors.set(venue, 'Choose the venue.');
    errors.set(title, checkText('Title', title.value.trim(), 1, 200));
    errors.set(performer, checkText('Performer', performer.value.trim(), 0, 200));
    const starts = isoFromLocal(startsAt.value);
    if (!starts) errors.set(startsAt, 'When does it start?');
    const onSale = onSaleAt.value ? isoFromLocal(onSaleAt.value) : null;
    if (onSaleAt.value && !onSale) errors.set(onSaleAt, 'Not a time.');
    const saleOpens = onSale ? Date.parse(onSale) : Date.now();
    if (starts && saleOpens > Date.parse(starts)) errors.set(onSaleAt, 'The sale must open before the event starts.');
    const max = checkInt('Seats per person', maxSeats.value, 1, 100, 8);
    errors.set(maxSeats, max.error);
    const ttl = checkInt('Hold window', holdTtl.value, 30, 86400, 600);
    errors.set(holdTtl, ttl.error);
    const difficulty = waitingRoom.value === 'off' ? { value: null } : checkInt('Difficulty', pow.value, 0, 32, null);
    errors.set(pow, difficulty.error);
    const cutoff = checkInt('Refund cutoff', refund.value, 0, 8760, 24);
    errors.set(refund, cutoff.error);
    const release = accessRelease.value ? isoFromLocal(accessRelease.value) : null;
    if (accessRelease.value && !release) errors.set(accessRelease, 'Not a time.');
    if (release && starts && Date.parse(release) > Date.parse(starts)) {
      errors.set(accessRelease, 'Accessible seats are released at the latest when the event starts.');
    }
    if (errors.any) {
      errors.focusFirst();
      return null;
    }
    const body = {
      venue_id: venue.value,
      title: title.value.trim(),
      performer: performer.value.trim(),
      starts_at: starts,
      hold_ttl_secs: ttl.value,
      max_seats_per_user: max.value,
      refund_cutoff_hours: cutoff.value,
    };
    if (onSale) body.on_sale_at = onSale;
    if (waitingRoom.value !== 'auto') body.waiting_room_enabled = waitingRoom.value === 'on';
    if (difficulty.value !== null) body.pow_difficulty = difficulty.value;
    body.no_single_seats = noSingles.checked;
    if (release) body.accessible_release_at = release;
    return body;
  }

  async function onSubmit(e) {
    e.preventDefault();
    problem.clear();
    created.hidden = true;
    const body = collect();
    if (!body) return;
    submit.disabled = true;
    try {
      const r = await api('POST', '/v1/admin/events', { body, signal: scope.signal });
      if (!scope.alive) return;
      const ev = r.data;
      created.dataset.eventId = ev.id;
      fill(
        created,
        h('p', {}, h('strong', {}, ev.title), ` at ${ev.venue.name}: ${ev.capacity.toLocaleString()} places, ${ev.sale_open ? 'on sale now' : `on sale ${when(ev.on_sale_at)}`}${ev.waiting_room_enabled ? `, waiting room on (difficulty ${ev.pow_difficulty})` : ''}.`),
        h(
          'p',
          { class: 'muted small', 'data-testid': 'event-created-rules' },
          `${ev.no_single_seats === false ? 'Single seats may be left alone' : 'No single seat left alone'} · wheelchair spaces and companion seats kept for those who need them ${
            ev.accessible_release_at ? `until ${when(ev.accessible_release_at)}` : 'until the event starts'
          }.`,
        ),
        eventLinks(ev.id),
      );
      created.hidden = false;
      created.scrollIntoView({ block: 'nearest' });
      toast(`Event ${ev.title} created.`, { kind: 'success', timeout: 4000 });
      title.value = '';
      performer.value = '';
      onCreated();
      // The event list is cached by the server for up to a second: look again after it.
      scope.timeout(onCreated, 1200);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      problem.show(err);
    } finally {
      submit.disabled = false;
    }
  }

  loadVenues();
  return h(
    'form',
    { class: 'panel admin-form', 'data-testid': 'event-form', 'aria-labelledby': 'event-form-title', novalidate: true, on: { submit: onSubmit } },
    h('h2', { id: 'event-form-title' }, 'New event'),
    field('Venue', venue),
    h('div', { class: 'field-grid' }, field('Title', title), field('Performer', performer)),
    h(
      'div',
      { class: 'field-grid' },
      field('Starts at', startsAt),
      field('On sale from', onSaleAt, 'Empty: on sale as soon as it is created.'),
    ),
    h(
      'div',
      { class: 'field-grid' },
      field('Seats per person (1–100)', maxSeats),
      field('Hold window, seconds (30–86,400)', holdTtl, 'How long a buyer has to pay for held seats.'),
      field('Full refund until, hours before the start (0–8,760)', refund),
    ),
    h('div', { class: 'field-grid' }, field('Waiting room', waitingRoom), powField),
    h(
      'fieldset',
      { class: 'rules-fieldset' },
      h('legend', {}, 'Seating rules'),
      h(
        'div',
        { class: 'field check-field' },
        h('label', { for: noSingles.id, class: 'check' }, noSingles, ' No single seats left alone'),
        h('p', { class: 'muted small' }, 'A hold that would leave one free seat between taken seats, a row’s end or an aisle is refused, with seats that leave none alone suggested instead.'),
      ),
      field(
        'Accessible seats kept until',
        accessRelease,
        'Wheelchair spaces and companion seats are sold only to buyers who need a wheelchair space until then; empty: until the event starts.',
      ),
    ),
    problem.el,
    h('div', { class: 'actions' }, submit),
    created,
  );
}

/** The organiser's ways into an event. */
function eventLinks(id) {
  return h(
    'p',
    { class: 'admin-links' },
    h('a', { href: `#/admin/events/${id}/control-room`, 'data-testid': 'event-control-room-link' }, 'Control room'),
    h('a', { href: `#/admin/events/${id}/holdbacks`, 'data-testid': 'event-holdbacks-link' }, 'Holdbacks'),
    h('a', { href: `#/checkin/${id}`, 'data-testid': 'event-checkin-link' }, 'Check-in at the door'),
    h('a', { href: `#/events/${id}`, 'data-testid': 'event-public-link' }, 'Public page'),
  );
}

/** Events by start time (the public list: 100 a page is plenty at a door or a desk). */
function eventList(scope) {
  const items = h('ul', { class: 'admin-list', 'data-testid': 'admin-event-list' });
  const el = h('section', { class: 'admin-side', 'aria-labelledby': 'admin-events-title' }, h('h2', { id: 'admin-events-title' }, 'On the calendar'), items);
  async function load() {
    fill(items, loading());
    try {
      const r = await api('GET', '/v1/events?per_page=100', { signal: scope.signal });
      if (!scope.alive) return;
      fill(
        items,
        r.data.events.length
          ? r.data.events.map((e) =>
              h(
                'li',
                { class: 'admin-item', 'data-testid': 'admin-event-item', 'data-event-id': e.id },
                h('h3', {}, e.title),
                h('p', { class: 'muted small' }, `${e.venue.name} · ${when(e.starts_at)} · ${e.sale_open ? 'on sale' : `on sale ${when(e.on_sale_at)}`}`),
                eventLinks(e.id),
              ),
            )
          : h('li', { class: 'empty' }, 'No events yet.'),
      );
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(items, h('li', {}, failure(err, load)));
    }
  }
  return { el, load };
}
