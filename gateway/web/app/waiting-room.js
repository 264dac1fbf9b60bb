// The waiting room of a high-demand sale (`waiting_room_enabled`): join it after a proof
// of work, wait for your turn (place in line from the user stream, polled as a fallback),
// then hold seats with its admission token (`X-Admission-Token`) until it expires. It is
// one panel on the event page with its own life (a ticket kept in localStorage across
// reloads, a poll, countdowns), so it is its own module; the event page only asks it for
// the token and tells it when a hold was refused for admission.

import { api, ApiError, currentSession } from '../api.js';
import { solve as solvePow, warm as warmPow } from '../pow.js';
import { h, fill, when, roughly, countdown, onCountdownExpired } from '../util.js';
import { toast, errorText, isAbort } from './ui.js';
import { promptLogin } from './session.js';

const POLL_QUEUE_MS = 4000;
/** A join refused for these gets a new challenge and tries once more. */
const CHALLENGE_CODES = new Set([
  'challenge_required',
  'challenge_invalid',
  'challenge_expired',
  'challenge_unsolved',
  'challenge_used',
  'challenge_wrong_event',
]);
/** A hold refused for these sends the user back to the waiting room. */
export const ADMISSION_CODES = new Set(['admission_required', 'admission_invalid', 'admission_expired', 'admission_wrong_event']);

/** Where this user's tickets and admissions are kept: `{[event_id]: {ticket, token, expires_at}}`. */
function queueKey() {
  const s = currentSession();
  return s ? `seatq.queue.${s.user_id}` : null;
}

function savedQueues() {
  const key = queueKey();
  if (!key) return {};
  try {
    return JSON.parse(localStorage.getItem(key) || '{}') || {};
  } catch {
    return {};
  }
}

function savedQueue(eventId) {
  return savedQueues()[eventId] || null;
}

function saveQueue(eventId, entry) {
  const key = queueKey();
  if (!key) return;
  const all = savedQueues();
  if (entry) all[eventId] = entry;
  else delete all[eventId];
  localStorage.setItem(key, JSON.stringify(all));
}

/** Sleep that ends early (throwing AbortError) when `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('Stopped.', 'AbortError'));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(new DOMException('Stopped.', 'AbortError'));
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/**
 * A waiting-room request, tried again after 429 (rate limited), 503 and network failures,
 * waiting as long as Retry-After says; `onWait(secs, err)` hears each wait.
 */
async function queueCall(method, path, { body, signal, onWait = () => {} } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await api(method, path, { body, signal });
    } catch (err) {
      if (isAbort(err) || !(err instanceof ApiError) || !err.retryable || attempt >= 6) throw err;
      const secs = Math.max(1, Math.ceil(err.retryAfter ?? Math.min(2 ** attempt, 15)));
      onWait(secs, err);
      await pause(secs * 1000, signal);
    }
  }
}

/**
 * The waiting-room panel of one event page (`queue-panel`, data-status = login | join |
 * solving | waiting | admitted | expired | error). `token()` is the admission token while
 * valid; `lost(err)` takes a hold's 403 admission_* and goes back to the line; `onChange`
 * runs whenever holding becomes possible or not; `onOff` when the sale turns out to have
 * no waiting room any more. `title()` is the event's title, for messages.
 */
export class WaitingRoom {
  constructor(scope, eventId, { title, difficulty = () => undefined, onChange = () => {}, onOff = () => {} }) {
    this.scope = scope;
    this.eventId = eventId;
    this.title = title;
    this.difficulty = difficulty;
    this.onChange = onChange;
    this.onOff = onOff;
    this.el = h('section', {
      class: 'queue-panel',
      'data-testid': 'queue-panel',
      'data-status': 'join',
      'aria-labelledby': 'queue-title',
    });
    this.status = null;
    this.view = null; // the ticket (QueueTicketView) last seen
    this.joining = null; // the join in progress (a promise)
    this.firstPosition = null; // the place first seen in this page, for the progress bar
    this.lastSolve = null; // the last proof of work: {difficulty, nonce, ms, …}
    this.note = null; // a short message under the panel's content (retries, errors)
    this.live = {}; // elements of the "waiting" state updated in place

    scope.onUser('queue_position', (d) => {
      const view = this.view;
      if (!view || d.ticket !== view.ticket || this.status !== 'waiting') return;
      this.view = { ...view, position: d.position, eta_secs: d.eta_secs ?? view.eta_secs, provisional: false };
      if (this.view.length != null && d.position > this.view.length) this.view.length = d.position;
      this.update();
    });
    scope.onUser('admitted', (d) => {
      if (!this.view || d.ticket !== this.view.ticket) return;
      // The token comes with the ticket.
      this.refresh().catch(() => scope.timeout(() => this.refresh().catch(() => {}), 2000));
    });
    scope.on(
      onCountdownExpired((cd) => {
        if (!this.el.contains(cd)) return;
        if (cd.dataset.testid === 'queue-admission-countdown') {
          this.setStatus('expired');
        } else if (cd.dataset.testid === 'queue-sale-countdown') {
          // The sale opened: the draw is made; see the real place.
          scope.timeout(() => this.refresh().catch(() => {}), 1500);
        }
      }),
    );
    scope.timeout(() => this.poll(), POLL_QUEUE_MS);
  }

  ticketPath(ticket) {
    return `/v1/events/${this.eventId}/queue/${encodeURIComponent(ticket)}`;
  }

  /** The admission token while it is good, else null. */
  token() {
    const view = this.view;
    if (!view || view.status !== 'admitted' || !view.admission_token) return null;
    return Date.parse(view.admission_expires_at) > Date.now() ? view.admission_token : null;
  }

  setStatus(next, { force = false } = {}) {
    const changed = next !== this.status;
    this.status = next;
    this.el.dataset.status = next;
    if (changed || force) this.render();
    else this.update();
    if (changed) this.onChange();
  }

  setNote(text, kind = 'info') {
    this.note = text ? { text, kind } : null;
    const box = this.el.querySelector('.queue-note');
    if (box) this.renderNote(box);
  }

  renderNote(box) {
    const note = this.note;
    box.hidden = !note;
    box.dataset.kind = note ? note.kind : '';
    box.textContent = note ? note.text : '';
  }

  joinButton(label) {
    // Start the proof-of-work workers while the user reads: they are ready by the click.
    if (this.difficulty() !== 0) warmPow();
    return h(
      'button',
      {
        type: 'button',
        class: 'primary big',
        'data-testid': 'queue-join',
        on: { click: () => this.join() },
      },
      label,
    );
  }

  /** The panel's content for its status (numbers of "waiting" are filled by `update`). */
  render() {
    const { view, live } = this;
    const parts = [];
    const heading = (text) => h('h2', { id: 'queue-title' }, text);
    switch (this.status) {
      case 'login':
        parts.push(
          heading('This sale has a waiting room'),
          h('p', {}, 'To keep things fair when many people want tickets at once, everyone joins a line and is let in a few at a time.'),
          h(
            'button',
            { type: 'button', class: 'primary', on: { click: () => promptLogin('Log in to join the waiting room.') } },
            'Log in to join the line',
          ),
        );
        break;
      case 'join':
        parts.push(
          heading('This sale has a waiting room'),
          h(
            'p',
            {},
            'Join the line to hold seats: people are let in a few at a time, and then have a while to pick and hold their seats. ',
            this.provisionalNow()
              ? 'Everyone who joins before the sale opens gets a place drawn at random when it opens, so there is no need to rush.'
              : 'It is first come, first served.',
          ),
          this.joinButton('Join the waiting room'),
        );
        break;
      case 'solving': {
        live.progress = h('progress', { class: 'queue-progress', max: '1', value: '0', 'aria-label': 'Checking' });
        parts.push(
          heading('Joining the waiting room'),
          h(
            'div',
            { class: 'queue-solving', 'data-testid': 'queue-solving', role: 'status' },
            h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('strong', {}, 'Checking you’re not a bot…')),
            live.progress,
            h('p', { class: 'muted small' }, 'Your browser solves a small puzzle that costs bots dearly at scale. It takes a moment; keep this page open.'),
          ),
        );
        break;
      }
      case 'waiting': {
        live.position = h('strong', { class: 'queue-number', 'data-testid': 'queue-position' }, '…');
        live.length = h('strong', { class: 'queue-number', 'data-testid': 'queue-length' }, '…');
        live.eta = h('strong', { class: 'queue-number', 'data-testid': 'queue-eta' }, '…');
        live.bar = h('progress', { class: 'queue-progress', max: '1', value: '0', 'aria-hidden': 'true' });
        live.provisional = h('div', { class: 'queue-provisional', 'data-testid': 'queue-provisional' });
        parts.push(
          heading('You’re in line'),
          live.provisional,
          h(
            'dl',
            { class: 'queue-stats' },
            h('div', {}, h('dt', {}, 'Your place'), h('dd', {}, live.position)),
            h('div', {}, h('dt', {}, 'People in line'), h('dd', {}, live.length)),
            h('div', {}, h('dt', {}, 'Estimated wait'), h('dd', {}, live.eta)),
          ),
          live.bar,
          h('p', { class: 'muted small' }, 'Keep this page open (you can look at the seats meanwhile): when it is your turn, we let you in and tell you here.'),
        );
        break;
      }
      case 'admitted': {
        const left = Math.max(0, Date.parse(view.admission_expires_at) - Date.now());
        const mins = Math.max(1, Math.round(left / 60000));
        parts.push(
          heading('It’s your turn'),
          h('p', { class: 'queue-admitted', 'data-testid': 'queue-admitted' }, 'You’re in — ', h('strong', {}, `${mins} minute${mins === 1 ? '' : 's'} to shop`), '.'),
          h(
            'p',
            {},
            'Hold your seats within ',
            countdown(view.admission_expires_at, {
              'data-testid': 'queue-admission-countdown',
              'data-urgent-secs': '120',
            }),
            ` (until ${new Date(view.admission_expires_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}). Seats you hold stay yours until their own timer runs out.`,
          ),
        );
        break;
      }
      case 'expired':
        parts.push(
          heading('Your time to shop is over'),
          h(
            'p',
            { 'data-testid': 'queue-expired' },
            view && view.admission_expires_at
              ? `The waiting room let you in until ${when(view.admission_expires_at)}. `
              : '',
            'Seats you hold are still yours until their own timer runs out.',
          ),
          this.joinButton('Check the waiting room again'),
        );
        break;
      case 'error':
      default:
        parts.push(heading('Waiting room'), this.joinButton('Try again'));
        break;
    }
    const noteBox = h('p', { class: 'queue-note', 'data-testid': 'queue-note', role: 'status' });
    this.renderNote(noteBox);
    parts.push(noteBox);
    parts.push(
      h(
        'p',
        { class: 'muted small queue-lottery' },
        'Who joins before the sale opens is let in by a draw anyone can check: ',
        h('a', { href: `#/events/${this.eventId}/lottery`, 'data-testid': 'lottery-link' }, 'check the lottery'),
        '.',
      ),
    );
    fill(this.el, parts);
    this.update();
  }

  provisionalNow() {
    return this.view ? this.view.provisional && Date.parse(this.view.on_sale_at) > Date.now() : false;
  }

  /** Numbers of the "waiting" state, in place (no re-render, no focus loss). */
  update() {
    const { view, live } = this;
    if (this.status !== 'waiting' || !view || !live.position) return;
    const pos = view.position;
    const len = view.length;
    live.position.textContent = pos != null ? `#${pos.toLocaleString()}` : '—';
    live.position.dataset.position = pos != null ? String(pos) : '';
    live.length.textContent = len != null ? len.toLocaleString() : '—';
    live.length.dataset.length = len != null ? String(len) : '';
    live.eta.textContent = pos === 1 && !view.provisional ? 'You’re next' : view.eta_secs != null ? roughly(view.eta_secs) : '—';
    live.eta.dataset.etaSecs = view.eta_secs != null ? String(view.eta_secs) : '';
    if (pos != null && (this.firstPosition == null || pos > this.firstPosition)) this.firstPosition = pos;
    const first = this.firstPosition;
    const moved = first && pos != null && first > 1 ? (first - pos) / (first - 1) : 0;
    live.bar.value = String(Math.max(0.02, Math.min(1, moved)));
    const provisional = view.provisional && Date.parse(view.on_sale_at) > Date.now();
    live.provisional.hidden = !provisional;
    if (provisional && !live.provisional.firstChild) {
      fill(
        live.provisional,
        h('p', {}, h('strong', {}, 'The sale opens in '), countdown(view.on_sale_at, { 'data-testid': 'queue-sale-countdown', 'data-urgent-secs': '0' }), '.'),
        h(
          'p',
          {},
          'Your place is drawn at random when the sale opens: everyone who joins before then has the same chance, so there is no need to rush. Until then your place below is provisional.',
        ),
      );
    } else if (!provisional) {
      live.provisional.replaceChildren();
    }
  }

  /** Take a ticket view from the server. */
  apply(v) {
    if (!this.scope.alive) return;
    const wasAdmitted = this.status === 'admitted';
    this.view = v;
    this.el.dataset.ticket = v.ticket;
    saveQueue(this.eventId, { ticket: v.ticket, token: v.admission_token || null, expires_at: v.admission_expires_at || null });
    this.setNote(null);
    if (v.status === 'admitted') {
      if (this.token()) {
        this.setStatus('admitted');
        if (!wasAdmitted) {
          toast(`It’s your turn: you can hold seats for ${this.title()} now.`, { kind: 'success', urgent: true, timeout: 12000 });
        }
      } else {
        this.setStatus('expired');
      }
    } else {
      this.setStatus('waiting');
    }
  }

  /** Read the ticket again; throws retryable errors (for the poll to wait), handles the rest. */
  async refresh() {
    const saved = savedQueue(this.eventId);
    if (!saved || !saved.ticket) return;
    try {
      const r = await api('GET', this.ticketPath(saved.ticket), { signal: this.scope.signal });
      this.apply(r.data);
    } catch (err) {
      if (isAbort(err) || !this.scope.alive) return;
      if (err.retryable) throw err;
      if (err.status === 404) {
        // Not a ticket of ours any more (another account, a reset): join again.
        saveQueue(this.eventId, null);
        this.view = null;
        this.setStatus('join');
      } else if (err.code === 'waiting_room_off') {
        this.off();
      } else if (err.status !== 401) {
        this.setNote(errorText(err), 'error');
      }
    }
  }

  /** While waiting, read the ticket every few seconds (the user stream may be down). */
  async poll() {
    if (!this.scope.alive) return;
    let wait = POLL_QUEUE_MS;
    if (this.status === 'waiting' && !this.joining) {
      try {
        await this.refresh();
      } catch (err) {
        wait = Math.max(wait, (err.retryAfter || 5) * 1000);
      }
    }
    this.scope.timeout(() => this.poll(), wait);
  }

  /** The sale has no waiting room (any more): hide the panel. */
  off() {
    saveQueue(this.eventId, null);
    this.view = null;
    this.el.hidden = true;
    toast('This sale no longer has a waiting room: you can hold seats directly.', { kind: 'info' });
    this.onOff();
    this.onChange();
  }

  /** Join (or rejoin: the same ticket comes back): challenge → proof of work → join. */
  join() {
    if (this.joining) return this.joining;
    if (!currentSession()) {
      promptLogin('Log in to join the waiting room.');
      return Promise.resolve();
    }
    this.joining = (async () => {
      try {
        await this.joinOnce();
      } catch (err) {
        if (isAbort(err) || !this.scope.alive) return;
        if (err.code === 'waiting_room_off') {
          this.off();
          return;
        }
        this.setStatus(savedQueue(this.eventId) ? 'error' : 'join', { force: true });
        this.setNote(
          err.status === 401 ? 'Log in again to join the waiting room.' : `Could not join the waiting room: ${errorText(err)}`,
          'error',
        );
      } finally {
        this.joining = null;
      }
    })();
    return this.joining;
  }

  /** `join`'s requests: a challenge, its proof of work, the join (once more on a stale challenge). */
  async joinOnce() {
    const { scope, eventId, live, el } = this;
    const onWait = (secs) => this.setNote(`Lots of people are joining right now. Trying again in ${secs} s…`, 'warn');
    for (let attempt = 1; ; attempt++) {
      this.setStatus('solving');
      this.setNote(null);
      // No proof of work asked (when the event says so): join with an empty body.
      const c =
        this.difficulty() === 0 && attempt === 1
          ? { data: { difficulty: 0 } }
          : await queueCall('POST', `/v1/events/${eventId}/queue/challenge`, { signal: scope.signal, onWait });
      let body = {};
      if (c.data.difficulty > 0) {
        const solved = await solvePow(c.data.challenge, c.data.difficulty, {
          signal: scope.signal,
          onProgress: ({ fraction }) => {
            if (live.progress) live.progress.value = String(Math.min(0.97, Math.max(0.03, fraction)));
          },
        });
        this.lastSolve = { difficulty: c.data.difficulty, ...solved };
        el.dataset.powMs = String(solved.ms);
        el.dataset.powDifficulty = String(c.data.difficulty);
        body = { challenge: c.data.challenge, nonce: solved.nonce };
      }
      if (!scope.alive) return;
      try {
        const r = await queueCall('POST', `/v1/events/${eventId}/queue`, { body, signal: scope.signal, onWait });
        this.firstPosition = null;
        this.apply(r.data);
        if (r.status === 201 && r.data.status === 'waiting') {
          toast(
            r.data.provisional
              ? 'You’re in the waiting room. Your place is drawn when the sale opens.'
              : `You’re in the waiting room${r.data.position ? `, #${r.data.position.toLocaleString()} in line` : ''}.`,
            { kind: 'success', timeout: 6000 },
          );
        }
        return;
      } catch (err) {
        // A challenge that expired or was used meanwhile: one more with a new one.
        if (err.status === 403 && CHALLENGE_CODES.has(err.code) && attempt < 2) continue;
        throw err;
      }
    }
  }

  /** A hold refused for its admission (403 admission_*): back to the waiting room. */
  lost(err) {
    const expired = err.code === 'admission_expired';
    toast(
      expired
        ? 'Your time to shop has run out. Checking the waiting room…'
        : 'The sale needs you to come through the waiting room: joining it…',
      { kind: 'warn', urgent: true },
    );
    if (this.view) this.view = { ...this.view, admission_token: null };
    const saved = savedQueue(this.eventId);
    if (saved) saveQueue(this.eventId, { ...saved, token: null, expires_at: null });
    this.onChange();
    return this.join();
  }

  /** (Re)start for the signed-in user: their ticket if they have one, else the join button. */
  start() {
    this.view = null;
    this.firstPosition = null;
    this.el.hidden = false;
    if (!currentSession()) {
      this.setStatus('login', { force: true });
      return;
    }
    const saved = savedQueue(this.eventId);
    if (saved && saved.ticket) {
      // Until the server answers, what we knew (the token, if still good) holds.
      if (saved.token && saved.expires_at && Date.parse(saved.expires_at) > Date.now()) {
        this.view = { ticket: saved.ticket, status: 'admitted', admission_token: saved.token, admission_expires_at: saved.expires_at };
        this.setStatus('admitted', { force: true });
      } else {
        this.setStatus('waiting', { force: true });
      }
      this.refresh().catch(() => {});
    } else {
      this.setStatus('join', { force: true });
    }
  }
}
