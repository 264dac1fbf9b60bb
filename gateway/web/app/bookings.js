// Bookings and tickets: #/bookings (my bookings), #/bookings/{id} (one booking), and the
// booking card the hold page shows too: tickets with their QR codes, cancelling (with the
// refund the event's policy gives), transferring a ticket to someone else: what comes after
// paying, kept apart from the buying.

import { api, currentSession, fetchBlobUrl } from '../api.js';
import { h, fill, money, when, sleep } from '../util.js';
import { main, toast, errorText, isAbort, focusHeading, loading, failure } from './ui.js';
import { needLogin } from './session.js';
import { cancelledHere } from './user-feed.js';
import { eventDetail } from './event-cache.js';

/** #/bookings: my bookings (the latest 50) with their tickets. */
export function viewBookings(scope) {
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

/** #/bookings/{id}: one booking with its tickets. */
export function viewBooking(scope, bookingId) {
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
export function bookingCard(scope, b, { event = null, link = false, onChange = () => {} } = {}) {
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

/** One ticket of a booking (`ticket`): its QR code when it is ours, the transfer form. */
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
