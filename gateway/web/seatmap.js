// The seat map: one <canvas> per reserved section (one status square per seat, drawn in a
// single pass, single seats redrawn on live changes), a tile with a places meter per
// general-admission section. Pointer: hover shows the seat and price, click/tap selects (on
// a section drawn too small to aim at, the first click enlarges it). Keyboard: each
// section canvas is a tab stop; arrows move a seat cursor (Shift = 10 seats), Home/End go
// to the row's ends, Enter/Space acts on the seat, Escape shrinks the section back.
//
// Seating rules: each reserved section's `seat_ranges` are expanded once per map load into
// one attribute byte and one price-category index per seat (`sec.attrs`, `sec.cats`), so
// drawing and filtering never look at the ranges again. Available seats of a price
// category take its colour; wheelchair spaces, companion seats, restricted views and
// aisles get a mark drawn over the seat; a filter (`setFilter`) dims the seats it leaves
// out (one pass, one byte per seat).

import { h, fill, money } from './util.js';

const STATUS_CODES = { A: 0, H: 1, S: 2 };
export const STATUS_NAMES = ['available', 'held', 'sold'];
const SELECTED = 1;
const MINE = 2;

/** Seat attributes as bits of `sec.attrs` (the same bits as common/src/seating.rs). */
export const ATTRIBUTES = ['accessible', 'companion', 'restricted_view', 'aisle'];
export const ATTR_BITS = { accessible: 1, companion: 2, restricted_view: 4, aisle: 8 };
/** Wheelchair spaces and companion seats: kept for buyers who need them until released. */
export const KEPT_FOR_ACCESS = ATTR_BITS.accessible | ATTR_BITS.companion;
/** How many price-category colours there are (`--seat-cat-1` ..); they repeat after. */
export const CATEGORY_COLORS = 6;

/** `"L110-1-30"` → `{code: "L110", row: 1, seat: 30}`; section codes may contain `-`. */
export function parseSeatId(id) {
  const parts = String(id || '')
    .trim()
    .toUpperCase()
    .split('-');
  if (parts.length < 3) return null;
  const seat = Number(parts.pop());
  const row = Number(parts.pop());
  const code = parts.join('-');
  if (!code || !Number.isInteger(row) || !Number.isInteger(seat) || row < 1 || seat < 1) {
    return null;
  }
  return { code, row, seat };
}

export const seatId = (code, row, seat) => `${code}-${row}-${seat}`;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let probe = null;

/** A CSS colour as one 32-bit pixel value for an ImageData buffer. */
function pixel(css) {
  probe = probe || document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = css;
  probe.fillRect(0, 0, 1, 1);
  const [r, g, b, a] = probe.getImageData(0, 0, 1, 1).data;
  return LITTLE_ENDIAN ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}

function palette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const colors = {
    status: [v('--seat-available', '#16a34a'), v('--seat-held', '#f59e0b'), v('--seat-sold', '#9ca3af')],
    selected: v('--seat-selected', '#1d4ed8'),
    mine: v('--seat-mine', '#7c3aed'),
    mark: v('--seat-mark', '#ffffff'),
    aisle: v('--seat-aisle', '#111827'),
    hatch: v('--seat-hatch', 'rgba(17, 24, 39, 0.55)'),
    categories: Array.from({ length: CATEGORY_COLORS }, (_, k) =>
      v(`--seat-cat-${k + 1}`, ['#0e7490', '#be185d', '#65a30d', '#0f766e', '#a21caf', '#854d0e'][k]),
    ),
  };
  colors.pixels = [...colors.status.map(pixel), pixel(colors.selected), pixel(colors.mine)];
  colors.catPixels = colors.categories.map(pixel);
  // The same colours faded (a filter leaves the seat out): the alpha byte only.
  const fade = (p) => (LITTLE_ENDIAN ? ((p & 0x00ffffff) | (0x38 << 24)) >>> 0 : ((p & 0xffffff00) | 0x38) >>> 0);
  colors.fadedPixels = colors.pixels.map(fade);
  colors.fadedCatPixels = colors.catPixels.map(fade);
  return colors;
}

/** The colour of price category `k` (0-based index into the map's `price_categories`). */
export function categoryColorVar(k) {
  return `var(--seat-cat-${(k % CATEGORY_COLORS) + 1})`;
}

export class SeatMap {
  /**
   * `root`: the element to draw into. Callbacks: `onActivate(info)` when a seat is clicked
   * or Enter'd (info: `{id, code, name, row, seat, status, selected, mine, price_cents}`),
   * `onGaHold(code, quantity)`, `announce(text)` for screen readers, `maxQuantity()`,
   * `onBuild()` after the sections were (re)built from a snapshot (the legend follows).
   */
  constructor(root, { onActivate, onGaHold, announce, maxQuantity, onBuild }) {
    this.root = root;
    this.onBuild = onBuild || null;
    this.onActivate = onActivate;
    this.onGaHold = onGaHold;
    this.announce = announce;
    this.maxQuantity = maxQuantity || (() => 8);
    this.sections = new Map();
    this.order = [];
    this.signature = null;
    this.categories = [];
    this.attributeLegend = null;
    this.filterSpec = null;
    this.filter = null;
    // The page's state for the tests and the console: `document.querySelector('.seat-map').seatMap`.
    root.seatMap = this;
    this.colors = palette();
    this.tooltip = h('div', {
      class: 'seat-tooltip',
      'data-testid': 'seat-tooltip',
      'aria-hidden': 'true',
      hidden: true,
    });
    document.body.appendChild(this.tooltip);
    this.resizeObserver = new ResizeObserver(() => this.scheduleLayout());
    this.resizeObserver.observe(root);
    this.scheme = matchMedia('(prefers-color-scheme: dark)');
    this.onScheme = () => {
      this.colors = palette();
      this.redrawAll();
    };
    this.scheme.addEventListener('change', this.onScheme);
    this.onScroll = () => this.hideTooltip();
    window.addEventListener('scroll', this.onScroll, { passive: true });
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.scheme.removeEventListener('change', this.onScheme);
    window.removeEventListener('scroll', this.onScroll);
    clearTimeout(this.tipTimer);
    this.tooltip.remove();
    cancelAnimationFrame(this.layoutFrame);
  }

  /** Show a seat-map snapshot (`GET /v1/events/{id}/seats`). */
  setData(map) {
    const signature = `${JSON.stringify(map.price_categories || [])}|${map.sections
      .map((s) => `${s.code}:${s.kind}:${s.rows || 0}x${s.seats_per_row || 0}:${JSON.stringify(s.seat_ranges || [])}`)
      .join('|')}`;
    if (signature !== this.signature) {
      this.build(map);
      this.signature = signature;
      this.compileFilter();
      this.applyFilter();
      if (this.onBuild) this.onBuild();
    }
    const dirty = [];
    for (const s of map.sections) {
      const sec = this.sections.get(s.code);
      sec.capacity = s.capacity;
      sec.available = s.available;
      sec.price = s.price_cents;
      if (sec.kind === 'reserved') {
        const text = s.status || '';
        const st = sec.status;
        // Unchanged since the last snapshot and no live change since: nothing to draw.
        if (text === sec.text && !sec.touched) continue;
        sec.text = text;
        sec.touched = false;
        for (let i = 0; i < st.length; i++) st[i] = STATUS_CODES[text[i]] ?? 0;
        this.recount(sec);
        dirty.push(sec);
      } else {
        this.renderAvailability(sec);
      }
    }
    if (this.layout()) this.redrawAll();
    else for (const sec of dirty) this.drawSection(sec);
  }

  recount(sec) {
    let a = 0;
    for (let i = 0; i < sec.status.length; i++) if (sec.status[i] === 0) a++;
    sec.available = a;
    this.renderAvailability(sec);
  }

  /** Totals over all sections: `{available, held, sold}`. */
  counts() {
    const c = { available: 0, held: 0, sold: 0, capacity: 0 };
    for (const sec of this.sections.values()) {
      c.capacity += sec.capacity;
      if (sec.kind === 'reserved') {
        for (let i = 0; i < sec.status.length; i++) c[STATUS_NAMES[sec.status[i]]]++;
      } else {
        c.available += sec.available;
        c.held += sec.capacity - sec.available; // held or sold: GA does not say which
      }
    }
    return c;
  }

  /**
   * Apply absolute seat statuses (`[{seat_id, status}]`) and GA availability
   * (`[{section, available}]`). Returns the ids of seats whose status changed.
   */
  applyChanges(seats = [], gaSections = []) {
    const changed = [];
    const touched = new Set();
    for (const { seat_id: id, status } of seats) {
      const loc = this.locate(id);
      if (!loc) continue;
      const code = STATUS_NAMES.indexOf(status);
      if (code < 0 || loc.sec.status[loc.i] === code) continue;
      const before = loc.sec.status[loc.i];
      loc.sec.status[loc.i] = code;
      loc.sec.touched = true; // differs from the snapshot text now
      if (before === 0) loc.sec.available--;
      if (code === 0) loc.sec.available++;
      this.drawSeat(loc.sec, loc.i);
      touched.add(loc.sec);
      changed.push(id);
    }
    for (const { section, available } of gaSections) {
      const sec = this.sections.get(section);
      if (sec && sec.kind === 'general_admission') {
        sec.available = available;
        touched.add(sec);
      }
    }
    for (const sec of touched) this.renderAvailability(sec);
    return changed;
  }

  /** `{sec, i, row, seat}` for a seat id of this map, or null. */
  locate(id) {
    const p = parseSeatId(id);
    if (!p) return null;
    const sec = this.sections.get(p.code);
    if (!sec || sec.kind !== 'reserved' || p.row > sec.rows || p.seat > sec.cols) return null;
    return { sec, i: (p.row - 1) * sec.cols + (p.seat - 1), row: p.row, seat: p.seat };
  }

  /** What the map knows about a seat (see `onActivate`), or null if it has no such seat. */
  info(id) {
    const loc = this.locate(id);
    return loc ? this.infoAt(loc.sec, loc.i) : null;
  }

  infoAt(sec, i) {
    const row = Math.floor(i / sec.cols) + 1;
    const seat = (i % sec.cols) + 1;
    const a = sec.attrs[i];
    const cat = sec.cats[i] ? this.categories[sec.cats[i] - 1] : null;
    return {
      id: seatId(sec.code, row, seat),
      code: sec.code,
      name: sec.name,
      row,
      seat,
      status: STATUS_NAMES[sec.status[i]],
      selected: (sec.flags[i] & SELECTED) !== 0,
      mine: (sec.flags[i] & MINE) !== 0,
      price_cents: cat ? cat.price_cents : sec.price,
      /** Attribute names (`accessible`, `companion`, `restricted_view`, `aisle`). */
      attributes: ATTRIBUTES.filter((name) => a & ATTR_BITS[name]),
      /** A wheelchair space or a companion seat. */
      kept: (a & KEPT_FOR_ACCESS) !== 0,
      /** The seat's price category (`{code, name, price_cents}`), or null: the section's price. */
      category: cat,
      /** Whether the current filter shows the seat (true without a filter). */
      highlighted: !sec.match || sec.match[i] === 1,
    };
  }

  /** The price categories of the map (`price_categories`), in their order. */
  priceCategories() {
    return this.categories;
  }

  /** Which attributes any seat of the map has, and which price categories are used (indices). */
  present() {
    let attrs = 0;
    const cats = new Set();
    let sectionPrice = false;
    for (const sec of this.order) {
      if (sec.kind !== 'reserved') continue;
      attrs |= sec.attrMask;
      for (const c of sec.catsUsed) cats.add(c);
      if (sec.plainSeats > 0) sectionPrice = true;
    }
    return { attrs, cats, sectionPrice };
  }

  /**
   * Are these seats side by side: one row of one section, consecutive numbers, no aisle
   * between them (two neighbouring seats both marked aisle)? As the API checks a
   * wheelchair space with its companion seats.
   */
  together(ids) {
    const locs = [...ids].map((id) => this.locate(id));
    if (!locs.length || locs.some((l) => !l)) return false;
    const { sec, row } = locs[0];
    if (locs.some((l) => l.sec !== sec || l.row !== row)) return false;
    locs.sort((x, y) => x.i - y.i);
    for (let k = 1; k < locs.length; k++) {
      const prev = locs[k - 1].i;
      if (locs[k].i !== prev + 1) return false;
      if (sec.attrs[prev] & ATTR_BITS.aisle && sec.attrs[prev + 1] & ATTR_BITS.aisle) return false;
    }
    return true;
  }

  /**
   * The seats that taking `ids` would leave alone (as common/src/seating.rs `stranded_by`
   * defines it, on this map's statuses): a free seat next to a taken one, with no free
   * neighbour in its block after (row ends and aisles count as taken) but one before.
   * Wheelchair spaces and companion seats never count. For a warning before asking: the
   * queue decides on the seats as they are then.
   */
  stranded(ids) {
    const taking = new Map(); // section -> Set of indices
    for (const id of ids) {
      const loc = this.locate(id);
      if (!loc) continue;
      if (!taking.has(loc.sec)) taking.set(loc.sec, new Set());
      taking.get(loc.sec).add(loc.i);
    }
    const out = [];
    for (const [sec, take] of taking) {
      const { cols, attrs, status } = sec;
      const aisleBetween = (i, j) => attrs[i] & ATTR_BITS.aisle && attrs[j] & ATTR_BITS.aisle;
      const left = (i) => (i % cols > 0 && !aisleBetween(i - 1, i) ? i - 1 : -1);
      const right = (i) => (i % cols < cols - 1 && !aisleBetween(i, i + 1) ? i + 1 : -1);
      const freeBefore = (i) => i >= 0 && status[i] === 0;
      const freeAfter = (i) => freeBefore(i) && !take.has(i);
      const alone = (i, free) => free(i) && !free(left(i)) && !free(right(i));
      const found = new Set();
      for (const t of take) {
        for (const n of [left(t), right(t)]) {
          if (n < 0 || take.has(n) || found.has(n) || attrs[n] & KEPT_FOR_ACCESS) continue;
          if (alone(n, freeAfter) && !alone(n, freeBefore)) found.add(n);
        }
      }
      for (const i of [...found].sort((a, b) => a - b)) out.push(seatId(sec.code, Math.floor(i / cols) + 1, (i % cols) + 1));
    }
    return out;
  }

  /**
   * Highlight the seats a filter keeps and dim the others. `filter`: `{any: [attribute
   * names] (a seat with one of them; empty: any seat), none: [attribute names] (a seat with
   * none of them), categories: [category codes, '' for the section's own price] (empty: any
   * price)}`; null clears it. Returns `{highlighted, total}` over reserved seats.
   */
  setFilter(filter) {
    this.filterSpec = filter || null;
    this.compileFilter();
    const totals = this.applyFilter();
    this.redrawAll();
    return totals;
  }

  /** `this.filter` (bit masks, category flags by index) from `this.filterSpec`. */
  compileFilter() {
    const filter = this.filterSpec;
    const any = (filter?.any || []).reduce((m, name) => m | (ATTR_BITS[name] || 0), 0);
    const none = (filter?.none || []).reduce((m, name) => m | (ATTR_BITS[name] || 0), 0);
    const codes = filter?.categories || [];
    let cats = null;
    if (codes.length) {
      cats = new Uint8Array(this.categories.length + 1);
      for (const code of codes) {
        if (code === '') cats[0] = 1;
        const k = this.categories.findIndex((c) => c.code === code);
        if (k >= 0) cats[k + 1] = 1;
      }
    }
    this.filter = any || none || cats ? { any, none, cats } : null;
  }

  /** Work out `sec.match` for every reserved section from `this.filter` (no drawing). */
  applyFilter() {
    const f = this.filter;
    let highlighted = 0;
    let total = 0;
    for (const sec of this.order) {
      if (sec.kind !== 'reserved') continue;
      const n = sec.attrs.length;
      total += n;
      if (!f) {
        sec.match = null;
        highlighted += n;
        sec.canvas.dataset.highlighted = String(n);
        continue;
      }
      if (!sec.match || sec.match.length !== n) sec.match = new Uint8Array(n);
      const { attrs, cats, match } = sec;
      let count = 0;
      for (let i = 0; i < n; i++) {
        const a = attrs[i];
        const ok = (!f.any || (a & f.any) !== 0) && (a & f.none) === 0 && (!f.cats || f.cats[cats[i]] === 1);
        match[i] = ok ? 1 : 0;
        if (ok) count++;
      }
      sec.canvas.dataset.highlighted = String(count);
      highlighted += count;
    }
    this.root.dataset.highlighted = String(highlighted);
    this.root.dataset.filtered = String(!!f);
    return { highlighted, total };
  }

  section(code) {
    return this.sections.get(code);
  }

  /** Seats drawn as selected (ids); others lose the mark. */
  setSelected(ids) {
    this.setFlag(SELECTED, ids);
  }

  /** Seats drawn as yours (held by you). */
  setMine(ids) {
    this.setFlag(MINE, ids);
  }

  setFlag(flag, ids) {
    const want = new Set();
    for (const id of ids) {
      const loc = this.locate(id);
      if (loc) want.add(loc);
    }
    for (const sec of this.sections.values()) {
      if (sec.kind !== 'reserved') continue;
      for (const i of sec.flagged[flag]) {
        sec.flags[i] &= ~flag;
        this.drawSeat(sec, i);
      }
      sec.flagged[flag] = [];
    }
    for (const { sec, i } of want) {
      sec.flags[i] |= flag;
      sec.flagged[flag].push(i);
      this.drawSeat(sec, i);
    }
  }

  /** Enlarge the seat's section, put the keyboard cursor on it and focus the canvas. */
  focusSeat(id) {
    const loc = this.locate(id);
    if (!loc) return false;
    this.zoom(loc.sec, true);
    loc.sec.cursor = loc.i;
    loc.sec.canvas.focus({ preventScroll: true });
    this.showCursor(loc.sec);
    loc.sec.tile.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    return true;
  }

  // ----- building -----

  build(map) {
    this.sections.clear();
    this.order = [];
    this.categories = map.price_categories || [];
    this.attributeLegend = map.attribute_legend || null;
    const ga = map.sections.filter((s) => s.kind === 'general_admission');
    const reserved = map.sections.filter((s) => s.kind !== 'general_admission');
    const grid = [];
    // Stage (or field) first, then standing areas, then seated sections grouped by the
    // first word of their names ("Lower", "Upper") when that gives a few real groups.
    grid.push(h('div', { class: 'stage', 'aria-hidden': 'true' }, 'Stage'));
    this.tileHeading = 'h3';
    if (ga.length) {
      grid.push(h('div', { class: 'map-group ga-group' }, ga.map((s) => this.buildGa(s))));
    }
    const groups = new Map();
    for (const s of reserved) {
      const key = s.name.split(/\s+/)[0];
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(s);
    }
    const useGroups =
      groups.size >= 2 && groups.size <= 6 && [...groups.values()].every((g) => g.length >= 2);
    const list = useGroups ? [...groups.entries()] : [[null, reserved]];
    // Headings: the app's "Seat map" is an h2; group titles h3; tiles under them h4.
    this.tileHeading = useGroups ? 'h4' : 'h3';
    for (const [name, secs] of list) {
      grid.push(
        h(
          'div',
          { class: 'map-group', role: name ? 'group' : null, 'aria-label': name ? `${name} sections` : null },
          name ? h('h3', { class: 'group-title' }, `${name} · ${secs.length} sections`) : null,
          h(
            'div',
            { class: `map-grid${reserved.length <= 4 ? ' few' : ''}` },
            secs.map((s) => this.buildReserved(s)),
          ),
        ),
      );
    }
    fill(this.root, grid);
  }

  buildReserved(s) {
    const sec = {
      code: s.code,
      name: s.name,
      kind: 'reserved',
      price: s.price_cents,
      rows: s.rows,
      cols: s.seats_per_row,
      capacity: s.capacity,
      available: s.available,
      status: new Uint8Array(s.rows * s.seats_per_row),
      flags: new Uint8Array(s.rows * s.seats_per_row),
      match: null,
      flagged: { [SELECTED]: [], [MINE]: [] },
      zoomed: false,
      cursor: 0,
      P: 0,
      dpr: 1,
    };
    this.expandRanges(sec, s.seat_ranges || []);
    sec.availEl = h('span', { class: 'avail', 'data-testid': `section-available-${s.code}` });
    sec.zoomBtn = h(
      'button',
      {
        type: 'button',
        class: 'zoom',
        'data-testid': `zoom-${s.code}`,
        'aria-pressed': 'false',
        'aria-label': `Enlarge section ${s.code}`,
        on: { click: () => this.zoom(sec, !sec.zoomed) },
      },
      'Enlarge',
    );
    sec.canvas = h('canvas', {
      tabindex: '0',
      role: 'application',
      'aria-roledescription': 'seat map',
      'aria-label': `Section ${s.code}, ${s.name}, ${this.priceText(sec)} a seat: ${s.rows} rows of ${s.seats_per_row} seats, row 1 nearest the stage. Arrow keys move between seats, Enter selects.`,
      'data-testid': `seat-canvas-${s.code}`,
      'data-section': s.code,
      'data-rows': s.rows,
      'data-cols': s.seats_per_row,
    });
    sec.cursorEl = h('div', { class: 'seat-cursor', hidden: true });
    sec.wrap = h('div', { class: 'canvas-wrap' }, sec.canvas, sec.cursorEl);
    sec.tile = h(
      'section',
      { class: 'tile', 'data-testid': `section-${s.code}`, 'data-section': s.code },
      h(
        'header',
        { class: 'tile-head' },
        h(this.tileHeading, { class: 'tile-title' }, h('span', { class: 'code' }, s.code), ' ', h('span', { class: 'name' }, s.name)),
        h('span', { class: 'price' }, this.priceText(sec)),
        sec.availEl,
        sec.zoomBtn,
      ),
      sec.wrap,
    );
    sec.ctx = sec.canvas.getContext('2d', { alpha: true });
    this.bindCanvas(sec);
    this.sections.set(s.code, sec);
    this.order.push(sec);
    return sec.tile;
  }

  /**
   * One attribute byte and one category index (0: the section's price, k: category k-1)
   * per seat, from the section's ranges: attributes are the union of the ranges covering a
   * seat, the category that of the last covering range naming one. Also what the section
   * has (`attrMask`, `catsUsed`, `plainSeats`) and its seats with a mark to draw (`marked`).
   */
  expandRanges(sec, ranges) {
    const n = sec.rows * sec.cols;
    sec.attrs = new Uint8Array(n);
    sec.cats = new Uint8Array(n);
    const index = new Map(this.categories.map((c, k) => [c.code, k + 1]));
    for (const r of ranges) {
      const bits = (r.attributes || []).reduce((m, name) => m | (ATTR_BITS[name] || 0), 0);
      const cat = r.price_category ? index.get(r.price_category) || 0 : 0;
      const [r0, r1] = [Math.max(1, r.rows[0]), Math.min(sec.rows, r.rows[1])];
      const [c0, c1] = [Math.max(1, r.seats[0]), Math.min(sec.cols, r.seats[1])];
      for (let row = r0; row <= r1; row++) {
        const base = (row - 1) * sec.cols - 1;
        for (let c = c0; c <= c1; c++) {
          if (bits) sec.attrs[base + c] |= bits;
          if (cat) sec.cats[base + c] = cat;
        }
      }
    }
    let mask = 0;
    let plain = 0;
    const used = new Set();
    const marked = [];
    for (let i = 0; i < n; i++) {
      const a = sec.attrs[i];
      if (a) {
        mask |= a;
        marked.push(i);
      }
      if (sec.cats[i]) used.add(sec.cats[i] - 1);
      else plain++;
    }
    sec.attrMask = mask;
    sec.catsUsed = used;
    sec.plainSeats = plain;
    sec.marked = Int32Array.from(marked);
  }

  /** The section's price, or its range of prices when seat ranges set other prices. */
  priceText(sec) {
    if (!sec.catsUsed || !sec.catsUsed.size) return money(sec.price);
    const prices = [...sec.catsUsed].map((k) => this.categories[k].price_cents);
    if (sec.plainSeats) prices.push(sec.price);
    const lo = Math.min(...prices);
    const hi = Math.max(...prices);
    return lo === hi ? money(lo) : `${money(lo)}–${money(hi)}`;
  }

  buildGa(s) {
    const sec = {
      code: s.code,
      name: s.name,
      kind: 'general_admission',
      price: s.price_cents,
      capacity: s.capacity,
      available: s.available,
    };
    sec.availEl = h('span', { class: 'avail', 'data-testid': `section-available-${s.code}` });
    sec.meter = h('meter', { min: '0', max: String(s.capacity), value: String(s.available), 'aria-hidden': 'true' });
    const qtyId = `ga-qty-${s.code}`;
    sec.qty = h('select', { id: qtyId, 'data-testid': `ga-quantity-${s.code}` });
    this.fillQuantity(sec.qty);
    sec.holdBtn = h(
      'button',
      {
        type: 'button',
        class: 'primary',
        'data-testid': `ga-hold-${s.code}`,
        on: { click: () => this.onGaHold(s.code, Number(sec.qty.value)) },
      },
      'Get places',
    );
    sec.tile = h(
      'section',
      { class: 'tile ga', 'data-testid': `section-${s.code}`, 'data-section': s.code },
      h(
        'header',
        { class: 'tile-head' },
        h(this.tileHeading, { class: 'tile-title' }, h('span', { class: 'code' }, s.code), ' ', h('span', { class: 'name' }, s.name)),
        h('span', { class: 'price' }, money(s.price_cents)),
        sec.availEl,
      ),
      h(
        'div',
        { class: 'ga-body' },
        sec.meter,
        h('p', { class: 'hint' }, 'Standing: no seat numbers, first come first in.'),
        h(
          'div',
          { class: 'inline-form' },
          h('label', { for: qtyId }, 'Places'),
          sec.qty,
          sec.holdBtn,
        ),
      ),
    );
    this.sections.set(s.code, sec);
    this.order.push(sec);
    return sec.tile;
  }

  fillQuantity(select) {
    const max = Math.max(1, this.maxQuantity());
    const keep = Number(select.value) || 2;
    fill(
      select,
      Array.from({ length: max }, (_, k) => h('option', { value: String(k + 1) }, String(k + 1))),
    );
    select.value = String(Math.min(keep, max));
  }

  renderAvailability(sec) {
    if (sec.kind === 'reserved') {
      sec.availEl.textContent = `${sec.available.toLocaleString()} left`;
    } else {
      sec.availEl.textContent = `${sec.available.toLocaleString()} of ${sec.capacity.toLocaleString()} places left`;
      sec.meter.value = sec.available;
      sec.meter.max = sec.capacity;
      sec.holdBtn.disabled = sec.available < 1 || this.disabled;
    }
    sec.tile.classList.toggle('sold-out', sec.available < 1);
  }

  /** Turn the GA buttons off (not on sale, not signed in is handled by the app). */
  setDisabled(disabled) {
    this.disabled = disabled;
    for (const sec of this.sections.values()) {
      if (sec.kind !== 'reserved') sec.holdBtn.disabled = disabled || sec.available < 1;
    }
  }

  // ----- geometry and drawing -----

  scheduleLayout() {
    cancelAnimationFrame(this.layoutFrame);
    this.layoutFrame = requestAnimationFrame(() => {
      if (this.layout()) this.redrawAll();
    });
  }

  /** Size every canvas to its tile; returns whether any size changed. */
  layout() {
    const dpr = Math.max(1, Math.round((window.devicePixelRatio || 1) * 2) / 2);
    let changed = false;
    const reserved = [...this.sections.values()].filter((sec) => sec.kind === 'reserved');
    // Read every width first, then resize: interleaving would force a layout per section.
    const widths = reserved.map((sec) => Math.max(0, sec.wrap.clientWidth - 8) || 240);
    for (const [k, sec] of reserved.entries()) {
      const width = widths[k];
      // Pitch in device pixels: whole pixels so seats stay crisp.
      let P = Math.floor((width * dpr) / sec.cols);
      if (sec.zoomed) P = Math.min(Math.max(P, Math.round(14 * dpr)), Math.round(26 * dpr));
      else P = Math.min(Math.max(P, 2), Math.round(16 * dpr));
      if (P !== sec.P || dpr !== sec.dpr) {
        sec.P = P;
        sec.dpr = dpr;
        sec.canvas.width = sec.cols * P;
        sec.canvas.height = sec.rows * P;
        sec.canvas.style.width = `${(sec.cols * P) / dpr}px`;
        sec.canvas.style.height = `${(sec.rows * P) / dpr}px`;
        sec.canvas.dataset.pitch = String(P / dpr);
        changed = true;
      }
    }
    return changed;
  }

  redrawAll() {
    for (const sec of this.sections.values()) if (sec.kind === 'reserved') this.drawSection(sec);
  }

  seatColor(sec, i) {
    const f = sec.flags[i];
    if (f & SELECTED) return this.colors.selected;
    if (f & MINE) return this.colors.mine;
    if (sec.status[i] === 0 && sec.cats[i]) return this.colors.categories[(sec.cats[i] - 1) % CATEGORY_COLORS];
    return this.colors.status[sec.status[i]];
  }

  geometry(sec) {
    const P = sec.P;
    const gap = P >= 6 ? Math.max(1, Math.round(P * 0.18)) : P >= 3 ? 1 : 0;
    return { P, S: P - gap, o: Math.floor(gap / 2) };
  }

  /** The whole section in one pass over a pixel buffer (50,000 seats in a few ms). */
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
    const { pixels, catPixels, fadedPixels, fadedCatPixels } = this.colors;
    px.fill(0);
    const { cols, status, flags, cats, match } = sec;
    const n = status.length;
    for (let i = 0; i < n; i++) {
      const f = flags[i];
      let color;
      if (f & SELECTED) color = pixels[3];
      else if (f & MINE) color = pixels[4];
      else {
        const st = status[i];
        const dim = match !== null && match[i] === 0;
        const c = cats[i];
        color =
          st === 0 && c
            ? (dim ? fadedCatPixels : catPixels)[(c - 1) % CATEGORY_COLORS]
            : (dim ? fadedPixels : pixels)[st];
      }
      const x0 = (i % cols) * P + o;
      let start = (Math.floor(i / cols) * P + o) * w + x0;
      for (let y = 0; y < S; y++, start += w) px.fill(color, start, start + S);
    }
    sec.ctx.putImageData(sec.image, 0, 0);
    for (const i of sec.marked) this.drawAttributes(sec, i);
    for (const i of sec.flagged[SELECTED]) this.drawMark(sec, i);
    for (const i of sec.flagged[MINE]) this.drawMark(sec, i);
    if (sec.cursorShown) this.showCursor(sec);
  }

  drawSeat(sec, i) {
    if (!sec.P) return;
    const { P, S, o } = this.geometry(sec);
    const x = (i % sec.cols) * P;
    const y = Math.floor(i / sec.cols) * P;
    sec.ctx.clearRect(x, y, P, P);
    const dim = sec.match !== null && sec.match[i] === 0 && !sec.flags[i];
    sec.ctx.globalAlpha = dim ? 0x38 / 255 : 1;
    sec.ctx.fillStyle = this.seatColor(sec, i);
    sec.ctx.fillRect(x + o, y + o, S, S);
    sec.ctx.globalAlpha = 1;
    if (sec.attrs[i] && this.attributeMarks) this.drawAttributes(sec, i);
    this.drawMark(sec, i);
  }

  /**
   * Whether seats get their attribute marks: a map that draws its sections itself (the
   * control room's heat map) does not, unless it says so, so one seat redrawn on a live
   * change looks like the rest.
   */
  get attributeMarks() {
    return this.drawSection === SeatMap.prototype.drawSection;
  }

  /**
   * A seat's attribute marks over its square: a diagonal hatch for a restricted view, the
   * wheelchair symbol (a ring when small) for a wheelchair space, a corner for a companion
   * seat, and a bar on the side of an aisle (between two neighbouring aisle seats).
   */
  drawAttributes(sec, i) {
    const a = sec.attrs[i];
    const { P, S, o } = this.geometry(sec);
    if (S < 4) return;
    const ctx = sec.ctx;
    const x = (i % sec.cols) * P + o;
    const y = Math.floor(i / sec.cols) * P + o;
    const dim = sec.match !== null && sec.match[i] === 0 && !sec.flags[i];
    ctx.save();
    ctx.globalAlpha = dim ? 0.35 : 1;
    if (a & ATTR_BITS.restricted_view) {
      ctx.strokeStyle = this.colors.hatch;
      ctx.lineWidth = Math.max(1, S / 8);
      ctx.beginPath();
      ctx.moveTo(x, y + S);
      ctx.lineTo(x + S, y);
      if (S >= 10) {
        ctx.moveTo(x, y + S / 2);
        ctx.lineTo(x + S / 2, y);
        ctx.moveTo(x + S / 2, y + S);
        ctx.lineTo(x + S, y + S / 2);
      }
      ctx.stroke();
    }
    if (a & ATTR_BITS.accessible) {
      ctx.fillStyle = this.colors.mark;
      ctx.strokeStyle = this.colors.mark;
      if (S >= 13 && !(sec.flags[i] & SELECTED)) {
        ctx.font = `${Math.round(S * 0.8)}px system-ui, sans-serif`;
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText('\u267f', x + S / 2, y + S / 2 + 1);
      } else {
        ctx.lineWidth = Math.max(1, Math.round(S / 7));
        ctx.beginPath();
        ctx.arc(x + S / 2, y + S / 2, Math.max(1, S * 0.32), 0, Math.PI * 2);
        ctx.stroke();
      }
    }
    if (a & ATTR_BITS.companion) {
      const t = Math.max(2, Math.round(S * 0.45));
      ctx.fillStyle = this.colors.mark;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + t, y);
      ctx.lineTo(x, y + t);
      ctx.closePath();
      ctx.fill();
    }
    if (a & ATTR_BITS.aisle) {
      const col = i % sec.cols;
      const left = col > 0 && sec.attrs[i - 1] & ATTR_BITS.aisle;
      const right = col < sec.cols - 1 && sec.attrs[i + 1] & ATTR_BITS.aisle;
      const w = Math.max(1, Math.round(S / 6));
      ctx.fillStyle = this.colors.aisle;
      if (right || (!left && col === sec.cols - 1)) ctx.fillRect(x + S - w, y, w, S);
      if (left || (!right && col !== sec.cols - 1)) ctx.fillRect(x, y, w, S);
    }
    ctx.restore();
  }

  /** A white centre on selected and own seats, so they differ by more than colour. */
  drawMark(sec, i) {
    if (!sec.flags[i]) return;
    const { P, S, o } = this.geometry(sec);
    if (S < 5) return;
    const m = Math.max(1, Math.round(S / 3));
    const x = (i % sec.cols) * P + o;
    const y = Math.floor(i / sec.cols) * P + o;
    sec.ctx.fillStyle = this.colors.mark;
    if (sec.flags[i] & SELECTED) sec.ctx.fillRect(x + m, y + m, S - 2 * m, S - 2 * m);
    else sec.ctx.fillRect(x + m, y + Math.round(S / 2) - 1, S - 2 * m, Math.max(1, Math.round(S / 6)));
  }

  // ----- interaction -----

  zoom(sec, on) {
    if (on) {
      for (const other of this.sections.values()) {
        if (other !== sec && other.zoomed) this.zoom(other, false);
      }
    }
    sec.zoomed = on;
    sec.tile.classList.toggle('zoomed', on);
    sec.zoomBtn.setAttribute('aria-pressed', String(on));
    sec.zoomBtn.textContent = on ? 'Shrink' : 'Enlarge';
    sec.zoomBtn.setAttribute('aria-label', `${on ? 'Shrink' : 'Enlarge'} section ${sec.code}`);
    if (this.layout()) this.redrawAll();
    if (on) sec.tile.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  hit(sec, ev) {
    const rect = sec.canvas.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) * sec.canvas.width) / rect.width;
    const y = ((ev.clientY - rect.top) * sec.canvas.height) / rect.height;
    const c = Math.floor(x / sec.P);
    const r = Math.floor(y / sec.P);
    if (c < 0 || r < 0 || c >= sec.cols || r >= sec.rows) return -1;
    return r * sec.cols + c;
  }

  bindCanvas(sec) {
    const canvas = sec.canvas;
    canvas.addEventListener('pointermove', (ev) => {
      const i = this.hit(sec, ev);
      if (i < 0) {
        this.hideTooltip();
        return;
      }
      this.showTooltip(sec, i, ev.clientX, ev.clientY);
    });
    canvas.addEventListener('pointerleave', () => this.hideTooltip());
    canvas.addEventListener('click', (ev) => {
      const i = this.hit(sec, ev);
      if (i < 0) return;
      const pitch = sec.P / sec.dpr;
      const aimable = pitch >= (this.lastPointer === 'touch' ? 14 : 9);
      sec.cursor = i;
      if (!aimable && !sec.zoomed) {
        this.zoom(sec, true);
        this.announce(`Section ${sec.code} enlarged. Now pick your seat.`);
        this.showCursor(sec);
        return;
      }
      this.showCursor(sec);
      this.onActivate(this.infoAt(sec, i));
      this.showTooltip(sec, i, ev.clientX, ev.clientY);
      // No hover on touch screens: the tip shows what was tapped, then goes.
      clearTimeout(this.tipTimer);
      if (this.lastPointer === 'touch') this.tipTimer = setTimeout(() => this.hideTooltip(), 1800);
    });
    canvas.addEventListener('pointerdown', (ev) => {
      this.lastPointer = ev.pointerType;
    });
    canvas.addEventListener('focus', () => {
      this.showCursor(sec);
      this.announce(this.describe(sec, sec.cursor));
    });
    canvas.addEventListener('blur', () => {
      sec.cursorShown = false;
      sec.cursorEl.hidden = true;
    });
    canvas.addEventListener('keydown', (ev) => {
      const { cols, rows } = sec;
      let r = Math.floor(sec.cursor / cols);
      let c = sec.cursor % cols;
      const step = ev.shiftKey ? 10 : 1;
      switch (ev.key) {
        case 'ArrowLeft':
          c = Math.max(0, c - step);
          break;
        case 'ArrowRight':
          c = Math.min(cols - 1, c + step);
          break;
        case 'ArrowUp':
          r = Math.max(0, r - step);
          break;
        case 'ArrowDown':
          r = Math.min(rows - 1, r + step);
          break;
        case 'Home':
          c = 0;
          break;
        case 'End':
          c = cols - 1;
          break;
        case 'PageUp':
          r = 0;
          break;
        case 'PageDown':
          r = rows - 1;
          break;
        case 'Enter':
        case ' ':
          ev.preventDefault();
          this.onActivate(this.infoAt(sec, sec.cursor));
          return;
        case 'Escape':
          if (sec.zoomed) {
            ev.preventDefault();
            this.zoom(sec, false);
          }
          return;
        default:
          return;
      }
      ev.preventDefault();
      sec.cursor = r * cols + c;
      this.showCursor(sec);
      this.announce(this.describe(sec, sec.cursor));
    });
  }

  describe(sec, i) {
    const info = this.infoAt(sec, i);
    const state = info.selected ? 'selected' : info.mine ? 'held by you' : info.status;
    const extra = this.extraText(info);
    return `${info.id}: row ${info.row}, seat ${info.seat}, ${state}, ${money(info.price_cents)}${extra ? `, ${extra}` : ''}`;
  }

  /** A seat's attributes and price category in words ("Wheelchair space, Premium"). */
  extraText(info) {
    const legend = this.attributeLegend || {};
    const words = info.attributes.map((name) => legend[name] || name.replace('_', ' '));
    if (info.category) words.push(info.category.name);
    return words.join(', ');
  }

  showCursor(sec) {
    if (!sec.P) return;
    const pitch = sec.P / sec.dpr;
    const size = Math.max(pitch, 10);
    const x = (sec.cursor % sec.cols) * pitch + pitch / 2 - size / 2;
    const y = Math.floor(sec.cursor / sec.cols) * pitch + pitch / 2 - size / 2;
    Object.assign(sec.cursorEl.style, {
      left: `${x + sec.canvas.offsetLeft}px`,
      top: `${y + sec.canvas.offsetTop}px`,
      width: `${size}px`,
      height: `${size}px`,
    });
    sec.cursorEl.hidden = false;
    sec.cursorShown = true;
    // Keep the cursor in view when the enlarged section scrolls sideways.
    const wrap = sec.wrap;
    if (x < wrap.scrollLeft) wrap.scrollLeft = x - 20;
    else if (x + size > wrap.scrollLeft + wrap.clientWidth) wrap.scrollLeft = x + size - wrap.clientWidth + 20;
  }

  showTooltip(sec, i, clientX, clientY) {
    const info = this.infoAt(sec, i);
    const state = info.selected ? 'selected' : info.mine ? 'held by you' : info.status;
    const tip = this.tooltip;
    fill(
      tip,
      h('strong', {}, info.id),
      h('span', {}, `Row ${info.row}, seat ${info.seat}`),
      h('span', {}, `${money(info.price_cents)} · ${state}`),
      info.attributes.length || info.category ? h('span', { class: 'tip-extra' }, this.extraText(info)) : null,
    );
    tip.dataset.attributes = info.attributes.join(' ');
    tip.dataset.seatId = info.id;
    tip.dataset.status = state;
    tip.hidden = false;
    const { offsetWidth: w, offsetHeight: hgt } = tip;
    let left = clientX + 14;
    let top = clientY + 14;
    if (left + w > window.innerWidth - 8) left = clientX - w - 14;
    if (top + hgt > window.innerHeight - 8) top = clientY - hgt - 14;
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${Math.max(4, top)}px`;
  }

  hideTooltip() {
    this.tooltip.hidden = true;
  }
}
