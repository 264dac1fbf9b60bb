// #/checkin, #/checkin/{event_id} — the door: staff (admin role) read each ticket's QR code
// with the device camera where the browser can (`BarcodeDetector`), or type / paste the
// code (a hand scanner that types and presses Enter works too), and the page answers with
// one full-screen colour: green, admitted (with the seat); red, not admitted, with the
// reason from the API's code (already in, wrong event, void, transferred, unknown); amber
// when there was no answer (network, server) so the ticket is scanned again. Then back to
// scanning by itself. `POST /v1/admin/checkins` admits a ticket exactly once, atomically,
// however many doors scan it at the same moment: this page only shows what it said.

import { api, ApiError } from '../api.js';
import { h, fill, when } from '../util.js';
import { main, isAbort, focusHeading, loading, failure } from './ui.js';
import { eventDetail } from './event-cache.js';
import { adminOnly, adminTabs } from './admin-ui.js';

/** `CheckinBody.code`'s pattern (gateway/src/bookings.rs). */
const TICKET_CODE = /^SQ1\.[A-Za-z0-9_-]{48}$/;
/** How long a verdict stays on screen before scanning resumes (a tap ends it sooner). */
const SHOW_ADMITTED_MS = 2500;
const SHOW_REFUSED_MS = 5000;
/** The camera sees the same code many times a second: once answered, it is ignored this long. */
const SAME_CODE_QUIET_MS = 6000;
const SCAN_EVERY_MS = 200;

/** Why a ticket was refused, by the API's problem code: [heading, explanation]. */
const REFUSALS = {
  already_checked_in: ['Already checked in', 'This ticket has been used to get in.'],
  wrong_event: ['Wrong event', 'This ticket is for another event.'],
  ticket_void: ['Void ticket', 'Its booking was cancelled.'],
  code_superseded: ['Transferred', 'This code was replaced: the ticket was given to someone else, who has the new code.'],
  ticket_not_found: ['Unknown ticket', 'No ticket has this code.'],
  ticket_code_malformed: ['Not a ticket code', 'This is not a seatq ticket.'],
  ticket_changed: ['Scan again', 'The ticket changed while it was scanned.'],
};

/** #/checkin: choose the event whose door this is. */
export function viewCheckinPick(scope) {
  document.title = 'Check-in · seatq';
  const heading = h('h1', { tabindex: '-1' }, 'Check-in');
  const body = h('div', {}, loading());
  fill(main, h('div', { class: 'page admin-page' }, adminTabs('#/checkin'), heading, body));
  focusHeading(heading);
  const refused = adminOnly('Check-in');
  if (refused) {
    fill(body, refused);
    return;
  }
  async function load() {
    try {
      const r = await api('GET', '/v1/events?per_page=100', { signal: scope.signal });
      if (!scope.alive) return;
      fill(
        body,
        h('p', {}, 'Which event is this door for? Tickets for any other event are refused.'),
        r.data.events.length
          ? h(
              'ul',
              { class: 'admin-list', 'data-testid': 'checkin-events' },
              r.data.events.map((e) =>
                h(
                  'li',
                  { class: 'admin-item' },
                  h('a', { href: `#/checkin/${e.id}`, 'data-testid': 'checkin-event-link', 'data-event-id': e.id }, e.title),
                  h('span', { class: 'muted small' }, ` · ${e.venue.name} · ${when(e.starts_at)}`),
                ),
              ),
            )
          : h('p', { class: 'empty' }, 'No events.'),
      );
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
    }
  }
  load();
}

/** #/checkin/{event_id}: the scanner. */
export function viewCheckin(scope, eventId) {
  document.title = 'Check-in · seatq';
  const heading = h('h1', { tabindex: '-1', 'data-testid': 'checkin-title' }, 'Check-in');
  const body = h('div', {});
  fill(main, h('div', { class: 'page admin-page checkin-page' }, adminTabs('#/checkin'), heading, body));
  focusHeading(heading);
  const refused = adminOnly('Check-in');
  if (refused) {
    fill(body, refused);
    return;
  }

  const counts = { admitted: 0, refused: 0 };
  const countsEl = h('p', { class: 'checkin-counts', 'data-testid': 'checkin-counts' });
  const last = h('p', { class: 'checkin-last', 'data-testid': 'checkin-last', role: 'status' });
  const camera = h('div', { class: 'checkin-camera', 'data-testid': 'checkin-camera', 'data-state': 'off' });
  const input = h('input', {
    id: 'checkin-code',
    name: 'code',
    'data-testid': 'checkin-code',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'none',
    placeholder: 'SQ1.…',
    'aria-describedby': 'checkin-code-help',
  });
  const codeError = h('p', { class: 'form-error', 'data-testid': 'checkin-code-error', id: 'checkin-code-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'checkin-submit' }, 'Check in');
  const form = h(
    'form',
    { class: 'panel checkin-form', novalidate: true },
    h('label', { for: 'checkin-code' }, 'Ticket code'),
    h('div', { class: 'inline-form' }, input, submit),
    h('p', { class: 'muted small', id: 'checkin-code-help' }, 'Type or paste the code printed under the QR code (it starts with SQ1.), or use a hand scanner.'),
    codeError,
  );
  const overlay = h('div', { class: 'checkin-result', 'data-testid': 'checkin-result', role: 'alert', hidden: true, tabindex: '-1' });
  let busy = false;
  let dismissTimer = null;
  let lastCode = null;
  let quietUntil = 0;

  function renderCounts() {
    countsEl.textContent = `Admitted here: ${counts.admitted} · refused: ${counts.refused}`;
  }

  /** Send a code; show the verdict. `from`: 'camera' or 'typed'. */
  async function check(code, from) {
    if (busy) return;
    busy = true;
    submit.disabled = true;
    lastCode = code;
    try {
      const r = await api('POST', '/v1/admin/checkins', { body: { code, event_id: eventId }, signal: scope.signal });
      if (!scope.alive) return;
      showVerdict('admitted', 'admitted', r.data, from);
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      const verdict = err instanceof ApiError && REFUSALS[err.code] ? 'refused' : 'error';
      showVerdict(verdict, err.code || 'error', err, from);
    }
  }

  function showVerdict(result, code, data, from) {
    let title;
    let lines;
    if (result === 'admitted') {
      counts.admitted++;
      title = 'Admitted';
      lines = [data.seat_id ? `Seat ${data.seat_id}` : `${data.section} · standing`, `Ticket holder: ${data.holder_user_id}`];
    } else if (result === 'refused') {
      counts.refused++;
      const [heading, why] = REFUSALS[code];
      title = heading;
      lines = [why];
      const p = data.problem || {};
      if (code === 'already_checked_in' && p.checked_in_at) lines.push(`Checked in ${when(p.checked_in_at)}.`);
    } else {
      title = 'Not checked — scan again';
      lines = [data.detail || 'No answer from seatq.'];
    }
    overlay.dataset.result = result;
    overlay.dataset.code = code;
    overlay.dataset.from = from;
    const next = h('button', { type: 'button', class: 'big', 'data-testid': 'checkin-next', on: { click: dismiss } }, 'Scan next');
    fill(
      overlay,
      h(
        'div',
        { class: 'checkin-verdict' },
        h('p', { class: 'checkin-mark', 'aria-hidden': 'true' }, result === 'admitted' ? '✓' : result === 'refused' ? '✕' : '!'),
        h('h2', { 'data-testid': 'checkin-verdict' }, title),
        lines.map((l) => h('p', { class: 'checkin-line' }, l)),
        next,
      ),
    );
    overlay.hidden = false;
    document.body.classList.add('checkin-showing');
    overlay.focus({ preventScroll: true });
    last.dataset.result = result;
    last.dataset.code = code;
    last.textContent = `Last: ${title}${result === 'admitted' ? ` — ${lines[0]}` : ''}`;
    renderCounts();
    if (navigator.vibrate) navigator.vibrate(result === 'admitted' ? 80 : [60, 60, 60]);
    clearTimeout(dismissTimer);
    dismissTimer = setTimeout(dismiss, result === 'admitted' ? SHOW_ADMITTED_MS : SHOW_REFUSED_MS);
  }

  function dismiss() {
    clearTimeout(dismissTimer);
    if (overlay.hidden) return;
    overlay.hidden = true;
    document.body.classList.remove('checkin-showing');
    quietUntil = Date.now() + SAME_CODE_QUIET_MS;
    busy = false;
    submit.disabled = false;
    input.value = '';
    input.focus();
  }
  scope.on(() => {
    clearTimeout(dismissTimer);
    document.body.classList.remove('checkin-showing');
  });
  overlay.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' || e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      dismiss();
    }
  });
  overlay.addEventListener('click', dismiss);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const code = input.value.trim();
    codeError.hidden = true;
    input.removeAttribute('aria-invalid');
    if (!TICKET_CODE.test(code)) {
      codeError.textContent = code
        ? 'That is not a ticket code: SQ1. and 48 letters, digits, - or _.'
        : 'Type or paste the ticket’s code.';
      codeError.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'checkin-code-error');
      input.focus();
      return;
    }
    input.setAttribute('aria-describedby', 'checkin-code-help');
    check(code, 'typed');
  });

  /** The camera and the browser's QR reader, where there are both. */
  async function startCamera() {
    if (!('BarcodeDetector' in window)) {
      camera.dataset.state = 'unsupported';
      fill(camera, h('p', { class: 'muted' }, 'This browser cannot read QR codes with the camera: type or paste the code below.'));
      return;
    }
    let detector;
    try {
      const formats = window.BarcodeDetector.getSupportedFormats ? await window.BarcodeDetector.getSupportedFormats() : ['qr_code'];
      if (!formats.includes('qr_code')) throw new Error('no QR code support');
      detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    } catch {
      camera.dataset.state = 'unsupported';
      fill(camera, h('p', { class: 'muted' }, 'This browser cannot read QR codes: type or paste the code below.'));
      return;
    }
    const video = h('video', { class: 'checkin-video', muted: true, playsinline: true, autoplay: true, 'aria-label': 'Camera view' });
    fill(camera, video, h('p', { class: 'muted small', 'data-testid': 'checkin-camera-hint' }, 'Hold the ticket’s QR code in front of the camera.'));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (err) {
      if (!scope.alive) return;
      camera.dataset.state = 'blocked';
      fill(camera, h('p', { class: 'muted' }, `No camera (${err && err.name ? err.name : 'unavailable'}): type or paste the code below.`));
      return;
    }
    if (!scope.alive) {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    scope.on(() => {
      for (const t of stream.getTracks()) t.stop();
    });
    video.srcObject = stream;
    video.play().catch(() => {});
    camera.dataset.state = 'scanning';
    let scanning = false;
    scope.interval(async () => {
      if (busy || scanning || !overlay.hidden || video.readyState < 2) return;
      scanning = true;
      try {
        const found = await detector.detect(video);
        if (!scope.alive || busy) return;
        const hit = found.map((b) => String(b.rawValue || '').trim()).find((v) => TICKET_CODE.test(v));
        if (hit && !(hit === lastCode && Date.now() < quietUntil)) check(hit, 'camera');
      } catch {
        // A frame the reader could not use: try the next one.
      } finally {
        scanning = false;
      }
    }, SCAN_EVERY_MS);
  }

  async function load() {
    fill(body, loading());
    try {
      const event = await eventDetail(eventId);
      if (!scope.alive) return;
      heading.textContent = `Check-in · ${event.title}`;
      document.title = `Check-in · ${event.title} · seatq`;
      fill(
        body,
        h('p', { class: 'muted' }, `${event.venue.name} · ${when(event.starts_at)} · tickets for other events are refused.`),
        h('div', { class: 'checkin-layout' }, camera, h('div', {}, form, last, countsEl)),
        overlay,
      );
      renderCounts();
      input.focus();
      startCamera();
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
    }
  }
  load();
}
