// The seatq browser app: browse events, pick seats on a live seat map, hold them, pay at the
// payment provider, see bookings and tickets, wait for taken seats, queue in the waiting
// room of a high-demand sale. Plain ES modules, no build step. This file is the entry
// (index.html loads it): the router and the start. The rest, by what it does:
//
//   app/ui.js              toasts, announcements, the user-event bus, Scope (a view's
//                          lifetime), loading and error boxes
//   app/session.js         login / logout in the header, the end of a session
//   app/holds.js           my active holds (kept current), pay, cancel
//   app/offers.js          the waitlist offer banner above every page
//   app/user-feed.js       the user's live events (/v1/me/stream), told to the user and
//                          passed on to the views
//   app/event-cache.js     event details, cached for a minute
//   app/events.js          #/ the list of events, with search
//   app/event-page.js      #/events/{id}, put together from its parts, which share one
//                          state object (app/event-state.js):
//     app/event-selection.js   the selection panel, what a click on a seat does
//     app/event-seat-info.js   the panel about one seat (join its waitlist)
//     app/event-waitlists.js   joining waitlists, "Your waitlists"
//     app/event-hold.js        the hold request and its outcome, my holds here
//     app/event-live.js        the map's snapshot and live changes (SSE or polling)
//     app/event-pickers.js     seat by number, best available
//   app/waiting-room.js    the waiting room of a high-demand sale (on the event page)
//   app/lottery.js         #/events/{id}/lottery: the waiting room's draw, checked in the
//                          browser with WebCrypto
//   app/hold-views.js      the hold card, #/holds, #/holds/{id}
//   app/bookings.js        #/bookings, #/bookings/{id}: tickets, cancel, transfer
//   app/admin-ui.js        organisers (admin role) only: the guard, tabs, field checks
//                          with the API's bounds, the API-refusal box; and their pages:
//     app/admin-venues.js      #/admin/venues: venues, a new one with its sections
//     app/admin-events.js      #/admin/events: a new event at a venue, the calendar
//     app/admin-holdbacks.js   #/admin/events/{id}/holdbacks: seats off sale and back
//     app/admin-control-room.js #/admin/events/{id}/control-room: live tiles (SSE), the
//                              demand heat map, pause / resume / end the sale
//     app/admin-seat-story.js  a seat's story in queue order (in the control room)
//     app/checkin.js           #/checkin, #/checkin/{id}: the door (camera or typed code)
//
// and the helpers they share: api.js (HTTP and live streams), seatmap.js (canvas seat map),
// util.js (DOM and formatting helpers), pow.js (the waiting room's proof of work, in
// pow-worker.js Web Workers), sha256.js (SHA-256 and the nonce search). The gateway serves
// only the files listed in gateway/src/web.rs: a new module goes there (and into
// index.html's modulepreload links) too.
//
// Routes (hash, so reloads and the payment page's "Back to seatq" link work):
//   #/                 events, with search
//   #/events/{id}      an event: seat map, selection, hold, waitlists
//   #/events/{id}/lottery  the waiting room's lottery, checked in the browser
//   #/holds            my active holds (waitlist offers included)
//   #/holds/{id}       one hold: countdown, pay, cancel; after payment, the booking
//   #/bookings         my bookings with tickets
//   #/bookings/{id}    one booking: tickets with QR codes, cancel, transfer
//   #/admin/venues, #/admin/events[?venue={id}], #/admin/events/{id}/holdbacks,
//   #/admin/events/{id}/control-room,
//   #/checkin, #/checkin/{id}   organisers and door staff (a token with role admin)
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
//   event page         event-title, sale-status (data-state = open | paused | ended |
//                      not_open), sale-countdown (until on sale), sale-paused, sale-ended,
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
//                      error), hold-ahead, hold-reason (data-reason, e.g. sale_paused,
//                      sale_ended), unavailable-seats, hold-receipt, receipt-line
//                      (data-seat-id, data-places-ahead), alternative-hold, hold-retry-stop
//   lottery            lottery-link (in the waiting room), lottery (data-revealed,
//                      data-ok), lottery-commitment, lottery-pending,
//                      lottery-reveal-countdown, lottery-verdict (data-ok),
//                      lottery-check-{seed,list,count,draws} (data-ok), lottery-entrants
//                      (data-count), lottery-mine (data-place, data-tag), lottery-order,
//                      lottery-entry
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
//   organiser          login-organiser (checkbox), nav-admin, nav-checkin, admin-only,
//   (admin-*.js,       admin-tab-{venues,events,check-in}, field-error (data-field);
//   checkin.js)        venue-form, venue-name, venue-city, section-row (each with
//                      section-kind, -code, -name, -rows, -seats, -capacity, -price,
//                      -remove), section-add, venue-totals, venue-submit, venue-problem
//                      (data-code; -title, -detail, -code), venue-created (data-venue-id),
//                      venue-list, venue-item (data-venue-id); event-form, event-venue,
//                      event-title-input, event-performer, event-starts, event-on-sale,
//                      event-max-seats, event-hold-ttl, event-refund, event-waiting-room,
//                      event-pow, event-submit, event-problem, event-created
//                      (data-event-id), event-holdbacks-link, admin-event-item;
//                      holdback-form, holdback-mode-seats / -section, holdback-section,
//                      holdback-seat-input, holdback-seat-add, holdback-seat, holdback-count,
//                      holdback-note, holdback-release-manual / -timed / -at,
//                      holdback-submit, holdback-problem, holdback (data-hold-id,
//                      data-status = active | released), holdback-release,
//                      release-problem; event-control-room-link; control-room
//                      (data-updates = drawings so far, data-sale-state), control-live
//                      (data-mode), control-updated (data-age-secs), control-tiles,
//                      tile-{decisions,holds,sold,revenue,waiting,admission,lag,
//                      dead-letters,refunds} (data-value; -value), sale-state
//                      (data-state), sale-note, sale-pause, sale-resume, sale-end,
//                      sale-end-box, sale-end-confirm, sale-end-keep, sale-problem,
//                      demand-total, demand-table, demand-row (data-section,
//                      data-refused); story-seat-input, story-open, seat-story
//                      (data-seat-id, data-state, data-status), story-seat,
//                      story-status, story-command (data-position = offset.seq,
//                      data-user, data-status, data-winner), story-winner, story-more,
//                      story-hold, story-payment, story-booking, story-ticket,
//                      story-waiter; checkin-code, checkin-submit, checkin-code-error,
//                      checkin-camera (data-state = off | unsupported | blocked |
//                      scanning), checkin-result (full screen; data-result = admitted |
//                      refused | error, data-code = the API's code), checkin-verdict,
//                      checkin-next, checkin-last (data-result, data-code), checkin-counts

import { currentSession, onSessionChange } from './api.js';
import { h, fill, tickCountdowns, onCountdownExpired } from './util.js';
import { main, Scope } from './app/ui.js';
import { renderAccount, watchTokenExpiry } from './app/session.js';
import { myHolds, onHoldsChange, holdsChanged, refreshHolds } from './app/holds.js';
import { renderOffers } from './app/offers.js';
import { startMeFeed } from './app/user-feed.js';
import { viewEvents } from './app/events.js';
import { viewEvent } from './app/event-page.js';
import { viewHolds, viewHold } from './app/hold-views.js';
import { viewBookings, viewBooking } from './app/bookings.js';
import { showAdminNav } from './app/admin-ui.js';
import { viewAdminVenues } from './app/admin-venues.js';
import { viewAdminEvents } from './app/admin-events.js';
import { viewAdminHoldbacks } from './app/admin-holdbacks.js';
import { viewAdminControlRoom } from './app/admin-control-room.js';
import { viewLottery } from './app/lottery.js';
import { viewCheckinPick, viewCheckin } from './app/checkin.js';

// ---------------------------------------------------------------------------------------
// Router.

/** The current view's lifetime (ui.js `Scope`), closed when the route changes. */
let scope = null;

const routes = [
  [/^#?\/?$/, viewEvents],
  [/^#\/events\/([^/?]+)$/, viewEvent],
  [/^#\/events\/([^/?]+)\/lottery$/, viewLottery],
  [/^#\/holds$/, viewHolds],
  [/^#\/holds\/([^/?]+)$/, viewHold],
  [/^#\/bookings$/, viewBookings],
  [/^#\/bookings\/([^/?]+)$/, viewBooking],
  [/^#\/admin\/?$/, viewAdminVenues],
  [/^#\/admin\/venues$/, viewAdminVenues],
  [/^#\/admin\/events(?:\?venue=([^&]+))?$/, viewAdminEvents],
  [/^#\/admin\/events\/([^/?]+)\/holdbacks$/, viewAdminHoldbacks],
  [/^#\/admin\/events\/([^/?]+)\/control-room$/, viewAdminControlRoom],
  [/^#\/checkin$/, viewCheckinPick],
  [/^#\/checkin\/([^/?]+)$/, viewCheckin],
];

/** Show the page of the current hash (a view gets a new scope and the hash's parameters). */
function route() {
  if (scope) scope.close();
  scope = new Scope(route);
  const hash = location.hash || '#/';
  document.querySelectorAll('nav a').forEach((a) => {
    const target = a.dataset.navPrefix || a.getAttribute('href');
    const current = target === '#/' ? hash === '#/' || hash.startsWith('#/events') : hash.startsWith(target);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  main.replaceChildren();
  renderOffers();
  for (const [re, view] of routes) {
    const m = hash.match(re);
    if (m) {
      view(scope, ...m.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p))));
      return;
    }
  }
  document.title = 'Not found · seatq';
  fill(main, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'See all events')));
}

// ---------------------------------------------------------------------------------------
// Start.

// The offer banner follows my holds (registered first: before any view's listener).
onHoldsChange(renderOffers);
setInterval(tickCountdowns, 1000);
onCountdownExpired((el) => {
  // A hold ran out: the stream (or the next poll) will say so; ask now.
  if (el.dataset.holdId || el.dataset.testid === 'offer-countdown') {
    setTimeout(() => refreshHolds().catch(() => {}), 1500);
  }
});

onSessionChange((session) => {
  renderAccount();
  showAdminNav();
  watchTokenExpiry(session);
  myHolds.clear();
  holdsChanged();
  startMeFeed();
  refreshHolds().catch(() => {});
  if (scope && scope.onSession) scope.onSession(session);
  else route();
});

window.addEventListener('hashchange', route);
// The skip link must not change the hash (that is the router's).
document.querySelector('.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
renderAccount();
showAdminNav();
watchTokenExpiry(currentSession());
startMeFeed();
refreshHolds().catch(() => {});
route();
tickCountdowns();
