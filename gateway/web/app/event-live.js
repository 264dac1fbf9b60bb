// Keeping the event page's seat map current: the snapshot (`GET /v1/events/{id}/seats`,
// conditional on its ETag), the live seat changes of the event's stream (SSE; polling the
// snapshot every 3 s while the stream is unavailable), the counts above the map, and what
// a change means for the selection ("Just taken by someone else"). The snapshot and the
// stream are ordered by the same log position, so neither undoes the other. Separate so the
// ordering rules stay in one small place, away from the page's panels.

import { api, LiveFeed } from '../api.js';
import { h } from '../util.js';
import { toast } from './ui.js';

const POLL_MAP_MS = 3000;

/** The live part of an event page (`page`: event-state.js). */
export function liveUpdates(page) {
  const { scope, eventId } = page;
  const indicator = h('span', { class: 'live', 'data-testid': 'live-indicator', 'data-mode': 'connecting' }, 'Connecting…');
  const countsEl = h('span', { class: 'counts', 'data-testid': 'map-counts' });
  // What the map shows: the position of the last snapshot or delta applied.
  let pos = -1;
  let etag = null;
  const recentDeltas = [];
  let countsFrame = 0;

  function renderCounts() {
    cancelAnimationFrame(countsFrame);
    countsFrame = requestAnimationFrame(() => {
      const c = page.seatMap.counts();
      countsEl.textContent = `${c.available.toLocaleString()} available · ${c.held.toLocaleString()} held · ${c.sold.toLocaleString()} sold`;
    });
  }

  /** The first snapshot, fetched with the event's details (`firstEtag` its ETag). */
  function begin(map, firstEtag) {
    etag = firstEtag;
    applySnapshot(map);
  }

  function applySnapshot(map) {
    page.seatMap.setData(map);
    pos = map.position.next_offset;
    // Deltas newer than this snapshot (it may be up to a second old) go on top.
    for (const d of recentDeltas) if (d.next_offset > pos) applyDelta(d, true);
    afterChange();
  }

  function applyDelta(d, replay = false) {
    if (typeof d.next_offset === 'number' && d.next_offset <= pos) return;
    const changed = page.seatMap.applyChanges(d.seats || [], d.sections || []);
    if (typeof d.next_offset === 'number') pos = d.next_offset;
    if (!replay) afterChange(changed);
  }

  /** The map changed (`changed`: these seat ids, or unknown): counts, selection, seat info. */
  function afterChange(changed = null) {
    const { selected, inFlight, seatMap } = page;
    renderCounts();
    const gone = [];
    for (const id of selected.keys()) {
      // Seats of the request in flight: its answer says who got them.
      if (inFlight.has(id)) continue;
      const info = seatMap.info(id);
      if (!info || info.status !== 'available') gone.push(id);
    }
    if (gone.length) {
      for (const id of gone) selected.delete(id);
      page.selection.render();
      toast(`Just taken by someone else: ${gone.join(', ')}.`, { kind: 'warn' });
    }
    if (changed) page.seatInfo.refresh(changed);
  }

  async function fetchMap({ conditional = true } = {}) {
    const r = await api('GET', `/v1/events/${eventId}/seats`, {
      etag: conditional ? etag : null,
      signal: scope.signal,
      auth: false,
    });
    if (!scope.alive || r.status === 304) return;
    etag = r.etag;
    applySnapshot(r.data);
  }

  function onSeatDelta(d) {
    if (!d) return;
    recentDeltas.push(d);
    if (recentDeltas.length > 500) recentDeltas.splice(0, recentDeltas.length - 500);
    if (page.loaded) applyDelta(d);
  }

  /** Follow the event's stream for the page's lifetime. */
  function start() {
    const feed = new LiveFeed({
      url: `/v1/events/${eventId}/stream`,
      handlers: {
        seat_status_changed: onSeatDelta,
        resync: () => fetchMap({ conditional: false }).catch(() => {}),
        reconnect: () => {
          indicator.dataset.mode = 'connecting';
          indicator.textContent = 'Reconnecting…';
        },
      },
      poll: () => fetchMap(),
      pollMs: POLL_MAP_MS,
      onOpen: () => fetchMap().catch(() => {}),
      onMode: (mode) => {
        indicator.dataset.mode = mode;
        indicator.textContent = { live: 'Live', polling: 'Updating every 3 s', connecting: 'Connecting…' }[mode];
        indicator.title =
          mode === 'live' ? 'Seat changes appear as they happen' : 'Live updates are unavailable; the map refreshes every 3 seconds';
      },
    }).start();
    scope.on(() => feed.stop());
  }

  return { indicator, countsEl, begin, renderCounts, afterChange, start };
}
