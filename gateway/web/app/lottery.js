// #/events/{id}/lottery — checking an event's waiting-room lottery in the browser (public;
// docs/lottery.md). Before the reveal: the commitment (hex SHA-256 of the seed, published
// from the event's creation) and when the seed will be revealed. After it: the seed and
// the entrant list are fetched and checked here with WebCrypto — SHA-256(seed) is the
// commitment, SHA-256(list) is its fingerprint, the list is sorted and as long as
// announced — every draw is recomputed (the first 8 bytes of HMAC-SHA256(seed, tag),
// big-endian, >> 11, / 2^53) and the entrants ordered by it; a signed-in user sees their
// own tag (hex SHA-256("{event_id}:{user_id}")) and place.

import { api, currentSession } from '../api.js';
import { h, fill, when, countdown, onCountdownExpired } from '../util.js';
import { main, isAbort, focusHeading, loading, failure } from './ui.js';
import { eventDetail } from './event-cache.js';

const enc = new TextEncoder();
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

function unhex(s) {
  if (!/^([0-9a-f]{2})*$/i.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const sha256 = async (bytes) => hex(await crypto.subtle.digest('SHA-256', bytes));

/** The draws of `tags` under `seed` (bytes), in the list's order. */
async function draws(seed, tags) {
  const key = await crypto.subtle.importKey('raw', seed, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const out = new Array(tags.length);
  const CHUNK = 512;
  for (let k = 0; k < tags.length; k += CHUNK) {
    const part = tags.slice(k, k + CHUNK);
    const macs = await Promise.all(part.map((t) => crypto.subtle.sign('HMAC', key, enc.encode(t))));
    macs.forEach((mac, j) => {
      const first = new DataView(mac).getBigUint64(0, false);
      out[k + j] = Number(first >> 11n) / 2 ** 53;
    });
  }
  return out;
}

/** #/events/{id}/lottery */
export function viewLottery(scope, eventId) {
  document.title = 'Lottery check · seatq';
  const heading = h('h1', { tabindex: '-1', 'data-testid': 'lottery-title' }, 'Lottery check');
  const body = h('div', { 'data-testid': 'lottery' }, loading());
  fill(
    main,
    h(
      'div',
      { class: 'page lottery-page' },
      h('p', { class: 'crumbs' }, h('a', { href: `#/events/${eventId}`, 'data-testid': 'lottery-event-link' }, '← The event')),
      heading,
      body,
    ),
  );
  focusHeading(heading);

  const checks = h('ul', { class: 'checks', 'data-testid': 'lottery-checks' });
  const verdict = h('p', { class: 'verdict', 'data-testid': 'lottery-verdict', role: 'status' });
  let allOk = true;

  function check(key, ok, text, detail = null) {
    allOk = allOk && ok;
    checks.appendChild(
      h(
        'li',
        { class: ok ? 'ok' : 'bad', 'data-testid': `lottery-check-${key}`, 'data-ok': String(ok) },
        h('span', { class: 'mark', 'aria-hidden': 'true' }, ok ? '✔' : '✘'),
        h('span', { class: 'sr-only' }, ok ? 'Checked: ' : 'Failed: '),
        text,
        detail ? h('span', { class: 'muted small check-detail' }, ` ${detail}`) : null,
      ),
    );
  }

  async function load() {
    let lottery;
    let event = null;
    try {
      const [l, e] = await Promise.all([
        api('GET', `/v1/events/${eventId}/lottery`, { signal: scope.signal, auth: false }),
        eventDetail(eventId).catch(() => null),
      ]);
      if (!scope.alive) return;
      lottery = l.data;
      event = e;
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, failure(err, load));
      return;
    }
    if (event) {
      heading.textContent = `Lottery check · ${event.title}`;
      document.title = `Lottery check · ${event.title} · seatq`;
    }
    body.dataset.revealed = String(lottery.revealed);
    const intro = h(
      'p',
      {},
      'Everyone who joined the waiting room before the sale opened (',
      when(lottery.draw_closes_at),
      ') was let in by a draw, not by when they arrived. The draw’s seed was fixed when the event was created and only its hash published; once revealed, anyone can check the draw here, in this browser, or with ',
      h('code', {}, 'docs/lottery/verify_lottery.py'),
      '.',
    );
    const facts = h(
      'dl',
      { class: 'lottery-facts' },
      h('div', {}, h('dt', {}, 'Commitment, SHA-256 of the seed'), h('dd', {}, h('code', { 'data-testid': 'lottery-commitment' }, lottery.commitment))),
      h('div', {}, h('dt', {}, 'Algorithm'), h('dd', { class: 'small' }, lottery.algorithm)),
    );
    if (!lottery.revealed) {
      fill(
        body,
        intro,
        facts,
        h(
          'p',
          { class: 'notice', 'data-testid': 'lottery-pending' },
          'The seed and the entrant list are revealed at ',
          h('strong', {}, when(lottery.reveal_at)),
          ' (in ',
          countdown(lottery.reveal_at, { 'data-testid': 'lottery-reveal-countdown', 'data-urgent-secs': '0' }),
          '). This page checks them then.',
        ),
      );
      // Look again when the countdown ends, and now and then (clocks differ).
      scope.on(
        onCountdownExpired((el) => {
          if (el.dataset.testid === 'lottery-reveal-countdown') scope.timeout(load, 1000);
        }),
      );
      scope.timeout(load, Math.max(3000, Math.min(30000, Date.parse(lottery.reveal_at) - Date.now() + 1000)));
      return;
    }
    fill(body, intro, facts, loading('Checking the draw…'));
    await verify(lottery, intro, facts);
  }

  async function verify(lottery, intro, facts) {
    allOk = true;
    checks.replaceChildren();
    if (!(window.crypto && crypto.subtle)) {
      fill(
        body,
        intro,
        facts,
        h('p', { class: 'error-box', 'data-testid': 'lottery-no-crypto' }, 'This browser cannot check here (WebCrypto needs a secure page, https). Use docs/lottery/verify_lottery.py instead.'),
      );
      return;
    }
    let listing;
    try {
      const res = await fetch(lottery.entrants_url, { cache: 'no-store', signal: scope.signal });
      if (!res.ok) throw new Error(`the entrant list answered ${res.status}`);
      listing = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (isAbort(err) || !scope.alive) return;
      fill(body, intro, facts, failure(err, () => verify(lottery, intro, facts)));
      return;
    }
    const seed = unhex(lottery.seed || '');
    const seedHash = seed ? await sha256(seed) : '';
    check('seed', seedHash === lottery.commitment, 'The revealed seed hashes to the commitment.', `seed ${lottery.seed}`);
    const listHash = await sha256(listing);
    check('list', listHash === lottery.entrants_fingerprint, 'The entrant list hashes to its fingerprint.', listHash);
    const text = new TextDecoder().decode(listing);
    const tags = text.split('\n');
    if (tags[tags.length - 1] === '') tags.pop();
    const sorted = tags.every((t, i) => i === 0 || tags[i - 1] < t);
    check('count', sorted && tags.length === lottery.entrants, `The list has the ${lottery.entrants} entrants announced, sorted.`, `${tags.length} lines`);
    const d = seed ? await draws(seed, tags) : [];
    if (!scope.alive) return;
    const order = tags.map((t, i) => ({ tag: t, draw: d[i] })).sort((a, b) => a.draw - b.draw || (a.tag < b.tag ? -1 : 1));
    const drawsOk = seed && d.length === tags.length && d.every((x) => x >= 0 && x < 1);
    check('draws', Boolean(drawsOk), `Every draw recomputed: ${tags.length} entrants ordered by HMAC-SHA256(seed, tag).`);

    const session = currentSession();
    let mine = null;
    let place = null;
    let mineEl;
    if (session) {
      mine = await sha256(enc.encode(`${eventId.toLowerCase()}:${session.user_id}`));
      place = order.findIndex((o) => o.tag === mine) + 1;
      mineEl = h(
        'p',
        { class: place ? 'notice lottery-mine' : 'muted lottery-mine', 'data-testid': 'lottery-mine', 'data-place': String(place || ''), 'data-tag': mine },
        place
          ? [h('strong', {}, `You drew place ${place} of ${order.length}.`), ' Your tag: ', h('code', {}, mine)]
          : [`You (${session.user_id}) are not in this lottery: you joined after the draw closed, or not at all. Your tag would be `, h('code', {}, mine), '.'],
      );
    } else {
      mineEl = h('p', { class: 'muted', 'data-testid': 'lottery-mine', 'data-place': '' }, 'Log in to see your own tag and place.');
    }
    body.dataset.ok = String(allOk);
    verdict.dataset.ok = String(allOk);
    verdict.textContent = allOk ? '✔ The draw checks out.' : '✘ The published data does not check out.';
    verdict.className = `verdict ${allOk ? 'ok' : 'bad'}`;
    const shown = order.slice(0, 100);
    fill(
      body,
      intro,
      facts,
      verdict,
      checks,
      h('p', {}, h('strong', { 'data-testid': 'lottery-entrants', 'data-count': String(order.length) }, `${order.length.toLocaleString()} entrants`), ` · revealed ${when(lottery.reveal_at)}`),
      mineEl,
      h('h2', {}, 'The order'),
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { class: 'admin-table lottery-order', 'data-testid': 'lottery-order' },
          h('caption', { class: 'sr-only' }, 'Entrants by draw, first let in first'),
          h('thead', {}, h('tr', {}, ['Place', 'Draw', 'Tag'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            shown.map((o, i) =>
              h(
                'tr',
                { class: o.tag === mine ? 'mine' : null, 'data-testid': 'lottery-entry' },
                h('td', { class: 'num' }, String(i + 1)),
                h('td', { class: 'num' }, o.draw.toFixed(6)),
                h('td', {}, h('code', {}, o.tag)),
              ),
            ),
          ),
        ),
      ),
      order.length > shown.length ? h('p', { class: 'muted small' }, `and ${(order.length - shown.length).toLocaleString()} more.`) : null,
    );
  }

  load();
}
