// Holding seats on the event page: the hold request (`POST /v1/events/{id}/holds`, with an
// idempotency key and the waiting room's admission token), its wait in the queue when the
// answer is not immediate, retries after 429/503, the outcome (`hold-status`: held, or
// rejected with the reason and nearby alternatives, or with the seat it would have left
// alone and a one-click suggestion that leaves none), and the user's holds at this event
// with the limits they leave. The longest-running thing the page does, hence its own
// module.

import { api, currentSession } from '../api.js';
import { h, fill, money, sleep, uuid } from '../util.js';
import { errorText, isAbort } from './ui.js';
import { promptLogin } from './session.js';
import { myHolds, refreshHolds, rememberHold, seatList } from './holds.js';
import { holdCard } from './hold-views.js';
import { ADMISSION_CODES } from './waiting-room.js';
import { admitted, MAX_SEATS_PER_REQUEST } from './event-state.js';

/** What a rejection's `reason` means, in words. */
const REASONS = {
  seats_unavailable: 'Someone else got there first.',
  insufficient_seats: 'There are not that many seats left in that section.',
  user_limit_exceeded: 'You already hold as many seats as one person may have for this event.',
  sale_not_open: 'This event is not on sale yet.',
  sale_paused: 'The organiser has paused the sale. Try again when it resumes: your selection is kept.',
  sale_ended: 'The sale has ended: no more seats are sold for this event.',
  event_not_found: 'This event no longer exists.',
  would_strand_seat: 'No seat may be left on its own between taken seats, the end of a row or an aisle.',
  seats_reserved_for_access:
    'Some of these seats are kept for buyers who need a wheelchair space. Tick “I need a wheelchair space” if you do.',
};

/** The gateway's refusals of a selection, in words (422 codes). */
const PROBLEMS = {
  accessible_space_required: 'None of these seats is a wheelchair space: pick one (♿), with any companion seats beside it.',
  companions_not_together: 'A wheelchair space and its companion seats must be side by side in one row.',
};

/** "S-1-3" / "S-1-3 and S-1-5" / "S-1-1, S-1-3 and S-1-5". */
function andList(ids) {
  return ids.length <= 1 ? ids.join('') : `${ids.slice(0, -1).join(', ')} and ${ids[ids.length - 1]}`;
}

/** `andList` as nodes, each seat id kept on one line. */
function andNodes(ids) {
  return ids.map((id, k) => [k === 0 ? '' : k === ids.length - 1 ? ' and ' : ', ', h('span', { class: 'nowrap' }, id)]);
}

/**
 * One line of a refused request's receipt (`LostSeat`): how far ahead in the queue the
 * request that got the seat was, or that nobody's request did (held back, offered from a
 * waitlist, already taken).
 */
export function receiptText(line) {
  const ahead = line.places_ahead;
  if (ahead == null) return `${line.seat_id} was already taken.`;
  const ms = line.ms_ahead != null ? Math.max(0, line.ms_ahead) : null;
  if (ahead === 0) {
    return `${line.seat_id} went to the request queued right before yours${ms != null ? ` (${ms.toLocaleString()} ms earlier)` : ''}.`;
  }
  return `${line.seat_id} went to a request queued ${ahead.toLocaleString()} place${ahead === 1 ? '' : 's'}${
    ms != null ? ` (${ms.toLocaleString()} ms)` : ''
  } before yours.`;
}

/** The holding part of an event page (`page`: event-state.js). */
export function holdRequests(page) {
  const { scope, eventId } = page;
  const status = h('div', {
    class: 'hold-status',
    'data-testid': 'hold-status',
    'data-status': 'idle',
    role: 'status',
    hidden: true,
  });
  const holdsBox = h('div', { class: 'holds-box' });
  /** The request's outcome and the user's holds here (placed by event-page.js). */
  const area = h('div', { class: 'hold-area' }, status, holdsBox);
  let stopRetry = false;
  const pendingRequests = new Map(); // request_id -> resolve(view)

  function setStatus(value, ...content) {
    const first = status.hidden || status.dataset.status !== value;
    status.hidden = false;
    status.dataset.status = value;
    fill(status, content);
    if (first) status.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  /** Ask for seats (`body`: `{seat_ids}` or `{section, quantity}`; `label` names them). */
  async function request(body, label) {
    if (!currentSession()) {
      promptLogin('Log in to hold seats.');
      return;
    }
    if (page.busy) return;
    if (!admitted(page)) {
      setStatus('error', h('p', { 'data-testid': 'hold-reason', 'data-reason': 'admission_required' }, 'Join the waiting room first: you can hold seats once it lets you in.'));
      page.room.el.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      return;
    }
    page.busy = true;
    stopRetry = false;
    page.inFlight = new Set(body.seat_ids || []);
    page.selection.render();
    const key = uuid();
    try {
      for (let attempt = 1; scope.alive; attempt++) {
        setStatus('pending', h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `Asking for ${label}…`));
        try {
          const headers = { 'Idempotency-Key': key };
          const admission = page.event.waiting_room_enabled && page.room ? page.room.token() : null;
          if (admission) headers['X-Admission-Token'] = admission;
          const r = await api('POST', `/v1/events/${eventId}/holds?wait_ms=3000`, { body, headers });
          const view = r.status === 202 ? await waitForDecision(r.data.request_id, label) : r.data;
          if (view) onDecision(view, body);
          return;
        } catch (err) {
          if (!scope.alive) return;
          if (err.retryable && attempt <= 6 && !stopRetry) {
            const secs = Math.ceil(err.retryAfter ?? Math.min(2 ** attempt, 15));
            setStatus(
              'retrying',
              h('p', {}, `${errorText(err)} Trying again in ${secs} s…`),
              h(
                'button',
                { type: 'button', class: 'link-button', 'data-testid': 'hold-retry-stop', on: { click: () => (stopRetry = true) } },
                'Stop',
              ),
            );
            for (let s = 0; s < secs * 10 && !stopRetry && scope.alive; s++) await sleep(100);
            if (stopRetry) {
              setStatus('error', h('p', {}, 'Stopped. Your selection is kept: try again when you like.'));
              return;
            }
            continue;
          }
          if (err.status === 401) {
            setStatus('error', h('p', {}, 'Log in again to hold seats.'));
            return;
          }
          if (err.status === 403 && ADMISSION_CODES.has(err.code) && page.room) {
            setStatus(
              'error',
              h('p', { 'data-testid': 'hold-reason', 'data-reason': err.code }, h('strong', {}, 'Not held. '), err.code === 'admission_expired' ? 'Your time to shop ran out.' : 'This sale lets people in through its waiting room.'),
            );
            page.room.lost(err);
            return;
          }
          if (REASONS[err.code] && (err.code === 'sale_paused' || err.code === 'sale_ended')) {
            saleChanged(err.code);
            setStatus('rejected', h('p', { 'data-testid': 'hold-reason', 'data-reason': err.code }, h('strong', {}, 'Not held. '), REASONS[err.code]));
            return;
          }
          if (PROBLEMS[err.code]) {
            setStatus('rejected', h('p', { 'data-testid': 'hold-reason', 'data-reason': err.code }, h('strong', {}, 'Not held. '), PROBLEMS[err.code]));
            return;
          }
          setStatus('error', h('p', { 'data-testid': 'hold-reason', 'data-reason': err.code || '' }, errorText(err)));
          return;
        }
      }
    } finally {
      page.busy = false;
      page.inFlight = new Set();
      page.selection.render();
      if (page.loaded) page.live.afterChange();
    }
  }

  /** Poll the request (and listen to the user stream) until it is decided. */
  async function waitForDecision(requestId, label) {
    let decided = null;
    const fromStream = new Promise((resolve) => pendingRequests.set(requestId, resolve));
    scope.on(() => pendingRequests.delete(requestId));
    let delay = 500;
    let nudged = false;
    let aheadEl = null;
    while (scope.alive && !decided) {
      try {
        const r = await api('GET', `/v1/hold-requests/${requestId}`, { signal: scope.signal });
        if (r.data.status !== 'pending') {
          decided = r.data;
          break;
        }
        const ahead = r.data.ahead;
        if (!aheadEl) {
          // Built once; the count then changes in place, kept out of the live region so
          // screen readers are not told every second.
          aheadEl = h('p', { class: 'muted', 'data-testid': 'hold-ahead', 'aria-live': 'off' });
          setStatus(
            'pending',
            h('p', {}, h('span', { class: 'spinner', 'aria-hidden': 'true' }), `You are in the queue for ${label}.`),
            aheadEl,
            h('p', { class: 'muted small' }, 'Keep this page open: first come, first served.'),
          );
        }
        aheadEl.hidden = ahead == null;
        aheadEl.dataset.ahead = String(ahead ?? '');
        aheadEl.textContent =
          ahead > 0 ? `${ahead.toLocaleString()} request${ahead === 1 ? '' : 's'} ahead of yours.` : 'You are next.';
      } catch (err) {
        if (isAbort(err) || !scope.alive) return null;
        if (!err.retryable) throw err;
        delay = Math.max(delay, (err.retryAfter || 2) * 1000);
      }
      // The user stream saying "decided" cuts the wait short once; the full view
      // (alternatives and all) comes from the request's status.
      const nudge = nudged ? false : await Promise.race([fromStream.then(() => true), sleep(delay).then(() => false)]);
      if (nudged) await sleep(delay);
      if (nudge) {
        nudged = true;
        delay = 250;
      } else {
        delay = Math.min(delay * 1.5, 3000);
      }
    }
    pendingRequests.delete(requestId);
    return decided;
  }

  scope.onUser('hold_created', (d) => pendingRequests.get(d.request_id)?.(d));
  scope.onUser('hold_rejected', (d) => pendingRequests.get(d.request_id)?.(d));

  /** A hold refused because the organiser paused or ended the sale: the page says so. */
  function saleChanged(reason) {
    const state = reason === 'sale_paused' ? 'paused' : 'ended';
    if (page.event && page.event.sale_state !== state) {
      page.event = { ...page.event, sale_state: state };
      if (page.renderSaleStatus) page.renderSaleStatus();
    }
  }

  /** The request's answer (`HoldRequestView`) to `body`: held, or why not. */
  function onDecision(view, body = {}) {
    const { selected, seatMap } = page;
    if (view.status === 'held') {
      // Held: whatever pause this page heard of is over.
      if (page.event && page.event.sale_state && page.event.sale_state !== 'open') {
        page.event = { ...page.event, sale_state: 'open' };
        if (page.renderSaleStatus) page.renderSaleStatus();
      }
      const hold = {
        hold_id: view.hold_id,
        event_id: eventId,
        status: 'active',
        seat_ids: view.seat_ids || [],
        section: view.section || null,
        quantity: view.quantity || (view.seat_ids || []).length,
        created_at: view.decided_at,
        expires_at: view.expires_at,
        extended: false,
        from_waitlist: false,
        total_cents: view.total_cents,
      };
      for (const id of hold.seat_ids) selected.delete(id);
      rememberHold(hold);
      seatMap.applyChanges(hold.seat_ids.map((id) => ({ seat_id: id, status: 'held' })));
      page.live.renderCounts();
      page.selection.render();
      status.dataset.holdId = hold.hold_id;
      setStatus(
        'held',
        h('p', {}, h('strong', {}, 'Held! '), `${seatList(hold)} ${hold.seat_ids.length === 1 || hold.quantity === 1 ? 'is' : 'are'} yours until the timer runs out.`),
        hold.total_cents != null
          ? h('p', { class: 'muted' }, 'Total ', h('strong', { 'data-testid': 'held-total', 'data-cents': String(hold.total_cents) }, money(hold.total_cents)))
          : null,
      );
      refreshHolds().catch(() => {});
      return;
    }
    if (view.reason === 'sale_paused' || view.reason === 'sale_ended') saleChanged(view.reason);
    const unavailable = view.unavailable_seats || [];
    const alternatives = view.alternatives || [];
    const receipt = view.receipt || [];
    const stranded = view.stranded_seats || [];
    const suggestion = view.suggestion || [];
    // Kept for access, or alone: still free, so not drawn as taken.
    const taken = view.reason === 'seats_reserved_for_access' || view.reason === 'would_strand_seat' ? [] : unavailable;
    for (const id of unavailable) selected.delete(id);
    if (taken.length) {
      seatMap.applyChanges(taken.map((id) => ({ seat_id: id, status: 'held' })));
      page.live.renderCounts();
    }
    page.selection.render();
    let reasonText = REASONS[view.reason] || `Not held (${view.reason || 'rejected'}).`;
    if (view.reason === 'would_strand_seat' && stranded.length) {
      reasonText = [
        `This would leave ${stranded.length === 1 ? 'seat' : 'seats'} `,
        andNodes(stranded),
        ` on ${stranded.length === 1 ? 'its' : 'their'} own: no seat may be left alone.`,
      ];
    }
    if (view.reason === 'seats_reserved_for_access' && unavailable.length) {
      reasonText = [
        andNodes(unavailable),
        ` ${unavailable.length === 1 ? 'is' : 'are'} kept for buyers who need a wheelchair space${
          page.selection ? ` ${page.selection.untilText()}` : ''
        }. Tick “I need a wheelchair space” if you do.`,
      ];
    }
    /** Take the suggested seats instead: one click, one new hold request. */
    const takeSuggestion = () => {
      for (const id of body.seat_ids || []) selected.delete(id);
      page.selection.render();
      const next = { seat_ids: suggestion };
      if (body.accessible) next.accessible = true;
      request(next, andList(suggestion));
    };
    setStatus(
      'rejected',
      h('p', { 'data-testid': 'hold-reason', 'data-reason': view.reason || '' }, h('strong', {}, 'Not held. '), reasonText),
      stranded.length
        ? h('p', { class: 'muted small', 'data-testid': 'stranded-seats', 'data-seat-ids': stranded.join(',') }, `Left alone: ${stranded.join(', ')}`)
        : null,
      view.reason === 'would_strand_seat'
        ? suggestion.length
          ? h(
              'div',
              { class: 'alternatives suggestion' },
              h('p', {}, `${suggestion.length === 1 ? 'This seat leaves' : 'These seats leave'} nobody alone:`),
              h(
                'button',
                {
                  type: 'button',
                  class: 'primary',
                  'data-testid': 'strand-suggestion',
                  'data-seat-ids': suggestion.join(','),
                  on: { click: takeSuggestion },
                },
                `Take ${suggestion.join(', ')} instead`,
              ),
            )
          : h('p', { class: 'muted', 'data-testid': 'no-suggestion' }, 'No other seats nearby leave nobody alone: try another row or section.')
        : null,
      receipt.length
        ? h(
            'ul',
            { class: 'hold-receipt', 'data-testid': 'hold-receipt', 'aria-label': 'What became of the seats you asked for' },
            receipt.map((line) =>
              h(
                'li',
                { 'data-testid': 'receipt-line', 'data-seat-id': line.seat_id, 'data-places-ahead': String(line.places_ahead ?? '') },
                receiptText(line),
              ),
            ),
          )
        : null,
      taken.length
        ? h('p', { class: 'muted', 'data-testid': 'unavailable-seats', hidden: receipt.length > 0 }, `Taken: ${unavailable.join(', ')}`)
        : null,
      alternatives.length
        ? h(
            'div',
            { class: 'alternatives' },
            h('p', {}, 'Free nearby right now:'),
            h(
              'button',
              {
                type: 'button',
                class: 'primary',
                'data-testid': 'alternative-hold',
                'data-seat-ids': alternatives.join(','),
                on: { click: () => request({ seat_ids: alternatives }, alternatives.join(', ')) },
              },
              `Hold ${alternatives.join(', ')}`,
            ),
          )
        : null,
    );
  }

  /** The hold button: hold the selected seats. */
  function holdSelected() {
    if (!currentSession()) {
      promptLogin('Log in to hold seats.');
      return;
    }
    if (!page.selected.size) return;
    const ids = [...page.selected.keys()];
    const body = { seat_ids: ids };
    if (page.accessible) body.accessible = true;
    request(body, ids.join(', '));
  }

  /** Hold the best `quantity` seats (or places) of a section. */
  function holdBest(code, quantity) {
    const sec = page.seatMap.section(code);
    const noun = sec && sec.kind === 'general_admission' ? 'place' : 'seat';
    const body = { section: code, quantity };
    const access = page.accessible && sec && sec.kind === 'reserved';
    if (access) body.accessible = true;
    request(
      body,
      access
        ? `a wheelchair space${quantity > 1 ? ` and ${quantity - 1} companion seat${quantity === 2 ? '' : 's'}` : ''} in ${code}`
        : `the best ${quantity} ${noun}${quantity === 1 ? '' : 's'} in ${code}`,
    );
  }

  /** The user's holds at this event, and what they leave to pick. */
  function renderHolds() {
    const { event, seatMap } = page;
    const mine = [...myHolds.values()].filter((hd) => hd.event_id === eventId);
    // The "Held!" message goes with its hold.
    if (status.dataset.status === 'held' && status.dataset.holdId && !myHolds.has(status.dataset.holdId)) {
      status.hidden = true;
      status.dataset.status = 'idle';
    }
    fill(holdsBox, mine.map((hd) => holdCard(hd, { event })));
    if (seatMap) seatMap.setMine(mine.flatMap((hd) => hd.seat_ids));
    page.seatInfo.refresh();
    const held = mine.reduce((n, hd) => n + (hd.seat_ids.length || hd.quantity || 0), 0);
    if (event) {
      const before = page.maxSel;
      page.maxSelRaw = Math.max(0, event.max_seats_per_user - held);
      page.maxSel = Math.min(page.maxSelRaw, MAX_SEATS_PER_REQUEST);
      if (page.maxSel !== before && page.loaded) page.pickers.refreshQuantities();
      page.selection.render();
    }
  }

  return { area, request, holdSelected, holdBest, renderHolds };
}
