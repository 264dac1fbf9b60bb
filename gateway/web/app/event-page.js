// #/events/{id} — an event's page: its header and sale status, the waiting room when the
// sale has one, the live seat map, and beside it the selection, holds, seat info,
// waitlists and pickers. This module only puts the page together: it loads the event,
// builds the shared state (event-state.js) and the parts (event-*.js), lays them out, and
// follows the sale opening and the user signing in or out.

import { api } from '../api.js';
import { SeatMap } from '../seatmap.js';
import { h, fill, when, countdown, onCountdownExpired } from '../util.js';
import { main, announce, isAbort, focusHeading, loading, failure } from './ui.js';
import { onHoldsChange } from './holds.js';
import { eventDetail, forgetEvent } from './event-cache.js';
import { WaitingRoom } from './waiting-room.js';
import { eventPageState, admitted, MAX_SEATS_PER_REQUEST } from './event-state.js';
import { selectionPanel } from './event-selection.js';
import { seatInfoPanel } from './event-seat-info.js';
import { waitlistPanel } from './event-waitlists.js';
import { holdRequests } from './event-hold.js';
import { liveUpdates } from './event-live.js';
import { seatPickers } from './event-pickers.js';

const LEGEND = [
  ['available', 'Available'],
  ['held', 'Held'],
  ['sold', 'Sold'],
  ['selected', 'Selected'],
  ['mine', 'Yours'],
];

export function viewEvent(scope, eventId) {
  document.title = 'Event · seatq';
  fill(main, loading('Loading the event and its seat map…'));
  const page = eventPageState(scope, eventId);
  page.selection = selectionPanel(page);
  page.seatInfo = seatInfoPanel(page);
  page.waitlists = waitlistPanel(page);
  page.holding = holdRequests(page);
  page.live = liveUpdates(page);
  page.pickers = seatPickers(page);

  const heading = h('h1', { tabindex: '-1', 'data-testid': 'event-title' });
  const subtitle = h('p', { class: 'event-sub' });
  const saleStatus = h('p', { class: 'sale-status', 'data-testid': 'sale-status' });
  const mapRoot = h('div', { class: 'seat-map', 'data-testid': 'seat-map' });

  page.renderSaleStatus = () => renderSaleStatus();

  /** Map clicks and holding need both the sale open and (with a waiting room) admission. */
  const updateMapDisabled = () => page.seatMap.setDisabled(!page.event.sale_open || !admitted(page));

  async function load() {
    try {
      const [detail, mapR] = await Promise.all([
        eventDetail(eventId, { fresh: true }),
        api('GET', `/v1/events/${eventId}/seats`, { signal: scope.signal, auth: false }),
      ]);
      if (!scope.alive) return;
      page.event = detail;
      render(mapR.data, mapR.etag);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(main, h('h1', { tabindex: '-1' }, 'Event'), failure(err, () => scope.rerender()));
    }
  }

  /** The loaded page: layout, seat map, first snapshot, then everything live. */
  function render(map, etag) {
    const { event } = page;
    document.title = `${event.title} · seatq`;
    heading.textContent = event.title;
    subtitle.textContent = `${event.performer} · ${event.venue.name}, ${event.venue.city} · ${when(event.starts_at)}`;
    page.maxSelRaw = event.max_seats_per_user;
    page.maxSel = Math.min(page.maxSelRaw, MAX_SEATS_PER_REQUEST);
    renderSaleStatus();
    const legend = h(
      'ul',
      { class: 'legend', 'aria-label': 'Legend' },
      LEGEND.map(([k, label]) => h('li', {}, h('span', { class: `swatch swatch-${k}`, 'aria-hidden': 'true' }), label)),
    );
    const mapCol = h(
      'div',
      { class: 'map-col' },
      h('h2', { class: 'sr-only' }, 'Seat map'),
      h('div', { class: 'map-toolbar' }, legend, h('span', { class: 'toolbar-right' }, page.live.countsEl, page.live.indicator)),
      mapRoot,
    );
    const aside = h(
      'aside',
      { class: 'side-col', 'aria-label': 'Seats and holds' },
      page.selection.el,
      page.seatInfo.el,
      page.waitlists.el,
      page.pickers.seatForm,
      page.pickers.bestPanel,
    );
    if (event.waiting_room_enabled) page.room = openWaitingRoom();
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
        page.room ? page.room.el : null,
        h('div', { class: 'event-layout' }, mapCol, aside),
      ),
    );
    // Holds go beside the map on wide screens, above it on phones (where the side column
    // comes after 40 sections of seats).
    const holdArea = page.holding.area;
    const narrow = matchMedia('(max-width: 62rem)');
    const placeHoldArea = () => {
      if (narrow.matches) mapCol.before(holdArea);
      else aside.prepend(holdArea);
    };
    placeHoldArea();
    scope.listen(narrow, 'change', placeHoldArea);
    focusHeading(heading);
    page.seatMap = new SeatMap(mapRoot, {
      onActivate: page.selection.activate,
      onGaHold: (code, qty) => page.holding.holdBest(code, qty),
      announce,
      maxQuantity: () => Math.max(1, page.maxSel),
    });
    scope.on(() => page.seatMap.destroy());
    page.live.begin(map, etag);
    updateMapDisabled();
    page.loaded = true;
    if (page.room) page.room.start();
    page.pickers.refreshQuantities();
    page.holding.renderHolds();
    page.selection.render();
    page.waitlists.refresh();
    page.live.start();
  }

  function openWaitingRoom() {
    return new WaitingRoom(scope, eventId, {
      title: () => page.event.title,
      // Not in the event view yet; when it is, a sale without proof of work skips the challenge.
      difficulty: () => page.event.pow_difficulty,
      onChange: () => {
        if (!page.loaded) return;
        // Let in means the sale is open, whatever this page last heard.
        if (page.room.token() && !page.event.sale_open) reloadSale();
        page.selection.render();
        page.pickers.renderSectionList();
        updateMapDisabled();
      },
      onOff: () => {
        page.event = { ...page.event, waiting_room_enabled: false };
        forgetEvent(eventId);
      },
    });
  }

  function renderSaleStatus() {
    const { event } = page;
    saleStatus.dataset.state = event.sale_state || (event.sale_open ? 'open' : 'not_open');
    if (event.sale_state === 'paused') {
      fill(
        saleStatus,
        h('span', { class: 'badge badge-paused', 'data-testid': 'sale-paused' }, 'Sale paused'),
        ' The organiser has paused the sale: hold requests are refused until it resumes. Your holds stay yours.',
      );
    } else if (event.sale_state === 'ended') {
      fill(saleStatus, h('span', { class: 'badge', 'data-testid': 'sale-ended' }, 'Sale ended'), ' No more seats are sold for this event.');
    } else if (event.sale_open) {
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
    if (saleReload || !page.event || page.event.sale_open) return;
    saleReload = eventDetail(eventId, { fresh: true })
      .then((d) => {
        if (!scope.alive) return;
        page.event = d;
        renderSaleStatus();
        updateMapDisabled();
        page.pickers.renderSectionList();
        page.selection.render();
      })
      .catch(() => {})
      .finally(() => {
        saleReload = null;
        const { event } = page;
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

  scope.on(onHoldsChange(() => page.event && page.holding.renderHolds()));
  scope.onSession = () => {
    if (page.room && page.event.waiting_room_enabled) page.room.start();
    page.selection.render();
    page.waitlists.refresh();
    page.holding.renderHolds();
    if (page.seatMap && page.event) updateMapDisabled();
  };
  load();
}
