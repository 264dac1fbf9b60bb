// My holds: the signed-in user's active holds (kept current from the user stream, or by
// polling `/v1/me/holds`), and the two things one can do with a hold, pay and cancel.
// Several views show holds (the event page, #/holds, the offer banner): they read this
// one list and re-render when it changes (`onHoldsChange`).

import { api, currentSession } from '../api.js';
import { money, setCurrency, sleep } from '../util.js';
import { toast, emit, errorText } from './ui.js';

/** Active holds of the signed-in user by hold id (`HoldView`s). */
export const myHolds = new Map();
const holdListeners = new Set();

export function onHoldsChange(fn) {
  holdListeners.add(fn);
  return () => holdListeners.delete(fn);
}

/** Tell every view (and the offer banner) that the list changed. */
export function holdsChanged() {
  for (const fn of holdListeners) fn();
}

function holdsSignature() {
  return JSON.stringify([...myHolds.values()].map((hd) => [hd.hold_id, hd.status, hd.expires_at, hd.extended, hd.total_cents]));
}

let refreshingHolds = null;
export async function refreshHolds() {
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
export function rememberHold(hold) {
  if (hold.status === 'active') myHolds.set(hold.hold_id, hold);
  else myHolds.delete(hold.hold_id);
  holdsChanged();
}

/** Learn about a hold by id (e.g. a waitlist offer seen on the seat's waitlist). */
const adopting = new Set();
export async function adoptHold(holdId) {
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
export const offersAnnounced = {
  ids: new Set(JSON.parse(sessionStorage.getItem('seatq.offers') || '[]')),
  has(id) {
    return this.ids.has(id);
  },
  add(id) {
    this.ids.add(id);
    sessionStorage.setItem('seatq.offers', JSON.stringify([...this.ids].slice(-50)));
  },
};

/** Open (or reuse) the payment and go to the provider's page. */
export async function pay(hold, button) {
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
export async function cancelHold(hold, button) {
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

/** The seats of a hold, or how many places in which section. */
export function seatList(hold) {
  if (hold.seat_ids && hold.seat_ids.length) return hold.seat_ids.join(', ');
  return `${hold.quantity} place${hold.quantity === 1 ? '' : 's'}${hold.section ? ` in ${hold.section}` : ''}`;
}
