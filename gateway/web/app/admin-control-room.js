// #/admin/events/{id}/control-room — the organiser's control room during an on-sale: live
// tiles from the event's Server-Sent Events (`GET /v1/admin/events/{id}/control-room`:
// `stats` every second, `demand` when unmet demand changes), a heat view of the seat map
// (seats coloured by how many refused requests named them) with a table per section, the
// sale's Pause / Resume / End (`POST /v1/admin/events/{id}/sale`; End asks first), and
// every seat's story (admin-seat-story.js) from a click on the map or a typed seat id.
// The stream reconnects by itself (polling `…/stats` and `…/demand` meanwhile); whatever
// arrives is drawn at most once per animation frame, and each drawing counts in the page's
// `data-updates` (so a test can measure the update rate).

import { api, ApiError, LiveFeed, currentSession } from '../api.js';
import { SeatMap } from '../seatmap.js';
import { h, fill, when, money, sleep } from '../util.js';
import { main, toast, announce, isAbort, focusHeading, loading, failure } from './ui.js';
import { eventDetail } from './event-cache.js';
import { adminOnly, adminTabs, checkText, problemBox } from './admin-ui.js';
import { seatStory } from './admin-seat-story.js';

const MAP_REFRESH_MS = 5000;
/** After a change from this page, frames computed before it may still say the old state. */
const SALE_SETTLE_MS = 3000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let probe = null;
function pixel(css) {
  probe = probe || document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = css;
  probe.fillRect(0, 0, 1, 1);
  const [r, g, b, a] = probe.getImageData(0, 0, 1, 1).data;
  return LITTLE_ENDIAN ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}

/** Heat colours, coolest first: seats refused once to seats refused most. */
const HEAT = ['#fde68a', '#fbbf24', '#f97316', '#ea580c', '#dc2626', '#991b1b'];

/**
 * The seat map drawn as heat: a seat nobody was refused keeps a faint status colour; a
 * refused seat goes from yellow to dark red on a log scale of its refusals.
 */
class HeatMap extends SeatMap {
  constructor(root, opts) {
    super(root, opts);
    this.refused = new Map(); // section code -> Uint32Array of refusals per seat
    this.maxRefused = 0;
    this.heatPixels = HEAT.map(pixel);
    const css = getComputedStyle(document.documentElement);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    this.quietCss = [v('--heat-available', '#bbe5c8'), v('--heat-held', '#f5deb0'), v('--heat-sold', '#cfd4db')];
    this.quietPixels = this.quietCss.map(pixel);
  }

  /** `demand.seats` (`{seat_ids, refused}`): redraw the seats with their refusals. */
  setDemand(seats) {
    for (const arr of this.refused.values()) arr.fill(0);
    let max = 0;
    const ids = (seats && seats.seat_ids) || [];
    const counts = (seats && seats.refused) || [];
    for (let k = 0; k < ids.length; k++) {
      const loc = this.locate(ids[k]);
      if (!loc) continue;
      let arr = this.refused.get(loc.sec.code);
      if (!arr || arr.length !== loc.sec.status.length) {
        arr = new Uint32Array(loc.sec.status.length);
        this.refused.set(loc.sec.code, arr);
      }
      arr[loc.i] = counts[k] || 0;
      max = Math.max(max, counts[k] || 0);
    }
    this.maxRefused = max;
    this.redrawAll();
  }

  refusedAt(sec, i) {
    const arr = this.refused.get(sec.code);
    return arr && arr.length === sec.status.length ? arr[i] : 0;
  }

  heatIndex(n) {
    if (!n) return -1;
    if (this.maxRefused <= 1) return 0;
    const t = Math.log(1 + n) / Math.log(1 + this.maxRefused);
    return Math.min(HEAT.length - 1, Math.floor(t * HEAT.length));
  }

  seatColor(sec, i) {
    const k = this.heatIndex(this.refusedAt(sec, i));
    return k < 0 ? this.quietCss[sec.status[i]] : HEAT[k];
  }

  drawSection(sec) {
    if (!sec.P) return;
    const { P, S, o } = this.geometry(sec);
    const w = sec.canvas.width;
    const hgt = sec.canvas.height;
    if (!sec.image || sec.image.width !== w || sec.image.height !== hgt) {
      sec.image = sec.ctx.createImageData(w, hgt);
      sec.pixels = new Uint32Array(sec.image.data.buffer);
    }
    const px = sec.pixels;
    px.fill(0);
    const { cols, status } = sec;
    for (let i = 0; i < status.length; i++) {
      const k = this.heatIndex(this.refusedAt(sec, i));
      const color = k < 0 ? this.quietPixels[status[i]] : this.heatPixels[k];
      const x0 = (i % cols) * P + o;
      let start = (Math.floor(i / cols) * P + o) * w + x0;
      for (let y = 0; y < S; y++, start += w) px.fill(color, start, start + S);
    }
    sec.ctx.putImageData(sec.image, 0, 0);
    // The seat whose story is shown keeps its mark (seatmap.js's SELECTED flag is 1).
    for (const i of sec.flagged[1] || []) this.drawMark(sec, i);
    if (sec.cursorShown) this.showCursor(sec);
  }

  showTooltip(sec, i, x, y) {
    super.showTooltip(sec, i, x, y);
    const n = this.refusedAt(sec, i);
    this.tooltip.appendChild(h('span', {}, n ? `refused to ${n.toLocaleString()} request${n === 1 ? '' : 's'}` : 'nobody refused'));
    this.tooltip.dataset.refused = String(n);
  }
}

/** #/admin/events/{id}/control-room */
export function viewAdminControlRoom(scope, eventId) {
  document.title = 'Control room · seatq';
  const heading = h('h1', { tabindex: '-1', 'data-testid': 'control-room-title' }, 'Control room');
  const body = h('div', {}, loading());
  const root = h(
    'div',
    { class: 'page admin-page control-room', 'data-testid': 'control-room', 'data-updates': '0' },
    adminTabs('#/admin/events'),
    h('p', { class: 'crumbs' }, h('a', { href: '#/admin/events' }, '← Events')),
    heading,
    body,
  );
  fill(main, root);
  focusHeading(heading);
  const refused = adminOnly('The control room');
  if (refused) {
    fill(body, refused);
    return;
  }

  let event = null;
  let seatMap = null;
  let etag = null;
  let stats = null;
  let demand = null;
  let statsAt = 0;
  let updates = 0;
  let frame = 0;
  let frameTimer = 0;
  let saleChangedAt = 0;
  let saleState = null;

  // --- live status and age ---
  const liveEl = h('span', { class: 'live', 'data-testid': 'control-live', 'data-mode': 'connecting' }, 'Connecting…');
  const updatedEl = h('span', { class: 'muted small', 'data-testid': 'control-updated', 'aria-live': 'off' }, 'waiting for the first figures…');

  // --- tiles ---
  const tiles = {};
  const tile = (key, label) => {
    const value = h('strong', { class: 'cr-value', 'data-testid': `tile-${key}-value` }, '—');
    const sub = h('span', { class: 'cr-sub muted small' });
    const el = h('div', { class: 'cr-tile', 'data-testid': `tile-${key}` }, h('span', { class: 'cr-label' }, label), value, sub);
    tiles[key] = { el, value, sub };
    return el;
  };
  const tilesEl = h(
    'div',
    { class: 'cr-tiles', 'data-testid': 'control-tiles' },
    tile('decisions', 'Decisions / s'),
    tile('holds', 'Holds live'),
    tile('sold', 'Seats sold'),
    tile('revenue', 'Revenue'),
    tile('waiting', 'Waiting room'),
    tile('admission', 'Admission rate'),
    tile('lag', 'Consumer lag'),
    tile('dead-letters', 'Dead letters'),
    tile('refunds', 'Refunds'),
  );
  const setTile = (key, value, sub = '', { raw = value, warn = false } = {}) => {
    const t = tiles[key];
    t.value.textContent = value;
    t.sub.textContent = sub;
    t.el.dataset.value = String(raw);
    t.el.classList.toggle('warn', warn);
  };

  // --- sale control ---
  const saleBadge = h('span', { class: 'badge', 'data-testid': 'sale-state' }, '…');
  const saleNote = h('input', { id: 'sale-note', name: 'note', 'data-testid': 'sale-note', maxlength: '200', placeholder: 'why (for the event’s history)', autocomplete: 'off' });
  const pauseBtn = h('button', { type: 'button', 'data-testid': 'sale-pause', disabled: true }, 'Pause sale');
  const resumeBtn = h('button', { type: 'button', class: 'primary', 'data-testid': 'sale-resume', disabled: true }, 'Resume sale');
  const endBtn = h('button', { type: 'button', class: 'danger', 'data-testid': 'sale-end', disabled: true }, 'End sale…');
  const saleStatusEl = h('p', { class: 'muted small', role: 'status', 'data-testid': 'sale-change-status' });
  const saleProblem = problemBox('sale-problem');
  const confirmBox = h(
    'div',
    { class: 'notice warn-box', 'data-testid': 'sale-end-box', role: 'alertdialog', 'aria-labelledby': 'sale-end-q', hidden: true },
    h('p', { id: 'sale-end-q' }, h('strong', {}, 'End the sale for good? '), 'No more seats will be sold and it cannot be reopened. Holds already made may still be paid.'),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'danger', 'data-testid': 'sale-end-confirm', on: { click: () => change('ended') } }, 'End the sale'),
      h('button', { type: 'button', 'data-testid': 'sale-end-keep', on: { click: () => (confirmBox.hidden = true) } }, 'Keep it going'),
    ),
  );
  const salePanel = h(
    'section',
    { class: 'panel sale-control', 'data-testid': 'sale-control', 'aria-labelledby': 'sale-title' },
    h('h2', { id: 'sale-title' }, 'The sale ', saleBadge),
    h('div', { class: 'field' }, h('label', { for: 'sale-note' }, 'Note'), saleNote),
    h('div', { class: 'actions' }, pauseBtn, resumeBtn, endBtn),
    confirmBox,
    saleProblem.el,
    saleStatusEl,
  );
  pauseBtn.addEventListener('click', () => change('paused'));
  resumeBtn.addEventListener('click', () => change('open'));
  endBtn.addEventListener('click', () => {
    confirmBox.hidden = false;
    confirmBox.querySelector('button').focus();
  });

  function showSale(state) {
    if (!state) return;
    saleState = state;
    root.dataset.saleState = state;
    saleBadge.dataset.state = state;
    saleBadge.textContent = { open: 'On sale', paused: 'Paused', ended: 'Ended' }[state] || state;
    saleBadge.className = `badge sale-${state}${state === 'open' ? ' badge-open' : ''}`;
    const busy = pauseBtn.dataset.busy === 'true';
    pauseBtn.disabled = busy || state !== 'open';
    resumeBtn.disabled = busy || state !== 'paused';
    endBtn.disabled = busy || state === 'ended';
    if (state === 'ended') confirmBox.hidden = true;
  }

  function setBusy(busy) {
    pauseBtn.dataset.busy = String(busy);
    showSale(saleState);
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

  async function change(state) {
    saleProblem.clear();
    const note = saleNote.value.trim();
    const bad = checkText('Note', note, 0, 200);
    if (bad) {
      saleProblem.show(new ApiError(422, { title: 'Check the note', detail: bad, code: 'invalid_note' }));
      return;
    }
    confirmBox.hidden = true;
    setBusy(true);
    const verb = { paused: 'Pausing', open: 'Resuming', ended: 'Ending' }[state];
    saleStatusEl.textContent = `${verb} the sale at its place in the queue…`;
    try {
      const r = await api('POST', `/v1/admin/events/${eventId}/sale`, { body: { state, note }, signal: scope.signal });
      let d = r.data;
      if (r.status === 202) {
        saleStatusEl.textContent = 'Queued behind the sale’s requests; waiting for the decision…';
        d = await decided(r.data.status_url);
      }
      if (!scope.alive) return;
      if (!d) {
        saleStatusEl.textContent = 'Still queued: the state above changes once it is decided.';
        return;
      }
      if (d.status === 'rejected') {
        const reason = d.reason || 'rejected';
        saleProblem.show(new ApiError(409, { title: 'Refused', detail: `the change was refused: ${reason}`, code: reason }));
        saleStatusEl.textContent = '';
        return;
      }
      const now = (d.detail && d.detail.sale_state) || state;
      saleChangedAt = Date.now();
      saleStatusEl.textContent = '';
      showSale(now);
      saleNote.value = '';
      const said = { paused: 'Sale paused: hold requests are refused until you resume.', open: 'Sale resumed.', ended: 'Sale ended.' }[now] || `Sale ${now}.`;
      toast(said, { kind: 'success', timeout: 4000 });
      announce(said);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      saleStatusEl.textContent = '';
      saleProblem.show(err);
      // An ended sale says so: show it.
      if (err instanceof ApiError && err.code === 'sale_ended') showSale('ended');
    } finally {
      if (scope.alive) setBusy(false);
    }
  }

  // --- demand per section ---
  const demandTable = h('div', { 'data-testid': 'demand-table' });
  const demandTotal = h('span', { 'data-testid': 'demand-total' }, '—');

  function renderDemand() {
    if (!demand) return;
    demandTotal.textContent = demand.refused.toLocaleString();
    demandTotal.dataset.value = String(demand.refused);
    const sections = [...demand.sections].sort((a, b) => b.refused - a.refused);
    if (!sections.length) {
      fill(demandTable, h('p', { class: 'empty', 'data-testid': 'demand-empty' }, 'Nobody has been refused a seat yet.'));
      return;
    }
    fill(
      demandTable,
      h(
        'table',
        { class: 'admin-table' },
        h('caption', { class: 'sr-only' }, 'Refused requests per section, most first'),
        h('thead', {}, h('tr', {}, ['Section', 'Refused requests', 'Seats wanted', 'Left'].map((t) => h('th', { scope: 'col' }, t)))),
        h(
          'tbody',
          {},
          sections.map((s) => {
            const sec = seatMap && seatMap.section(s.section);
            return h(
              'tr',
              { 'data-testid': 'demand-row', 'data-section': s.section, 'data-refused': String(s.refused) },
              h('th', { scope: 'row' }, s.section),
              h('td', {}, s.refused.toLocaleString()),
              h('td', {}, s.seats_wanted.toLocaleString()),
              h('td', {}, sec ? `${sec.available.toLocaleString()} of ${sec.capacity.toLocaleString()}` : '—'),
            );
          }),
        ),
      ),
    );
  }

  // --- drawing, at most once per animation frame ---
  let statsDirty = false;
  let demandDirty = false;
  function schedule() {
    if (frame || frameTimer) return;
    frame = requestAnimationFrame(draw);
    // A hidden tab gets no animation frames: draw within a second anyway.
    frameTimer = setTimeout(draw, 1000);
  }
  scope.on(() => {
    cancelAnimationFrame(frame);
    clearTimeout(frameTimer);
  });

  function draw() {
    cancelAnimationFrame(frame);
    clearTimeout(frameTimer);
    frame = 0;
    frameTimer = 0;
    if (!scope.alive) return;
    if (statsDirty && stats) renderStats();
    if (demandDirty && demand) {
      if (seatMap) seatMap.setDemand(demand.seats);
      renderDemand();
    }
    statsDirty = false;
    demandDirty = false;
    updates++;
    root.dataset.updates = String(updates);
  }

  function renderStats() {
    const s = stats;
    const seats = s.seats;
    const pipe = s.pipeline;
    const wr = s.waiting_room;
    if (!saleChangedAt || Date.now() - saleChangedAt > SALE_SETTLE_MS || s.sale_state === saleState) showSale(s.sale_state);
    setTile('decisions', pipe.decisions_per_sec.toFixed(1), `partition ${pipe.partition}, last 10 s`, { raw: pipe.decisions_per_sec });
    setTile('holds', s.holds_active.toLocaleString(), `${seats.held.toLocaleString()} seats held`, { raw: s.holds_active });
    const capacity = seats.capacity ?? seats.available + seats.held + (seats.held_back || 0) + seats.sold;
    setTile(
      'sold',
      `${seats.sold.toLocaleString()} / ${capacity.toLocaleString()}`,
      `${seats.available.toLocaleString()} available · ${(seats.held_back || 0).toLocaleString()} held back`,
      { raw: seats.sold },
    );
    setTile('revenue', money(s.revenue_cents), `${s.bookings_confirmed.toLocaleString()} bookings`, { raw: s.revenue_cents });
    if (wr.enabled) {
      setTile('waiting', wr.waiting.toLocaleString(), `${wr.admitted.toLocaleString()} let in`, { raw: wr.waiting });
      const p99 = wr.last_decision_p99_ms;
      const slow = p99 != null && p99 > wr.target_decision_p99_ms;
      setTile(
        'admission',
        wr.admission_rate != null ? `${wr.admission_rate.toFixed(1)} / s` : '—',
        `p99 ${p99 != null ? `${Math.round(p99)} ms` : '—'} (target ${Math.round(wr.target_decision_p99_ms)} ms) · lag ${wr.last_lag ?? '—'} (target ${wr.target_lag})`,
        { raw: wr.admission_rate ?? '', warn: slow },
      );
    } else {
      setTile('waiting', 'off', 'no waiting room', { raw: 'off' });
      setTile('admission', '—', `no waiting room · target p99 ${Math.round(wr.target_decision_p99_ms)} ms`, { raw: '' });
    }
    const lag = pipe.consumer_lag;
    const parts = (pipe.partitions || []).map((p) => `p${p.partition} ${p.lag.toLocaleString()}`).join(' · ');
    setTile(
      'lag',
      lag != null ? lag.toLocaleString() : '—',
      `${parts || 'partitions: —'}${pipe.suggested_consumers != null ? ` · ${pipe.suggested_consumers} consumer${pipe.suggested_consumers === 1 ? '' : 's'} suggested` : ''}`,
      { raw: lag ?? '' },
    );
    tiles.lag.el.dataset.partitions = String((pipe.partitions || []).length);
    tiles.lag.el.dataset.suggested = String(pipe.suggested_consumers ?? '');
    setTile('dead-letters', pipe.dead_letters.toLocaleString(), pipe.dead_letters ? 'see docs/operations.md' : 'none', { raw: pipe.dead_letters, warn: pipe.dead_letters > 0 });
    setTile(
      'refunds',
      `${s.refunds.pending.toLocaleString()} pending`,
      `${s.refunds.failed.toLocaleString()} failed · ${s.refunds.issued.toLocaleString()} issued`,
      { raw: s.refunds.pending, warn: s.refunds.failed > 0 },
    );
    tiles.refunds.el.dataset.failed = String(s.refunds.failed);
    renderAge();
  }

  function renderAge() {
    if (!statsAt) return;
    const secs = Math.max(0, Math.floor((Date.now() - statsAt) / 1000));
    updatedEl.dataset.ageSecs = String(secs);
    updatedEl.textContent = secs < 1 ? 'updated just now' : `updated ${secs} s ago`;
    updatedEl.classList.toggle('stale', secs >= 5);
  }
  scope.interval(renderAge, 1000);

  function onStats(data) {
    stats = data;
    statsAt = Date.now();
    statsDirty = true;
    schedule();
  }
  function onDemand(data) {
    demand = data;
    demandDirty = true;
    schedule();
  }

  // --- the map ---
  const mapRoot = h('div', { class: 'seat-map heat-map', 'data-testid': 'seat-map' });
  const story = seatStory(scope, eventId, { onSeat: (id) => seatMap && seatMap.setSelected([id]) });
  async function fetchMap() {
    const r = await api('GET', `/v1/events/${eventId}/seats`, { etag, signal: scope.signal, auth: false });
    if (!scope.alive || r.status === 304) return;
    etag = r.etag;
    seatMap.setData(r.data);
    if (demand) seatMap.setDemand(demand.seats);
  }

  async function load() {
    try {
      const [ev, sale] = await Promise.all([
        eventDetail(eventId, { fresh: true }),
        api('GET', `/v1/admin/events/${eventId}/sale`, { signal: scope.signal }),
      ]);
      if (!scope.alive) return;
      event = ev;
      showSale(sale.data.sale_state);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
      return;
    }
    heading.textContent = `Control room · ${event.title}`;
    document.title = `Control room · ${event.title} · seatq`;
    const legend = h(
      'ul',
      { class: 'legend heat-legend', 'aria-label': 'Legend' },
      h('li', {}, h('span', { class: 'swatch swatch-quiet', 'aria-hidden': 'true' }), 'Nobody refused'),
      h('li', {}, h('span', { class: 'heat-scale', 'aria-hidden': 'true' }), 'Refused: few → many'),
    );
    fill(
      body,
      h(
        'p',
        { class: 'muted control-sub' },
        `${event.venue.name} · ${when(event.starts_at)} · `,
        h('a', { href: `#/admin/events/${eventId}/holdbacks` }, 'Holdbacks'),
        ' · ',
        h('a', { href: `#/checkin/${eventId}` }, 'Check-in'),
        ' · ',
        h('a', { href: `#/events/${eventId}` }, 'Public page'),
        ' · ',
        liveEl,
        ' ',
        updatedEl,
      ),
      tilesEl,
      h(
        'div',
        { class: 'event-layout' },
        h(
          'div',
          { class: 'map-col' },
          h('h2', {}, 'Where demand went unmet'),
          h('div', { class: 'map-toolbar' }, legend, h('span', { class: 'toolbar-right muted small' }, 'Refused requests: ', demandTotal)),
          mapRoot,
          h('p', { class: 'muted small' }, 'Click a seat for its story.'),
          demandTable,
        ),
        h('aside', { class: 'side-col' }, salePanel),
      ),
      story.el,
    );
    seatMap = new HeatMap(mapRoot, { onActivate: (info) => story.open(info.id), onGaHold: () => {}, announce, maxQuantity: () => 1 });
    scope.on(() => seatMap.destroy());
    story.setMap(seatMap);
    try {
      await fetchMap();
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(mapRoot, failure(err, () => fetchMap().catch(() => {})));
    }
    seatMap.setDisabled(true);
    if (demand) demandDirty = true;
    schedule();
    scope.interval(() => fetchMap().catch(() => {}), MAP_REFRESH_MS);
    const feed = new LiveFeed({
      url: () => `/v1/admin/events/${eventId}/control-room?access_token=${encodeURIComponent(currentSession()?.token || '')}`,
      handlers: { stats: onStats, demand: onDemand },
      poll: async () => {
        const [s, d] = await Promise.all([
          api('GET', `/v1/admin/events/${eventId}/stats`, { signal: scope.signal }),
          api('GET', `/v1/admin/events/${eventId}/demand`, { signal: scope.signal }),
        ]);
        if (!scope.alive) return;
        onStats(s.data);
        onDemand(d.data);
      },
      pollMs: 2000,
      retryStreamMs: 3000,
      onMode: (mode) => {
        liveEl.dataset.mode = mode;
        liveEl.textContent = { live: 'Live', polling: 'Reconnecting (polling meanwhile)', connecting: 'Connecting…' }[mode] || mode;
      },
    }).start();
    scope.on(() => feed.stop());
  }
  load();
}
