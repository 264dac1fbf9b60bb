// Waitlists on the event page: joining the line for a held or sold seat (behind the
// waiting room like a hold), "Your waitlists" with each place in line, leaving one. The
// seats one waits for are remembered per user in localStorage (the API has no "my
// waitlists"); when a seat is released to the user, the offer shows up here and in my
// holds (holds.js `adoptHold`). Its own module: it has its own data (that list, the places
// in line) and its own refreshes, apart from the map's.

import { api, currentSession } from '../api.js';
import { h, fill, roughly } from '../util.js';
import { toast, errorText } from './ui.js';
import { myHolds, adoptHold } from './holds.js';

function waitlistKey() {
  const s = currentSession();
  return s ? `seatq.waitlists.${s.user_id}` : null;
}

/** The signed-in user's waitlists, all events: `[{event_id, seat_id}]`. */
export function savedWaitlists() {
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

/** The waitlists part of an event page (`page`: event-state.js). */
export function waitlistPanel(page) {
  const { scope, eventId } = page;
  const list = h('ul', { class: 'waitlists', 'data-testid': 'waitlists' });
  const el = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'waitlists-title', hidden: true },
    h('h2', { id: 'waitlists-title' }, 'Your waitlists'),
    list,
  );
  /** The user's place in each line, by seat id (`WaitlistPosition`). */
  const places = new Map();

  async function join(info, button) {
    const { event, room, seatMap } = page;
    if (button) button.disabled = true;
    try {
      // A waitlist is a way to buy: behind the waiting room like a hold.
      const headers = {};
      const admission = event.waiting_room_enabled && room ? room.token() : null;
      if (admission) headers['X-Admission-Token'] = admission;
      const r = await api('POST', `/v1/events/${eventId}/seats/${encodeURIComponent(info.id)}/waitlist`, { headers });
      remember(info.id);
      if (r.status === 201) {
        toast(`You are #${r.data.position} in line for ${info.id}.`, { kind: 'success' });
      } else {
        toast(`Joining the waitlist for ${info.id}…`, { timeout: 3000 });
      }
      await refresh(r.status === 201 ? { [info.id]: r.data } : {});
      if (r.status !== 201) scope.timeout(() => refresh(), 1500);
      page.seatInfo.show(seatMap.info(info.id) || info);
    } catch (err) {
      if (button) button.disabled = false;
      if (err.code === 'already_waiting') {
        remember(info.id);
        refresh();
      } else if (err.code === 'seat_available') {
        toast(`${info.id} is available now: it is in your selection.`, { kind: 'success' });
        const fresh = seatMap.info(info.id);
        if (fresh) page.selection.select({ ...fresh, status: 'available' });
        return;
      }
      toast(errorText(err), { kind: 'error', urgent: true });
    }
  }

  function remember(seatIdValue) {
    const saved = savedWaitlists();
    if (!saved.some((w) => w.event_id === eventId && w.seat_id === seatIdValue)) {
      saved.push({ event_id: eventId, seat_id: seatIdValue });
      saveWaitlists(saved);
    }
  }

  function forget(seatIdValue) {
    saveWaitlists(savedWaitlists().filter((w) => !(w.event_id === eventId && w.seat_id === seatIdValue)));
  }

  /** Ask for the user's place in each line at this event (`known`: places just learnt). */
  async function refresh(known = {}) {
    if (!currentSession()) {
      el.hidden = true;
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
            forget(w.seat_id);
            places.delete(w.seat_id);
          }
        }
      }),
    );
    if (!scope.alive) return;
    render();
  }

  function render() {
    const mine = savedWaitlists().filter((w) => w.event_id === eventId);
    el.hidden = mine.length === 0;
    fill(
      list,
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
                  on: { click: (e) => leave(w.seat_id, e.currentTarget) },
                },
                'Leave',
              ),
        );
      }),
    );
  }

  async function leave(seatIdValue, button) {
    if (button) button.disabled = true;
    try {
      await api('DELETE', `/v1/events/${eventId}/seats/${encodeURIComponent(seatIdValue)}/waitlist`);
      forget(seatIdValue);
      places.delete(seatIdValue);
      render();
      toast(`You left the waitlist for ${seatIdValue}.`, { timeout: 4000 });
    } catch (err) {
      if (err.status === 404) {
        forget(seatIdValue);
        places.delete(seatIdValue);
        render();
        return;
      }
      if (button) button.disabled = false;
      toast(errorText(err), { kind: 'error', urgent: true });
    }
  }

  // Places change when others join, leave or are served: the user stream says so, and a
  // slow poll covers the rest.
  scope.onUser('waitlist_updated', () => refresh());
  scope.onUser('waitlist_offer', () => refresh());
  scope.interval(() => currentSession() && savedWaitlists().some((w) => w.event_id === eventId) && refresh(), 15000);

  return { el, join, refresh };
}
