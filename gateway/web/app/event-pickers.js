// The event page's other ways to pick seats than clicking the map: "Pick a seat by
// number" (section-row-seat, as on a ticket) and "Best available" (a quantity, then one
// button per section with its price and seats left). Both are forms beside the map that
// only read it and hand over to the selection or the hold request: separate, as nothing
// else depends on them.

import { h, fill, money } from '../util.js';
import { admitted } from './event-state.js';

/** The pickers part of an event page (`page`: event-state.js). */
export function seatPickers(page) {
  const { scope } = page;
  const seatInput = h('input', {
    id: 'seat-id-input',
    'data-testid': 'seat-id-input',
    placeholder: 'e.g. A-3-12',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'characters',
    'aria-describedby': 'seat-id-help',
  });
  const seatError = h('p', { class: 'form-error', 'data-testid': 'seat-id-error', role: 'alert', hidden: true });
  const seatForm = h(
    'form',
    { class: 'panel', 'aria-labelledby': 'seat-id-title' },
    h('h2', { id: 'seat-id-title' }, 'Pick a seat by number'),
    h('label', { for: 'seat-id-input' }, 'Seat (section-row-seat)'),
    h('div', { class: 'inline-form' }, seatInput, h('button', { type: 'submit', 'data-testid': 'seat-add' }, 'Add')),
    h('p', { id: 'seat-id-help', class: 'muted small' }, 'Section code, row and seat, as on your ticket.'),
    seatError,
  );
  const bestQty = h('select', { id: 'best-quantity', 'data-testid': 'best-quantity' });
  const sectionList = h('table', { class: 'section-list', 'data-testid': 'section-list' });
  const bestPanel = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'best-title' },
    h('h2', { id: 'best-title' }, 'Best available'),
    h('div', { class: 'inline-form' }, h('label', { for: 'best-quantity' }, 'Seats'), bestQty),
    h('div', { class: 'table-scroll' }, sectionList),
  );

  /** The sections table with a "Best N" button each. */
  function renderSectionList() {
    const { event, seatMap, maxSel } = page;
    const qty = Number(bestQty.value) || 1;
    fill(
      sectionList,
      h('caption', { class: 'sr-only' }, 'Sections with their price and seats left'),
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Section'), h('th', { scope: 'col' }, 'Price'), h('th', { scope: 'col' }, 'Left'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Action'))),
      ),
      h(
        'tbody',
        {},
        event.sections.map((s) => {
          const sec = seatMap.section(s.code);
          const left = sec ? sec.available : s.capacity;
          const ga = s.kind === 'general_admission';
          // "I need a wheelchair space": reserved sections without such spaces cannot help.
          const noAccess = page.accessible && !ga && !(sec && sec.attrMask & 1);
          return h(
            'tr',
            {},
            h('th', { scope: 'row' }, h('span', { class: 'code' }, s.code), ' ', h('span', { class: 'muted small' }, s.name)),
            h('td', {}, money(s.price_cents)),
            h('td', { 'data-section-left': s.code }, left.toLocaleString()),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: 'small-button',
                  'data-testid': `best-${s.code}`,
                  disabled: !event.sale_open || !admitted(page) || left < qty || maxSel < 1 || qty > maxSel || noAccess,
                  title: noAccess ? 'No wheelchair spaces in this section' : null,
                  'aria-label': `Hold the best ${qty} ${ga ? 'places' : 'seats'} in ${s.name}`,
                  on: { click: () => page.holding.holdBest(s.code, Number(bestQty.value) || 1) },
                },
                `Best ${qty}`,
              ),
            ),
          );
        }),
      ),
    );
  }

  /** Quantity pickers offer 1 .. what this user may still hold. */
  function refreshQuantities() {
    const { seatMap, maxSel } = page;
    const keep = Number(bestQty.value) || 2;
    fill(bestQty, Array.from({ length: Math.max(1, maxSel) }, (_, k) => h('option', { value: String(k + 1) }, String(k + 1))));
    bestQty.value = String(Math.min(keep, Math.max(1, maxSel)));
    for (const sel of seatMap.root.querySelectorAll('select[data-testid^="ga-quantity-"]')) seatMap.fillQuantity(sel);
    renderSectionList();
  }

  function addSeatById(e) {
    const { event, seatMap } = page;
    e.preventDefault();
    seatError.hidden = true;
    const raw = seatInput.value.trim().toUpperCase();
    if (!raw) return;
    const info = seatMap.info(raw);
    if (!info) {
      seatError.textContent = `There is no seat ${raw} at this event. Use section-row-seat, e.g. ${event.sections.find((s) => s.kind === 'reserved')?.code || 'A'}-1-1.`;
      seatError.hidden = false;
      return;
    }
    seatMap.focusSeat(info.id);
    seatInput.focus();
    if (info.status === 'available' && !info.mine) {
      if (!event.sale_open) {
        page.seatInfo.show(info);
        return;
      }
      page.selection.select(info);
      seatInput.value = '';
    } else {
      page.seatInfo.show(info);
    }
  }

  seatForm.addEventListener('submit', addSeatById);
  bestQty.addEventListener('change', () => renderSectionList());
  // Refresh the section list's numbers now and then (cheap; no network).
  scope.interval(() => {
    if (!page.event || !page.seatMap) return;
    for (const td of sectionList.querySelectorAll('[data-section-left]')) {
      const sec = page.seatMap.section(td.dataset.sectionLeft);
      if (sec) td.textContent = sec.available.toLocaleString();
    }
  }, 2000);

  return { seatForm, bestPanel, renderSectionList, refreshQuantities };
}
