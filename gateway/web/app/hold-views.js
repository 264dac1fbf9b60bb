// Showing holds: the hold card (`hold-panel`: seats, total, countdown, Pay / Cancel) that
// the event page and the hold pages share, and the pages #/holds (my active holds by event)
// and #/holds/{id} (one hold; back from the payment page it waits for the payment to be
// confirmed, then shows the booking). The list of holds itself is holds.js: this is how it
// looks, so the event page can show a hold card without the pages around it.

import { api, currentSession } from '../api.js';
import { parseSeatId } from '../seatmap.js';
import { h, fill, money, countdown, onCountdownExpired } from '../util.js';
import { main, toast, isAbort, focusHeading, loading, failure } from './ui.js';
import { needLogin } from './session.js';
import { myHolds, onHoldsChange, holdsChanged, refreshHolds, rememberHold, pay, cancelHold, seatList } from './holds.js';
import { confirmedAnnounced } from './user-feed.js';
import { eventDetail } from './event-cache.js';
import { bookingCard } from './bookings.js';

/**
 * The price of a hold: the API's `total_cents` (each seat at its own price, price
 * categories included), else worked out the same way from the event (a hold first heard
 * of on the user's stream carries no total), or null.
 */
function holdTotal(hold, event) {
  if (hold.total_cents != null) return hold.total_cents;
  if (!event) return null;
  const sections = new Map(event.sections.map((s) => [s.code, s]));
  const categories = new Map((event.price_categories || []).map((c) => [c.code, c.price_cents]));
  // A seat costs the price of the last of its ranges naming a category, else its section's.
  const seatPrice = (p) => {
    const sec = sections.get(p.code);
    if (!sec) return null;
    let price = sec.price_cents;
    for (const r of sec.seat_ranges || []) {
      const inside =
        p.row >= r.rows[0] && p.row <= r.rows[1] && p.seat >= r.seats[0] && p.seat <= r.seats[1];
      if (inside && r.price_category && categories.has(r.price_category)) {
        price = categories.get(r.price_category);
      }
    }
    return price;
  };
  if (hold.seat_ids && hold.seat_ids.length) {
    let total = 0;
    for (const id of hold.seat_ids) {
      const p = parseSeatId(id);
      const price = p && seatPrice(p);
      if (price == null) return null;
      total += price;
    }
    return total;
  }
  const ga = hold.section && sections.get(hold.section);
  if (ga) return ga.price_cents * hold.quantity;
  return null;
}

/** A hold with its countdown and actions (`hold-panel`). */
export function holdCard(hold, { event = null, link = true, onEnded = null } = {}) {
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
    total != null
      ? h('p', { class: 'muted' }, 'Total ', h('strong', { 'data-testid': 'hold-total', 'data-cents': String(total) }, money(total)))
      : null,
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

/** #/holds: my active holds, newest first, grouped by event. */
export function viewHolds(scope) {
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
    .catch((err) => scope.alive && fill(list, failure(err, () => scope.rerender())));
}

/** #/holds/{id}: one hold, and after payment its booking. */
export function viewHold(scope, holdId) {
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
