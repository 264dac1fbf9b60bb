// #/events/{id} — an event's page: its header and sale status, the waiting room when the
// sale has one, the live seat map, and beside it the selection, holds, seat info,
// waitlists and pickers. This module only puts the page together: it loads the event,
// builds the shared state (event-state.js) and the parts (event-*.js), lays them out, and
// follows the sale opening and the user signing in or out. Its one part of its own is the
// map's legend and seat filters (`mapLegend`, at the end).

import { api } from '../api.js';
import { SeatMap, ATTRIBUTES, ATTR_BITS, categoryColorVar } from '../seatmap.js';
import { h, fill, money, when, countdown, onCountdownExpired } from '../util.js';
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
  page.legend = mapLegend(page);

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
    const mapCol = h(
      'div',
      { class: 'map-col' },
      h('h2', { class: 'sr-only' }, 'Seat map'),
      h('div', { class: 'map-toolbar' }, page.legend.statusList, h('span', { class: 'toolbar-right' }, page.live.countsEl, page.live.indicator)),
      page.legend.el,
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
      onBuild: () => {
        page.legend.render();
        page.selection.renderAccess();
      },
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

// ---------------------------------------------------------------------------------------
// The legend and seat filters, above the map: what the colours and marks mean (seat
// statuses; wheelchair spaces, companion seats, restricted views and aisles; price
// categories with their prices) and checkboxes that highlight the seats one wants and dim
// the others ("wheelchair spaces", "no restricted view", "Premium" ...). The map does the
// work (`SeatMap.setFilter`: one pass over one byte per seat); this only asks.

const STATUSES = [
  ['available', 'Available'],
  ['held', 'Held'],
  ['sold', 'Sold'],
  ['selected', 'Selected'],
  ['mine', 'Yours'],
];

/** Filters: attributes a seat should have one of (`any`), or must not have (`none`). */
const ATTRIBUTE_FILTERS = [
  ['accessible', 'any', 'Wheelchair spaces'],
  ['companion', 'any', 'Companion seats'],
  ['aisle', 'any', 'Aisle seats'],
  ['restricted_view', 'none', 'No restricted view'],
];

/** The legend part of an event page (`page`: event-state.js). */
function mapLegend(page) {
  const statusList = h(
    'ul',
    { class: 'legend', 'aria-label': 'Seat status', 'data-testid': 'legend-statuses' },
    STATUSES.map(([k, label]) => h('li', {}, h('span', { class: `swatch swatch-${k}`, 'aria-hidden': 'true' }), label)),
  );
  const extras = h('div', { class: 'map-extras', 'data-testid': 'map-legend', hidden: true });
  const boxes = new Map(); // checkbox -> {kind, value}
  const shownCount = h('span', { class: 'muted small filter-count', 'data-testid': 'filter-count', 'aria-live': 'polite' });
  const clear = h('button', { type: 'button', class: 'link-button', 'data-testid': 'filter-clear', hidden: true }, 'Show all');
  const foot = h('p', { class: 'filter-foot', hidden: true }, shownCount, ' ', clear);

  /** Draw the legend from the map as loaded (call again when the map is rebuilt). */
  function render() {
    const map = page.seatMap;
    const { attrs, cats, sectionPrice } = map.present();
    const legend = map.attributeLegend || {};
    const categories = map.priceCategories();
    const attrItems = ATTRIBUTES.filter((name) => attrs & ATTR_BITS[name]);
    boxes.clear();
    const parts = [];
    if (attrItems.length) {
      parts.push(
        h(
          'ul',
          { class: 'legend legend-attrs', 'aria-label': 'Seat marks', 'data-testid': 'legend-attributes' },
          attrItems.map((name) =>
            h(
              'li',
              { 'data-testid': 'legend-attribute', 'data-attribute': name },
              h('span', { class: `swatch swatch-attr swatch-attr-${name}`, 'aria-hidden': 'true' }),
              legend[name] || name,
            ),
          ),
        ),
      );
    }
    const usedCats = categories.map((c, k) => [c, k]).filter(([, k]) => cats.has(k));
    if (usedCats.length) {
      parts.push(
        h(
          'ul',
          { class: 'legend legend-cats', 'aria-label': 'Prices', 'data-testid': 'legend-categories' },
          usedCats.map(([c, k]) =>
            h(
              'li',
              { 'data-testid': 'legend-category', 'data-code': c.code },
              h('span', { class: 'swatch', style: `background: ${categoryColorVar(k)}`, 'aria-hidden': 'true' }),
              `${c.name} · ${money(c.price_cents)}`,
            ),
          ),
          sectionPrice
            ? h(
                'li',
                { 'data-testid': 'legend-category', 'data-code': '' },
                h('span', { class: 'swatch swatch-available', 'aria-hidden': 'true' }),
                'Section price',
              )
            : null,
        ),
      );
    }
    const filters = [];
    for (const [name, kind, label] of ATTRIBUTE_FILTERS) {
      if (!(attrs & ATTR_BITS[name])) continue;
      filters.push(checkbox(`filter-${name === 'restricted_view' ? 'no-restricted' : name}`, label, { kind, value: name }));
    }
    for (const [c] of usedCats) filters.push(checkbox(`filter-cat-${c.code}`, `${c.name} (${money(c.price_cents)})`, { kind: 'category', value: c.code }));
    if (usedCats.length && sectionPrice) filters.push(checkbox('filter-cat-section', 'Section price', { kind: 'category', value: '' }));
    if (filters.length) {
      parts.push(
        h(
          'fieldset',
          { class: 'map-filters', 'data-testid': 'map-filters' },
          h('legend', {}, 'Highlight'),
          h('div', { class: 'filter-boxes' }, filters),
          foot,
        ),
      );
    }
    fill(extras, parts);
    extras.hidden = parts.length === 0;
    apply();
  }

  function checkbox(testid, label, what) {
    const id = `map-${testid}`;
    const input = h('input', { type: 'checkbox', id, 'data-testid': testid });
    input.addEventListener('change', apply);
    boxes.set(input, what);
    return h('label', { class: 'filter-box', for: id }, input, ' ', label);
  }

  /** Hand the ticked boxes to the map as its filter. */
  function apply() {
    const filter = { any: [], none: [], categories: [] };
    let on = false;
    for (const [input, { kind, value }] of boxes) {
      if (!input.checked) continue;
      on = true;
      if (kind === 'category') filter.categories.push(value);
      else filter[kind].push(value);
    }
    const { highlighted, total } = page.seatMap.setFilter(on ? filter : null);
    shownCount.dataset.highlighted = String(highlighted);
    shownCount.textContent = on ? `${highlighted.toLocaleString()} of ${total.toLocaleString()} seats highlighted.` : '';
    clear.hidden = !on;
    foot.hidden = !on;
  }

  clear.addEventListener('click', () => {
    for (const input of boxes.keys()) input.checked = false;
    apply();
  });

  return { statusList, el: extras, render };
}
