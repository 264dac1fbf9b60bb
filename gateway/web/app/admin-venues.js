// #/admin/venues — an organiser's venues: the list (`GET /v1/admin/venues`, newest first,
// pages of 20) and the form that creates one (`POST /v1/admin/venues`): a name, a city and
// its sections, each reserved seating (rows × seats per row) or general admission (a
// capacity), with a price. The form checks what the API checks (inventory.rs `NewVenue`)
// before sending, and shows the API's problem when it refuses anyway. A venue is set up
// once and sold many times, so the page ends in "create an event here".
//
// Seating rules: the venue's price categories (a code, a name, a price) and, per reserved
// section, seat ranges — rows from–to × seats from–to with attributes (wheelchair space,
// companion seat, restricted view, aisle) and/or a price category.

import { api } from '../api.js';
import { h, fill, money } from '../util.js';
import { main, toast, isAbort, focusHeading, loading, failure } from './ui.js';
import { adminOnly, adminTabs, checkText, checkInt, checkPrice, FieldErrors, field, problemBox } from './admin-ui.js';

const MAX_SECTIONS = 500;
const MAX_RESERVED_SEATS = 200000;
const VENUES_PER_PAGE = 20;
const SECTION_CODE = /^[A-Za-z0-9_]{1,16}$/;
const MAX_PRICE_CATEGORIES = 100;
const MAX_SEAT_RANGES = 10000;
const RANGE_ATTRIBUTES = [
  ['accessible', 'Wheelchair space'],
  ['companion', 'Companion seat'],
  ['restricted_view', 'Restricted view'],
  ['aisle', 'Aisle'],
];

let nextSectionId = 1;
let nextCategoryId = 1;
let nextRangeId = 1;

/** #/admin/venues: the venues and the form for a new one. */
export function viewAdminVenues(scope) {
  document.title = 'Venues · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'Venues');
  const body = h('div', {});
  fill(main, h('div', { class: 'page admin-page' }, adminTabs('#/admin/venues'), heading, body));
  focusHeading(heading);
  const refused = adminOnly('Setting up venues');
  if (refused) {
    fill(body, refused);
    return;
  }
  const list = venueList(scope);
  fill(body, h('div', { class: 'admin-layout' }, venueForm(scope, list.load), list.el));
  list.load();
}

// ---------------------------------------------------------------------------------------
// The form.

function venueForm(scope, onCreated) {
  const errors = new FieldErrors();
  const problem = problemBox('venue-problem');
  const created = h('div', { 'data-testid': 'venue-created', hidden: true, class: 'notice', role: 'status' });
  const name = h('input', { id: 'venue-name', name: 'name', 'data-testid': 'venue-name', maxlength: '200', required: true, autocomplete: 'off' });
  const city = h('input', { id: 'venue-city', name: 'city', 'data-testid': 'venue-city', maxlength: '100', autocomplete: 'off' });
  const sectionsEl = h('div', { class: 'section-rows', 'data-testid': 'venue-sections' });
  const sectionsError = h('p', { class: 'form-error', 'data-testid': 'sections-error', hidden: true });
  const totals = h('p', { class: 'muted small', 'data-testid': 'venue-totals', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'venue-submit' }, 'Create venue');
  const addButton = h(
    'button',
    { type: 'button', 'data-testid': 'section-add', on: { click: () => addSection().code.focus() } },
    '+ Add a section',
  );
  const sections = [];
  const categories = [];
  const categoriesEl = h('div', { class: 'category-rows', 'data-testid': 'venue-categories' });
  const categoriesError = h('p', { class: 'form-error', 'data-testid': 'categories-error', hidden: true });
  const addCategoryButton = h(
    'button',
    { type: 'button', 'data-testid': 'category-add', on: { click: () => addCategory().code.focus() } },
    '+ Add a price category',
  );

  /** A price category row: code, name, price. */
  function addCategory() {
    const n = nextCategoryId++;
    const c = {
      code: h('input', { id: `cat-${n}-code`, name: 'category_code', 'data-testid': 'category-code', maxlength: '16', size: '8', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters' }),
      name: h('input', { id: `cat-${n}-name`, name: 'category_name', 'data-testid': 'category-name', maxlength: '100', autocomplete: 'off' }),
      price: h('input', { id: `cat-${n}-price`, name: 'category_price', 'data-testid': 'category-price', inputmode: 'decimal', placeholder: '0.00', size: '8' }),
    };
    const remove = h('button', { type: 'button', class: 'link-button', 'data-testid': 'category-remove' }, 'Remove');
    c.el = h(
      'div',
      { class: 'category-row', 'data-testid': 'category-row' },
      h('div', { class: 'field-grid' }, field('Code', c.code), field('Name', c.name), field('Price', c.price)),
      h('div', { class: 'actions' }, remove),
    );
    remove.addEventListener('click', () => {
      categories.splice(categories.indexOf(c), 1);
      c.el.remove();
      categoriesChanged();
      addCategoryButton.focus();
    });
    c.code.addEventListener('input', categoriesChanged);
    c.name.addEventListener('input', categoriesChanged);
    categories.push(c);
    categoriesEl.appendChild(c.el);
    categoriesChanged();
    return c;
  }

  /** Every range's category list follows the categories as typed. */
  function categoriesChanged() {
    addCategoryButton.disabled = categories.length >= MAX_PRICE_CATEGORIES;
    for (const s of sections) for (const r of s.ranges) fillCategories(r.category);
  }

  function fillCategories(select) {
    const keep = select.value;
    const codes = categories.map((c) => [c.code.value.trim(), c.name.value.trim()]).filter(([code]) => code);
    fill(
      select,
      h('option', { value: '' }, 'Section price'),
      codes.map(([code, name]) => h('option', { value: code }, name ? `${code} · ${name}` : code)),
    );
    // A category renamed away keeps its choice visible, to be refused with a reason.
    if (keep && !codes.some(([code]) => code === keep)) select.appendChild(h('option', { value: keep }, `${keep} (no such category)`));
    select.value = keep;
  }

  /** A seat range of section `s`: rows from–to, seats from–to, attributes, category. */
  function addRange(s) {
    const n = nextRangeId++;
    const num = (key, label) =>
      h('input', { id: `range-${n}-${key}`, name: `range_${key}`, 'data-testid': `range-${key}`, type: 'number', min: '1', max: '1000', step: '1', inputmode: 'numeric', 'aria-label': label, size: '4' });
    const r = {
      rowFrom: num('row-from', 'Rows from'),
      rowTo: num('row-to', 'Rows to'),
      seatFrom: num('seat-from', 'Seats from'),
      seatTo: num('seat-to', 'Seats to'),
      attrs: new Map(),
      category: h('select', { id: `range-${n}-category`, name: 'range_category', 'data-testid': 'range-category' }),
    };
    fillCategories(r.category);
    const boxes = RANGE_ATTRIBUTES.map(([name, label]) => {
      const box = h('input', { type: 'checkbox', id: `range-${n}-${name}`, 'data-testid': `range-attr-${name}` });
      r.attrs.set(name, box);
      return h('label', { class: 'check', for: box.id }, box, ` ${label}`);
    });
    const remove = h('button', { type: 'button', class: 'link-button range-remove', 'data-testid': 'range-remove' }, 'Remove range');
    r.el = h(
      'div',
      { class: 'range-row', 'data-testid': 'range-row' },
      h(
        'div',
        { class: 'field-grid range-grid' },
        h('div', { class: 'field' }, h('label', { for: r.rowFrom.id }, 'Rows'), h('span', { class: 'from-to' }, r.rowFrom, '–', r.rowTo)),
        h('div', { class: 'field' }, h('label', { for: r.seatFrom.id }, 'Seats'), h('span', { class: 'from-to' }, r.seatFrom, '–', r.seatTo)),
        field('Price', r.category),
      ),
      h('div', { class: 'range-attrs' }, h('span', { role: 'group', 'aria-label': 'Seat attributes', class: 'range-boxes' }, boxes), remove),
    );
    remove.addEventListener('click', () => {
      s.ranges.splice(s.ranges.indexOf(r), 1);
      r.el.remove();
      s.rangeAdd.focus();
    });
    s.ranges.push(r);
    s.rangesEl.appendChild(r.el);
    return r;
  }

  function addSection(kind = 'reserved') {
    const n = nextSectionId++;
    const input = (key, attrs = {}) =>
      h('input', { id: `sec-${n}-${key}`, name: key, 'data-testid': `section-${key}`, autocomplete: 'off', ...attrs });
    const s = {
      kind: h(
        'select',
        { id: `sec-${n}-kind`, name: 'kind', 'data-testid': 'section-kind' },
        h('option', { value: 'reserved' }, 'Reserved seats'),
        h('option', { value: 'general_admission' }, 'Standing (general admission)'),
      ),
      code: input('code', { maxlength: '16', spellcheck: 'false', autocapitalize: 'characters', size: '8' }),
      name: input('name', { maxlength: '100' }),
      rows: input('rows', { type: 'number', min: '1', max: '1000', step: '1', inputmode: 'numeric' }),
      seats: input('seats', { type: 'number', min: '1', max: '1000', step: '1', inputmode: 'numeric' }),
      capacity: input('capacity', { type: 'number', min: '1', max: '1000000', step: '1', inputmode: 'numeric' }),
      price: input('price', { inputmode: 'decimal', placeholder: '0.00', size: '8' }),
    };
    s.kind.value = kind;
    const reservedFields = h('div', { class: 'field-pair' }, field('Rows', s.rows), field('Seats per row', s.seats));
    s.ranges = [];
    s.rangesEl = h('div', { class: 'range-rows', 'data-testid': 'section-ranges' });
    s.rangeAdd = h(
      'button',
      { type: 'button', class: 'small-button', 'data-testid': 'range-add', on: { click: () => addRange(s).rowFrom.focus() } },
      '+ Add a seat range',
    );
    const rangesBlock = h(
      'div',
      { class: 'ranges-block' },
      h('p', { class: 'muted small' }, 'Seat ranges: wheelchair spaces, companion seats, restricted views, aisles and price categories by rows × seats (1-based, inclusive). A seat has every attribute of its ranges and the price of the last one naming a category.'),
      s.rangesEl,
      s.rangeAdd,
    );
    const gaFields = h('div', { class: 'field-pair' }, field('Capacity', s.capacity));
    const remove = h('button', { type: 'button', class: 'link-button', 'data-testid': 'section-remove' }, 'Remove');
    s.el = h(
      'fieldset',
      { class: 'section-row', 'data-testid': 'section-row' },
      h('legend', {}, `Section ${sections.length + 1}`),
      h('div', { class: 'field-grid' }, field('Kind', s.kind), field('Code', s.code), field('Name', s.name), reservedFields, gaFields, field('Price', s.price)),
      rangesBlock,
      h('div', { class: 'actions' }, remove),
    );
    const showKind = () => {
      const reserved = s.kind.value === 'reserved';
      reservedFields.hidden = !reserved;
      rangesBlock.hidden = !reserved;
      gaFields.hidden = reserved;
      renderTotals();
    };
    s.kind.addEventListener('change', showKind);
    for (const el of [s.rows, s.seats, s.capacity]) el.addEventListener('input', renderTotals);
    remove.addEventListener('click', () => {
      if (sections.length === 1) {
        toast('A venue has at least one section.', { kind: 'warn' });
        return;
      }
      sections.splice(sections.indexOf(s), 1);
      s.el.remove();
      renumber();
      (sections[0] && sections[0].code).focus();
    });
    sections.push(s);
    sectionsEl.appendChild(s.el);
    showKind();
    renumber();
    return s;
  }

  function renumber() {
    sections.forEach((s, i) => {
      s.el.querySelector('legend').textContent = `Section ${i + 1}`;
    });
    addButton.disabled = sections.length >= MAX_SECTIONS;
    renderTotals();
  }

  function renderTotals() {
    let seats = 0;
    let standing = 0;
    for (const s of sections) {
      if (s.kind.value === 'reserved') seats += (Number(s.rows.value) || 0) * (Number(s.seats.value) || 0);
      else standing += Number(s.capacity.value) || 0;
    }
    totals.textContent = `${sections.length} section${sections.length === 1 ? '' : 's'} · ${seats.toLocaleString()} reserved seat${
      seats === 1 ? '' : 's'
    } · ${standing.toLocaleString()} standing place${standing === 1 ? '' : 's'}`;
  }

  /** The request body, or null after showing what is wrong (the API's own rules). */
  function collect() {
    errors.clear();
    sectionsError.hidden = true;
    errors.set(name, checkText('Name', name.value.trim(), 1, 200));
    errors.set(city, checkText('City', city.value.trim(), 0, 100));
    categoriesError.hidden = true;
    const cats = [];
    const catCodes = new Set();
    for (const c of categories) {
      const code = c.code.value.trim();
      if (!SECTION_CODE.test(code)) errors.set(c.code, 'Code: 1 to 16 letters, digits or _.');
      else if (catCodes.has(code)) errors.set(c.code, `Category ${code} is listed twice.`);
      catCodes.add(code);
      const catName = c.name.value.trim();
      errors.set(c.name, checkText('Name', catName, 1, 100));
      const price = checkPrice('Price', c.price.value);
      errors.set(c.price, price.error);
      cats.push({ code, name: catName, price_cents: price.value });
    }
    if (categories.length > MAX_PRICE_CATEGORIES) {
      categoriesError.textContent = `A venue has at most ${MAX_PRICE_CATEGORIES} price categories.`;
      categoriesError.hidden = false;
    }
    let rangeCount = 0;
    const seen = new Set();
    let reservedSeats = 0;
    const out = [];
    for (const s of sections) {
      const code = s.code.value.trim();
      if (!SECTION_CODE.test(code)) errors.set(s.code, 'Code: 1 to 16 letters, digits or _.');
      else if (seen.has(code)) errors.set(s.code, `Code ${code} is used by another section.`);
      seen.add(code);
      const secName = s.name.value.trim();
      errors.set(s.name, checkText('Name', secName, 1, 100));
      const price = checkPrice('Price', s.price.value);
      errors.set(s.price, price.error);
      if (s.kind.value === 'reserved') {
        const rows = checkInt('Rows', s.rows.value, 1, 1000);
        const seats = checkInt('Seats per row', s.seats.value, 1, 1000);
        errors.set(s.rows, rows.error);
        errors.set(s.seats, seats.error);
        if (rows.value && seats.value) reservedSeats += rows.value * seats.value;
        const seatRanges = s.ranges.map((r) => collectRange(r, rows.value, seats.value, catCodes));
        rangeCount += seatRanges.length;
        const sec = { kind: 'reserved', code, name: secName, rows: rows.value, seats_per_row: seats.value, price_cents: price.value };
        if (seatRanges.length) sec.seat_ranges = seatRanges;
        out.push(sec);
      } else {
        const capacity = checkInt('Capacity', s.capacity.value, 1, 1000000);
        errors.set(s.capacity, capacity.error);
        out.push({ kind: 'general_admission', code, name: secName, capacity: capacity.value, price_cents: price.value });
      }
    }
    let bad = errors.any || !categoriesError.hidden;
    if (rangeCount > MAX_SEAT_RANGES) {
      sectionsError.textContent = `A venue has at most ${MAX_SEAT_RANGES.toLocaleString()} seat ranges; these sections have ${rangeCount.toLocaleString()}.`;
      sectionsError.hidden = false;
      bad = true;
    }
    if (reservedSeats > MAX_RESERVED_SEATS) {
      sectionsError.textContent = `A venue has at most ${MAX_RESERVED_SEATS.toLocaleString()} reserved seats; these sections have ${reservedSeats.toLocaleString()}.`;
      sectionsError.hidden = false;
      bad = true;
    }
    if (!sections.length || sections.length > MAX_SECTIONS) {
      sectionsError.textContent = `A venue has 1 to ${MAX_SECTIONS} sections.`;
      sectionsError.hidden = false;
      bad = true;
    }
    if (bad) {
      errors.focusFirst();
      return null;
    }
    const body = { name: name.value.trim(), city: city.value.trim(), sections: out };
    if (cats.length) body.price_categories = cats;
    return body;
  }

  /** A range as the API takes it, after checking it lies in its section (`rows` × `seats`). */
  function collectRange(r, rows, seats, catCodes) {
    const bound = (input, label, max) => {
      const v = checkInt(label, input.value, 1, max || 1000);
      errors.set(input, v.error);
      return v.value;
    };
    const rowFrom = bound(r.rowFrom, 'Rows from', rows);
    const rowTo = bound(r.rowTo, 'Rows to', rows);
    const seatFrom = bound(r.seatFrom, 'Seats from', seats);
    const seatTo = bound(r.seatTo, 'Seats to', seats);
    if (rowFrom && rowTo && rowFrom > rowTo) errors.set(r.rowTo, 'Rows: the first row comes before the last.');
    if (seatFrom && seatTo && seatFrom > seatTo) errors.set(r.seatTo, 'Seats: the first seat comes before the last.');
    const range = { rows: [rowFrom, rowTo], seats: [seatFrom, seatTo] };
    const attributes = [...r.attrs.entries()].filter(([, box]) => box.checked).map(([attr]) => attr);
    if (attributes.length) range.attributes = attributes;
    const category = r.category.value;
    if (category) {
      if (!catCodes.has(category)) errors.set(r.category, `There is no price category ${category}.`);
      range.price_category = category;
    }
    return range;
  }

  async function onSubmit(e) {
    e.preventDefault();
    problem.clear();
    created.hidden = true;
    const body = collect();
    if (!body) return;
    submit.disabled = true;
    try {
      const r = await api('POST', '/v1/admin/venues', { body, signal: scope.signal });
      if (!scope.alive) return;
      const v = r.data;
      created.dataset.venueId = v.id;
      fill(
        created,
        h(
          'p',
          {},
          h('strong', {}, `${v.name} is ready`),
          ` — ${v.reserved_seats.toLocaleString()} reserved seats in ${v.sections.length} section${v.sections.length === 1 ? '' : 's'}${rangesSummary(v)}.`,
        ),
        h('p', {}, h('a', { href: `#/admin/events?venue=${v.id}`, 'data-testid': 'venue-new-event' }, 'Create an event at this venue →')),
      );
      created.hidden = false;
      created.scrollIntoView({ block: 'nearest' });
      toast(`Venue ${v.name} created.`, { kind: 'success', timeout: 4000 });
      name.value = '';
      city.value = '';
      for (const s of sections.splice(0)) s.el.remove();
      for (const c of categories.splice(0)) c.el.remove();
      addSection();
      categoriesChanged();
      onCreated();
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      problem.show(err);
    } finally {
      submit.disabled = false;
    }
  }

  addSection();
  return h(
    'form',
    { class: 'panel admin-form', 'data-testid': 'venue-form', 'aria-labelledby': 'venue-form-title', novalidate: true, on: { submit: onSubmit } },
    h('h2', { id: 'venue-form-title' }, 'New venue'),
    h('div', { class: 'field-grid' }, field('Name', name), field('City', city)),
    h('h3', {}, 'Sections'),
    h('p', { class: 'muted small' }, 'Reserved: every seat numbered section-row-seat (A-3-12). Standing: a number of places. Prices are per seat or place.'),
    sectionsEl,
    sectionsError,
    h('div', { class: 'actions' }, addButton),
    h('h3', {}, 'Price categories'),
    h('p', { class: 'muted small' }, 'Optional: prices that seat ranges can name instead of their section’s (e.g. P1 Premium 120.00 for the front rows).'),
    categoriesEl,
    categoriesError,
    h('div', { class: 'actions' }, addCategoryButton),
    totals,
    problem.el,
    h('div', { class: 'actions' }, submit),
    created,
  );
}

// ---------------------------------------------------------------------------------------
// The list.

function venueList(scope) {
  let page = 1;
  const items = h('ul', { class: 'admin-list', 'data-testid': 'venue-list' });
  const summary = h('p', { class: 'muted', 'data-testid': 'venues-summary', role: 'status' });
  const prev = h('button', { type: 'button', 'data-testid': 'venues-prev' }, '← Previous');
  const next = h('button', { type: 'button', 'data-testid': 'venues-next' }, 'Next →');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Venue pages', hidden: true }, prev, next);
  const el = h('section', { class: 'admin-side', 'aria-labelledby': 'venue-list-title' }, h('h2', { id: 'venue-list-title' }, 'Your venues'), summary, items, pager);

  async function load() {
    fill(items, loading());
    try {
      const r = await api('GET', `/v1/admin/venues?page=${page}&per_page=${VENUES_PER_PAGE}`, { signal: scope.signal });
      if (!scope.alive) return;
      const { venues, total } = r.data;
      const pages = Math.max(1, Math.ceil(total / VENUES_PER_PAGE));
      summary.textContent = `${total} venue${total === 1 ? '' : 's'}`;
      fill(items, venues.length ? venues.map(venueItem) : h('li', { class: 'empty', 'data-testid': 'venues-empty' }, 'No venues yet: create the first one.'));
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
      pager.hidden = pages <= 1;
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(items, h('li', {}, failure(err, load)));
    }
  }
  prev.addEventListener('click', () => {
    page = Math.max(1, page - 1);
    load();
  });
  next.addEventListener('click', () => {
    page += 1;
    load();
  });
  return { el, load };
}

/** ", 2 price categories, 5 seat ranges" (empty without). */
function rangesSummary(v) {
  const cats = (v.price_categories || []).length;
  const ranges = v.sections.reduce((n, s) => n + (s.seat_ranges || []).length, 0);
  const parts = [];
  if (cats) parts.push(`${cats} price categor${cats === 1 ? 'y' : 'ies'}`);
  if (ranges) parts.push(`${ranges} seat range${ranges === 1 ? '' : 's'}`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

function venueItem(v) {
  const standing = v.sections.filter((s) => s.kind === 'general_admission').reduce((n, s) => n + s.capacity, 0);
  return h(
    'li',
    { class: 'admin-item', 'data-testid': 'venue-item', 'data-venue-id': v.id },
    h('h3', {}, v.name, v.city ? h('span', { class: 'muted' }, ` · ${v.city}`) : null),
    h('p', { class: 'muted small' }, `${v.reserved_seats.toLocaleString()} seats · ${standing.toLocaleString()} standing`),
    h(
      'p',
      { class: 'small' },
      v.sections.map((s, i) => [
        i ? ', ' : '',
        h('span', { class: 'code' }, s.code),
        ` ${s.kind === 'reserved' ? `${s.rows}×${s.seats_per_row}` : s.capacity.toLocaleString()} ${money(s.price_cents)}`,
      ]),
    ),
    (v.price_categories || []).length
      ? h(
          'p',
          { class: 'small', 'data-testid': 'venue-categories-list' },
          'Prices: ',
          v.price_categories.map((c, i) => [i ? ', ' : '', h('span', { class: 'code' }, c.code), ` ${c.name} ${money(c.price_cents)}`]),
        )
      : null,
    v.sections.some((s) => (s.seat_ranges || []).length)
      ? h('p', { class: 'muted small', 'data-testid': 'venue-ranges-summary' }, rangesSummary(v).slice(2))
      : null,
    h('a', { href: `#/admin/events?venue=${v.id}`, 'data-testid': 'venue-event-link' }, 'Create an event here'),
  );
}
