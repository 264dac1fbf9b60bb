// The waiting room's proof of work, off the page's thread: a module Web Worker that
// searches nonces (sha256.js). It warms up as soon as it starts (so the hashing code is
// compiled before the first real search), and hashes in slices, yielding between them so
// a newer job or a stop can come in.
//
// In:  {type: 'solve', job, challenge, difficulty, start, step} — try start, start + step,
//      start + 2·step, …;  {type: 'stop'}
// Out: {type: 'ready'} once warm; {type: 'progress', job, tried} every ~100 ms;
//      {type: 'solved', job, nonce, tried}; {type: 'failed', job, message}

import { PowSearch } from './sha256.js';

const SLICE = 20000;

// Yield to the worker's task queue (a message to ourselves: no timer clamping).
const channel = new MessageChannel();
let resume = null;
channel.port1.onmessage = () => resume && resume();
const yieldNow = () =>
  new Promise((resolve) => {
    resume = resolve;
    channel.port2.postMessage(0);
  });

let current = 0;

async function search({ job, challenge, difficulty, start = 0, step = 1 }) {
  current = job;
  try {
    const s = new PowSearch(String(challenge), Number(difficulty), { start, step });
    let reported = performance.now();
    for (;;) {
      if (current !== job) return;
      const nonce = s.run(SLICE);
      if (nonce !== null) {
        self.postMessage({ type: 'solved', job, nonce, tried: s.tried });
        return;
      }
      const now = performance.now();
      if (now - reported >= 100) {
        reported = now;
        self.postMessage({ type: 'progress', job, tried: s.tried });
      }
      await yieldNow();
    }
  } catch (err) {
    self.postMessage({ type: 'failed', job, message: (err && err.message) || String(err) });
  }
}

self.onmessage = (e) => {
  const m = e.data || {};
  if (m.type === 'solve') search(m);
  else if (m.type === 'stop') current = 0;
};

// Warm up: enough hashing for the engine to optimise the hot code.
new PowSearch('warm-up', 256).run(30000);
self.postMessage({ type: 'ready' });
