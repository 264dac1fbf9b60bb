// The event page's selection: the seats picked (on the map, by number or from a waitlist)
// but not held yet, the "Your selection" panel with its total and hold button, and what a
// click on a seat does. The rules of picking (how many seats, when holding is possible, why
// not) live here, in one place: with the seating rules, also "I need a wheelchair space"
// (wheelchair spaces and companion seats are kept for those buyers until the organiser's
// release time; such a buyer's seats are a space with its companion seats side by side).

import { currentSession } from '../api.js';
import { h, fill, money, when } from '../util.js';
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
  const problem = h('p', { class: 'form-error selection-problem', 'data-testid': 'selection-problem', role: 'status', hidden: true });
  const strandHint = h('p', { class: 'notice small selection-strand', 'data-testid': 'selection-strand', hidden: true });
  const needBox = h('input', { type: 'checkbox', id: 'accessible-need', 'data-testid': 'accessible-need' });
  const accessNote = h('p', { class: 'muted small', 'data-testid': 'access-note' });
  const accessEl = h(
    'div',
    { class: 'access-need', 'data-testid': 'access-need', hidden: true },
    h('label', { for: 'accessible-need', class: 'check' }, needBox, ' I need a wheelchair space'),
    accessNote,
  );
  const el = h(
    'section',
    { class: 'panel selection', 'data-testid': 'selection', 'aria-labelledby': 'selection-title' },
    h('h2', { id: 'selection-title' }, 'Your selection ', h('span', { class: 'muted' }, '(', count, ')')),
    accessEl,
    list,
    h('p', { class: 'selection-total' }, 'Total ', total, ' ', clearButton),
    problem,
    strandHint,
    holdButton,
    hint,
  );

  /** Whether accessible and companion seats are kept for buyers who need them now. */
  const reserved = () => !!(page.event && page.event.accessible_reserved);

  /** "until Fri 12 Jun, 19:00" or "until the event starts". */
  function untilText() {
    const at = page.event && page.event.accessible_release_at;
    return at ? `until ${when(at)}` : 'until the event starts';
  }

  let releaseTimer = null;
  /** The "I need a wheelchair space" box: shown when the map has such seats. */
  function renderAccess() {
    const { seatMap, event } = page;
    if (!seatMap || !event) return;
    const { attrs } = seatMap.present();
    const has = (attrs & 3) !== 0;
    accessEl.hidden = !has;
    accessEl.dataset.reserved = String(reserved());
    accessNote.textContent = !has
      ? ''
      : reserved()
        ? `Wheelchair spaces (♿) and their companion seats are kept for buyers who need a wheelchair space ${untilText()}. Tick the box to pick them: your hold is then a space with its companion seats side by side.`
        : 'Wheelchair spaces (♿) and companion seats are on sale to everyone now. Tick the box to be given a space with companion seats beside it.';
    // When the release time comes, the seats go on general sale: say so then.
    const at = event.accessible_release_at ? Date.parse(event.accessible_release_at) : NaN;
    if (reserved() && !releaseTimer && at > Date.now() && at - Date.now() < 2 ** 31 - 1) {
      releaseTimer = page.scope.timeout(() => {
        releaseTimer = null;
        page.event = { ...page.event, accessible_reserved: false };
        renderAccess();
        render();
      }, at - Date.now() + 500);
    }
  }

  /** Why the selection cannot be held as it is (the API's own checks), or null. */
  function selectionProblem() {
    const { selected, seatMap } = page;
    if (!selected.size || !seatMap) return null;
    const seats = [...selected.values()];
    if (!page.accessible) {
      const kept = reserved() ? seats.filter((s) => s.kept) : [];
      if (kept.length) {
        return {
          code: 'seats_reserved_for_access',
          text: `${kept.map((s) => s.id).join(', ')} ${kept.length === 1 ? 'is' : 'are'} kept for buyers who need a wheelchair space ${untilText()}. Tick “I need a wheelchair space” if you do, or remove ${kept.length === 1 ? 'it' : 'them'}.`,
        };
      }
      return null;
    }
    if (!seats.some((s) => (s.attributes || []).includes('accessible'))) {
      return { code: 'accessible_space_required', text: 'Pick at least one wheelchair space (♿), with any companion seats beside it.' };
    }
    if (!seatMap.together(selected.keys())) {
      return { code: 'companions_not_together', text: 'The wheelchair space and its companion seats must be side by side in one row.' };
    }
    return null;
  }
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
          h('span', {}, s.attributes && s.attributes.includes('accessible') ? `♿ ${s.id}` : s.id),
          h('span', { class: 'muted small', 'data-testid': 'selected-seat-price' }, money(s.price_cents)),
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
    total.dataset.cents = String(sum);
    const why = selectionProblem();
    problem.hidden = !why;
    problem.textContent = why ? why.text : '';
    if (why) problem.dataset.code = why.code;
    else problem.removeAttribute('data-code');
    // No single seat left alone: warn before asking (the queue decides, on the seats as
    // they are then, and suggests seats that leave none alone).
    const alone = !why && event && event.no_single_seats && page.seatMap && selected.size ? page.seatMap.stranded(selected.keys()) : [];
    strandHint.hidden = alone.length === 0;
    strandHint.dataset.seatIds = alone.join(',');
    strandHint.textContent = alone.length
      ? `${alone.join(', ')} would be left on ${alone.length === 1 ? 'its' : 'their'} own, which this sale does not allow: you will be offered seats that leave nobody alone.`
      : '';
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
      holdButton.disabled = !open || selected.size === 0 || page.busy || !admitted(page) || !!why;
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
    if (info.kept && reserved() && !page.accessible) {
      // Kept for buyers who need access: say so instead of selecting it.
      page.seatInfo.show(info);
      announce(`${info.id} is kept for buyers who need a wheelchair space ${untilText()}.`);
      return;
    }
    if (selected.size >= page.maxSel) {
      toast(`You can pick up to ${page.maxSel} seats at a time.`, { kind: 'warn' });
      return;
    }
    selected.set(info.id, info);
    const extra = page.seatMap ? page.seatMap.extraText(info) : '';
    announce(`${info.id} selected, ${money(info.price_cents)}${extra ? `, ${extra}` : ''}. ${selected.size} selected.`);
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

  /** Tick (or untick) "I need a wheelchair space". */
  function setAccessible(on) {
    page.accessible = on;
    needBox.checked = on;
    render();
    if (page.pickers) page.pickers.renderSectionList();
    page.seatInfo.refresh();
  }
  needBox.addEventListener('change', () => {
    setAccessible(needBox.checked);
    announce(needBox.checked ? 'Wheelchair spaces and companion seats can be picked.' : 'Not asking for a wheelchair space.');
  });

  holdButton.addEventListener('click', () => page.holding.holdSelected());
  clearButton.addEventListener('click', () => {
    page.selected.clear();
    render();
    announce('Selection cleared.');
  });

  return { el, render, renderAccess, select, unselect, activate, setAccessible, untilText };
}
