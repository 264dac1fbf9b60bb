// The event page's seat info panel (`seat-info`): about one seat that a click did not
// simply select (held, sold, yours, or not on sale yet), with what one can do about it —
// mostly join its waitlist. Kept apart from the waitlists themselves: this panel follows
// the seat's status on the map, they follow the server's lines.

import { currentSession } from '../api.js';
import { h, fill, money, when } from '../util.js';
import { promptLogin } from './session.js';
import { myHolds } from './holds.js';
import { savedWaitlists } from './event-waitlists.js';

/** The seat info part of an event page (`page`: event-state.js). */
export function seatInfoPanel(page) {
  const el = h('section', {
    class: 'panel seat-info',
    'data-testid': 'seat-info',
    'aria-live': 'polite',
    hidden: true,
  });

  /** Show the panel for a seat (`info` from the seat map). */
  function show(info) {
    const { event, eventId } = page;
    const session = currentSession();
    const waiting = savedWaitlists().find((w) => w.event_id === eventId && w.seat_id === info.id);
    const mineHold = info.mine ? [...myHolds.values()].find((hd) => hd.seat_ids.includes(info.id)) : null;
    const statusText = info.mine
      ? 'held by you'
      : info.status === 'held'
        ? 'held by someone else right now'
        : info.status === 'sold'
          ? 'sold'
          : 'available';
    el.hidden = false;
    el.dataset.seatId = info.id;
    el.dataset.status = info.mine ? 'mine' : info.status;
    let action = null;
    const keptNow = info.kept && event && event.accessible_reserved && !page.accessible && !info.mine;
    if (keptNow && info.status === 'available' && event.sale_open) {
      action = h(
        'div',
        { class: 'notice access-kept', 'data-testid': 'access-kept' },
        h(
          'p',
          {},
          `${info.attributes.includes('accessible') ? 'This wheelchair space' : 'This companion seat'} is kept for buyers who need a wheelchair space ${page.selection.untilText()}.`,
        ),
        h(
          'button',
          {
            type: 'button',
            'data-testid': 'access-kept-tick',
            on: {
              click: () => {
                page.selection.setAccessible(true);
                page.selection.select(page.seatMap.info(info.id) || info);
              },
            },
          },
          'I need a wheelchair space: pick it',
        ),
      );
    } else if (info.mine && mineHold) {
      action = h('p', {}, h('a', { href: `#/holds/${mineHold.hold_id}` }, 'Your hold'));
    } else if (info.status === 'available' && event && !event.sale_open) {
      action = h('p', { class: 'muted' }, `You can hold it once the sale opens, ${when(event.on_sale_at)}.`);
    } else if (info.status !== 'available' && info.kept && event && event.accessible_reserved && !info.mine) {
      // A waitlist offer cannot ask who needs the seat: these lines open with the release.
      action = h(
        'p',
        { class: 'muted', 'data-testid': 'waitlist-kept' },
        `It is kept for buyers who need a wheelchair space: its waitlist opens when such seats go on general sale (${
          event.accessible_release_at ? when(event.accessible_release_at) : 'when the event starts'
        }).`,
      );
    } else if (info.status !== 'available') {
      if (!session) {
        action = h(
          'button',
          { type: 'button', 'data-testid': 'login-to-wait', on: { click: () => promptLogin('Log in to join the waitlist.') } },
          'Log in to join the waitlist',
        );
      } else if (waiting) {
        action = h('p', { class: 'muted' }, 'You are on this seat’s waitlist (see below).');
      } else {
        action = h(
          'button',
          { type: 'button', class: 'primary', 'data-testid': 'waitlist-join', on: { click: (e) => page.waitlists.join(info, e.currentTarget) } },
          'Join waitlist',
        );
      }
    }
    fill(
      el,
      h('h2', {}, info.id),
      h('p', {}, `${info.name}, row ${info.row}, seat ${info.seat} · ${money(info.price_cents)}`),
      info.attributes && (info.attributes.length || info.category)
        ? h('p', { class: 'muted small', 'data-testid': 'seat-info-extra' }, page.seatMap.extraText(info))
        : null,
      h('p', {}, 'This seat is ', h('strong', { 'data-testid': 'seat-info-status' }, statusText), '.'),
      info.status !== 'available' && !info.mine && !(info.kept && event && event.accessible_reserved)
        ? h('p', { class: 'muted small' }, 'Join its waitlist: if it is released, it is held for the first person in line.')
        : null,
      action,
    );
  }

  function hide() {
    el.hidden = true;
  }

  /**
   * Show the panel's seat again, as the map has it now (when the panel is open, and with
   * `changed`, only if that seat is among these seat ids).
   */
  function refresh(changed = null) {
    const id = el.dataset.seatId;
    if (!page.seatMap || el.hidden || !id) return;
    if (changed && !changed.includes(id)) return;
    const info = page.seatMap.info(id);
    if (info) show(info);
  }

  return { el, show, hide, refresh };
}
