// What the organiser pages (admin-*.js) and the door's check-in page (checkin.js) share:
// the admin-only guard, the organiser tabs, the header links only organisers see, field
// checks with the API's own bounds (so a form refuses here what the API would refuse
// there), and the box that shows an API refusal's problem details (title, detail, code)
// next to the form that caused it. Kept apart so the buyer's pages never load any of it.

import { ApiError, currentSession } from '../api.js';
import { h, fill } from '../util.js';
import { promptLogin } from './session.js';

/** Whether the signed-in user may use the organiser pages (a token with role admin). */
export function isAdmin() {
  const s = currentSession();
  return Boolean(s && s.role === 'admin');
}

/** The header's organiser links, shown to admins only (index.html has them hidden). */
export function showAdminNav() {
  for (const a of document.querySelectorAll('[data-admin-nav]')) a.hidden = !isAdmin();
}

/** What an organiser page shows to anyone else; null for an admin. */
export function adminOnly(what) {
  if (isAdmin()) return null;
  const signedIn = Boolean(currentSession());
  return h(
    'div',
    { class: 'empty', 'data-testid': 'admin-only' },
    h(
      'p',
      {},
      signedIn
        ? `${what} is for organisers. Log out, then log in again with “Organiser” ticked.`
        : `${what} is for organisers: log in with “Organiser” ticked.`,
    ),
    signedIn
      ? null
      : h(
          'button',
          { type: 'button', class: 'primary', on: { click: () => promptLogin('Type a name, tick Organiser and press Log in.') } },
          'Log in',
        ),
  );
}

const TABS = [
  ['#/admin/venues', 'Venues'],
  ['#/admin/events', 'Events'],
  ['#/checkin', 'Check-in'],
];

/** The organiser pages' tabs (`current`: the hash of the page shown). */
export function adminTabs(current) {
  return h(
    'nav',
    { class: 'admin-tabs', 'aria-label': 'Organiser' },
    TABS.map(([href, label]) =>
      h('a', { href, 'aria-current': current === href ? 'page' : null, 'data-testid': `admin-tab-${label.toLowerCase()}` }, label),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Field checks, with the bounds of the API's request types (gateway/src/inventory.rs,
// holdbacks.rs, bookings.rs). Each returns an error text, or null when the value is good.

// Control characters as Rust's `char::is_control` sees them (Unicode Cc).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Text of `min` to `max` characters (code points) without control characters. */
export function checkText(label, value, min, max) {
  const n = [...value].length;
  if (CONTROL.test(value)) return `${label} must not contain control characters.`;
  if (n < min) return min === 1 ? `${label} is required.` : `${label} needs at least ${min} characters.`;
  if (n > max) return `${label} may have at most ${max} characters (it has ${n}).`;
  return null;
}

/** A whole number from an input, in [min, max]; `{value, error}`. Empty gives `fallback`. */
export function checkInt(label, raw, min, max, fallback = undefined) {
  const text = String(raw).trim();
  if (text === '') {
    if (fallback !== undefined) return { value: fallback, error: null };
    return { value: null, error: `${label} is required.` };
  }
  const n = Number(text);
  if (!Number.isInteger(n)) return { value: null, error: `${label} must be a whole number.` };
  if (n < min || n > max) {
    return { value: null, error: `${label} must be between ${min.toLocaleString()} and ${max.toLocaleString()}.` };
  }
  return { value: n, error: null };
}

/** A price typed in currency units ("12.50") as cents, 0 to 100,000,000 cents. */
export function checkPrice(label, raw) {
  const text = String(raw).trim();
  if (!/^\d+(\.\d{1,2})?$/.test(text)) return { value: null, error: `${label}: a price such as 25 or 12.50.` };
  const cents = Math.round(Number(text) * 100);
  if (cents > 100000000) return { value: null, error: `${label} may be at most 1,000,000.00.` };
  return { value: cents, error: null };
}

/** A `datetime-local` input's value as an RFC 3339 time (the browser's time zone). */
export function isoFromLocal(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** A time as a `datetime-local` value in the browser's time zone (minutes). */
export function localFromDate(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A form's field errors: `set(input, text)` shows `text` under the input (linked by
 * aria-describedby, the input marked aria-invalid), `clear()` removes them all, `focusFirst()`
 * puts the cursor on the first bad field.
 */
export class FieldErrors {
  constructor() {
    this.shown = [];
  }

  set(input, text) {
    if (!text) return;
    const id = `${input.id || 'field'}-error`;
    const el = h('p', { class: 'form-error field-error', id, 'data-testid': 'field-error', 'data-field': input.name || input.id }, text);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', id);
    (input.closest('.field') || input.parentElement).appendChild(el);
    this.shown.push([input, el]);
  }

  get any() {
    return this.shown.length > 0;
  }

  clear() {
    for (const [input, el] of this.shown) {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-describedby');
      el.remove();
    }
    this.shown = [];
  }

  focusFirst() {
    if (this.shown.length) this.shown[0][0].focus();
  }
}

/** A labelled input in a `.field` wrapper (the label above, errors below). */
export function field(label, input, hint = null) {
  const hintEl = hint ? h('p', { class: 'muted small', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

/**
 * The box beside a form for an API refusal: the problem document's title, detail and code
 * (`data-code`), announced as an alert. `show(err)` fills it, `clear()` hides it.
 */
export function problemBox(testid) {
  const el = h('div', { class: 'problem-box', role: 'alert', 'data-testid': testid, hidden: true });
  return {
    el,
    show(err) {
      const p = err instanceof ApiError ? err.problem || {} : {};
      const code = err instanceof ApiError ? err.code : 'error';
      const title = p.title || (err instanceof ApiError ? `The server refused (${err.status})` : 'Something went wrong');
      const detail = p.detail || (err && err.message) || String(err);
      el.dataset.code = code;
      fill(
        el,
        h('p', { class: 'problem-title', 'data-testid': `${testid}-title` }, h('strong', {}, title)),
        h('p', { class: 'problem-detail', 'data-testid': `${testid}-detail` }, detail),
        h('p', { class: 'muted small' }, 'Code: ', h('code', { 'data-testid': `${testid}-code` }, code)),
      );
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.removeAttribute('data-code');
      el.replaceChildren();
    },
  };
}
