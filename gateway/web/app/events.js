// #/ — the list of events: search (by title, performer, venue or city), pages of 20,
// one card per event with its prices and sale date. The first page people see; it shares
// nothing with the rest of the app but the helpers.

import { api } from '../api.js';
import { h, fill, money, when } from '../util.js';
import { main, isAbort, focusHeading, failure } from './ui.js';

/** Search events on the server (`?query=`) instead of filtering here; flip when it exists. */
const SERVER_SEARCH = true;
const EVENTS_PER_PAGE = 20;

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

/** #/: the events, with search and pages (kept for the tab in sessionStorage). */
export function viewEvents(scope) {
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
