// Solving a waiting room's proof of work in the browser (see sha256.js for what it is).
//
// The search runs in Web Workers (pow-worker.js) so the page stays responsive: one per
// core up to four, each trying every k-th nonce. `warm()` starts them ahead of time (the
// waiting room calls it when it shows its join button): starting a worker and compiling
// its hashing code takes longer than the search itself at low difficulties. Where module
// workers are not available (or fail to load) the search runs on the page in slices of a
// few milliseconds instead.

import { PowSearch, work } from './sha256.js';

const MAX_WORKERS = 4;
/** Idle workers are let go after this long. */
const IDLE_MS = 120000;

function workerCount() {
  const cores = Number(navigator.hardwareConcurrency) || 2;
  return Math.max(1, Math.min(MAX_WORKERS, cores));
}

/** The workers, started once and reused; null when they could not start. */
let pool = null;
let poolFailed = false;
let idleTimer = null;
let nextJob = 1;

function startPool() {
  if (pool || poolFailed) return pool;
  if (typeof Worker === 'undefined') {
    poolFailed = true;
    return null;
  }
  try {
    pool = Array.from({ length: workerCount() }, () => {
      const w = new Worker(new URL('./pow-worker.js', import.meta.url), { type: 'module' });
      const slot = { worker: w, handler: null, broken: null };
      w.onmessage = (e) => slot.handler && slot.handler(e.data || {});
      // A worker that cannot load (no module workers) fails here.
      w.onerror = (e) => {
        e.preventDefault?.();
        slot.broken = new Error(e.message || 'the proof-of-work worker failed');
        if (slot.handler) slot.handler({ type: 'failed', job: -1, message: slot.broken.message });
      };
      return slot;
    });
  } catch (err) {
    console.warn('proof of work: no workers', err);
    poolFailed = true;
    pool = null;
  }
  return pool;
}

function stopPool() {
  if (!pool) return;
  for (const slot of pool) slot.worker.terminate();
  pool = null;
}

/** Start the workers now, so a solve soon after starts at full speed. */
export function warm() {
  clearTimeout(idleTimer);
  if (startPool()) idleTimer = setTimeout(stopPool, IDLE_MS);
}

/**
 * Find a nonce for `challenge` at `difficulty`. `onProgress({tried, expected, fraction})`
 * hears how far along it is (`fraction`: the chance it would have been found by now).
 * Resolves to `{nonce, tried, ms, workers}` (workers 0: it ran on the page); rejects with
 * an AbortError on `signal`. `useWorkers: false` solves on the page (for tests).
 */
export async function solve(challenge, difficulty, { signal, onProgress = () => {}, useWorkers = true } = {}) {
  const started = performance.now();
  const expected = 2 ** Math.max(0, difficulty);
  const report = (tried) => onProgress({ tried, expected, fraction: 1 - Math.exp(-tried / expected) });
  if (difficulty <= 0) return { nonce: '0', tried: 1, ms: 0, workers: 0 };
  let result;
  try {
    if (!useWorkers) throw new Error('asked to solve on the page');
    result = await inWorkers(challenge, difficulty, signal, report);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    if (useWorkers) {
      console.warn('proof of work: workers unavailable, solving on the page', err);
      stopPool();
      poolFailed = true;
    }
    result = await onPage(challenge, difficulty, signal, report);
  }
  // One hash to be sure of what is sent.
  if (work(challenge, result.nonce) < difficulty) throw new Error('the proof of work came out wrong');
  report(result.tried);
  return { ...result, ms: Math.round(performance.now() - started) };
}

function abortError() {
  return new DOMException('The proof of work was stopped.', 'AbortError');
}

function inWorkers(challenge, difficulty, signal, report) {
  return new Promise((resolve, reject) => {
    clearTimeout(idleTimer);
    const slots = startPool();
    if (!slots) {
      reject(new Error('no Web Workers'));
      return;
    }
    const broken = slots.find((s) => s.broken);
    if (broken) {
      reject(broken.broken);
      return;
    }
    const job = nextJob++;
    const n = slots.length;
    const tried = new Array(n).fill(0);
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      for (const slot of slots) {
        slot.handler = null;
        slot.worker.postMessage({ type: 'stop' });
      }
      signal?.removeEventListener('abort', onAbort);
      idleTimer = setTimeout(stopPool, IDLE_MS);
      fn(value);
    };
    const onAbort = () => finish(reject, abortError());
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort);
    slots.forEach((slot, i) => {
      slot.handler = (m) => {
        if (m.job !== job && m.job !== -1) return; // 'ready', or an older job's last words
        if (m.type === 'progress') {
          tried[i] = m.tried;
          report(tried.reduce((a, b) => a + b, 0));
        } else if (m.type === 'solved') {
          tried[i] = m.tried;
          finish(resolve, { nonce: m.nonce, tried: tried.reduce((a, b) => a + b, 0), workers: n });
        } else if (m.type === 'failed') {
          finish(reject, new Error(m.message));
        }
      };
      slot.worker.postMessage({ type: 'solve', job, challenge, difficulty, start: i, step: n });
    });
  });
}

async function onPage(challenge, difficulty, signal, report) {
  const search = new PowSearch(challenge, difficulty);
  for (;;) {
    if (signal?.aborted) throw abortError();
    const sliceStart = performance.now();
    // ~8 ms of hashing, then let the page breathe.
    while (performance.now() - sliceStart < 8) {
      const nonce = search.run(2000);
      if (nonce !== null) return { nonce, tried: search.tried, workers: 0 };
    }
    report(search.tried);
    await new Promise((r) => setTimeout(r, 0));
  }
}
