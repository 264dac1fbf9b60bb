// #/admin/events/{id}/holdbacks — taking seats off sale and putting them back: pick seats
// on the event's seat map (or type their ids), or name a whole reserved section; keep them
// until released by hand or until a set time (`POST /v1/admin/events/{id}/holdbacks`); the
// event's holdbacks with a Release button each (`POST /v1/admin/holdbacks/{id}/release`).
// A holdback is a command decided in the event's queue like any hold: the API answers once
// decided, or 202 with a status URL this page polls. The map follows the snapshot, fetched
// again after every change and every few seconds.

import { api, ApiError } from '../api.js';
import { SeatMap, parseSeatId } from '../seatmap.js';
import { h, fill, when, sleep } from '../util.js';
import { main, toast, announce, isAbort, focusHeading, loading, failure } from './ui.js';
import { eventDetail } from './event-cache.js';
import { adminOnly, adminTabs, checkText, isoFromLocal, FieldErrors, field, problemBox } from './admin-ui.js';

/** `MAX_BLOCKED_SEATS` (common/src/command.rs): seats in one holdback. */
const MAX_SEATS = 5000;
const REFRESH_MS = 4000;

/** #/admin/events/{id}/holdbacks */
export function viewAdminHoldbacks(scope, eventId) {
  document.title = 'Holdbacks · seatq';
  const heading = h('h1', { tabindex: '-1', 'data-testid': 'holdbacks-title' }, 'Holdbacks');
  const body = h('div', {}, loading());
  fill(
    main,
    h(
      'div',
      { class: 'page admin-page' },
      adminTabs('#/admin/events'),
      h('p', { class: 'crumbs' }, h('a', { href: '#/admin/events' }, '← Events')),
      heading,
      body,
    ),
  );
  focusHeading(heading);
  const refused = adminOnly('Holding seats back');
  if (refused) {
    fill(body, refused);
    return;
  }

  const selected = new Set();
  let seatMap = null;
  let event = null;
  let etag = null;
  const mapRoot = h('div', { class: 'seat-map', 'data-testid': 'seat-map' });
  const countsEl = h('span', { class: 'counts', 'data-testid': 'map-counts' });
  const list = h('div', { 'data-testid': 'holdback-list' });
  const problem = problemBox('holdback-problem');
  const listProblem = problemBox('release-problem');
  const errors = new FieldErrors();

  // --- the form ---
  const modeSeats = h('input', { type: 'radio', name: 'hb-mode', id: 'hb-mode-seats', value: 'seats', checked: true, 'data-testid': 'holdback-mode-seats' });
  const modeSection = h('input', { type: 'radio', name: 'hb-mode', id: 'hb-mode-section', value: 'section', 'data-testid': 'holdback-mode-section' });
  const sectionSelect = h('select', { id: 'hb-section', name: 'section', 'data-testid': 'holdback-section' });
  const seatInput = h('input', { id: 'hb-seat', name: 'seat_ids', 'data-testid': 'holdback-seat-input', placeholder: 'e.g. A-3-12', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters' });
  const seatAdd = h('button', { type: 'button', 'data-testid': 'holdback-seat-add' }, 'Add');
  const chips = h('ul', { class: 'chips', 'data-testid': 'holdback-selection', 'aria-label': 'Seats to hold back' });
  const selectionCount = h('span', { 'data-testid': 'holdback-count' }, '0');
  const clearSel = h('button', { type: 'button', class: 'link-button', 'data-testid': 'holdback-clear' }, 'Clear');
  const note = h('input', { id: 'hb-note', name: 'note', 'data-testid': 'holdback-note', maxlength: '200', placeholder: 'press, production, wave 2…', autocomplete: 'off' });
  const releaseManual = h('input', { type: 'radio', name: 'hb-release', id: 'hb-release-manual', value: 'manual', checked: true, 'data-testid': 'holdback-release-manual' });
  const releaseTimed = h('input', { type: 'radio', name: 'hb-release', id: 'hb-release-timed', value: 'timed', 'data-testid': 'holdback-release-timed' });
  const releaseAt = h('input', { type: 'datetime-local', id: 'hb-release-at', name: 'release_at', 'data-testid': 'holdback-release-at', disabled: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'holdback-submit' }, 'Hold back');
  const status = h('p', { class: 'muted small', role: 'status', 'data-testid': 'holdback-status' });

  const seatsPart = h(
    'div',
    { class: 'holdback-seats' },
    h('p', { class: 'muted small' }, 'Click available seats on the map (or focus a section and use the arrow keys and Enter), or type a seat.'),
    h('div', { class: 'inline-form' }, h('label', { for: 'hb-seat', class: 'sr-only' }, 'Seat (section-row-seat)'), seatInput, seatAdd),
    h('p', {}, selectionCount, ' seats selected ', clearSel),
    chips,
  );
  const sectionPart = h('div', { class: 'holdback-section', hidden: true }, field('Section', sectionSelect));
  const form = h(
    'form',
    { class: 'panel admin-form', 'data-testid': 'holdback-form', 'aria-labelledby': 'hb-form-title', novalidate: true },
    h('h2', { id: 'hb-form-title' }, 'Hold seats back'),
    h(
      'fieldset',
      { class: 'choice' },
      h('legend', {}, 'What'),
      h('label', { for: 'hb-mode-seats' }, modeSeats, ' Seats I pick'),
      h('label', { for: 'hb-mode-section' }, modeSection, ' A whole section'),
    ),
    seatsPart,
    sectionPart,
    field('Note (for organisers)', note),
    h(
      'fieldset',
      { class: 'choice' },
      h('legend', {}, 'Back on sale'),
      h('label', { for: 'hb-release-manual' }, releaseManual, ' When I release them'),
      h('label', { for: 'hb-release-timed' }, releaseTimed, ' By themselves at'),
      h('div', { class: 'field' }, h('label', { for: 'hb-release-at', class: 'sr-only' }, 'Release time'), releaseAt),
    ),
    problem.el,
    h('div', { class: 'actions' }, submit),
    status,
  );

  function renderSelection() {
    const ids = [...selected];
    selectionCount.textContent = String(ids.length);
    fill(
      chips,
      ids.slice(0, 60).map((id) =>
        h(
          'li',
          { class: 'chip', 'data-testid': 'holdback-seat', 'data-seat-id': id },
          id,
          h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${id}`, on: { click: () => toggle(id) } }, '×'),
        ),
      ),
      ids.length > 60 ? h('li', { class: 'muted small' }, `and ${ids.length - 60} more`) : null,
    );
    if (seatMap) seatMap.setSelected(ids);
  }

  function toggle(id) {
    if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    renderSelection();
    announce(`${id} ${selected.has(id) ? 'selected' : 'removed'}. ${selected.size} selected.`);
  }

  function onActivate(info) {
    if (info.status !== 'available' && !selected.has(info.id)) {
      toast(`${info.id} is ${info.status}: only available seats can be held back.`, { kind: 'warn' });
      return;
    }
    toggle(info.id);
  }

  function addTypedSeat() {
    errors.clear();
    const p = parseSeatId(seatInput.value);
    const id = p && `${p.code}-${p.row}-${p.seat}`;
    const info = id && seatMap ? seatMap.info(id) : null;
    if (!info) {
      errors.set(seatInput, 'No such seat here: section-row-seat, e.g. A-3-12.');
      seatInput.focus();
      return;
    }
    if (!selected.has(id)) onActivate(info);
    seatInput.value = '';
    seatInput.focus();
  }
  seatAdd.addEventListener('click', addTypedSeat);
  seatInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addTypedSeat();
    }
  });
  clearSel.addEventListener('click', () => {
    selected.clear();
    renderSelection();
  });
  const onMode = () => {
    seatsPart.hidden = !modeSeats.checked;
    sectionPart.hidden = !modeSection.checked;
  };
  modeSeats.addEventListener('change', onMode);
  modeSection.addEventListener('change', onMode);
  const onRelease = () => {
    releaseAt.disabled = !releaseTimed.checked;
    if (releaseTimed.checked) releaseAt.focus();
  };
  releaseManual.addEventListener('change', onRelease);
  releaseTimed.addEventListener('change', onRelease);

  /** The request body, or null after showing what is wrong (holdbacks.rs `NewHoldback`). */
  function collect() {
    errors.clear();
    const body = { note: note.value.trim() };
    errors.set(note, checkText('Note', body.note, 0, 200));
    if (modeSeats.checked) {
      if (!selected.size) errors.set(seatInput, 'Pick at least one seat, or choose a whole section.');
      else if (selected.size > MAX_SEATS) errors.set(seatInput, `At most ${MAX_SEATS.toLocaleString()} seats in one holdback: use several.`);
      body.seat_ids = [...selected];
    } else {
      const s = event.sections.find((x) => x.code === sectionSelect.value);
      if (!s) errors.set(sectionSelect, 'Choose a section.');
      else if (s.capacity > MAX_SEATS) errors.set(sectionSelect, `Section ${s.code} has ${s.capacity.toLocaleString()} seats; at most ${MAX_SEATS.toLocaleString()} in one holdback: pick seats instead.`);
      body.section = sectionSelect.value;
    }
    if (releaseTimed.checked) {
      const at = isoFromLocal(releaseAt.value);
      if (!at) errors.set(releaseAt, 'When should they go back on sale?');
      else if (Date.parse(at) <= Date.now()) errors.set(releaseAt, 'The release time must be in the future (or release by hand).');
      else body.release_at = at;
    }
    if (errors.any) {
      errors.focusFirst();
      return null;
    }
    return body;
  }

  /** Poll an organiser's command until decided (`GET /v1/admin/requests/{id}`). */
  async function decided(statusUrl) {
    for (let i = 0; i < 60 && scope.alive; i++) {
      await sleep(Math.min(2000, 250 * (i + 1)));
      const r = await api('GET', statusUrl, { signal: scope.signal });
      if (r.data.status !== 'pending') return r.data;
    }
    return null;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problem.clear();
    const body = collect();
    if (!body) return;
    submit.disabled = true;
    status.textContent = 'Taking the seats off sale…';
    try {
      const r = await api('POST', `/v1/admin/events/${eventId}/holdbacks`, { body, signal: scope.signal });
      if (r.status === 202) {
        status.textContent = 'Queued behind the sale’s requests; waiting for the decision…';
        const d = await decided(r.data.status_url);
        if (!scope.alive) return;
        if (!d) status.textContent = 'Still queued: the list shows it once decided.';
        else if (d.status === 'rejected') {
          const reason = d.reason || 'rejected';
          problem.show(new ApiError(409, { title: 'Refused', detail: `the request was refused: ${reason}`, code: reason }));
          status.textContent = '';
          return;
        }
      }
      if (!scope.alive) return;
      const n = body.seat_ids ? body.seat_ids.length : 'all';
      status.textContent = '';
      toast(`Held back: ${body.section ? `section ${body.section}` : `${n} seat${n === 1 ? '' : 's'}`}.`, { kind: 'success', timeout: 4000 });
      selected.clear();
      renderSelection();
      note.value = '';
      refresh();
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      status.textContent = '';
      problem.show(err);
    } finally {
      submit.disabled = false;
    }
  });

  // --- the list ---
  async function loadList() {
    try {
      const r = await api('GET', `/v1/admin/events/${eventId}/holdbacks`, { signal: scope.signal });
      if (!scope.alive) return;
      renderList(r.data.holdbacks);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(list, failure(err, loadList));
    }
  }

  function renderList(holdbacks) {
    if (!holdbacks.length) {
      fill(list, h('p', { class: 'empty', 'data-testid': 'holdbacks-empty' }, 'Nothing held back.'));
      return;
    }
    fill(
      list,
      h(
        'table',
        { class: 'admin-table' },
        h('caption', { class: 'sr-only' }, 'Holdbacks, oldest first'),
        h(
          'thead',
          {},
          h('tr', {}, ['Seats', 'Note', 'Back on sale', 'Status', ''].map((t) => h('th', { scope: 'col' }, t))),
        ),
        h(
          'tbody',
          {},
          holdbacks
            .slice()
            .reverse()
            .map((hb) =>
              h(
                'tr',
                { 'data-testid': 'holdback', 'data-hold-id': hb.hold_id, 'data-status': hb.status },
                h('td', { 'data-testid': 'holdback-seats' }, seatSummary(hb.seat_ids)),
                h('td', {}, hb.note || h('span', { class: 'muted' }, '—')),
                h('td', {}, hb.release_at ? when(hb.release_at) : h('span', { class: 'muted' }, 'by hand')),
                h('td', { 'data-testid': 'holdback-state' }, hb.status === 'active' ? h('span', { class: 'badge' }, 'Held back') : h('span', { class: 'badge badge-open' }, 'Released')),
                h(
                  'td',
                  {},
                  hb.status === 'active'
                    ? h(
                        'button',
                        { type: 'button', 'data-testid': 'holdback-release', 'aria-label': `Release ${hb.seat_ids.length} seats now`, on: { click: (e) => release(e.currentTarget, hb) } },
                        'Release now',
                      )
                    : null,
                ),
              ),
            ),
        ),
      ),
    );
  }

  async function release(button, hb) {
    button.disabled = true;
    listProblem.clear();
    try {
      const r = await api('POST', `/v1/admin/holdbacks/${hb.hold_id}/release`, { signal: scope.signal });
      if (!scope.alive) return;
      toast(`${hb.seat_ids.length} seat${hb.seat_ids.length === 1 ? '' : 's'} back on sale${r.status === 202 ? ' (queued)' : ''}.`, { kind: 'success', timeout: 4000 });
      // A queued release is decided shortly: look again until the list says so.
      for (let i = 0; i < (r.status === 202 ? 20 : 1) && scope.alive; i++) {
        await refresh();
        if (r.status !== 202) break;
        const now = await api('GET', `/v1/admin/events/${eventId}/holdbacks`, { signal: scope.signal });
        if (now.data.holdbacks.some((x) => x.hold_id === hb.hold_id && x.status !== 'active')) break;
        await sleep(500);
      }
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      button.disabled = false;
      listProblem.show(err);
    }
  }

  // --- the map ---
  async function fetchMap() {
    const r = await api('GET', `/v1/events/${eventId}/seats`, { etag, signal: scope.signal, auth: false });
    if (!scope.alive || r.status === 304) return;
    etag = r.etag;
    seatMap.setData(r.data);
    // Picked seats someone else took meanwhile cannot be held back.
    for (const id of [...selected]) {
      const info = seatMap.info(id);
      if (!info || info.status !== 'available') selected.delete(id);
    }
    renderSelection();
    const c = seatMap.counts();
    countsEl.textContent = `${c.available.toLocaleString()} available · ${c.held.toLocaleString()} held · ${c.sold.toLocaleString()} sold`;
  }

  async function refresh() {
    await Promise.all([fetchMap().catch(() => {}), loadList()]);
  }

  async function load() {
    try {
      event = await eventDetail(eventId, { fresh: true });
      if (!scope.alive) return;
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
      return;
    }
    heading.textContent = `Holdbacks · ${event.title}`;
    document.title = `Holdbacks · ${event.title} · seatq`;
    const reserved = event.sections.filter((s) => s.kind === 'reserved');
    fill(
      sectionSelect,
      reserved.map((s) => h('option', { value: s.code }, `${s.code} · ${s.name} (${s.capacity.toLocaleString()} seats)`)),
    );
    if (!reserved.length) {
      modeSection.disabled = true;
      modeSeats.disabled = true;
    }
    fill(
      body,
      h('p', { class: 'muted' }, `${event.venue.name} · ${when(event.starts_at)} · `, h('a', { href: `#/checkin/${eventId}` }, 'Check-in'), ' · ', h('a', { href: `#/events/${eventId}` }, 'Public page')),
      h(
        'div',
        { class: 'event-layout' },
        h('div', { class: 'map-col' }, h('h2', { class: 'sr-only' }, 'Seat map'), h('div', { class: 'map-toolbar' }, countsEl), mapRoot),
        h(
          'aside',
          { class: 'side-col' },
          form,
          h('section', { class: 'panel', 'aria-labelledby': 'hb-list-title' }, h('h2', { id: 'hb-list-title' }, 'Held back'), listProblem.el, list),
        ),
      ),
    );
    seatMap = new SeatMap(mapRoot, { onActivate, onGaHold: () => {}, announce, maxQuantity: () => 1 });
    scope.on(() => seatMap.destroy());
    await refresh();
    // Standing sections have no seats to hold back.
    seatMap.setDisabled(true);
    scope.interval(() => fetchMap().catch(() => {}), REFRESH_MS);
  }
  load();
}

/** "A-1-1 … A-1-10 (10 seats)" for a long list, the ids for a short one. */
function seatSummary(ids) {
  if (ids.length <= 6) return ids.join(', ');
  return `${ids.slice(0, 3).join(', ')} … ${ids[ids.length - 1]} (${ids.length} seats)`;
}
