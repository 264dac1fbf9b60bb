// SHA-256 in plain JavaScript, and the waiting room's proof-of-work search.
//
// The proof of work (common/src/pow.rs): find a decimal `nonce` such that
// SHA-256(challenge ":" nonce) starts with `difficulty` zero bits — about 2^difficulty
// hashes. crypto.subtle.digest costs a promise and a copy per hash, far too slow for a
// million of them, so the search hashes here: the challenge's whole 64-byte blocks once
// (the midstate), then per nonce only the last block or two, with the nonce's ASCII digits
// counted up in place. With the compression unrolled that is about 3 million hashes a
// second per core in V8 (difficulty 20, a million hashes, a third of a second; the loop
// version manages half that). Used by pow-worker.js (Web Workers) and, where workers fail,
// by the page itself in slices.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const INIT = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/**
 * One SHA-256 compression: `state` (8 words) absorbs the 16 big-endian words of `words`
 * from `offset`; `w` is 64 words of scratch. The plain loop: the reference, and what runs
 * where the unrolled one below cannot be built.
 */
function compressLoop(state, words, offset, w) {
  for (let i = 0; i < 16; i++) w[i] = words[offset + i];
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  let f = state[5];
  let g = state[6];
  let h = state[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}

/**
 * The same compression with its 64 rounds written out: the message schedule in 16 local
 * variables, the constants inline and the working variables renamed instead of shifted.
 * About twice as fast as the loop in V8 (which keeps it all in registers). Its source is
 * generated here rather than kept as 300 lines of text; `new Function` may be refused (a
 * Content-Security-Policy without 'unsafe-eval'), and the result must agree with the loop
 * on a test block, else the loop is used.
 */
function unrolledCompress() {
  const rot = (x, n) => `((${x} >>> ${n}) | (${x} << ${32 - n}))`;
  let src = 'let a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7], t = 0;\n';
  for (let i = 0; i < 16; i++) src += `let w${i} = m[o + ${i}];\n`;
  let v = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  for (let i = 0; i < 64; i++) {
    const [A, B, C, D, E, F, G, H] = v;
    const wi = `w${i % 16}`;
    if (i >= 16) {
      const x = `w${(i - 15) % 16}`;
      const y = `w${(i - 2) % 16}`;
      src += `${wi} = (${wi} + (${rot(x, 7)} ^ ${rot(x, 18)} ^ (${x} >>> 3)) + w${(i - 7) % 16} + (${rot(y, 17)} ^ ${rot(y, 19)} ^ (${y} >>> 10))) | 0;\n`;
    }
    src += `t = (${H} + (${rot(E, 6)} ^ ${rot(E, 11)} ^ ${rot(E, 25)}) + (${G} ^ (${E} & (${F} ^ ${G}))) + ${K[i]} + ${wi}) | 0;\n`;
    src += `${D} = (${D} + t) | 0;\n`;
    src += `${H} = (t + (${rot(A, 2)} ^ ${rot(A, 13)} ^ ${rot(A, 22)}) + ((${A} & ${B}) | (${C} & (${A} | ${B})))) | 0;\n`;
    v = [H, A, B, C, D, E, F, G];
  }
  for (const [i, r] of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].entries()) src += `s[${i}] = (s[${i}] + ${r}) | 0;\n`;
  try {
    // eslint-disable-next-line no-new-func
    const fast = new Function('s', 'm', 'o', src);
    const words = Int32Array.from({ length: 16 }, (_, i) => Math.imul(i + 1, 0x9e3779b9));
    const [x, y] = [INIT.slice(), INIT.slice()];
    compressLoop(x, words, 0, new Int32Array(64));
    fast(y, words, 0);
    if (x.every((word, i) => word === y[i])) return fast;
  } catch {
    // no eval here: the loop it is
  }
  return compressLoop;
}

const compress = unrolledCompress();

/** Which compression runs: `unrolled`, or `loop` where the unrolled one is not allowed. */
export const implementation = compress === compressLoop ? 'loop' : 'unrolled';

const encoder = new TextEncoder();

function bytesOf(input) {
  return typeof input === 'string' ? encoder.encode(input) : input;
}

/** Big-endian words of `bytes` (a multiple of 4 long) into `words` from `at`. */
function toWords(bytes, from, to, words) {
  for (let i = from; i < to; i += 4) {
    words[i >> 2] = (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
  }
}

/** SHA-256 of a string (UTF-8) or bytes, as 8 signed 32-bit words. */
export function sha256Words(input) {
  const data = bytesOf(input);
  const blocks = Math.ceil((data.length + 9) / 64);
  const bytes = new Uint8Array(blocks * 64);
  bytes.set(data);
  bytes[data.length] = 0x80;
  const bits = data.length * 8;
  const view = new DataView(bytes.buffer);
  view.setUint32(bytes.length - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(bytes.length - 4, bits >>> 0);
  const words = new Int32Array(blocks * 16);
  toWords(bytes, 0, bytes.length, words);
  const state = INIT.slice();
  const w = new Int32Array(64);
  for (let b = 0; b < blocks; b++) compress(state, words, b * 16, w);
  return state;
}

/** SHA-256 as lowercase hex. */
export function sha256Hex(input) {
  return [...sha256Words(input)].map((x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
}

/** Leading zero bits of a digest given as words. */
export function leadingZeroBits(words) {
  let bits = 0;
  for (const x of words) {
    const z = Math.clz32(x);
    bits += z;
    if (z < 32) break;
  }
  return bits;
}

/** Leading zero bits of SHA-256(`challenge` ":" `nonce`) (`seatq_common::pow::work`). */
export function work(challenge, nonce) {
  return leadingZeroBits(sha256Words(`${challenge}:${nonce}`));
}

/**
 * A search for a nonce: tries `start`, `start + step`, `start + 2·step`, … (so `step`
 * searches share the work without overlap). `run(budget)` tries up to `budget` nonces and
 * returns the one found or null; call it again to go on.
 */
export class PowSearch {
  constructor(challenge, difficulty, { start = 0, step = 1 } = {}) {
    if (!Number.isInteger(start) || start < 0 || !Number.isInteger(step) || step < 1 || step > 1e6) {
      throw new RangeError('start must be a whole number ≥ 0 and step 1 to 1,000,000');
    }
    this.difficulty = Math.max(0, Math.min(256, difficulty | 0));
    this.step = step;
    this.tried = 0;
    const prefix = bytesOf(`${challenge}:`);
    // The midstate: every whole block of the prefix, hashed once.
    const whole = prefix.length - (prefix.length % 64);
    this.mid = INIT.slice();
    this.w = new Int32Array(64);
    if (whole) {
      const words = new Int32Array(whole / 4);
      toWords(prefix, 0, whole, words);
      for (let b = 0; b < whole / 64; b++) compress(this.mid, words, b * 16, this.w);
    }
    this.hashedLen = whole;
    this.tail = prefix.slice(whole); // < 64 bytes
    this.buf = new Uint8Array(128);
    this.buf.set(this.tail);
    this.words = new Int32Array(32);
    this.state = new Int32Array(8);
    // The nonce as ASCII digits, most significant first.
    this.digits = Array.from(String(start), (c) => c.charCodeAt(0));
    this.stepDigits = Array.from(String(step), (c) => c.charCodeAt(0) - 48).reverse();
    this.layout();
  }

  /** Write the nonce, padding and length into the tail block(s) (after a length change). */
  layout() {
    const t = this.tail.length;
    const n = this.digits.length;
    const total = this.hashedLen + t + n;
    this.blocks = t + n + 9 <= 64 ? 1 : 2;
    const end = this.blocks * 64;
    const buf = this.buf;
    buf.fill(0, t);
    for (let i = 0; i < n; i++) buf[t + i] = this.digits[i];
    buf[t + n] = 0x80;
    const bits = total * 8;
    buf[end - 8] = 0;
    buf[end - 7] = 0;
    buf[end - 6] = 0;
    buf[end - 5] = Math.floor(bits / 2 ** 32) & 0xff;
    buf[end - 4] = (bits >>> 24) & 0xff;
    buf[end - 3] = (bits >>> 16) & 0xff;
    buf[end - 2] = (bits >>> 8) & 0xff;
    buf[end - 1] = bits & 0xff;
    toWords(buf, 0, end, this.words);
  }

  /** The nonce being tried, as a string. */
  get nonce() {
    return String.fromCharCode(...this.digits);
  }

  /** Add `step` to the nonce's digits; re-encode the words that changed. True if it grew. */
  advance() {
    const digits = this.digits;
    const last = digits.length - 1;
    if (this.step < 10 && digits[last] + this.step <= 57) {
      // Most of the time only the last digit moves, and it stays a digit: add to its
      // byte within its word.
      digits[last] += this.step;
      const at = this.tail.length + last;
      this.buf[at] = digits[last];
      this.words[at >> 2] += this.step << (24 - 8 * (at & 3));
      return false;
    }
    const step = this.stepDigits;
    let carry = 0;
    let i = digits.length - 1;
    let k = 0;
    for (; i >= 0 && (k < step.length || carry); i--, k++) {
      const v = digits[i] - 48 + (k < step.length ? step[k] : 0) + carry;
      carry = v >= 10 ? 1 : 0;
      digits[i] = 48 + (v - carry * 10);
    }
    if (k < step.length || carry) {
      // A longer number: the digits above the old most significant one.
      let more = carry;
      const extra = [];
      for (; k < step.length || more; k++) {
        const v = (k < step.length ? step[k] : 0) + more;
        more = v >= 10 ? 1 : 0;
        extra.unshift(48 + (v - more * 10));
      }
      digits.unshift(...extra);
      this.layout();
      return true;
    }
    // Same length: only the digits from i + 1 on changed.
    const t = this.tail.length;
    const from = (t + i + 1) & ~3;
    const to = t + digits.length;
    const buf = this.buf;
    for (let j = Math.max(i + 1, 0); j < digits.length; j++) buf[t + j] = digits[j];
    toWords(buf, from, (to + 3) & ~3, this.words);
    return false;
  }

  /** Try up to `budget` nonces: the solving nonce, or null. */
  run(budget) {
    const need = this.difficulty;
    const { state, mid, words, w } = this;
    const two = this.blocks === 2;
    for (let n = 0; n < budget; n++) {
      state.set(mid);
      compress(state, words, 0, w);
      if (two) compress(state, words, 16, w);
      const z = Math.clz32(state[0]);
      if (z >= need || (z === 32 && leadingZeroBits(state) >= need)) {
        this.tried += n + 1;
        return this.nonce;
      }
      if (this.advance()) {
        // The nonce grew a digit: maybe into a second block.
        this.tried += n + 1;
        return this.run(budget - n - 1);
      }
    }
    this.tried += budget;
    return null;
  }
}
