// Small helpers shared by the app's modules: building DOM nodes, formatting, timers.

/**
 * Create an element. `attrs` keys: `class`, `text`, `dataset` (object), `on` (object of
 * event listeners), `style` (string), any other key is set as an attribute (`false`/`null`
 * skip it, `true` sets it empty). Children may be nodes, strings, numbers, arrays or
 * null/false (skipped). Text is never parsed as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'on') {
      for (const [name, fn] of Object.entries(value)) el.addEventListener(name, fn);
    } else if (key === 'style') el.setAttribute('style', value);
    else if (key === 'value') el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let currency = 'USD';
const moneyFormats = new Map();

/** The currency prices are shown in (the payment provider's; the catalogue has none). */
export function setCurrency(code) {
  if (code) currency = code.toUpperCase();
}

export function money(cents, code = currency) {
  let fmt = moneyFormats.get(code);
  if (!fmt) {
    try {
      fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: code });
    } catch {
      fmt = { format: (v) => `${code} ${v.toFixed(2)}` };
    }
    moneyFormats.set(code, fmt);
  }
  return fmt.format((cents || 0) / 100);
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

export function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateFormat.format(d);
}

/** `m:ss` (or `h:mm:ss`) of a number of seconds, never negative. */
export function clock(secs) {
  const s = Math.max(0, Math.floor(secs));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A rough human duration: "about 3 minutes". */
export function roughly(secs) {
  if (secs == null) return null;
  if (secs < 60) return 'under a minute';
  const m = Math.round(secs / 60);
  if (m < 90) return `about ${m} minute${m === 1 ? '' : 's'}`;
  const hrs = Math.round(m / 60);
  return `about ${hrs} hour${hrs === 1 ? '' : 's'}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A random UUID (v4), for Idempotency-Key. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * Countdowns: any element with `data-expires` (an ISO time) shows the time left as m:ss,
 * updated every second by one shared timer. `data-urgent-secs` (default 60) marks the last
 * stretch; at zero the element gets `data-expired` and `onExpire` callbacks run.
 */
const expireHandlers = new Set();

export function onCountdownExpired(fn) {
  expireHandlers.add(fn);
  return () => expireHandlers.delete(fn);
}

export function tickCountdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-expires]')) {
    const left = (Date.parse(el.dataset.expires) - now) / 1000;
    const urgent = Number(el.dataset.urgentSecs || 60);
    if (left <= 0) {
      el.textContent = 'expired';
      if (!el.hasAttribute('data-expired')) {
        el.setAttribute('data-expired', '');
        for (const fn of expireHandlers) fn(el);
      }
    } else {
      el.textContent = clock(left);
      el.removeAttribute('data-expired');
    }
    el.classList.toggle('urgent', left > 0 && left <= urgent);
  }
}

/** A countdown element for `expiresAt`. */
export function countdown(expiresAt, attrs = {}) {
  const el = h('time', {
    class: 'countdown',
    datetime: expiresAt,
    'data-expires': expiresAt,
    ...attrs,
  });
  el.textContent = clock((Date.parse(expiresAt) - Date.now()) / 1000);
  return el;
}
