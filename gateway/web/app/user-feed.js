// The signed-in user's live events (`/v1/me/stream`, polling `/v1/me/holds` while it is
// unavailable): keeps my holds current, tells the user what happened (held, expired,
// booked, refunded, let in by a waiting room) and passes every event on to the views
// through the bus (ui.js `emit`, `scope.onUser`). Separate because it runs for the whole
// visit, whatever page is shown.

import { LiveFeed, currentSession } from '../api.js';
import { h, money, roughly } from '../util.js';
import { toast, emit } from './ui.js';
import { myHolds, holdsChanged, refreshHolds, rememberHold, offersAnnounced } from './holds.js';
import { eventDetail } from './event-cache.js';

const POLL_ME_MS = 5000;

let meFeed = null;
/** What this tab already told the user about, so the stream does not say it twice. */
export const cancelledHere = new Set(); // booking ids
export const confirmedAnnounced = new Set(); // hold ids

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

/** (Re)start the stream for the signed-in user (none when signed out). */
export function startMeFeed() {
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
