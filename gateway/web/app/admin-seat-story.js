// Every seat's story, for the control room (admin-control-room.js): the commands that named
// the seat in queue order (`GET /v1/admin/events/{id}/seats/{seat}/history`) — queue
// position (offset.seq), who, when the gateway accepted it, the decision and its reason,
// the command that got the seat marked — then the holds it was in, payments, bookings,
// tickets and its waitlist. "More" fetches the next page of commands (`next_after`).

import { api } from '../api.js';
import { parseSeatId } from '../seatmap.js';
import { h, fill, money } from '../util.js';
import { isAbort, loading, failure } from './ui.js';
import { FieldErrors } from './admin-ui.js';

const PAGE = 50;

/** A time with milliseconds (queue order is about milliseconds). */
function at(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    fractionalSecondDigits: 3,
  })}`;
}

const short = (id) => (id ? String(id).slice(0, 8) : '—');

/** A small table, or "none". */
function table(testid, caption, head, rows) {
  if (!rows.length) return h('p', { class: 'muted small', 'data-testid': `${testid}-empty` }, 'None.');
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'admin-table story-table', 'data-testid': testid },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

/**
 * The seat-story panel: `el` (a form to type a seat and the story), `open(seatId)`,
 * `setMap(seatMap)` (to check typed ids against the map). `onSeat(id)` hears the seat shown.
 */
export function seatStory(scope, eventId, { onSeat = () => {} } = {}) {
  let seatMap = null;
  let current = null; // the seat shown
  let next = null; // next_after of the last page
  let commands = [];
  let rest = null; // the last page's holds, payments, …
  let loadId = 0;
  const errors = new FieldErrors();
  const input = h('input', { id: 'story-seat', name: 'seat_id', 'data-testid': 'story-seat-input', placeholder: 'e.g. A-3-12', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters' });
  const openBtn = h('button', { type: 'submit', 'data-testid': 'story-open' }, 'Show');
  const content = h('div', { class: 'story-content', 'data-testid': 'seat-story', hidden: true, 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true },
    h('label', { for: 'story-seat' }, 'Seat'),
    input,
    openBtn,
  );
  const el = h('section', { class: 'panel seat-story', 'data-testid': 'seat-story-panel', 'aria-labelledby': 'story-title' }, h('h2', { id: 'story-title' }, 'A seat’s story'), form, content);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    errors.clear();
    const p = parseSeatId(input.value);
    const id = p && `${p.code}-${p.row}-${p.seat}`;
    if (!id || (seatMap && !seatMap.info(id))) {
      errors.set(input, 'No such seat here: section-row-seat, e.g. A-3-12.');
      input.focus();
      return;
    }
    open(id);
  });

  async function fetchPage(seatId, after) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (after) q.set('after', after);
    const r = await api('GET', `/v1/admin/events/${eventId}/seats/${encodeURIComponent(seatId)}/history?${q}`, { signal: scope.signal });
    return r.data;
  }

  async function open(seatId) {
    const mine = ++loadId;
    current = seatId;
    input.value = seatId;
    onSeat(seatId);
    content.hidden = false;
    content.dataset.seatId = seatId;
    content.dataset.state = 'loading';
    fill(content, loading(`Loading ${seatId}’s story…`));
    try {
      const page = await fetchPage(seatId, null);
      if (!scope.alive || mine !== loadId) return;
      commands = page.commands;
      next = page.next_after || null;
      rest = page;
      render();
      content.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } catch (err) {
      if (isAbort(err) || !scope.alive || mine !== loadId) return;
      content.dataset.state = 'error';
      fill(content, failure(err, () => open(seatId)));
    }
  }

  async function more(button) {
    const mine = loadId;
    button.disabled = true;
    try {
      const page = await fetchPage(current, next);
      if (!scope.alive || mine !== loadId) return;
      commands = commands.concat(page.commands);
      next = page.next_after || null;
      rest = page;
      render();
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      button.disabled = false;
      button.after(failure(err, () => more(button)));
    }
  }

  function render() {
    const s = rest;
    content.dataset.state = 'loaded';
    content.dataset.status = s.status;
    content.dataset.commands = String(commands.length);
    const winners = commands.filter((c) => c.got_seat).length;
    const rows = commands.map((c) => {
      const pos = `${c.position.offset}.${c.position.seq}`;
      return h(
        'tr',
        {
          class: c.got_seat ? 'winner' : null,
          'data-testid': 'story-command',
          'data-position': pos,
          'data-user': c.user_id,
          'data-status': c.status,
          'data-kind': c.kind,
          'data-winner': String(Boolean(c.got_seat)),
          'data-request-id': c.request_id,
        },
        h('td', { class: 'num' }, h('span', { title: `partition ${c.position.partition}, offset ${c.position.offset}, place ${c.position.seq} in the record` }, pos)),
        h('td', {}, c.user_id),
        h('td', {}, c.kind.replace(/_/g, ' ')),
        h('td', { class: 'num' }, at(c.issued_at)),
        h(
          'td',
          {},
          h('span', { class: `badge story-${c.status}` }, c.status),
          c.got_seat ? h('span', { class: 'badge badge-open story-winner', 'data-testid': 'story-winner' }, '★ got the seat') : null,
        ),
        h('td', {}, c.reason ? h('code', {}, c.reason) : h('span', { class: 'muted' }, '—')),
      );
    });
    fill(
      content,
      h(
        'p',
        { class: 'story-head' },
        h('strong', { 'data-testid': 'story-seat' }, s.seat_id),
        ' is ',
        h('span', { class: `badge story-seat-${s.status}`, 'data-testid': 'story-status' }, s.status),
        ` · ${commands.length} command${commands.length === 1 ? '' : 's'} in queue order${winners ? '' : ', none got it'}`,
      ),
      h('h3', {}, 'In queue order'),
      table('story-commands', 'Commands naming the seat, in queue order', ['Position', 'Who', 'What', 'Accepted at', 'Decision', 'Reason'], rows),
      next
        ? h('button', { type: 'button', class: 'link-button', 'data-testid': 'story-more', on: { click: (e) => more(e.currentTarget) } }, `More (after ${next})`)
        : null,
      h('h3', {}, 'Holds'),
      table(
        'story-holds',
        'Holds the seat was in',
        ['Hold', 'Who', 'Status', 'Made', 'Ended'],
        s.holds.map((x) =>
          h(
            'tr',
            { 'data-testid': 'story-hold', 'data-hold-id': x.hold_id, 'data-status': x.status, 'data-user': x.user_id },
            h('td', {}, h('code', { title: x.hold_id }, short(x.hold_id)), x.offered_from ? h('span', { class: 'muted small' }, ` offered from ${short(x.offered_from)}`) : null),
            h('td', {}, x.user_id),
            h('td', {}, x.status),
            h('td', { class: 'num' }, at(x.created_at)),
            h('td', { class: 'num' }, at(x.ended_at)),
          ),
        ),
      ),
      h('h3', {}, 'Payments'),
      table(
        'story-payments',
        'Payments for the seat’s holds',
        ['Payment', 'Hold', 'Status', 'Amount', 'Updated'],
        s.payments.map((x) =>
          h(
            'tr',
            { 'data-testid': 'story-payment', 'data-status': x.status },
            h('td', {}, h('code', { title: x.payment_id }, short(x.payment_id))),
            h('td', {}, h('code', { title: x.hold_id }, short(x.hold_id))),
            h('td', {}, x.status),
            h('td', { class: 'num' }, money(x.amount_cents)),
            h('td', { class: 'num' }, at(x.updated_at)),
          ),
        ),
      ),
      h('h3', {}, 'Bookings'),
      table(
        'story-bookings',
        'Bookings of the seat',
        ['Booking', 'Who', 'Status', 'Amount', 'Made'],
        s.bookings.map((x) =>
          h(
            'tr',
            { 'data-testid': 'story-booking', 'data-status': x.status },
            h('td', {}, h('code', { title: x.booking_id }, short(x.booking_id))),
            h('td', {}, x.user_id),
            h('td', {}, x.status, x.cancelled_at ? h('span', { class: 'muted small' }, ` ${at(x.cancelled_at)}`) : null),
            h('td', { class: 'num' }, money(x.amount_cents)),
            h('td', { class: 'num' }, at(x.created_at)),
          ),
        ),
      ),
      h('h3', {}, 'Tickets'),
      table(
        'story-tickets',
        'Tickets for the seat',
        ['Ticket', 'Holder', 'Code', 'Status', 'Checked in'],
        s.tickets.map((x) =>
          h(
            'tr',
            { 'data-testid': 'story-ticket', 'data-status': x.status },
            h('td', {}, h('code', { title: x.ticket_id }, short(x.ticket_id))),
            h('td', {}, x.holder_user_id),
            h('td', {}, x.code_version > 1 ? `v${x.code_version} (transferred)` : 'v1'),
            h('td', {}, x.status),
            h('td', { class: 'num' }, x.checked_in_at ? `${at(x.checked_in_at)}${x.checked_in_by ? ` by ${x.checked_in_by}` : ''}` : '—'),
          ),
        ),
      ),
      h('h3', {}, 'Waitlist'),
      table(
        'story-waitlist',
        'Everyone who queued for the seat, first first',
        ['Who', 'Status', 'Joined', 'Ended'],
        s.waitlist.map((x) =>
          h(
            'tr',
            { 'data-testid': 'story-waiter', 'data-status': x.status },
            h('td', {}, x.user_id),
            h('td', {}, x.status, x.offered_hold_id ? h('span', { class: 'muted small' }, ` hold ${short(x.offered_hold_id)}`) : null),
            h('td', { class: 'num' }, at(x.joined_at)),
            h('td', { class: 'num' }, at(x.ended_at)),
          ),
        ),
      ),
    );
  }

  return {
    el,
    open,
    setMap(map) {
      seatMap = map;
    },
  };
}
