// The seatq browser app: browse events, pick seats on a live seat map, hold them, pay at the
// payment provider, see bookings and tickets, wait for taken seats, queue in the waiting
// room of a high-demand sale. Plain ES modules, no build step: app.js (views and routing),
// api.js (HTTP and live streams), seatmap.js (canvas seat map), util.js (DOM and formatting
// helpers), pow.js (the waiting room's proof of work, in pow-worker.js Web Workers),
// sha256.js (SHA-256 and the nonce search).
//
// Routes (hash, so reloads and the payment page's "Back to seatq" link work):
//   #/                 events, with search
//   #/events/{id}      an event: seat map, selection, hold, waitlists
//   #/holds            my active holds (waitlist offers included)
//   #/holds/{id}       one hold: countdown, pay, cancel; after payment, the booking
//   #/bookings         my bookings with tickets
//   #/bookings/{id}    one booking: tickets with QR codes, cancel, transfer
//
// Stable data-testid attributes for browser tests:
//   header / account   login-form, login-name (input), login-button, login-error,
//                      current-user, logout-button, nav-events, nav-holds, nav-bookings
//   live regions       status-message (polite, toasts), alert-message (assertive),
//                      toast (each message; data-kind), seat-announce (seat map cursor)
//   waitlist offers    offer-banner (data-hold-id), offer-seats, offer-countdown,
//                      offer-pay, offer-decline
//   events list        event-search, events-summary, event-list, event-card (data-event-id),
//                      event-link (data-event-id), events-prev, events-next, events-empty
//   waiting room       queue-panel (data-status = login | join | solving | waiting |
//   (event page, when  admitted | expired | error; data-ticket once in line; after a proof
//   the sale has one)  of work data-pow-ms, data-pow-difficulty), queue-join (join / rejoin),
//                      queue-solving (the proof of work running, with a progress bar),
//                      queue-position (data-position), queue-length (data-length),
//                      queue-eta (data-eta-secs), queue-provisional (before the sale opens:
//                      places are drawn at random then), queue-sale-countdown,
//                      queue-admitted ("You're in — N minutes to shop"),
//                      queue-admission-countdown, queue-expired, queue-note (retries,
//                      errors). Holds are refused with hold-reason data-reason =
//                      admission_required until admitted.
//   event page         event-title, sale-status, sale-countdown (until on sale),
//                      live-indicator (data-mode = live | polling | connecting),
//                      map-counts, seat-map, section-{CODE}, section-available-{CODE},
//                      zoom-{CODE} (aria-pressed), seat-tooltip (data-seat-id,
//                      data-status), ga-quantity-{CODE}, ga-hold-{CODE},
//                      seat-canvas-{CODE} (data-rows, data-cols, data-pitch = CSS px per
//                      seat): seat (row r, seat s) is centred at ((s-0.5)*pitch,
//                      (r-0.5)*pitch) of the canvas. A click on a section drawn at under
//                      9 px a seat (14 on touch) only enlarges it (the pitch changes,
//                      zoom-{CODE} turns aria-pressed=true): read data-pitch again and
//                      click again. Keyboard: focus the canvas, arrows, Enter.
//   selection          selection, selection-count, selected-seat (data-seat-id),
//                      selection-remove (data-seat-id), selection-clear, selection-total,
//                      hold-button (reads "Log in to hold seats" when signed out)
//   seat by id / best  seat-id-input, seat-add, seat-id-error, best-quantity,
//                      section-list, best-{CODE}
//   hold request       hold-status (data-status = pending | retrying | held | rejected |
//                      error), hold-ahead, hold-reason, unavailable-seats,
//                      alternative-hold, hold-retry-stop
//   a hold             hold-panel (data-hold-id, data-status = active | sold | cancelled |
//                      expired, data-from-waitlist), hold-seats, hold-countdown,
//                      hold-total, hold-extended, hold-pay, hold-cancel, hold-link,
//                      hold-confirming, hold-booking-link, my-holds, holds-empty
//   seat info          seat-info (data-seat-id, data-status), seat-info-status,
//                      waitlist-join, login-to-wait
//   waitlists          waitlists, waitlist-entry (data-seat-id, data-status),
//                      waitlist-position, waitlist-leave
//   bookings           bookings-list, bookings-empty, booking (data-booking-id,
//                      data-status), booking-link, booking-status, booking-amount,
//                      booking-refund, booking-cancel, booking-cancel-confirm,
//                      booking-cancel-keep, ticket (data-ticket-id, data-status),
//                      ticket-seat, ticket-status, ticket-holder, ticket-qr (img),
//                      transfer-to, transfer-button, transfer-error

import {
  api,
  ApiError,
  LiveFeed,
  currentSession,
  setSession,
  onSessionChange,
  onUnauthorized,
  fetchBlobUrl,
} from './api.js';
import { SeatMap, parseSeatId } from './seatmap.js';
import { solve as solvePow, warm as warmPow } from './pow.js';
import {
  h,
  fill,
  money,
  setCurrency,
  when,
  roughly,
  sleep,
  uuid,
  countdown,
  tickCountdowns,
  onCountdownExpired,
} from './util.js';

/** Search events on the server (`?query=`) instead of filtering here; flip when it exists. */
const SERVER_SEARCH = true;
const EVENTS_PER_PAGE = 20;
/** Upper bound of seats in one request (the gateway's `max_seats_per_request` default). */
const MAX_SEATS_PER_REQUEST = 10;
const POLL_MAP_MS = 3000;
const POLL_ME_MS = 5000;

const main = document.getElementById('main');

// ---------------------------------------------------------------------------------------
// Small app-wide pieces: messages, a bus for live user events, scopes for views.

const toastsEl = document.getElementById('toasts');
const alertsEl = document.getElementById('alerts');
const announceEl = document.getElementById('announce');

/** A visible message, announced politely (or assertively with `urgent`). */
function toast(text, { kind = 'info', urgent = false, timeout = 8000, action = null } = {}) {
  const el = h(
    'div',
    { class: `toast toast-${kind}`, 'data-testid': 'toast', 'data-kind': kind },
    h('span', {}, text),
    action,
    h(
      'button',
      {
        type: 'button',
        class: 'toast-close',
        'aria-label': 'Dismiss',
        on: { click: () => el.remove() },
      },
      '×',
    ),
  );
  const stack = urgent ? alertsEl : toastsEl;
  stack.appendChild(el);
  // A busy on-sale can say a lot: keep the newest few.
  while (stack.children.length > 4) stack.firstElementChild.remove();
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}

let announceTimer;
/** Screen-reader-only announcement (seat map cursor and the like). */
function announce(text) {
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    announceEl.textContent = text;
  }, 60);
}

/** User events from the live stream (or synthesised by polling), by kind. */
const bus = new EventTarget();
function emit(kind, data) {
  bus.dispatchEvent(new CustomEvent(kind, { detail: data }));
}

/** A view's lifetime: timers, listeners and requests end when the route changes. */
class Scope {
  constructor() {
    this.alive = true;
    this.cleanups = [];
    this.controller = new AbortController();
  }

  get signal() {
    return this.controller.signal;
  }

  on(fn) {
    this.cleanups.push(fn);
  }

  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.on(() => target.removeEventListener(type, fn));
  }

  /** Subscribe to a user event on the bus for this view's lifetime. */
  onUser(kind, fn) {
    this.listen(bus, kind, (e) => fn(e.detail));
  }

  timeout(fn, ms) {
    const t = setTimeout(() => this.alive && fn(), ms);
    this.on(() => clearTimeout(t));
    return t;
  }

  interval(fn, ms) {
    const t = setInterval(() => this.alive && fn(), ms);
    this.on(() => clearInterval(t));
    return t;
  }

  close() {
    this.alive = false;
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (err) {
        console.error(err);
      }
    }
  }
}

function errorText(err) {
  if (err instanceof ApiError) return err.detail;
  return (err && err.message) || String(err);
}

function isAbort(err) {
  return err && err.name === 'AbortError';
}

// ---------------------------------------------------------------------------------------
// Session: dev login, logout, the header.

const accountEl = document.getElementById('account');

function renderAccount() {
  const session = currentSession();
  if (session) {
    fill(
      accountEl,
      h(
        'span',
        { class: 'who' },
        'Signed in as ',
        h('strong', { 'data-testid': 'current-user' }, session.user_id),
      ),
      h(
        'button',
        { type: 'button', class: 'link-button', 'data-testid': 'logout-button', on: { click: logout } },
        'Log out',
      ),
    );
    return;
  }
  const input = h('input', {
    id: 'login-name',
    name: 'user_id',
    'data-testid': 'login-name',
    autocomplete: 'username',
    required: true,
    maxlength: '128',
    placeholder: 'Your name',
    spellcheck: 'false',
    autocapitalize: 'none',
  });
  const error = h('p', { class: 'form-error', 'data-testid': 'login-error', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-button' }, 'Log in');
  const form = h(
    'form',
    { class: 'login', 'data-testid': 'login-form', on: { submit: (e) => login(e, input, button, error) } },
    h('label', { for: 'login-name', class: 'sr-only' }, 'Your name'),
    input,
    button,
    error,
  );
  fill(accountEl, form);
}

async function login(event, input, button, error) {
  event.preventDefault();
  const name = input.value.trim();
  error.hidden = true;
  if (!name || /\s/.test(name)) {
    error.textContent = 'Use a name without spaces, for example alice.';
    error.hidden = false;
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const r = await api('POST', '/v1/dev/token', {
      body: { user_id: name, role: 'user' },
      auth: false,
    });
    setSession({
      token: r.data.token,
      user_id: r.data.user_id,
      role: r.data.role,
      expires_at: r.data.expires_at,
    });
    toast(`Welcome, ${r.data.user_id}.`, { kind: 'success', timeout: 4000 });
  } catch (err) {
    error.textContent =
      err.status === 404 ? 'Signing in is not available on this server.' : errorText(err);
    error.hidden = false;
    button.disabled = false;
  }
}

function logout() {
  setSession(null);
  toast('You are signed out.', { timeout: 4000 });
}

/** Send the user to the login field (e.g. "Log in to hold seats"). */
function promptLogin(message = 'Log in first: type a name and press Log in.') {
  toast(message, { kind: 'warn' });
  const input = document.getElementById('login-name');
  if (input) {
    input.scrollIntoView({ block: 'center' });
    input.focus();
  }
}

onUnauthorized(() => {
  if (!currentSession()) return;
  setSession(null);
  toast('Your session has ended. Log in again to continue.', { kind: 'warn', urgent: true });
});

let expiryTimer;
function watchTokenExpiry(session) {
  clearTimeout(expiryTimer);
  if (session && session.expires_at) {
    const ms = session.expires_at * 1000 - Date.now();
    // setTimeout is limited to ~24.8 days; tokens live a day.
    if (ms < 2 ** 31 - 1) {
      expiryTimer = setTimeout(() => {
        setSession(null);
        toast('Your session has ended. Log in again to continue.', { kind: 'warn', urgent: true });
      }, Math.max(0, ms));
    }
  }
}

// ---------------------------------------------------------------------------------------
// My holds (kept current from the user stream, or by polling), waitlist offers.

/** Active holds of the signed-in user by hold id (`HoldView`s). */
const myHolds = new Map();
const holdListeners = new Set();
/** Offers the user declined in this tab, so the banner does not come back meanwhile. */
const declinedOffers = new Set();

function onHoldsChange(fn) {
  holdListeners.add(fn);
  return () => holdListeners.delete(fn);
}

function holdsChanged() {
  renderOffers();
  for (const fn of holdListeners) fn();
}

function holdsSignature() {
  return JSON.stringify([...myHolds.values()].map((hd) => [hd.hold_id, hd.status, hd.expires_at, hd.extended]));
}

let refreshingHolds = null;
async function refreshHolds() {
  if (!currentSession()) {
    myHolds.clear();
    holdsChanged();
    return;
  }
  if (refreshingHolds) return refreshingHolds;
  refreshingHolds = (async () => {
    try {
      const r = await api('GET', '/v1/me/holds');
      const before = holdsSignature();
      const seen = new Set();
      for (const hold of r.data.holds) {
        seen.add(hold.hold_id);
        if (hold.from_waitlist && !myHolds.has(hold.hold_id) && !offersAnnounced.has(hold.hold_id)) {
          offersAnnounced.add(hold.hold_id);
          toast(`A seat you waited for is yours: ${hold.seat_ids.join(', ')}. Pay before the timer runs out.`, {
            kind: 'success',
            urgent: true,
          });
        }
        myHolds.set(hold.hold_id, hold);
      }
      for (const [id, hold] of [...myHolds.entries()]) {
        if (seen.has(id)) continue;
        myHolds.delete(id);
        holdEnded(hold);
      }
      // Re-rendering hold cards would take the focus off their buttons: only on change.
      if (holdsSignature() !== before) holdsChanged();
    } finally {
      refreshingHolds = null;
    }
  })();
  return refreshingHolds;
}

/**
 * A hold left the active list without the user stream saying why (polling): ask, and tell
 * the user if it ran out.
 */
async function holdEnded(hold) {
  try {
    const r = await api('GET', `/v1/holds/${hold.hold_id}`);
    const v = r.data;
    if (v.status === 'expired') {
      toast(`Your hold on ${seatList(v)} expired; the seats are back on sale.`, { kind: 'warn', urgent: true, timeout: 15000 });
      emit('hold_released', { hold_id: v.hold_id, user_id: currentSession()?.user_id, reason: 'expired', local: true });
    } else if (v.status === 'cancelled') {
      emit('hold_released', { hold_id: v.hold_id, user_id: currentSession()?.user_id, reason: 'cancelled', local: true });
    } else if (v.status === 'sold' && v.booking_id) {
      emit('booking_confirmed', { booking_id: v.booking_id, hold_id: v.hold_id, local: true });
    }
  } catch {
    // not ours to explain
  }
}

/** Put a hold we just heard about into the list (before the next refresh confirms it). */
function rememberHold(hold) {
  if (hold.status === 'active') myHolds.set(hold.hold_id, hold);
  else myHolds.delete(hold.hold_id);
  holdsChanged();
}

/** Learn about a hold by id (e.g. a waitlist offer seen on the seat's waitlist). */
const adopting = new Set();
async function adoptHold(holdId) {
  if (adopting.has(holdId) || myHolds.has(holdId)) return;
  adopting.add(holdId);
  try {
    const r = await api('GET', `/v1/holds/${holdId}`);
    if (r.data.status === 'active' && !myHolds.has(holdId)) {
      if (r.data.from_waitlist && !offersAnnounced.has(holdId)) {
        offersAnnounced.add(holdId);
        toast(`A seat you waited for is yours: ${r.data.seat_ids.join(', ')}. Pay before the timer runs out.`, {
          kind: 'success',
          urgent: true,
        });
      }
      rememberHold(r.data);
    }
  } catch {
    // the next refresh tries again
  } finally {
    adopting.delete(holdId);
  }
}

/** Offers already announced (kept for the tab's life: the payment page round trip reloads). */
const offersAnnounced = {
  ids: new Set(JSON.parse(sessionStorage.getItem('seatq.offers') || '[]')),
  has(id) {
    return this.ids.has(id);
  },
  add(id) {
    this.ids.add(id);
    sessionStorage.setItem('seatq.offers', JSON.stringify([...this.ids].slice(-50)));
  },
};
const offersEl = document.getElementById('offers');

function renderOffers() {
  const onItsPage = (location.hash.match(/^#\/holds\/([^/?]+)$/) || [])[1];
  const offers = [...myHolds.values()].filter(
    (hold) =>
      hold.from_waitlist &&
      hold.status === 'active' &&
      hold.hold_id !== onItsPage &&
      !declinedOffers.has(hold.hold_id) &&
      Date.parse(hold.expires_at) > Date.now(),
  );
  fill(
    offersEl,
    offers.map((hold) =>
      h(
        'section',
        {
          class: 'offer-banner',
          'data-testid': 'offer-banner',
          'data-hold-id': hold.hold_id,
          'aria-labelledby': `offer-${hold.hold_id}`,
        },
        h(
          'div',
          { class: 'offer-text' },
          h('h2', { id: `offer-${hold.hold_id}` }, 'A seat you waited for is yours'),
          h(
            'p',
            {},
            h('strong', { 'data-testid': 'offer-seats' }, hold.seat_ids.join(', ') || `${hold.quantity} places`),
            ' is held for you. Pay within ',
            countdown(hold.expires_at, { 'data-testid': 'offer-countdown' }),
            ' or it goes to the next person.',
          ),
        ),
        h(
          'div',
          { class: 'actions' },
          h(
            'button',
            { type: 'button', class: 'primary', 'data-testid': 'offer-pay', on: { click: (e) => pay(hold, e.currentTarget) } },
            'Pay now',
          ),
          h(
            'button',
            {
              type: 'button',
              'data-testid': 'offer-decline',
              on: {
                click: async (e) => {
                  declinedOffers.add(hold.hold_id);
                  await cancelHold(hold, e.currentTarget);
                },
              },
            },
            'Decline',
          ),
          h('a', { href: `#/holds/${hold.hold_id}`, class: 'offer-link' }, 'Details'),
        ),
      ),
    ),
  );
}

/** Open (or reuse) the payment and go to the provider's page. */
async function pay(hold, button) {
  if (button) button.disabled = true;
  try {
    const r = await api('POST', `/v1/holds/${hold.hold_id}/checkout`);
    setCurrency(r.data.currency);
    sessionStorage.setItem(`seatq.paying.${hold.hold_id}`, String(Date.now()));
    toast(`Taking you to the payment page (${money(r.data.amount_cents, r.data.currency)})…`, { timeout: 0 });
    location.assign(r.data.payment_url);
  } catch (err) {
    if (button) button.disabled = false;
    if (err.code === 'hold_paid') {
      location.hash = `#/holds/${hold.hold_id}`;
      return;
    }
    toast(errorText(err), { kind: 'error', urgent: true });
    if (err.status === 409) refreshHolds().catch(() => {});
  }
}

/** Release a hold; resolves to true when it is gone. */
async function cancelHold(hold, button) {
  if (button) button.disabled = true;
  try {
    const r = await api('DELETE', `/v1/holds/${hold.hold_id}`);
    if (r.status === 202) {
      toast('Releasing your seats…', { timeout: 3000 });
      for (let i = 0; i < 20; i++) {
        await sleep(1000);
        const v = await api('GET', `/v1/holds/${hold.hold_id}`);
        if (v.data.status !== 'active') break;
      }
    }
    myHolds.delete(hold.hold_id);
    holdsChanged();
    emit('hold_released', { hold_id: hold.hold_id, reason: 'cancelled', local: true });
    toast(`Released ${hold.seat_ids.join(', ') || 'your places'}.`, { timeout: 5000 });
    return true;
  } catch (err) {
    if (button) button.disabled = false;
    if (err.code === 'hold_not_active' || err.code === 'hold_not_found') {
      refreshHolds().catch(() => {});
    }
    toast(errorText(err), { kind: 'error', urgent: true });
    return false;
  }
}

// Live user events (`/v1/me/stream`), falling back to polling `/v1/me/holds`.
let meFeed = null;
/** What this tab already told the user about, so the stream does not say it twice. */
const cancelledHere = new Set(); // booking ids
const confirmedAnnounced = new Set(); // hold ids

const USER_EVENTS = [
  'hold_created',
  'hold_rejected',
  'hold_released',
  'hold_extended',
  'reservation_expiring',
  'waitlist_offer',
  'waitlist_updated',
  'payment_failed',
  'booking_confirmed',
  'booking_cancelled',
  'refund_issued',
  'queue_position',
  'admitted',
];

function startMeFeed() {
  if (meFeed) meFeed.stop();
  meFeed = null;
  const session = currentSession();
  if (!session) return;
  const handlers = {};
  for (const kind of USER_EVENTS) handlers[kind] = (data) => onUserEvent(kind, data || {});
  meFeed = new LiveFeed({
    url: () => `/v1/me/stream?access_token=${encodeURIComponent(currentSession()?.token || '')}`,
    handlers,
    poll: () => refreshHolds(),
    pollMs: POLL_ME_MS,
    onOpen: () => refreshHolds().catch(() => {}),
    onMode: (mode) => {
      document.body.dataset.userFeed = mode;
    },
  }).start();
}

function onUserEvent(kind, data) {
  switch (kind) {
    case 'hold_created':
      if (data.hold_id) {
        rememberHold({
          hold_id: data.hold_id,
          event_id: data.event_id,
          status: 'active',
          seat_ids: data.seat_ids || [],
          section: data.section || null,
          quantity: data.quantity || (data.seat_ids || []).length,
          created_at: data.occurred_at,
          expires_at: data.expires_at,
          extended: false,
          from_waitlist: false,
        });
      }
      break;
    case 'hold_released': {
      const hold = myHolds.get(data.hold_id);
      myHolds.delete(data.hold_id);
      holdsChanged();
      if (hold && data.reason === 'expired') {
        toast(`Your hold on ${hold.seat_ids.join(', ') || 'your places'} expired; the seats are back on sale.`, {
          kind: 'warn',
          urgent: true,
          timeout: 15000,
        });
      }
      break;
    }
    case 'hold_extended': {
      const hold = myHolds.get(data.hold_id);
      if (hold) rememberHold({ ...hold, expires_at: data.expires_at, extended: true });
      for (const el of document.querySelectorAll(`[data-hold-id="${data.hold_id}"] [data-expires]`)) {
        el.dataset.expires = data.expires_at;
        el.setAttribute('datetime', data.expires_at);
      }
      toast('Your payment is still in progress, so your seats are held a little longer.', { kind: 'info' });
      break;
    }
    case 'reservation_expiring': {
      const hold = myHolds.get(data.hold_id);
      const left = Math.max(0, Math.round((Date.parse(data.expires_at) - Date.now()) / 1000));
      toast(
        `Hurry: your seats ${hold ? hold.seat_ids.join(', ') + ' ' : ''}are held for ${left < 90 ? `${left} more seconds` : roughly(left)}. Pay now to keep them.`,
        {
          kind: 'warn',
          urgent: true,
          timeout: 20000,
          action: h('a', { href: `#/holds/${data.hold_id}`, class: 'toast-action' }, 'Pay'),
        },
      );
      break;
    }
    case 'waitlist_offer':
      offersAnnounced.add(data.hold_id);
      rememberHold({
        hold_id: data.hold_id,
        event_id: data.event_id,
        status: 'active',
        seat_ids: data.seat_ids || [],
        section: null,
        quantity: (data.seat_ids || []).length,
        created_at: data.occurred_at,
        expires_at: data.expires_at,
        extended: false,
        from_waitlist: true,
      });
      toast(`A seat you waited for is yours: ${(data.seat_ids || []).join(', ')}. Pay before the timer runs out.`, {
        kind: 'success',
        urgent: true,
      });
      refreshHolds().catch(() => {});
      break;
    case 'payment_failed':
      sessionStorage.removeItem(`seatq.paying.${data.hold_id}`);
      toast('Your payment did not go through. Your seats are still held: you can try again.', {
        kind: 'error',
        urgent: true,
        timeout: 15000,
      });
      break;
    case 'booking_confirmed': {
      sessionStorage.removeItem(`seatq.paying.${data.hold_id}`);
      myHolds.delete(data.hold_id);
      holdsChanged();
      if (confirmedAnnounced.has(data.hold_id)) break;
      confirmedAnnounced.add(data.hold_id);
      const n = (data.ticket_ids || []).length;
      toast(`Booked! ${n} ticket${n === 1 ? ' is' : 's are'} yours.`, {
        kind: 'success',
        timeout: 12000,
        action: h('a', { href: `#/bookings/${data.booking_id}`, class: 'toast-action' }, 'See tickets'),
      });
      break;
    }
    case 'booking_cancelled':
      if (!cancelledHere.has(data.booking_id)) {
        toast(`Booking cancelled. Refund: ${money(data.refund_cents)}.`, { kind: 'info' });
      }
      break;
    case 'refund_issued':
      toast(`${money(data.amount_cents)} was refunded to you.`, { kind: 'success' });
      break;
    case 'admitted':
      // On the event's page its waiting room says so; elsewhere, say it here.
      if (data.event_id && location.hash !== `#/events/${data.event_id}`) {
        eventDetail(data.event_id)
          .then((ev) =>
            toast(`It’s your turn: you can hold seats for ${ev.title} now.`, {
              kind: 'success',
              urgent: true,
              timeout: 0,
              action: h('a', { href: `#/events/${data.event_id}`, class: 'toast-action' }, 'Shop now'),
            }),
          )
          .catch(() => {});
      }
      break;
    default:
      break;
  }
  emit(kind, data);
}

// ---------------------------------------------------------------------------------------
// Shared data: event details (cached briefly).

const eventCache = new Map();

function eventDetail(id, { fresh = false } = {}) {
  const hit = eventCache.get(id);
  if (hit && !fresh && Date.now() - hit.at < 60000) return hit.promise;
  const promise = api('GET', `/v1/events/${encodeURIComponent(id)}`).then((r) => r.data);
  eventCache.set(id, { at: Date.now(), promise });
  promise.catch(() => eventCache.delete(id));
  return promise;
}

/** The price of a hold from the event's section prices, or null. */
function holdTotal(hold, event) {
  if (!event) return null;
  const prices = new Map(event.sections.map((s) => [s.code, s.price_cents]));
  if (hold.seat_ids && hold.seat_ids.length) {
    let total = 0;
    for (const id of hold.seat_ids) {
      const p = parseSeatId(id);
      const price = p && prices.get(p.code);
      if (price == null) return null;
      total += price;
    }
    return total;
  }
  if (hold.section && prices.has(hold.section)) return prices.get(hold.section) * hold.quantity;
  return null;
}

function seatList(hold) {
  if (hold.seat_ids && hold.seat_ids.length) return hold.seat_ids.join(', ');
  return `${hold.quantity} place${hold.quantity === 1 ? '' : 's'}${hold.section ? ` in ${hold.section}` : ''}`;
}

/** A hold with its countdown and actions (`hold-panel`). */
function holdCard(hold, { event = null, link = true, onEnded = null } = {}) {
  const total = holdTotal(hold, event);
  const active = hold.status === 'active' && Date.parse(hold.expires_at) > Date.now();
  const title = {
    active: hold.from_waitlist ? 'Waitlist offer: held for you' : 'Your seats are held',
    sold: 'Paid: these seats are yours',
    cancelled: 'Released',
    expired: 'Expired',
  }[active ? 'active' : hold.status === 'active' ? 'expired' : hold.status] || hold.status;
  const payBtn = h(
    'button',
    { type: 'button', class: 'primary', 'data-testid': 'hold-pay', on: { click: (e) => pay(hold, e.currentTarget) } },
    total != null ? `Pay ${money(total)}` : 'Pay',
  );
  const cancelBtn = h(
    'button',
    {
      type: 'button',
      'data-testid': 'hold-cancel',
      on: {
        click: async (e) => {
          if (await cancelHold(hold, e.currentTarget)) onEnded && onEnded();
        },
      },
    },
    hold.from_waitlist ? 'Decline' : 'Cancel hold',
  );
  return h(
    'section',
    {
      class: `hold-card status-${hold.status}${hold.from_waitlist ? ' from-waitlist' : ''}`,
      'data-testid': 'hold-panel',
      'data-hold-id': hold.hold_id,
      'data-status': hold.status,
      'data-from-waitlist': String(!!hold.from_waitlist),
    },
    h('h3', {}, title),
    h('p', { class: 'hold-seats' }, h('span', { 'data-testid': 'hold-seats' }, seatList(hold))),
    total != null ? h('p', { class: 'muted' }, 'Total ', h('strong', { 'data-testid': 'hold-total' }, money(total))) : null,
    active
      ? h(
          'p',
          { class: 'hold-timer' },
          'Pay within ',
          countdown(hold.expires_at, { 'data-testid': 'hold-countdown', 'data-hold-id': hold.hold_id }),
          ' or the seats go back on sale.',
        )
      : null,
    hold.extended
      ? h('p', { class: 'muted', 'data-testid': 'hold-extended' }, 'Extended while your payment is processed.')
      : null,
    active ? h('div', { class: 'actions' }, payBtn, cancelBtn) : null,
    hold.status === 'sold' && hold.booking_id
      ? h('p', {}, h('a', { href: `#/bookings/${hold.booking_id}`, 'data-testid': 'hold-booking-link' }, 'See your tickets'))
      : null,
    link ? h('p', { class: 'muted small' }, h('a', { href: `#/holds/${hold.hold_id}`, 'data-testid': 'hold-link' }, 'Hold details')) : null,
  );
}

// ---------------------------------------------------------------------------------------
// Router.

let scope = null;
let currentView = null;

const routes = [
  [/^#?\/?$/, viewEvents],
  [/^#\/events\/([^/?]+)$/, viewEvent],
  [/^#\/holds$/, viewHolds],
  [/^#\/holds\/([^/?]+)$/, viewHold],
  [/^#\/bookings$/, viewBookings],
  [/^#\/bookings\/([^/?]+)$/, viewBooking],
];

function route() {
  if (scope) scope.close();
  scope = new Scope();
  const hash = location.hash || '#/';
  document.querySelectorAll('nav a').forEach((a) => {
    const target = a.getAttribute('href');
    const current = target === '#/' ? hash === '#/' || hash.startsWith('#/events') : hash.startsWith(target);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  main.replaceChildren();
  renderOffers();
  for (const [re, view] of routes) {
    const m = hash.match(re);
    if (m) {
      currentView = { view, args: m.slice(1).map(decodeURIComponent) };
      view(scope, ...currentView.args);
      return;
    }
  }
  currentView = null;
  document.title = 'Not found · seatq';
  fill(main, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'See all events')));
}

/** Move focus to the new page's heading (for keyboard and screen reader users). */
function focusHeading(el) {
  if (!el) return;
  if (routedOnce) el.focus({ preventScroll: true });
  routedOnce = true;
}
let routedOnce = false;

function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

function failure(err, retry) {
  return h(
    'div',
    { class: 'error-box', role: 'alert' },
    h('p', {}, errorText(err)),
    retry ? h('button', { type: 'button', on: { click: retry } }, 'Try again') : null,
  );
}

function needLogin(what) {
  return h(
    'div',
    { class: 'empty' },
    h('p', {}, `Log in to see ${what}.`),
    h('button', { type: 'button', class: 'primary', on: { click: () => promptLogin('Type a name and press Log in.') } }, 'Log in'),
  );
}

// ---------------------------------------------------------------------------------------
// #/ — events.

async function fetchEventPage(page, perPage, query, signal) {
  const params = new URLSearchParams({ page: String(page), per_page: String(perPage) });
  if (SERVER_SEARCH && query) params.set('query', query);
  return (await api('GET', `/v1/events?${params}`, { signal, auth: false })).data;
}

function matchesQuery(event, query) {
  const q = query.toLowerCase();
  return [event.title, event.performer, event.venue.name, event.venue.city].some((f) =>
    String(f || '').toLowerCase().includes(q),
  );
}

/** One page of events matching `query`: from the server, or filtered here for now. */
async function searchEvents(page, query, signal) {
  if (!query || SERVER_SEARCH) {
    const r = await fetchEventPage(page, EVENTS_PER_PAGE, query, signal);
    return { events: r.events, total: r.total };
  }
  const all = [];
  for (let p = 1; p <= 50; p++) {
    const r = await fetchEventPage(p, 100, '', signal);
    all.push(...r.events);
    if (all.length >= r.total || r.events.length === 0) break;
  }
  const matched = all.filter((e) => matchesQuery(e, query));
  const start = (page - 1) * EVENTS_PER_PAGE;
  return { events: matched.slice(start, start + EVENTS_PER_PAGE), total: matched.length };
}

function viewEvents(scope) {
  document.title = 'Events · seatq';
  const query = sessionStorage.getItem('seatq.search') || '';
  let page = Number(sessionStorage.getItem('seatq.page') || 1);
  const heading = h('h1', { tabindex: '-1' }, 'Events');
  const search = h('input', {
    type: 'search',
    id: 'event-search',
    'data-testid': 'event-search',
    placeholder: 'Title, performer, venue or city',
    value: query,
    autocomplete: 'off',
  });
  const summary = h('p', { class: 'muted', 'data-testid': 'events-summary', role: 'status' });
  const list = h('ul', { class: 'event-list', 'data-testid': 'event-list' });
  const prev = h('button', { type: 'button', 'data-testid': 'events-prev' }, '← Previous');
  const next = h('button', { type: 'button', 'data-testid': 'events-next' }, 'Next →');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Event pages' }, prev, next);
  fill(
    main,
    h(
      'div',
      { class: 'page events-page' },
      heading,
      h(
        'div',
        { class: 'search' },
        h('label', { for: 'event-search' }, 'Search events'),
        search,
      ),
      summary,
      list,
      pager,
    ),
  );
  focusHeading(heading);

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const q = search.value.trim();
    sessionStorage.setItem('seatq.search', q);
    sessionStorage.setItem('seatq.page', String(page));
    list.setAttribute('aria-busy', 'true');
    try {
      const { events, total } = await searchEvents(page, q, scope.signal);
      if (mine !== seq || !scope.alive) return;
      const pages = Math.max(1, Math.ceil(total / EVENTS_PER_PAGE));
      if (page > pages) {
        page = pages;
        load();
        return;
      }
      summary.textContent = q
        ? `${total} event${total === 1 ? '' : 's'} matching “${q}”`
        : `${total} event${total === 1 ? '' : 's'}`;
      if (!events.length) {
        fill(list, h('li', { class: 'empty', 'data-testid': 'events-empty' }, q ? 'No events match your search.' : 'No events yet.'));
      } else {
        fill(list, events.map(eventCard));
      }
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
      pager.hidden = pages <= 1;
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(list, h('li', {}, failure(err, load)));
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  let debounce;
  scope.listen(search, 'input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      page = 1;
      load();
    }, 200);
  });
  scope.on(() => clearTimeout(debounce));
  scope.listen(prev, 'click', () => {
    page = Math.max(1, page - 1);
    load();
  });
  scope.listen(next, 'click', () => {
    page += 1;
    load();
  });
  load();
}

function eventCard(e) {
  const price =
    e.price_range.min_cents === e.price_range.max_cents
      ? money(e.price_range.min_cents)
      : `${money(e.price_range.min_cents)} – ${money(e.price_range.max_cents)}`;
  return h(
    'li',
    { class: 'event-card', 'data-testid': 'event-card', 'data-event-id': e.id },
    h(
      'h2',
      {},
      h('a', { href: `#/events/${e.id}`, 'data-testid': 'event-link', 'data-event-id': e.id }, e.title),
    ),
    h('p', { class: 'performer' }, e.performer),
    h('p', { class: 'muted' }, `${e.venue.name}, ${e.venue.city}`),
    h('p', {}, h('time', { datetime: e.starts_at }, when(e.starts_at))),
    h(
      'p',
      { class: 'card-foot' },
      h('span', { class: 'price' }, price),
      e.sale_open
        ? h('span', { class: 'badge badge-open' }, 'On sale')
        : h('span', { class: 'badge' }, `On sale ${when(e.on_sale_at)}`),
      h('span', { class: 'muted small' }, `${e.capacity.toLocaleString()} places`),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// The waiting room of a high-demand sale (`waiting_room_enabled`): join it after a proof
// of work, wait for your turn (place in line from the user stream, polled as a fallback),
// then hold seats with its admission token (`X-Admission-Token`) until it expires.

const POLL_QUEUE_MS = 4000;
/** A join refused for these gets a new challenge and tries once more. */
const CHALLENGE_CODES = new Set([
  'challenge_required',
  'challenge_invalid',
  'challenge_expired',
  'challenge_unsolved',
  'challenge_used',
  'challenge_wrong_event',
]);
/** A hold refused for these sends the user back to the waiting room. */
const ADMISSION_CODES = new Set(['admission_required', 'admission_invalid', 'admission_expired', 'admission_wrong_event']);

/** Where this user's tickets and admissions are kept: `{[event_id]: {ticket, token, expires_at}}`. */
function queueKey() {
  const s = currentSession();
  return s ? `seatq.queue.${s.user_id}` : null;
}

function savedQueues() {
  const key = queueKey();
  if (!key) return {};
  try {
    return JSON.parse(localStorage.getItem(key) || '{}') || {};
  } catch {
    return {};
  }
}

function savedQueue(eventId) {
  return savedQueues()[eventId] || null;
}

function saveQueue(eventId, entry) {
  const key = queueKey();
  if (!key) return;
  const all = savedQueues();
  if (entry) all[eventId] = entry;
  else delete all[eventId];
  localStorage.setItem(key, JSON.stringify(all));
}

/** Sleep that ends early (throwing AbortError) when `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('Stopped.', 'AbortError'));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(new DOMException('Stopped.', 'AbortError'));
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * A waiting-room request, tried again after 429 (rate limited), 503 and network failures,
 * waiting as long as Retry-After says; `onWait(secs, err)` hears each wait.
 */
async function queueCall(method, path, { body, signal, onWait = () => {} } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api(method, path, { body, signal });
    } catch (err) {
      if (isAbort(err) || !(err instanceof ApiError) || !err.retryable || attempt >= 6) throw err;
      const secs = Math.max(1, Math.ceil(err.retryAfter ?? Math.min(2 ** attempt, 15)));
      onWait(secs, err);
      await pause(secs * 1000, signal);
    }
  }
}

/**
 * The waiting-room panel of one event page (`queue-panel`, data-status = login | join |
 * solving | waiting | admitted | expired | error). `token()` is the admission token while
 * valid; `lost(err)` takes a hold's 403 admission_* and goes back to the line; `onChange`
 * runs whenever holding becomes possible or not.
 */
function waitingRoom(scope, eventId, { title, difficulty = () => undefined, onChange = () => {}, onOff = () => {} }) {
  const el = h('section', {
    class: 'queue-panel',
    'data-testid': 'queue-panel',
    'data-status': 'join',
    'aria-labelledby': 'queue-title',
  });
  let status = null;
  let view = null; // the ticket (QueueTicketView) last seen
  let joining = null;
  let firstPosition = null; // the place first seen in this page, for the progress bar
  let lastSolve = null;
  let note = null; // a short message under the panel's content (retries, errors)
  const live = {}; // elements of the "waiting" state updated in place

  const ticketPath = (ticket) => `/v1/events/${eventId}/queue/${encodeURIComponent(ticket)}`;

  function token() {
    if (!view || view.status !== 'admitted' || !view.admission_token) return null;
    return Date.parse(view.admission_expires_at) > Date.now() ? view.admission_token : null;
  }

  function set(next, { force = false } = {}) {
    const changed = next !== status;
    status = next;
    el.dataset.status = next;
    if (changed || force) render();
    else update();
    if (changed) onChange();
  }

  function setNote(text, kind = 'info') {
    note = text ? { text, kind } : null;
    const box = el.querySelector('.queue-note');
    if (box) renderNote(box);
  }

  function renderNote(box) {
    box.hidden = !note;
    box.dataset.kind = note ? note.kind : '';
    box.textContent = note ? note.text : '';
  }

  function joinButton(label) {
    // Start the proof-of-work workers while the user reads: they are ready by the click.
    if (difficulty() !== 0) warmPow();
    return h(
      'button',
      {
        type: 'button',
        class: 'primary big',
        'data-testid': 'queue-join',
        on: { click: () => join() },
      },
      label,
    );
  }

  function render() {
    const parts = [];
    const heading = (text) => h('h2', { id: 'queue-title' }, text);
    switch (status) {
      case 'login':
        parts.push(
          heading('This sale has a waiting room'),
          h('p', {}, 'To keep things fair when many people want tickets at once, everyone joins a line and is let in a few at a time.'),
          h(
            'button',
            { type: 'button', class: 'primary', on: { click: () => promptLogin('Log in to join the waiting room.') } },
            'Log in to join the line',
          ),
        );
        break;
      case 'join':
        parts.push(
          heading('This sale has a waiting room'),
          h(
            'p',
            {},
            'Join the line to hold seats: people are let in a few at a time, and then have a while to pick and hold their seats. ',
            provisionalNow()
              ? 'Everyone who joins before the sale opens gets a place drawn at random when it opens, so there is no need to rush.'
              : 'It is first come, first served.',
          ),
          joinButton('Join the waiting room'),
        );
        break;
      case 'solving': {
        live.progress = h('progress', { class: 'queue-progress', max: '1', value: '0', 'aria-label': 'Checking' });
        parts.push(
          heading('Joining the waiting room'),
          h(
            'div',
            { class: 'queue-solving', 'data-testid': 'queue-solving', role: 'status' },
            h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('strong', {}, 'Checking you’re not a bot…')),
            live.progress,
            h('p', { class: 'muted small' }, 'Your browser solves a small puzzle that costs bots dearly at scale. It takes a moment; keep this page open.'),
          ),
        );
        break;
      }
      case 'waiting': {
        live.position = h('strong', { class: 'queue-number', 'data-testid': 'queue-position' }, '…');
        live.length = h('strong', { class: 'queue-number', 'data-testid': 'queue-length' }, '…');
        live.eta = h('strong', { class: 'queue-number', 'data-testid': 'queue-eta' }, '…');
        live.bar = h('progress', { class: 'queue-progress', max: '1', value: '0', 'aria-hidden': 'true' });
        live.provisional = h('div', { class: 'queue-provisional', 'data-testid': 'queue-provisional' });
        parts.push(
          heading('You’re in line'),
          live.provisional,
          h(
            'dl',
            { class: 'queue-stats' },
            h('div', {}, h('dt', {}, 'Your place'), h('dd', {}, live.position)),
            h('div', {}, h('dt', {}, 'People in line'), h('dd', {}, live.length)),
            h('div', {}, h('dt', {}, 'Estimated wait'), h('dd', {}, live.eta)),
          ),
          live.bar,
          h('p', { class: 'muted small' }, 'Keep this page open (you can look at the seats meanwhile): when it is your turn, we let you in and tell you here.'),
        );
        break;
      }
      case 'admitted': {
        const left = Math.max(0, Date.parse(view.admission_expires_at) - Date.now());
        const mins = Math.max(1, Math.round(left / 60000));
        parts.push(
          heading('It’s your turn'),
          h('p', { class: 'queue-admitted', 'data-testid': 'queue-admitted' }, 'You’re in — ', h('strong', {}, `${mins} minute${mins === 1 ? '' : 's'} to shop`), '.'),
          h(
            'p',
            {},
            'Hold your seats within ',
            countdown(view.admission_expires_at, {
              'data-testid': 'queue-admission-countdown',
              'data-urgent-secs': '120',
            }),
            ` (until ${new Date(view.admission_expires_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}). Seats you hold stay yours until their own timer runs out.`,
          ),
        );
        break;
      }
      case 'expired':
        parts.push(
          heading('Your time to shop is over'),
          h(
            'p',
            { 'data-testid': 'queue-expired' },
            view && view.admission_expires_at
              ? `The waiting room let you in until ${when(view.admission_expires_at)}. `
              : '',
            'Seats you hold are still yours until their own timer runs out.',
          ),
          joinButton('Check the waiting room again'),
        );
        break;
      case 'error':
      default:
        parts.push(heading('Waiting room'), joinButton('Try again'));
        break;
    }
    const noteBox = h('p', { class: 'queue-note', 'data-testid': 'queue-note', role: 'status' });
    renderNote(noteBox);
    parts.push(noteBox);
    fill(el, parts);
    update();
  }

  function provisionalNow() {
    return view ? view.provisional && Date.parse(view.on_sale_at) > Date.now() : false;
  }

  /** Numbers of the "waiting" state, in place (no re-render, no focus loss). */
  function update() {
    if (status !== 'waiting' || !view || !live.position) return;
    const pos = view.position;
    const len = view.length;
    live.position.textContent = pos != null ? `#${pos.toLocaleString()}` : '—';
    live.position.dataset.position = pos != null ? String(pos) : '';
    live.length.textContent = len != null ? len.toLocaleString() : '—';
    live.length.dataset.length = len != null ? String(len) : '';
    live.eta.textContent = pos === 1 && !view.provisional ? 'You’re next' : view.eta_secs != null ? roughly(view.eta_secs) : '—';
    live.eta.dataset.etaSecs = view.eta_secs != null ? String(view.eta_secs) : '';
    if (pos != null && (firstPosition == null || pos > firstPosition)) firstPosition = pos;
    const moved = firstPosition && pos != null && firstPosition > 1 ? (firstPosition - pos) / (firstPosition - 1) : 0;
    live.bar.value = String(Math.max(0.02, Math.min(1, moved)));
    const provisional = view.provisional && Date.parse(view.on_sale_at) > Date.now();
    live.provisional.hidden = !provisional;
    if (provisional && !live.provisional.firstChild) {
      fill(
        live.provisional,
        h('p', {}, h('strong', {}, 'The sale opens in '), countdown(view.on_sale_at, { 'data-testid': 'queue-sale-countdown', 'data-urgent-secs': '0' }), '.'),
        h(
          'p',
          {},
          'Your place is drawn at random when the sale opens: everyone who joins before then has the same chance, so there is no need to rush. Until then your place below is provisional.',
        ),
      );
    } else if (!provisional) {
      live.provisional.replaceChildren();
    }
  }

  /** Take a ticket view from the server. */
  function apply(v) {
    if (!scope.alive) return;
    const wasAdmitted = status === 'admitted';
    view = v;
    el.dataset.ticket = v.ticket;
    saveQueue(eventId, { ticket: v.ticket, token: v.admission_token || null, expires_at: v.admission_expires_at || null });
    setNote(null);
    if (v.status === 'admitted') {
      if (token()) {
        set('admitted');
        if (!wasAdmitted) {
          toast(`It’s your turn: you can hold seats for ${title()} now.`, { kind: 'success', urgent: true, timeout: 12000 });
        }
      } else {
        set('expired');
      }
    } else {
      set('waiting');
    }
  }

  /** Read the ticket again; throws retryable errors (for the poll to wait), handles the rest. */
  async function refresh() {
    const saved = savedQueue(eventId);
    if (!saved || !saved.ticket) return;
    try {
      const r = await api('GET', ticketPath(saved.ticket), { signal: scope.signal });
      apply(r.data);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      if (err.retryable) throw err;
      if (err.status === 404) {
        // Not a ticket of ours any more (another account, a reset): join again.
        saveQueue(eventId, null);
        view = null;
        set('join');
      } else if (err.code === 'waiting_room_off') {
        off();
      } else if (err.status !== 401) {
        setNote(errorText(err), 'error');
      }
    }
  }

  async function poll() {
    if (!scope.alive) return;
    let wait = POLL_QUEUE_MS;
    if (status === 'waiting' && !joining) {
      try {
        await refresh();
      } catch (err) {
        wait = Math.max(wait, (err.retryAfter || 5) * 1000);
      }
    }
    scope.timeout(poll, wait);
  }

  function off() {
    saveQueue(eventId, null);
    view = null;
    el.hidden = true;
    toast('This sale no longer has a waiting room: you can hold seats directly.', { kind: 'info' });
    onOff();
    onChange();
  }

  /** Join (or rejoin: the same ticket comes back): challenge → proof of work → join. */
  function join() {
    if (joining) return joining;
    if (!currentSession()) {
      promptLogin('Log in to join the waiting room.');
      return Promise.resolve();
    }
    joining = (async () => {
      const onWait = (secs) => setNote(`Lots of people are joining right now. Trying again in ${secs} s…`, 'warn');
      try {
        for (let attempt = 1; ; attempt++) {
          set('solving');
          setNote(null);
          // No proof of work asked (when the event says so): join with an empty body.
          const c =
            difficulty() === 0 && attempt === 1
              ? { data: { difficulty: 0 } }
              : await queueCall('POST', `/v1/events/${eventId}/queue/challenge`, { signal: scope.signal, onWait });
          let body = {};
          if (c.data.difficulty > 0) {
            const solved = await solvePow(c.data.challenge, c.data.difficulty, {
              signal: scope.signal,
              onProgress: ({ fraction }) => {
                if (live.progress) live.progress.value = String(Math.min(0.97, Math.max(0.03, fraction)));
              },
            });
            lastSolve = { difficulty: c.data.difficulty, ...solved };
            el.dataset.powMs = String(solved.ms);
            el.dataset.powDifficulty = String(c.data.difficulty);
            body = { challenge: c.data.challenge, nonce: solved.nonce };
          }
          if (!scope.alive) return;
          try {
            const r = await queueCall('POST', `/v1/events/${eventId}/queue`, { body, signal: scope.signal, onWait });
            firstPosition = null;
            apply(r.data);
            if (r.status === 201 && r.data.status === 'waiting') {
              toast(
                r.data.provisional
                  ? 'You’re in the waiting room. Your place is drawn when the sale opens.'
                  : `You’re in the waiting room${r.data.position ? `, #${r.data.position.toLocaleString()} in line` : ''}.`,
                { kind: 'success', timeout: 6000 },
              );
            }
            return;
          } catch (err) {
            // A challenge that expired or was used meanwhile: one more with a new one.
            if (err.status === 403 && CHALLENGE_CODES.has(err.code) && attempt < 2) continue;
            throw err;
          }
        }
      } catch (err) {
        if (isAbort(err) || !scope.alive) return;
        if (err.code === 'waiting_room_off') {
          off();
          return;
        }
        set(savedQueue(eventId) ? 'error' : 'join', { force: true });
        setNote(
          err.status === 401 ? 'Log in again to join the waiting room.' : `Could not join the waiting room: ${errorText(err)}`,
          'error',
        );
      } finally {
        joining = null;
      }
    })();
    return joining;
  }

  /** A hold refused for its admission (403 admission_*): back to the waiting room. */
  function lost(err) {
    const expired = err.code === 'admission_expired';
    toast(
      expired
        ? 'Your time to shop has run out. Checking the waiting room…'
        : 'The sale needs you to come through the waiting room: joining it…',
      { kind: 'warn', urgent: true },
    );
    if (view) view = { ...view, admission_token: null };
    const saved = savedQueue(eventId);
    if (saved) saveQueue(eventId, { ...saved, token: null, expires_at: null });
    onChange();
    return join();
  }

  /** (Re)start for the signed-in user: their ticket if they have one, else the join button. */
  function start() {
    view = null;
    firstPosition = null;
    el.hidden = false;
    if (!currentSession()) {
      set('login', { force: true });
      return;
    }
    const saved = savedQueue(eventId);
    if (saved && saved.ticket) {
      // Until the server answers, what we knew (the token, if still good) holds.
      if (saved.token && saved.expires_at && Date.parse(saved.expires_at) > Date.now()) {
        view = { ticket: saved.ticket, status: 'admitted', admission_token: saved.token, admission_expires_at: saved.expires_at };
        set('admitted', { force: true });
      } else {
        set('waiting', { force: true });
      }
      refresh().catch(() => {});
    } else {
      set('join', { force: true });
    }
  }

  scope.onUser('queue_position', (d) => {
    if (!view || d.ticket !== view.ticket || status !== 'waiting') return;
    view = { ...view, position: d.position, eta_secs: d.eta_secs ?? view.eta_secs, provisional: false };
    if (view.length != null && d.position > view.length) view.length = d.position;
    update();
  });
  scope.onUser('admitted', (d) => {
    if (!view || d.ticket !== view.ticket) return;
    // The token comes with the ticket.
    refresh().catch(() => scope.timeout(() => refresh().catch(() => {}), 2000));
  });
  scope.on(
    onCountdownExpired((cd) => {
      if (!el.contains(cd)) return;
      if (cd.dataset.testid === 'queue-admission-countdown') {
        set('expired');
      } else if (cd.dataset.testid === 'queue-sale-countdown') {
        // The sale opened: the draw is made; see the real place.
        scope.timeout(() => refresh().catch(() => {}), 1500);
      }
    }),
  );
  scope.timeout(poll, POLL_QUEUE_MS);

  return {
    el,
    start,
    join,
    lost,
    token,
    get status() {
      return status;
    },
    get lastSolve() {
      return lastSolve;
    },
  };
}

// ---------------------------------------------------------------------------------------
// #/events/{id} — the seat map, selection, holds, waitlists.

function waitlistKey() {
  const s = currentSession();
  return s ? `seatq.waitlists.${s.user_id}` : null;
}

function savedWaitlists() {
  const key = waitlistKey();
  if (!key) return [];
  try {
    return JSON.parse(localStorage.getItem(key) || '[]');
  } catch {
    return [];
  }
}

function saveWaitlists(list) {
  const key = waitlistKey();
  if (key) localStorage.setItem(key, JSON.stringify(list));
}

const REASONS = {
  seats_unavailable: 'Someone else got there first.',
  insufficient_seats: 'There are not that many seats left in that section.',
  user_limit_exceeded: 'You already hold as many seats as one person may have for this event.',
  sale_not_open: 'This event is not on sale yet.',
  event_not_found: 'This event no longer exists.',
};

function viewEvent(scope, eventId) {
  document.title = 'Event · seatq';
  fill(main, loading('Loading the event and its seat map…'));
  let event = null;
  let seatMap = null;
  const selected = new Map(); // seat id -> info
  let maxSel = 8; // seats one request may still ask for
  let maxSelRaw = 8; // seats this user may still hold at this event
  // What the map shows: the position of the last snapshot or delta applied.
  let pos = -1;
  let etag = null;
  let loaded = false;
  const recentDeltas = [];
  let busy = false; // a hold request is in flight
  let inFlight = new Set(); // the seats it asks for
  let room = null; // the waiting room, when the sale has one

  // ----- layout -----
  const heading = h('h1', { tabindex: '-1', 'data-testid': 'event-title' });
  const subtitle = h('p', { class: 'event-sub' });
  const saleStatus = h('p', { class: 'sale-status', 'data-testid': 'sale-status' });
  const liveIndicator = h('span', { class: 'live', 'data-testid': 'live-indicator', 'data-mode': 'connecting' }, 'Connecting…');
  const countsEl = h('span', { class: 'counts', 'data-testid': 'map-counts' });
  const mapRoot = h('div', { class: 'seat-map', 'data-testid': 'seat-map' });
  const holdStatus = h('div', {
    class: 'hold-status',
    'data-testid': 'hold-status',
    'data-status': 'idle',
    role: 'status',
    hidden: true,
  });
  const holdsBox = h('div', { class: 'holds-box' });
  const holdArea = h('div', { class: 'hold-area' }, holdStatus, holdsBox);
  const selectionList = h('ul', { class: 'chips' });
  const selectionCount = h('span', { 'data-testid': 'selection-count' }, '0');
  const selectionTotal = h('strong', { 'data-testid': 'selection-total' }, money(0));
  const holdButton = h('button', { type: 'button', class: 'primary big', 'data-testid': 'hold-button' }, 'Hold seats');
  const clearButton = h('button', { type: 'button', class: 'link-button', 'data-testid': 'selection-clear' }, 'Clear');
  const selectionHint = h('p', { class: 'muted small selection-hint' });
  const selectionPanel = h(
    'section',
    { class: 'panel selection', 'data-testid': 'selection', 'aria-labelledby': 'selection-title' },
    h('h2', { id: 'selection-title' }, 'Your selection ', h('span', { class: 'muted' }, '(', selectionCount, ')')),
    selectionList,
    h('p', { class: 'selection-total' }, 'Total ', selectionTotal, ' ', clearButton),
    holdButton,
    selectionHint,
  );
  const seatInfo = h('section', {
    class: 'panel seat-info',
    'data-testid': 'seat-info',
    'aria-live': 'polite',
    hidden: true,
  });
  const seatInput = h('input', {
    id: 'seat-id-input',
    'data-testid': 'seat-id-input',
    placeholder: 'e.g. A-3-12',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'characters',
    'aria-describedby': 'seat-id-help',
  });
  const seatError = h('p', { class: 'form-error', 'data-testid': 'seat-id-error', role: 'alert', hidden: true });
  const seatForm = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'seat-id-title' },
    h('h2', { id: 'seat-id-title' }, 'Pick a seat by number'),
    h('label', { for: 'seat-id-input' }, 'Seat (section-row-seat)'),
    h('div', { class: 'inline-form' }, seatInput, h('button', { type: 'submit', 'data-testid': 'seat-add' }, 'Add')),
    h('p', { id: 'seat-id-help', class: 'muted small' }, 'Section code, row and seat, as on your ticket.'),
    seatError,
  );
  const bestQty = h('select', { id: 'best-quantity', 'data-testid': 'best-quantity' });
  const sectionList = h('table', { class: 'section-list', 'data-testid': 'section-list' });
  const bestPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'best-title' },
    h('h2', { id: 'best-title' }, 'Best available'),
    h('div', { class: 'inline-form' }, h('label', { for: 'best-quantity' }, 'Seats'), bestQty),
    h('div', { class: 'table-scroll' }, sectionList),
  );
  const waitlistsBox = h('ul', { class: 'waitlists', 'data-testid': 'waitlists' });
  const waitlistPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'waitlists-title', hidden: true },
    h('h2', { id: 'waitlists-title' }, 'Your waitlists'),
    waitlistsBox,
  );

  // ----- selection -----
  function renderSelection() {
    const session = currentSession();
    selectionCount.textContent = String(selected.size);
    let total = 0;
    fill(
      selectionList,
      [...selected.values()].map((s) => {
        total += s.price_cents;
        return h(
          'li',
          { class: 'chip', 'data-testid': 'selected-seat', 'data-seat-id': s.id },
          h('span', {}, s.id),
          h('span', { class: 'muted small' }, money(s.price_cents)),
          h(
            'button',
            {
              type: 'button',
              class: 'chip-remove',
              'data-testid': 'selection-remove',
              'data-seat-id': s.id,
              'aria-label': `Remove ${s.id}`,
              on: { click: () => unselect(s.id) },
            },
            '×',
          ),
        );
      }),
    );
    if (!selected.size) selectionList.appendChild(h('li', { class: 'muted small' }, 'Click or tap green seats on the map, or use the forms below.'));
    selectionTotal.textContent = money(total);
    clearButton.hidden = selected.size === 0;
    selectionPanel.classList.toggle('has-seats', selected.size > 0);
    const open = event && event.sale_open;
    if (!session) {
      holdButton.textContent = 'Log in to hold seats';
      holdButton.disabled = false;
    } else {
      holdButton.textContent = selected.size
        ? `Hold ${selected.size} seat${selected.size === 1 ? '' : 's'}`
        : 'Hold seats';
      holdButton.disabled = !open || selected.size === 0 || busy || !admitted();
    }
    const heldHere = event ? event.max_seats_per_user - Math.min(event.max_seats_per_user, maxSelRaw) : 0;
    selectionHint.textContent = !open
      ? 'Not on sale yet.'
      : session && !admitted()
        ? room && room.status === 'expired'
          ? 'Your time to shop is over: you cannot hold more seats.'
          : 'You can hold seats once the waiting room lets you in (see above).'
        : maxSel < 1
        ? `You hold the most seats one person may have for this event (${event.max_seats_per_user}).`
        : heldHere > 0
          ? `You can pick ${maxSel} more seat${maxSel === 1 ? '' : 's'} (you hold ${heldHere}).`
          : `Pick up to ${maxSel} seat${maxSel === 1 ? '' : 's'}.`;
    if (seatMap) seatMap.setSelected(selected.keys());
  }

  function select(info) {
    if (selected.has(info.id)) return;
    if (selected.size >= maxSel) {
      toast(`You can pick up to ${maxSel} seats at a time.`, { kind: 'warn' });
      return;
    }
    selected.set(info.id, info);
    announce(`${info.id} selected, ${money(info.price_cents)}. ${selected.size} selected.`);
    renderSelection();
  }

  function unselect(id) {
    if (!selected.delete(id)) return;
    announce(`${id} removed. ${selected.size} selected.`);
    renderSelection();
  }

  // ----- seat info / waitlist -----
  function showSeatInfo(info) {
    const session = currentSession();
    const waiting = savedWaitlists().find((w) => w.event_id === eventId && w.seat_id === info.id);
    const mineHold = info.mine ? [...myHolds.values()].find((hd) => hd.seat_ids.includes(info.id)) : null;
    const statusText = info.mine
      ? 'held by you'
      : info.status === 'held'
        ? 'held by someone else right now'
        : info.status === 'sold'
          ? 'sold'
          : 'available';
    seatInfo.hidden = false;
    seatInfo.dataset.seatId = info.id;
    seatInfo.dataset.status = info.mine ? 'mine' : info.status;
    let action = null;
    if (info.mine && mineHold) {
      action = h('p', {}, h('a', { href: `#/holds/${mineHold.hold_id}` }, 'Your hold'));
    } else if (info.status === 'available' && event && !event.sale_open) {
      action = h('p', { class: 'muted' }, `You can hold it once the sale opens, ${when(event.on_sale_at)}.`);
    } else if (info.status !== 'available') {
      if (!session) {
        action = h(
          'button',
          { type: 'button', 'data-testid': 'login-to-wait', on: { click: () => promptLogin('Log in to join the waitlist.') } },
          'Log in to join the waitlist',
        );
      } else if (waiting) {
        action = h('p', { class: 'muted' }, 'You are on this seat’s waitlist (see below).');
      } else {
        action = h(
          'button',
          { type: 'button', class: 'primary', 'data-testid': 'waitlist-join', on: { click: (e) => joinWaitlist(info, e.currentTarget) } },
          'Join waitlist',
        );
      }
    }
    fill(
      seatInfo,
      h('h2', {}, info.id),
      h('p', {}, `${info.name}, row ${info.row}, seat ${info.seat} · ${money(info.price_cents)}`),
      h('p', {}, 'This seat is ', h('strong', { 'data-testid': 'seat-info-status' }, statusText), '.'),
      info.status !== 'available' && !info.mine
        ? h('p', { class: 'muted small' }, 'Join its waitlist: if it is released, it is held for the first person in line.')
        : null,
      action,
    );
  }

  function onActivate(info) {
    if (info.mine) {
      showSeatInfo(info);
      return;
    }
    if (info.selected) {
      unselect(info.id);
      return;
    }
    if (info.status === 'available') {
      if (!event.sale_open) {
        showSeatInfo(info);
        return;
      }
      seatInfo.hidden = true;
      select(info);
      return;
    }
    showSeatInfo(info);
    announce(`${info.id} is ${info.status}. You can join its waitlist.`);
  }

  async function joinWaitlist(info, button) {
    if (button) button.disabled = true;
    try {
      // A waitlist is a way to buy: behind the waiting room like a hold.
      const headers = {};
      const admission = event.waiting_room_enabled && room ? room.token() : null;
      if (admission) headers['X-Admission-Token'] = admission;
      const r = await api('POST', `/v1/events/${eventId}/seats/${encodeURIComponent(info.id)}/waitlist`, { headers });
      rememberWaitlist(info.id);
      if (r.status === 201) {
        toast(`You are #${r.data.position} in line for ${info.id}.`, { kind: 'success' });
      } else {
        toast(`Joining the waitlist for ${info.id}…`, { timeout: 3000 });
      }
      await refreshWaitlists(r.status === 201 ? { [info.id]: r.data } : {});
      if (r.status !== 201) scope.timeout(() => refreshWaitlists(), 1500);
      showSeatInfo(seatMap.info(info.id) || info);
    } catch (err) {
      if (button) button.disabled = false;
      if (err.code === 'already_waiting') {
        rememberWaitlist(info.id);
        refreshWaitlists();
      } else if (err.code === 'seat_available') {
        toast(`${info.id} is available now: it is in your selection.`, { kind: 'success' });
        const fresh = seatMap.info(info.id);
        if (fresh) select({ ...fresh, status: 'available' });
        return;
      }
      toast(errorText(err), { kind: 'error', urgent: true });
    }
  }

  function rememberWaitlist(seatIdValue) {
    const list = savedWaitlists();
    if (!list.some((w) => w.event_id === eventId && w.seat_id === seatIdValue)) {
      list.push({ event_id: eventId, seat_id: seatIdValue });
      saveWaitlists(list);
    }
  }

  function forgetWaitlist(seatIdValue) {
    saveWaitlists(savedWaitlists().filter((w) => !(w.event_id === eventId && w.seat_id === seatIdValue)));
  }

  const places = new Map();
  async function refreshWaitlists(known = {}) {
    if (!currentSession()) {
      waitlistPanel.hidden = true;
      return;
    }
    const mine = savedWaitlists().filter((w) => w.event_id === eventId);
    await Promise.all(
      mine.map(async (w) => {
        if (known[w.seat_id]) {
          places.set(w.seat_id, known[w.seat_id]);
          return;
        }
        try {
          const r = await api('GET', `/v1/events/${eventId}/seats/${encodeURIComponent(w.seat_id)}/waitlist`, {
            signal: scope.signal,
          });
          places.set(w.seat_id, r.data);
        } catch (err) {
          if (err.status === 404) {
            forgetWaitlist(w.seat_id);
            places.delete(w.seat_id);
          }
        }
      }),
    );
    if (!scope.alive) return;
    renderWaitlists();
  }

  function renderWaitlists() {
    const mine = savedWaitlists().filter((w) => w.event_id === eventId);
    waitlistPanel.hidden = mine.length === 0;
    fill(
      waitlistsBox,
      mine.map((w) => {
        const place = places.get(w.seat_id);
        let text = 'Joining…';
        if (place && place.status === 'offered') {
          text = 'Released to you: pay before the timer runs out!';
          if (place.hold_id && !myHolds.has(place.hold_id)) adoptHold(place.hold_id);
        } else if (place) {
          const eta = roughly(place.estimated_wait_secs);
          text = `#${place.position} of ${place.length} in line${eta ? ` · ${eta}` : ''}`;
        }
        return h(
          'li',
          { class: 'waitlist-entry', 'data-testid': 'waitlist-entry', 'data-seat-id': w.seat_id, 'data-status': place ? place.status : 'pending' },
          h('strong', {}, w.seat_id),
          h('span', { 'data-testid': 'waitlist-position' }, text),
          place && place.status === 'offered' && place.hold_id
            ? h('a', { href: `#/holds/${place.hold_id}` }, 'Pay')
            : h(
                'button',
                {
                  type: 'button',
                  class: 'link-button',
                  'data-testid': 'waitlist-leave',
                  on: { click: (e) => leaveWaitlist(w.seat_id, e.currentTarget) },
                },
                'Leave',
              ),
        );
      }),
    );
  }

  async function leaveWaitlist(seatIdValue, button) {
    if (button) button.disabled = true;
    try {
      await api('DELETE', `/v1/events/${eventId}/seats/${encodeURIComponent(seatIdValue)}/waitlist`);
      forgetWaitlist(seatIdValue);
      places.delete(seatIdValue);
      renderWaitlists();
      toast(`You left the waitlist for ${seatIdValue}.`, { timeout: 4000 });
    } catch (err) {
      if (err.status === 404) {
        forgetWaitlist(seatIdValue);
        places.delete(seatIdValue);
        renderWaitlists();
        return;
      }
      if (button) button.disabled = false;
      toast(errorText(err), { kind: 'error', urgent: true });
    }
  }

  // ----- holding -----
  let stopRetry = false;
  const pendingRequests = new Map(); // request_id -> resolve(view)

  function setHoldStatus(status, ...content) {
    const first = holdStatus.hidden || holdStatus.dataset.status !== status;
    holdStatus.hidden = false;
    holdStatus.dataset.status = status;
    fill(holdStatus, content);
    if (first) holdStatus.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  /** Whether this user may ask for seats now (the waiting room let them in, or there is none). */
  function admitted() {
    return !(event && event.waiting_room_enabled) || !room || !!room.token();
  }

  async function requestHold(body, label) {
    if (!currentSession()) {
      promptLogin('Log in to hold seats.');
      return;
    }
    if (busy) return;
    if (!admitted()) {
      setHoldStatus('error', h('p', { 'data-testid': 'hold-reason', 'data-reason': 'admission_required' }, 'Join the waiting room first: you can hold seats once it lets you in.'));
      room.el.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      return;
    }
    busy = true;
    stopRetry = false;
    inFlight = new Set(body.seat_ids || []);
    renderSelection();
    const key = uuid();
    try {
      for (let attempt = 1; scope.alive; attempt++) {
        setHoldStatus('pending', h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `Asking for ${label}…`));
        try {
          const headers = { 'Idempotency-Key': key };
          const admission = event.waiting_room_enabled && room ? room.token() : null;
          if (admission) headers['X-Admission-Token'] = admission;
          const r = await api('POST', `/v1/events/${eventId}/holds?wait_ms=3000`, { body, headers });
          const view = r.status === 202 ? await waitForDecision(r.data.request_id, label) : r.data;
          if (view) onDecision(view, body);
          return;
        } catch (err) {
          if (!scope.alive) return;
          if (err.retryable && attempt <= 6 && !stopRetry) {
            const secs = Math.ceil(err.retryAfter ?? Math.min(2 ** attempt, 15));
            setHoldStatus(
              'retrying',
              h('p', {}, `${errorText(err)} Trying again in ${secs} s…`),
              h(
                'button',
                { type: 'button', class: 'link-button', 'data-testid': 'hold-retry-stop', on: { click: () => (stopRetry = true) } },
                'Stop',
              ),
            );
            for (let s = 0; s < secs * 10 && !stopRetry && scope.alive; s++) await sleep(100);
            if (stopRetry) {
              setHoldStatus('error', h('p', {}, 'Stopped. Your selection is kept: try again when you like.'));
              return;
            }
            continue;
          }
          if (err.status === 401) {
            setHoldStatus('error', h('p', {}, 'Log in again to hold seats.'));
            return;
          }
          if (err.status === 403 && ADMISSION_CODES.has(err.code) && room) {
            setHoldStatus(
              'error',
              h('p', { 'data-testid': 'hold-reason', 'data-reason': err.code }, h('strong', {}, 'Not held. '), err.code === 'admission_expired' ? 'Your time to shop ran out.' : 'This sale lets people in through its waiting room.'),
            );
            room.lost(err);
            return;
          }
          setHoldStatus('error', h('p', { 'data-testid': 'hold-reason' }, errorText(err)));
          return;
        }
      }
    } finally {
      busy = false;
      inFlight = new Set();
      renderSelection();
      if (loaded) afterChange();
    }
  }

  /** Poll the request (and listen to the user stream) until it is decided. */
  async function waitForDecision(requestId, label) {
    let decided = null;
    const fromStream = new Promise((resolve) => pendingRequests.set(requestId, resolve));
    scope.on(() => pendingRequests.delete(requestId));
    let delay = 500;
    let nudged = false;
    let aheadEl = null;
    while (scope.alive && !decided) {
      try {
        const r = await api('GET', `/v1/hold-requests/${requestId}`, { signal: scope.signal });
        if (r.data.status !== 'pending') {
          decided = r.data;
          break;
        }
        const ahead = r.data.ahead;
        if (!aheadEl) {
          // Built once; the count then changes in place, kept out of the live region so
          // screen readers are not told every second.
          aheadEl = h('p', { class: 'muted', 'data-testid': 'hold-ahead', 'aria-live': 'off' });
          setHoldStatus(
            'pending',
            h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `You are in the queue for ${label}.`),
            aheadEl,
            h('p', { class: 'muted small' }, 'Keep this page open: first come, first served.'),
          );
        }
        aheadEl.hidden = ahead == null;
        aheadEl.dataset.ahead = String(ahead ?? '');
        aheadEl.textContent =
          ahead > 0 ? `${ahead.toLocaleString()} request${ahead === 1 ? '' : 's'} ahead of yours.` : 'You are next.';
      } catch (err) {
        if (isAbort(err) || !scope.alive) return null;
        if (!err.retryable) throw err;
        delay = Math.max(delay, (err.retryAfter || 2) * 1000);
      }
      // The user stream saying "decided" cuts the wait short once; the full view
      // (alternatives and all) comes from the request's status.
      const nudge = nudged ? false : await Promise.race([fromStream.then(() => true), sleep(delay).then(() => false)]);
      if (nudged) await sleep(delay);
      if (nudge) {
        nudged = true;
        delay = 250;
      } else {
        delay = Math.min(delay * 1.5, 3000);
      }
    }
    pendingRequests.delete(requestId);
    return decided;
  }

  scope.onUser('hold_created', (d) => pendingRequests.get(d.request_id)?.(d));
  scope.onUser('hold_rejected', (d) => pendingRequests.get(d.request_id)?.(d));

  function onDecision(view) {
    if (view.status === 'held') {
      const hold = {
        hold_id: view.hold_id,
        event_id: eventId,
        status: 'active',
        seat_ids: view.seat_ids || [],
        section: view.section || null,
        quantity: view.quantity || (view.seat_ids || []).length,
        created_at: view.decided_at,
        expires_at: view.expires_at,
        extended: false,
        from_waitlist: false,
      };
      for (const id of hold.seat_ids) selected.delete(id);
      rememberHold(hold);
      seatMap.applyChanges(hold.seat_ids.map((id) => ({ seat_id: id, status: 'held' })));
      renderCounts();
      renderSelection();
      holdStatus.dataset.holdId = hold.hold_id;
      setHoldStatus(
        'held',
        h('p', {}, h('strong', {}, 'Held! '), `${seatList(hold)} ${hold.seat_ids.length === 1 || hold.quantity === 1 ? 'is' : 'are'} yours until the timer runs out.`),
      );
      refreshHolds().catch(() => {});
      return;
    }
    const unavailable = view.unavailable_seats || [];
    const alternatives = view.alternatives || [];
    for (const id of unavailable) selected.delete(id);
    if (unavailable.length) {
      seatMap.applyChanges(unavailable.map((id) => ({ seat_id: id, status: 'held' })));
      renderCounts();
    }
    renderSelection();
    const reasonText = REASONS[view.reason] || `Not held (${view.reason || 'rejected'}).`;
    setHoldStatus(
      'rejected',
      h('p', { 'data-testid': 'hold-reason', 'data-reason': view.reason || '' }, h('strong', {}, 'Not held. '), reasonText),
      unavailable.length
        ? h('p', { class: 'muted', 'data-testid': 'unavailable-seats' }, `Taken: ${unavailable.join(', ')}`)
        : null,
      alternatives.length
        ? h(
            'div',
            { class: 'alternatives' },
            h('p', {}, 'Free nearby right now:'),
            h(
              'button',
              {
                type: 'button',
                class: 'primary',
                'data-testid': 'alternative-hold',
                'data-seat-ids': alternatives.join(','),
                on: { click: () => requestHold({ seat_ids: alternatives }, alternatives.join(', ')) },
              },
              `Hold ${alternatives.join(', ')}`,
            ),
          )
        : null,
    );
  }

  function holdSelected() {
    if (!currentSession()) {
      promptLogin('Log in to hold seats.');
      return;
    }
    if (!selected.size) return;
    const ids = [...selected.keys()];
    requestHold({ seat_ids: ids }, ids.join(', '));
  }

  function holdBest(code, quantity) {
    const sec = seatMap.section(code);
    const noun = sec && sec.kind === 'general_admission' ? 'place' : 'seat';
    requestHold({ section: code, quantity }, `the best ${quantity} ${noun}${quantity === 1 ? '' : 's'} in ${code}`);
  }

  // ----- my holds for this event -----
  function renderHolds() {
    const mine = [...myHolds.values()].filter((hd) => hd.event_id === eventId);
    // The "Held!" message goes with its hold.
    if (holdStatus.dataset.status === 'held' && holdStatus.dataset.holdId && !myHolds.has(holdStatus.dataset.holdId)) {
      holdStatus.hidden = true;
      holdStatus.dataset.status = 'idle';
    }
    fill(holdsBox, mine.map((hd) => holdCard(hd, { event })));
    if (seatMap) seatMap.setMine(mine.flatMap((hd) => hd.seat_ids));
    if (seatMap && !seatInfo.hidden && seatInfo.dataset.seatId) {
      const info = seatMap.info(seatInfo.dataset.seatId);
      if (info) showSeatInfo(info);
    }
    const held = mine.reduce((n, hd) => n + (hd.seat_ids.length || hd.quantity || 0), 0);
    if (event) {
      const before = maxSel;
      maxSelRaw = Math.max(0, event.max_seats_per_user - held);
      maxSel = Math.min(maxSelRaw, MAX_SEATS_PER_REQUEST);
      if (maxSel !== before && loaded) refreshQuantities();
      renderSelection();
    }
  }

  // ----- live seat map -----
  let countsFrame = 0;
  function renderCounts() {
    cancelAnimationFrame(countsFrame);
    countsFrame = requestAnimationFrame(() => {
      const c = seatMap.counts();
      countsEl.textContent = `${c.available.toLocaleString()} available · ${c.held.toLocaleString()} held · ${c.sold.toLocaleString()} sold`;
    });
  }

  function applySnapshot(map) {
    seatMap.setData(map);
    pos = map.position.next_offset;
    // Deltas newer than this snapshot (it may be up to a second old) go on top.
    for (const d of recentDeltas) if (d.next_offset > pos) applyDelta(d, true);
    afterChange();
  }

  function applyDelta(d, replay = false) {
    if (typeof d.next_offset === 'number' && d.next_offset <= pos) return;
    const changed = seatMap.applyChanges(d.seats || [], d.sections || []);
    if (typeof d.next_offset === 'number') pos = d.next_offset;
    if (!replay) afterChange(changed);
  }

  function afterChange(changed = null) {
    renderCounts();
    const gone = [];
    for (const id of selected.keys()) {
      // Seats of the request in flight: its answer says who got them.
      if (inFlight.has(id)) continue;
      const info = seatMap.info(id);
      if (!info || info.status !== 'available') gone.push(id);
    }
    if (gone.length) {
      for (const id of gone) selected.delete(id);
      renderSelection();
      toast(`Just taken by someone else: ${gone.join(', ')}.`, { kind: 'warn' });
    }
    if (changed && seatInfo.dataset.seatId && changed.includes(seatInfo.dataset.seatId) && !seatInfo.hidden) {
      const info = seatMap.info(seatInfo.dataset.seatId);
      if (info) showSeatInfo(info);
    }
  }

  async function fetchMap({ conditional = true } = {}) {
    const r = await api('GET', `/v1/events/${eventId}/seats`, {
      etag: conditional ? etag : null,
      signal: scope.signal,
      auth: false,
    });
    if (!scope.alive || r.status === 304) return;
    etag = r.etag;
    applySnapshot(r.data);
  }

  function onSeatDelta(d) {
    if (!d) return;
    recentDeltas.push(d);
    if (recentDeltas.length > 500) recentDeltas.splice(0, recentDeltas.length - 500);
    if (loaded) applyDelta(d);
  }

  function startLive() {
    const feed = new LiveFeed({
      url: `/v1/events/${eventId}/stream`,
      handlers: {
        seat_status_changed: onSeatDelta,
        resync: () => fetchMap({ conditional: false }).catch(() => {}),
        reconnect: () => {
          liveIndicator.dataset.mode = 'connecting';
          liveIndicator.textContent = 'Reconnecting…';
        },
      },
      poll: () => fetchMap(),
      pollMs: POLL_MAP_MS,
      onOpen: () => fetchMap().catch(() => {}),
      onMode: (mode) => {
        liveIndicator.dataset.mode = mode;
        liveIndicator.textContent = { live: 'Live', polling: 'Updating every 3 s', connecting: 'Connecting…' }[mode];
        liveIndicator.title =
          mode === 'live' ? 'Seat changes appear as they happen' : 'Live updates are unavailable; the map refreshes every 3 seconds';
      },
    }).start();
    scope.on(() => feed.stop());
  }

  // ----- controls -----
  function renderSectionList() {
    const qty = Number(bestQty.value) || 1;
    fill(
      sectionList,
      h('caption', { class: 'sr-only' }, 'Sections with their price and seats left'),
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Section'), h('th', { scope: 'col' }, 'Price'), h('th', { scope: 'col' }, 'Left'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Action'))),
      ),
      h(
        'tbody',
        {},
        event.sections.map((s) => {
          const sec = seatMap.section(s.code);
          const left = sec ? sec.available : s.capacity;
          const ga = s.kind === 'general_admission';
          return h(
            'tr',
            {},
            h('th', { scope: 'row' }, h('span', { class: 'code' }, s.code), ' ', h('span', { class: 'muted small' }, s.name)),
            h('td', {}, money(s.price_cents)),
            h('td', { 'data-section-left': s.code }, left.toLocaleString()),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: 'small-button',
                  'data-testid': `best-${s.code}`,
                  disabled: !event.sale_open || !admitted() || left < qty || maxSel < 1 || qty > maxSel,
                  'aria-label': `Hold the best ${qty} ${ga ? 'places' : 'seats'} in ${s.name}`,
                  on: { click: () => holdBest(s.code, Number(bestQty.value) || 1) },
                },
                `Best ${qty}`,
              ),
            ),
          );
        }),
      ),
    );
  }

  /** Quantity pickers offer 1 .. what this user may still hold. */
  function refreshQuantities() {
    const keep = Number(bestQty.value) || 2;
    fill(bestQty, Array.from({ length: Math.max(1, maxSel) }, (_, k) => h('option', { value: String(k + 1) }, String(k + 1))));
    bestQty.value = String(Math.min(keep, Math.max(1, maxSel)));
    for (const sel of mapRoot.querySelectorAll('select[data-testid^="ga-quantity-"]')) seatMap.fillQuantity(sel);
    renderSectionList();
  }

  function addSeatById(e) {
    e.preventDefault();
    seatError.hidden = true;
    const raw = seatInput.value.trim().toUpperCase();
    if (!raw) return;
    const info = seatMap.info(raw);
    if (!info) {
      seatError.textContent = `There is no seat ${raw} at this event. Use section-row-seat, e.g. ${event.sections.find((s) => s.kind === 'reserved')?.code || 'A'}-1-1.`;
      seatError.hidden = false;
      return;
    }
    seatMap.focusSeat(info.id);
    seatInput.focus();
    if (info.status === 'available' && !info.mine) {
      if (!event.sale_open) {
        showSeatInfo(info);
        return;
      }
      select(info);
      seatInput.value = '';
    } else {
      showSeatInfo(info);
    }
  }

  // ----- load -----
  async function load() {
    try {
      const [detail, mapR] = await Promise.all([
        eventDetail(eventId, { fresh: true }),
        api('GET', `/v1/events/${eventId}/seats`, { signal: scope.signal, auth: false }),
      ]);
      if (!scope.alive) return;
      event = detail;
      etag = mapR.etag;
      render(mapR.data);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(main, h('h1', { tabindex: '-1' }, 'Event'), failure(err, () => route()));
    }
  }

  function render(map) {
    document.title = `${event.title} · seatq`;
    heading.textContent = event.title;
    subtitle.textContent = `${event.performer} · ${event.venue.name}, ${event.venue.city} · ${when(event.starts_at)}`;
    maxSelRaw = event.max_seats_per_user;
    maxSel = Math.min(maxSelRaw, MAX_SEATS_PER_REQUEST);
    renderSaleStatus();
    const legend = h(
      'ul',
      { class: 'legend', 'aria-label': 'Legend' },
      [
        ['available', 'Available'],
        ['held', 'Held'],
        ['sold', 'Sold'],
        ['selected', 'Selected'],
        ['mine', 'Yours'],
      ].map(([k, label]) => h('li', {}, h('span', { class: `swatch swatch-${k}`, 'aria-hidden': 'true' }), label)),
    );
    const mapCol = h(
      'div',
      { class: 'map-col' },
      h('h2', { class: 'sr-only' }, 'Seat map'),
      h('div', { class: 'map-toolbar' }, legend, h('span', { class: 'toolbar-right' }, countsEl, liveIndicator)),
      mapRoot,
    );
    const aside = h(
      'aside',
      { class: 'side-col', 'aria-label': 'Seats and holds' },
      selectionPanel,
      seatInfo,
      waitlistPanel,
      seatForm,
      bestPanel,
    );
    if (event.waiting_room_enabled) {
      room = waitingRoom(scope, eventId, {
        title: () => event.title,
        // Not in the event view yet; when it is, a sale without proof of work skips the challenge.
        difficulty: () => event.pow_difficulty,
        onChange: () => {
          if (!loaded) return;
          // Let in means the sale is open, whatever this page last heard.
          if (room.token() && !event.sale_open) reloadSale();
          renderSelection();
          renderSectionList();
          seatMap.setDisabled(!event.sale_open || !admitted());
        },
        onOff: () => {
          event = { ...event, waiting_room_enabled: false };
          eventCache.delete(eventId);
        },
      });
    }
    fill(
      main,
      h(
        'div',
        { class: 'page event-page' },
        h(
          'header',
          { class: 'event-head' },
          h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← All events')),
          heading,
          subtitle,
          saleStatus,
        ),
        room ? room.el : null,
        h('div', { class: 'event-layout' }, mapCol, aside),
      ),
    );
    // Holds go beside the map on wide screens, above it on phones (where the side column
    // comes after 40 sections of seats).
    const narrow = matchMedia('(max-width: 62rem)');
    const placeHoldArea = () => {
      if (narrow.matches) mapCol.before(holdArea);
      else aside.prepend(holdArea);
    };
    placeHoldArea();
    scope.listen(narrow, 'change', placeHoldArea);
    focusHeading(heading);
    seatMap = new SeatMap(mapRoot, {
      onActivate,
      onGaHold: (code, qty) => holdBest(code, qty),
      announce,
      maxQuantity: () => Math.max(1, maxSel),
    });
    scope.on(() => seatMap.destroy());
    applySnapshot(map);
    seatMap.setDisabled(!event.sale_open || !admitted());
    loaded = true;
    if (room) room.start();
    refreshQuantities();
    renderHolds();
    renderSelection();
    refreshWaitlists();
    startLive();
  }

  function renderSaleStatus() {
    if (event.sale_open) {
      fill(
        saleStatus,
        h('span', { class: 'badge badge-open' }, 'On sale'),
        ` Up to ${event.max_seats_per_user} seat${event.max_seats_per_user === 1 ? '' : 's'} per person · seats are held for ${
          event.hold_ttl_secs < 120 ? `${event.hold_ttl_secs} seconds` : `${Math.round(event.hold_ttl_secs / 60)} minutes`
        } while you pay.`,
      );
    } else {
      fill(
        saleStatus,
        h('span', { class: 'badge' }, 'Not on sale yet'),
        ' Sale opens in ',
        countdown(event.on_sale_at, { 'data-testid': 'sale-countdown', 'data-urgent-secs': '0' }),
        ` (${when(event.on_sale_at)}).`,
      );
    }
  }

  // Sale opening: reload the event when the countdown ends (and again a little later while
  // it is not open yet, or the request failed).
  let saleReload = null;
  function reloadSale(tries = 0) {
    if (saleReload || !event || event.sale_open) return;
    saleReload = eventDetail(eventId, { fresh: true })
      .then((d) => {
        if (!scope.alive) return;
        event = d;
        renderSaleStatus();
        seatMap.setDisabled(!event.sale_open || !admitted());
        renderSectionList();
        renderSelection();
      })
      .catch(() => {})
      .finally(() => {
        saleReload = null;
        if (scope.alive && event && !event.sale_open && Date.parse(event.on_sale_at) <= Date.now() && tries < 10) {
          scope.timeout(() => reloadSale(tries + 1), 1000);
        }
      });
  }
  scope.on(
    onCountdownExpired((el) => {
      if (el.dataset.testid === 'sale-countdown') reloadSale();
    }),
  );

  // Refresh the section list's numbers now and then (cheap; no network).
  scope.interval(() => {
    if (!event || !seatMap) return;
    for (const td of sectionList.querySelectorAll('[data-section-left]')) {
      const sec = seatMap.section(td.dataset.sectionLeft);
      if (sec) td.textContent = sec.available.toLocaleString();
    }
  }, 2000);

  holdButton.addEventListener('click', holdSelected);
  clearButton.addEventListener('click', () => {
    selected.clear();
    renderSelection();
    announce('Selection cleared.');
  });
  seatForm.addEventListener('submit', addSeatById);
  bestQty.addEventListener('change', () => renderSectionList());
  scope.on(onHoldsChange(() => event && renderHolds()));
  scope.onUser('waitlist_updated', () => refreshWaitlists());
  scope.onUser('waitlist_offer', () => refreshWaitlists());
  scope.interval(() => currentSession() && savedWaitlists().some((w) => w.event_id === eventId) && refreshWaitlists(), 15000);
  currentView = { ...(currentView || {}), onSession: () => {
    if (room && event.waiting_room_enabled) room.start();
    renderSelection();
    refreshWaitlists();
    renderHolds();
    if (seatMap && event) seatMap.setDisabled(!event.sale_open || !admitted());
  } };
  load();
}

// ---------------------------------------------------------------------------------------
// #/holds and #/holds/{id}.

function viewHolds(scope) {
  document.title = 'My holds · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'My holds');
  const list = h('div', { class: 'holds-list', 'data-testid': 'my-holds' });
  fill(main, h('div', { class: 'page' }, heading, list));
  focusHeading(heading);
  if (!currentSession()) {
    fill(list, needLogin('your holds'));
    return;
  }
  fill(list, loading());
  const events = new Map();
  async function render() {
    const holds = [...myHolds.values()];
    await Promise.all(
      [...new Set(holds.map((hd) => hd.event_id))].map(async (id) => {
        if (!events.has(id)) events.set(id, await eventDetail(id).catch(() => null));
      }),
    );
    if (!scope.alive) return;
    if (!holds.length) {
      fill(list, h('p', { class: 'empty', 'data-testid': 'holds-empty' }, 'No seats held right now. ', h('a', { href: '#/' }, 'Find an event')));
      return;
    }
    // Newest first, grouped by event.
    holds.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const byEvent = new Map();
    for (const hd of holds) {
      if (!byEvent.has(hd.event_id)) byEvent.set(hd.event_id, []);
      byEvent.get(hd.event_id).push(hd);
    }
    fill(
      list,
      [...byEvent.entries()].map(([id, group]) => {
        const ev = events.get(id);
        return h(
          'section',
          { class: 'hold-group' },
          h('h2', {}, ev ? h('a', { href: `#/events/${id}` }, ev.title) : 'Event'),
          group.map((hd) => holdCard(hd, { event: ev })),
        );
      }),
    );
  }
  scope.on(onHoldsChange(() => render()));
  refreshHolds()
    .then(render)
    .catch((err) => scope.alive && fill(list, failure(err, () => route())));
}

function viewHold(scope, holdId) {
  document.title = 'Your hold · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'Your hold');
  const body = h('div', { class: 'hold-page' }, loading());
  fill(main, h('div', { class: 'page narrow' }, h('p', { class: 'crumbs' }, h('a', { href: '#/holds' }, '← My holds')), heading, body));
  focusHeading(heading);
  if (!currentSession()) {
    fill(body, needLogin('this hold'));
    return;
  }
  const payingKey = `seatq.paying.${holdId}`;
  const payingSince = Number(sessionStorage.getItem(payingKey) || 0);
  const confirming = payingSince && Date.now() - payingSince < 30 * 60000;
  const startedAt = Date.now();
  let event = null;
  let lastStatus = null;
  let timer = null;

  async function load() {
    clearTimeout(timer);
    try {
      const r = await api('GET', `/v1/holds/${holdId}`, { signal: scope.signal });
      if (!scope.alive) return;
      const hold = r.data;
      if (!event) event = await eventDetail(hold.event_id).catch(() => null);
      if (!scope.alive) return;
      await render(hold);
      if (hold.status === 'active') {
        // Waiting for the payment to be confirmed: ask often; otherwise now and then.
        const waiting = confirming && sessionStorage.getItem(payingKey);
        timer = setTimeout(load, !waiting ? 10000 : Date.now() - startedAt < 120000 ? 1500 : 5000);
      }
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      if (err.retryable) {
        timer = setTimeout(load, (err.retryAfter || 3) * 1000);
        return;
      }
      fill(body, failure(err, load));
    }
  }
  scope.on(() => clearTimeout(timer));

  async function render(hold) {
    const changed = hold.status !== lastStatus;
    lastStatus = hold.status;
    if (event) heading.textContent = hold.status === 'sold' ? `Booked: ${event.title}` : `Your hold: ${event.title}`;
    const parts = [];
    if (hold.status === 'active') {
      rememberHold(hold);
      const stillConfirming = confirming && sessionStorage.getItem(payingKey);
      if (stillConfirming) {
        const slow = Date.now() - startedAt > 15000;
        parts.push(
          h(
            'div',
            { class: 'notice', 'data-testid': 'hold-confirming', role: 'status' },
            h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('strong', {}, 'Confirming your payment…')),
            h(
              'p',
              { class: 'muted small' },
              slow
                ? 'This is taking longer than usual. If you declined or closed the payment page, you can pay again below; you are never charged twice for one hold.'
                : 'This usually takes a few seconds. Your seats stay held meanwhile.',
            ),
          ),
        );
      }
      parts.push(holdCard(hold, { event, link: false, onEnded: load }));
    } else if (hold.status === 'sold') {
      sessionStorage.removeItem(payingKey);
      myHolds.delete(hold.hold_id);
      holdsChanged();
      parts.push(holdCard(hold, { event, link: false }));
      if (hold.booking_id) {
        try {
          const b = await api('GET', `/v1/bookings/${hold.booking_id}`, { signal: scope.signal });
          if (!scope.alive) return;
          parts.push(bookingCard(scope, b.data, { event, onChange: load }));
        } catch (err) {
          if (isAbort(err)) return;
          parts.push(failure(err, load));
        }
      }
      if (changed && payingSince && !confirmedAnnounced.has(hold.hold_id)) {
        confirmedAnnounced.add(hold.hold_id);
        toast('Payment confirmed: your tickets are below.', { kind: 'success' });
      }
    } else {
      sessionStorage.removeItem(payingKey);
      myHolds.delete(hold.hold_id);
      holdsChanged();
      parts.push(holdCard(hold, { event, link: false }));
      parts.push(
        h(
          'p',
          {},
          hold.status === 'expired' ? 'The time to pay ran out and the seats went back on sale. ' : 'These seats were released. ',
          h('a', { href: `#/events/${hold.event_id}` }, 'Pick seats again'),
        ),
      );
    }
    fill(body, parts);
  }

  for (const kind of ['booking_confirmed', 'hold_released', 'hold_extended', 'payment_failed']) {
    scope.onUser(kind, (d) => {
      if (d.hold_id !== holdId) return;
      if (kind === 'payment_failed') sessionStorage.removeItem(payingKey);
      load();
    });
  }
  scope.on(
    onCountdownExpired((el) => {
      if (el.dataset.holdId === holdId) scope.timeout(load, 1500);
    }),
  );
  load();
}

// ---------------------------------------------------------------------------------------
// #/bookings and #/bookings/{id}.

function viewBookings(scope) {
  document.title = 'My bookings · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'My bookings');
  const list = h('div', { class: 'bookings-list', 'data-testid': 'bookings-list' });
  fill(main, h('div', { class: 'page' }, heading, list));
  focusHeading(heading);
  if (!currentSession()) {
    fill(list, needLogin('your bookings'));
    return;
  }
  async function load() {
    fill(list, loading());
    try {
      const r = await api('GET', '/v1/me/bookings?limit=50', { signal: scope.signal });
      if (!scope.alive) return;
      if (!r.data.bookings.length) {
        fill(list, h('p', { class: 'empty', 'data-testid': 'bookings-empty' }, 'No bookings yet. ', h('a', { href: '#/' }, 'Find an event')));
        return;
      }
      const events = new Map();
      await Promise.all(
        [...new Set(r.data.bookings.map((b) => b.event_id))].map(async (id) =>
          events.set(id, await eventDetail(id).catch(() => null)),
        ),
      );
      if (!scope.alive) return;
      fill(list, r.data.bookings.map((b) => bookingCard(scope, b, { event: events.get(b.event_id), link: true, onChange: load })));
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(list, failure(err, load));
    }
  }
  scope.onUser('booking_confirmed', load);
  scope.onUser('booking_cancelled', load);
  load();
}

function viewBooking(scope, bookingId) {
  document.title = 'Booking · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'Your booking');
  const body = h('div', {}, loading());
  fill(main, h('div', { class: 'page narrow' }, h('p', { class: 'crumbs' }, h('a', { href: '#/bookings' }, '← My bookings')), heading, body));
  focusHeading(heading);
  if (!currentSession()) {
    fill(body, needLogin('this booking'));
    return;
  }
  async function load() {
    try {
      const r = await api('GET', `/v1/bookings/${bookingId}`, { signal: scope.signal });
      const event = await eventDetail(r.data.event_id).catch(() => null);
      if (!scope.alive) return;
      heading.textContent = r.data.event_title;
      document.title = `${r.data.event_title} · seatq`;
      fill(body, bookingCard(scope, r.data, { event, onChange: load }));
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
    }
  }
  scope.onUser('booking_cancelled', (d) => d.booking_id === bookingId && load());
  load();
}

/** Whether cancelling now refunds in full (the event's policy), or null if unknown. */
function refundable(event) {
  if (!event) return null;
  const cutoff = Date.parse(event.starts_at) - event.refund_cutoff_hours * 3600 * 1000;
  return Date.now() < cutoff;
}

/** A booking with its tickets (`booking`). */
function bookingCard(scope, b, { event = null, link = false, onChange = () => {} } = {}) {
  const session = currentSession();
  const confirmed = b.status === 'confirmed';
  const started = event ? Date.parse(event.starts_at) <= Date.now() : false;
  const cancelArea = h('div', { class: 'cancel-area' });

  function showCancel() {
    const full = refundable(event);
    const refundText =
      full === null
        ? 'The refund follows the event’s policy.'
        : full
          ? `You get a full refund of ${money(b.amount_cents)}.`
          : `It is less than ${event.refund_cutoff_hours} hours before the event: there is no refund.`;
    const given = b.tickets.filter((t) => session && t.holder_user_id !== session.user_id && t.status !== 'void');
    fill(
      cancelArea,
      h(
        'div',
        { class: 'confirm', role: 'group', 'aria-label': 'Confirm cancellation' },
        h('p', {}, h('strong', {}, 'Cancel this booking? '), `All its tickets stop working and the seats go back on sale. ${refundText}`),
        given.length
          ? h(
              'p',
              { class: 'form-error' },
              `This includes ${given.length === 1 ? 'a ticket' : `${given.length} tickets`} you transferred (${given
                .map((t) => `${t.seat_id || t.section} to ${t.holder_user_id}`)
                .join(', ')}): ${given.length === 1 ? 'it stops' : 'they stop'} working too.`,
            )
          : null,
        h(
          'div',
          { class: 'actions' },
          h('button', { type: 'button', class: 'danger', 'data-testid': 'booking-cancel-confirm', on: { click: doCancel } }, 'Yes, cancel booking'),
          h('button', { type: 'button', 'data-testid': 'booking-cancel-keep', on: { click: resetCancel } }, 'Keep it'),
        ),
      ),
    );
    cancelArea.querySelector('[data-testid="booking-cancel-keep"]').focus();
  }

  function resetCancel() {
    fill(
      cancelArea,
      confirmed && !started
        ? h('button', { type: 'button', class: 'danger-outline', 'data-testid': 'booking-cancel', on: { click: showCancel } }, 'Cancel booking')
        : null,
    );
  }

  async function doCancel(e) {
    e.currentTarget.disabled = true;
    cancelledHere.add(b.booking_id);
    try {
      const r = await api('POST', `/v1/bookings/${b.booking_id}/cancel`);
      if (r.status === 202) {
        fill(cancelArea, h('p', { role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Cancelling…'));
        for (let i = 0; i < 30 && scope.alive; i++) {
          await sleep(1000);
          const v = await api('GET', `/v1/bookings/${b.booking_id}`);
          if (v.data.status === 'cancelled') break;
        }
        toast('Booking cancelled.', { kind: 'info' });
      } else {
        toast(`Booking cancelled. Refund: ${money(r.data.refund_cents)}.`, { kind: 'info' });
      }
      onChange();
    } catch (err) {
      toast(errorText(err), { kind: 'error', urgent: true });
      resetCancel();
    }
  }
  resetCancel();

  const tickets = b.tickets.map((t) => ticketItem(scope, b, t, session, onChange));
  const title = link
    ? h('a', { href: `#/bookings/${b.booking_id}`, 'data-testid': 'booking-link' }, b.event_title)
    : b.event_title;
  return h(
    'article',
    { class: `booking status-${b.status}`, 'data-testid': 'booking', 'data-booking-id': b.booking_id, 'data-status': b.status },
    h('header', { class: 'booking-head' }, link ? h('h2', {}, title) : h('h2', {}, confirmed ? 'Your tickets' : 'Cancelled booking'),
      h('span', { class: `badge ${confirmed ? 'badge-open' : ''}`, 'data-testid': 'booking-status' }, confirmed ? 'Confirmed' : 'Cancelled')),
    event ? h('p', { class: 'muted' }, `${event.venue.name}, ${event.venue.city} · ${when(event.starts_at)}`) : null,
    h(
      'p',
      {},
      'Paid ',
      h('strong', { 'data-testid': 'booking-amount' }, money(b.amount_cents)),
      ` on ${when(b.created_at)}`,
      b.status === 'cancelled'
        ? [
            ' · cancelled',
            b.cancelled_at ? ` ${when(b.cancelled_at)}` : '',
            ' · refund ',
            h('strong', { 'data-testid': 'booking-refund' }, money(b.refund_cents || 0)),
          ]
        : null,
    ),
    h('ul', { class: 'tickets' }, tickets),
    cancelArea,
  );
}

function ticketItem(scope, booking, t, session, onChange) {
  const mine = session && t.holder_user_id === session.user_id;
  const label = t.seat_id || `${t.section} (standing)`;
  let qr = null;
  if (t.status !== 'void' && mine) {
    qr = h('img', {
      class: 'qr',
      'data-testid': 'ticket-qr',
      alt: `QR code of ticket ${label}: show it at the entrance`,
      width: '160',
      height: '160',
    });
    fetchBlobUrl(t.qr_url, scope.signal)
      .then((url) => {
        if (!scope.alive) {
          URL.revokeObjectURL(url);
          return;
        }
        qr.src = url;
        scope.on(() => URL.revokeObjectURL(url));
      })
      .catch((err) => {
        if (isAbort(err)) return;
        qr.replaceWith(h('p', { class: 'muted small' }, `QR code unavailable: ${errorText(err)}`));
      });
  }
  let transfer = null;
  if (mine && t.status === 'valid' && booking.status === 'confirmed') {
    const inputId = `transfer-${t.ticket_id}`;
    const input = h('input', { id: inputId, 'data-testid': 'transfer-to', placeholder: 'Their user name', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
    const error = h('p', { class: 'form-error', 'data-testid': 'transfer-error', role: 'alert', hidden: true });
    const button = h('button', { type: 'submit', 'data-testid': 'transfer-button' }, 'Send ticket');
    transfer = h(
      'details',
      { class: 'transfer' },
      h('summary', {}, 'Transfer this ticket'),
      h(
        'form',
        {
          on: {
            submit: async (e) => {
              e.preventDefault();
              const to = input.value.trim();
              error.hidden = true;
              if (!to || /\s/.test(to)) {
                error.textContent = 'Enter their user name (no spaces).';
                error.hidden = false;
                return;
              }
              button.disabled = true;
              try {
                await api('POST', `/v1/tickets/${t.ticket_id}/transfer`, { body: { to_user_id: to } });
                toast(`Ticket ${label} sent to ${to}. Your copy of its QR code no longer works.`, { kind: 'success' });
                onChange();
              } catch (err) {
                error.textContent = errorText(err);
                error.hidden = false;
                button.disabled = false;
              }
            },
          },
        },
        h('label', { for: inputId }, 'Send to'),
        h('div', { class: 'inline-form' }, input, button),
        h('p', { class: 'muted small' }, 'The ticket gets a new code; the current QR code stops working.'),
        error,
      ),
    );
  }
  const statusText = { valid: 'Valid', void: 'Void', checked_in: 'Checked in' }[t.status] || t.status;
  return h(
    'li',
    { class: `ticket status-${t.status}`, 'data-testid': 'ticket', 'data-ticket-id': t.ticket_id, 'data-status': t.status },
    h(
      'div',
      { class: 'ticket-info' },
      h('p', { class: 'ticket-seat', 'data-testid': 'ticket-seat' }, label),
      h('p', {}, h('span', { class: `badge ticket-${t.status}`, 'data-testid': 'ticket-status' }, statusText),
        t.checked_in_at ? h('span', { class: 'muted small' }, ` ${when(t.checked_in_at)}`) : null),
      !mine ? h('p', { class: 'muted small', 'data-testid': 'ticket-holder' }, `Now held by ${t.holder_user_id}`) : null,
      transfer,
    ),
    qr,
  );
}

// ---------------------------------------------------------------------------------------
// Start.

setInterval(tickCountdowns, 1000);
onCountdownExpired((el) => {
  // A hold ran out: the stream (or the next poll) will say so; ask now.
  if (el.dataset.holdId || el.dataset.testid === 'offer-countdown') {
    setTimeout(() => refreshHolds().catch(() => {}), 1500);
  }
});

onSessionChange((session) => {
  renderAccount();
  watchTokenExpiry(session);
  myHolds.clear();
  holdsChanged();
  startMeFeed();
  refreshHolds().catch(() => {});
  if (currentView && currentView.onSession) currentView.onSession(session);
  else route();
});

window.addEventListener('hashchange', route);
// The skip link must not change the hash (that is the router's).
document.querySelector('.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
renderAccount();
watchTokenExpiry(currentSession());
startMeFeed();
refreshHolds().catch(() => {});
route();
tickCountdowns();
