// Talking to the seatq API: the signed-in session, JSON requests with problem+json errors,
// and live streams (Server-Sent Events) that fall back to polling while the server has
// no stream for them.

const SESSION_KEY = 'seatq.session';

/** The signed-in user: `{token, user_id, role, expires_at}` (unix secs) or null. */
let session = readSession();
const sessionListeners = new Set();

function readSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    if (s && s.token && s.user_id && (!s.expires_at || s.expires_at * 1000 > Date.now())) {
      return s;
    }
  } catch {
    // unreadable: signed out
  }
  return null;
}

export function currentSession() {
  return session;
}

export function setSession(next) {
  session = next;
  if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else localStorage.removeItem(SESSION_KEY);
  for (const fn of sessionListeners) fn(session);
}

export function onSessionChange(fn) {
  sessionListeners.add(fn);
  return () => sessionListeners.delete(fn);
}

// Another tab signed in or out.
window.addEventListener('storage', (e) => {
  if (e.key === SESSION_KEY) {
    session = readSession();
    for (const fn of sessionListeners) fn(session);
  }
});

/** Called when the server answers 401 to a signed-in request (the token is no good). */
let unauthorizedHandler = () => {};
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** An API error: the problem document's `code` and `detail`, the HTTP status, Retry-After. */
export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 0 ? 'network_error' : `http_${status}`);
    this.detail = this.message;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  /** Worth retrying the same request later (overload, outage, network). */
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status === 503;
  }
}

function retryAfterSecs(res) {
  const v = res.headers.get('Retry-After');
  if (!v) return null;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, n);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

/**
 * `api('GET', '/v1/events')` → `{status, data, etag, headers}`; throws ApiError for
 * 4xx/5xx and network failures. Options: `body` (JSON), `auth` (send the token, default
 * true when signed in), `etag` (If-None-Match; a 304 answers `{status: 304, data: null}`),
 * `headers`, `signal`.
 */
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const init = { method, headers, signal: opts.signal, cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  const sentAuth = opts.auth !== false && session;
  if (sentAuth) headers.Authorization = `Bearer ${session.token}`;
  if (opts.etag) headers['If-None-Match'] = opts.etag;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {
      code: 'network_error',
      detail: 'Cannot reach seatq right now. Check your connection; we will keep trying.',
    });
  }
  const etag = res.headers.get('ETag');
  if (res.status === 304) return { status: 304, data: null, etag, headers: res.headers };
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (res.status !== 204) {
    if (type.includes('json')) {
      data = await res.json().catch(() => null);
    } else {
      data = await res.text().catch(() => null);
    }
  }
  if (!res.ok) {
    const problem =
      data && typeof data === 'object' ? data : { detail: `The server answered ${res.status}.` };
    const err = new ApiError(res.status, problem, retryAfterSecs(res));
    if (res.status === 401 && sentAuth) unauthorizedHandler(err);
    throw err;
  }
  return { status: res.status, data, etag, headers: res.headers };
}

/** Fetch an authenticated image (e.g. a ticket's QR code) as an object URL. */
export async function fetchBlobUrl(path, signal) {
  const headers = {};
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const res = await fetch(path, { headers, signal, cache: 'no-store' });
  if (!res.ok) {
    const problem = await res.json().catch(() => ({}));
    const err = new ApiError(res.status, problem, retryAfterSecs(res));
    if (res.status === 401 && session) unauthorizedHandler(err);
    throw err;
  }
  return URL.createObjectURL(await res.blob());
}

/**
 * A live feed: an EventSource on `url` whose named events go to `handlers[name](data,
 * lastEventId)` (data parsed as JSON). While the stream is not open — the route does not
 * exist yet (404), the server restarts, the network drops — `poll()` runs every `pollMs`
 * instead, and the stream is retried (a server that is going away makes EventSource
 * reconnect by itself, resuming with Last-Event-ID).
 *
 * `onMode(mode)` hears `'connecting'`, `'live'` or `'polling'`; `onOpen()` runs each time
 * the stream opens (to catch up on what happened while it was not).
 */
export class LiveFeed {
  constructor({
    url,
    handlers,
    poll,
    pollMs = 3000,
    onMode = () => {},
    onOpen = () => {},
    retryStreamMs = 30000,
  }) {
    this.url = url;
    this.onOpen = onOpen;
    this.handlers = handlers;
    this.poll = poll;
    this.pollMs = pollMs;
    this.onMode = onMode;
    this.retryStreamMs = retryStreamMs;
    this.es = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.stopped = false;
    this.polling = false;
    this.mode = null;
  }

  start() {
    this.stopped = false;
    this.open();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.es) this.es.close();
    this.es = null;
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.polling = false;
  }

  setMode(mode) {
    if (mode !== this.mode) {
      this.mode = mode;
      this.onMode(mode);
    }
  }

  open() {
    if (this.stopped) return;
    if (typeof EventSource === 'undefined') {
      this.startPolling();
      return;
    }
    this.setMode(this.polling ? 'polling' : 'connecting');
    const es = new EventSource(typeof this.url === 'function' ? this.url() : this.url);
    this.es = es;
    for (const [name, fn] of Object.entries(this.handlers)) {
      es.addEventListener(name, (ev) => {
        let data = null;
        try {
          data = ev.data ? JSON.parse(ev.data) : null;
        } catch {
          data = ev.data;
        }
        try {
          fn(data, ev.lastEventId);
        } catch (err) {
          console.error(`live event ${name}`, err);
        }
      });
    }
    es.onopen = () => {
      this.retryDelay = this.retryStreamMs;
      this.stopPolling();
      this.setMode('live');
      // Whatever changed before the stream (re)opened is not in it: catch up once.
      this.onOpen();
    };
    es.onerror = () => {
      if (this.stopped || this.es !== es) return;
      // Not open: poll meanwhile. CLOSED means the browser gave up (e.g. 404 while the
      // stream route does not exist yet): try the stream again later ourselves.
      this.startPolling();
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        this.es = null;
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.open(), this.retryDelay || this.retryStreamMs);
        this.retryDelay = Math.min(5 * 60000, (this.retryDelay || this.retryStreamMs) * 2);
      }
    };
  }

  startPolling() {
    this.setMode('polling');
    if (this.polling || this.stopped) return;
    this.polling = true;
    const loop = async () => {
      if (!this.polling || this.stopped) return;
      let wait = this.pollMs;
      try {
        await this.poll();
      } catch (err) {
        if (err && err.retryAfter) wait = Math.max(wait, err.retryAfter * 1000);
        else if (err && err.status === 0) wait = Math.max(wait, 5000);
      }
      if (this.polling && !this.stopped) this.pollTimer = setTimeout(loop, wait);
    };
    this.pollTimer = setTimeout(loop, 0);
  }

  stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
  }
}
