// The event page's selection: the seats picked (on the map, by number or from a waitlist)
// but not held yet, the "Your selection" panel with its total and hold button, and what a
// click on a seat does. The rules of picking (how many seats, when holding is possible, why
// not) live here, in one place.

import { currentSession } from '../api.js';
import { h, fill, money } from '../util.js';
import { toast, announce } from './ui.js';
import { admitted } from './event-state.js';

/** The selection part of an event page (`page`: event-state.js). */
export function selectionPanel(page) {
  const list = h('ul', { class: 'chips' });
  const count = h('span', { 'data-testid': 'selection-count' }, '0');
  const total = h('strong', { 'data-testid': 'selection-total' }, money(0));
  const holdButton = h('button', { type: 'button', class: 'primary big', 'data-testid': 'hold-button' }, 'Hold seats');
  const clearButton = h('button', { type: 'button', class: 'link-button', 'data-testid': 'selection-clear' }, 'Clear');
  const hint = h('p', { class: 'muted small selection-hint' });
  const el = h(
    'section',
    { class: 'panel selection', 'data-testid': 'selection', 'aria-labelledby': 'selection-title' },
    h('h2', { id: 'selection-title' }, 'Your selection ', h('span', { class: 'muted' }, '(', count, ')')),
    list,
    h('p', { class: 'selection-total' }, 'Total ', total, ' ', clearButton),
    holdButton,
    hint,
  );

  /** Draw the panel (and the map's selected seats) from the page's state. */
  function render() {
    const { event, selected, maxSel, maxSelRaw, room } = page;
    const session = currentSession();
    count.textContent = String(selected.size);
    let sum = 0;
    fill(
      list,
      [...selected.values()].map((s) => {
        sum += s.price_cents;
        return h(
          'li',
          { class: 'chip', 'data-testid': 'selected-seat', 'data-seat-id': s.id },
          h('span', {}, s.id),
          h('span', { class: 'muted small' }, money(s.price_cents)),
          h(
            'button',
            {
              type: 'button',
              class: 'chip-remove',
              'data-testid': 'selection-remove',
              'data-seat-id': s.id,
              'aria-label': `Remove ${s.id}`,
              on: { click: () => unselect(s.id) },
            },
            '×',
          ),
        );
      }),
    );
    if (!selected.size) list.appendChild(h('li', { class: 'muted small' }, 'Click or tap green seats on the map, or use the forms below.'));
    total.textContent = money(sum);
    clearButton.hidden = selected.size === 0;
    el.classList.toggle('has-seats', selected.size > 0);
    const open = event && event.sale_open;
    if (!session) {
      holdButton.textContent = 'Log in to hold seats';
      holdButton.disabled = false;
    } else {
      holdButton.textContent = selected.size
        ? `Hold ${selected.size} seat${selected.size === 1 ? '' : 's'}`
        : 'Hold seats';
      holdButton.disabled = !open || selected.size === 0 || page.busy || !admitted(page);
    }
    const heldHere = event ? event.max_seats_per_user - Math.min(event.max_seats_per_user, maxSelRaw) : 0;
    hint.textContent = !open
      ? 'Not on sale yet.'
      : session && !admitted(page)
        ? room && room.status === 'expired'
          ? 'Your time to shop is over: you cannot hold more seats.'
          : 'You can hold seats once the waiting room lets you in (see above).'
        : maxSel < 1
        ? `You hold the most seats one person may have for this event (${event.max_seats_per_user}).`
        : heldHere > 0
          ? `You can pick ${maxSel} more seat${maxSel === 1 ? '' : 's'} (you hold ${heldHere}).`
          : `Pick up to ${maxSel} seat${maxSel === 1 ? '' : 's'}.`;
    if (page.seatMap) page.seatMap.setSelected(selected.keys());
  }

  function select(info) {
    const { selected } = page;
    if (selected.has(info.id)) return;
    if (selected.size >= page.maxSel) {
      toast(`You can pick up to ${page.maxSel} seats at a time.`, { kind: 'warn' });
      return;
    }
    selected.set(info.id, info);
    announce(`${info.id} selected, ${money(info.price_cents)}. ${selected.size} selected.`);
    render();
  }

  function unselect(id) {
    if (!page.selected.delete(id)) return;
    announce(`${id} removed. ${page.selected.size} selected.`);
    render();
  }

  /** A seat clicked (or Enter'd) on the map: select it, unselect it, or tell about it. */
  function activate(info) {
    if (info.mine) {
      page.seatInfo.show(info);
      return;
    }
    if (info.selected) {
      unselect(info.id);
      return;
    }
    if (info.status === 'available') {
      if (!page.event.sale_open) {
        page.seatInfo.show(info);
        return;
      }
      page.seatInfo.hide();
      select(info);
      return;
    }
    page.seatInfo.show(info);
    announce(`${info.id} is ${info.status}. You can join its waitlist.`);
  }

  holdButton.addEventListener('click', () => page.holding.holdSelected());
  clearButton.addEventListener('click', () => {
    page.selected.clear();
    render();
    announce('Selection cleared.');
  });

  return { el, render, select, unselect, activate };
}
