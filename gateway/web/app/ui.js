// Small app-wide pieces every view uses: messages (toasts, screen-reader announcements),
// the bus that carries live user events to the views, a view's lifetime (Scope), and the
// page's loading / error boxes. Separate so that views depend on these and not on each
// other.

import { ApiError } from '../api.js';
import { h } from '../util.js';

/** The page's main area: each view renders into it. */
export const main = document.getElementById('main');

const toastsEl = document.getElementById('toasts');
const alertsEl = document.getElementById('alerts');
const announceEl = document.getElementById('announce');

/** A visible message, announced politely (or assertively with `urgent`). */
export function toast(text, { kind = 'info', urgent = false, timeout = 8000, action = null } = {}) {
  const el = h(
    'div',
    { class: `toast toast-${kind}`, 'data-testid': 'toast', 'data-kind': kind },
    h('span', {}, text),
    action,
    h(
      'button',
      {
        type: 'button',
        class: 'toast-close',
        'aria-label': 'Dismiss',
        on: { click: () => el.remove() },
      },
      '×',
    ),
  );
  const stack = urgent ? alertsEl : toastsEl;
  stack.appendChild(el);
  // A busy on-sale can say a lot: keep the newest few.
  while (stack.children.length > 4) stack.firstElementChild.remove();
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}

let announceTimer;
/** Screen-reader-only announcement (seat map cursor and the like). */
export function announce(text) {
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    announceEl.textContent = text;
  }, 60);
}

/** User events from the live stream (or synthesised by polling), by kind. */
const bus = new EventTarget();
export function emit(kind, data) {
  bus.dispatchEvent(new CustomEvent(kind, { detail: data }));
}

/** A view's lifetime: timers, listeners and requests end when the route changes. */
export class Scope {
  /** `rerender()` renders the current page again from scratch (the router's). */
  constructor(rerender = () => {}) {
    this.alive = true;
    this.cleanups = [];
    this.controller = new AbortController();
    this.rerender = rerender;
    /**
     * Set by a view that follows logins and logouts itself (`onSession(session)`);
     * otherwise the router renders the page again when the user changes.
     */
    this.onSession = null;
  }

  get signal() {
    return this.controller.signal;
  }

  on(fn) {
    this.cleanups.push(fn);
  }

  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.on(() => target.removeEventListener(type, fn));
  }

  /** Subscribe to a user event on the bus for this view's lifetime. */
  onUser(kind, fn) {
    this.listen(bus, kind, (e) => fn(e.detail));
  }

  timeout(fn, ms) {
    const t = setTimeout(() => this.alive && fn(), ms);
    this.on(() => clearTimeout(t));
    return t;
  }

  interval(fn, ms) {
    const t = setInterval(() => this.alive && fn(), ms);
    this.on(() => clearInterval(t));
    return t;
  }

  close() {
    this.alive = false;
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (err) {
        console.error(err);
      }
    }
  }
}

export function errorText(err) {
  if (err instanceof ApiError) return err.detail;
  return (err && err.message) || String(err);
}

export function isAbort(err) {
  return err && err.name === 'AbortError';
}

let routedOnce = false;
/** Move focus to the new page's heading (for keyboard and screen reader users). */
export function focusHeading(el) {
  if (!el) return;
  if (routedOnce) el.focus({ preventScroll: true });
  routedOnce = true;
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

export function failure(err, retry) {
  return h(
    'div',
    { class: 'error-box', role: 'alert' },
    h('p', {}, errorText(err)),
    retry ? h('button', { type: 'button', on: { click: retry } }, 'Try again') : null,
  );
}
