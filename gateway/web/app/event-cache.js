// Event details (`GET /v1/events/{id}`), cached for a minute: the event page, the hold and
// booking pages and the user stream all want an event's title, sections and prices, often
// the same event several times in a row.

import { api } from '../api.js';

const eventCache = new Map();

/** An event's details: from the cache when under a minute old, unless `fresh`. */
export function eventDetail(id, { fresh = false } = {}) {
  const hit = eventCache.get(id);
  if (hit && !fresh && Date.now() - hit.at < 60000) return hit.promise;
  const promise = api('GET', `/v1/events/${encodeURIComponent(id)}`).then((r) => r.data);
  eventCache.set(id, { at: Date.now(), promise });
  promise.catch(() => eventCache.delete(id));
  return promise;
}

/** Drop an event from the cache (its details changed). */
export function forgetEvent(id) {
  eventCache.delete(id);
}
