/**
 * murmur3_x86_32 of `utf8(salt + key)` with seed 0, and the split bucket of a hash.
 *
 * A small implementation of our own rather than an npm package, on purpose: the widely used
 * packages hash the string's UTF-16 code units or their low bytes (`murmurhash`,
 * `imurmurhash`, `murmurhash-js`), which differs from the UTF-8 bytes the spec hashes as soon
 * as a key is not ASCII, or take a byte array (`murmurhash3js-revisited`), which would cost a
 * `TextEncoder` allocation per evaluation. This one streams the UTF-8 bytes of salt and key
 * straight from the strings into the hash (no concatenation, no buffer, no allocation), and a
 * split hashes its salt once (`saltState`), then only each unit's bytes (`hashFrom`); `tests/vectors/bucketing.json`
 * (murmur3 known answers plus 3,000+ salt/key/weight pairs generated with PyPI `mmh3`) pins it
 * bit for bit in `test/bucketing.test.ts`.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * The murmur3 state after some bytes: `h` after every whole 4-byte block, the `shift / 8`
 * bytes still pending in `k` (little-endian), and the byte count so far. A split keeps its
 * salt's state (`saltState`), so an evaluation hashes only the unit's bytes (issue 18, as the
 * Rust engine's `SaltedHash` does).
 */
export interface HashState {
  readonly h: number;
  readonly k: number;
  readonly shift: number;
  readonly len: number;
}

// `absorb` leaves its state here (one thread, and nothing between `absorb` and its reader can
// run another hash), so hashing allocates nothing.
let outH = 0;
let outK = 0;
let outShift = 0;
let outLen = 0;

/**
 * Feeds the UTF-8 bytes of `s` into the state (h, k, shift, len), four at a time into the block
 * mix as they are encoded, leaving the new state in `out*`. Lone surrogates encode as U+FFFD,
 * like `TextEncoder`.
 */
function absorb(h: number, k: number, shift: number, len: number, s: string): void {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    // Fast path: four ASCII characters make one 32-bit word, placed after the pending bytes.
    while (i + 3 < n) {
      const c0 = s.charCodeAt(i);
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      if ((c0 | c1 | c2 | c3) >= 0x80) break;
      const w = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
      if (shift === 0) {
        h = mixH(h, w);
      } else {
        h = mixH(h, k | (w << shift));
        k = w >>> (32 - shift);
      }
      len += 4;
      i += 4;
    }
    if (i >= n) break;
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      k |= c << shift;
      len++;
      shift += 8;
      if (shift === 32) {
        h = mixH(h, k);
        k = 0;
        shift = 0;
      }
      continue;
    }
    let cp = c;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A surrogate pair across the salt and the key does not occur in practice; each string's
      // pairs are joined here and a lone one becomes U+FFFD.
      const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else {
        cp = 0xfffd;
      }
    }
    let count: number;
    let bytes: number; // up to four bytes, first in the low byte
    if (cp < 0x800) {
      count = 2;
      bytes = (0xc0 | (cp >> 6)) | ((0x80 | (cp & 0x3f)) << 8);
    } else if (cp < 0x10000) {
      count = 3;
      bytes = (0xe0 | (cp >> 12)) | ((0x80 | ((cp >> 6) & 0x3f)) << 8) | ((0x80 | (cp & 0x3f)) << 16);
    } else {
      count = 4;
      bytes =
        (0xf0 | (cp >> 18)) |
        ((0x80 | ((cp >> 12) & 0x3f)) << 8) |
        ((0x80 | ((cp >> 6) & 0x3f)) << 16) |
        ((0x80 | (cp & 0x3f)) << 24);
    }
    for (let j = 0; j < count; j++) {
      k |= ((bytes >>> (8 * j)) & 0xff) << shift;
      len++;
      shift += 8;
      if (shift === 32) {
        h = mixH(h, k);
        k = 0;
        shift = 0;
      }
    }
  }
  outH = h;
  outK = k;
  outShift = shift;
  outLen = len;
}

/** The hash of the bytes absorbed: the pending tail, the length, and the final mix. */
function finish(h: number, k: number, shift: number, len: number): number {
  if (shift !== 0) h ^= mixK(k);
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** murmur3_x86_32 of `utf8(a + b)`, without building the concatenation. */
function hashStrings(a: string, b: string, seed: number): number {
  absorb(seed | 0, 0, 0, 0, a);
  absorb(outH, outK, outShift, outLen, b);
  return finish(outH, outK, outShift, outLen);
}

/** The state after `salt`'s bytes (seed 0), to hash many keys after it with `hashFrom`. */
export function saltState(salt: string): HashState {
  absorb(0, 0, 0, 0, salt);
  return { h: outH, k: outK, shift: outShift, len: outLen };
}

/** `murmur3_x86_32(utf8(salt + key), 0)` from the salt's state: `hashSaltKey(salt, key)`. */
export function hashFrom(state: HashState, key: string): number {
  absorb(state.h, state.k, state.shift, state.len, key);
  return finish(outH, outK, outShift, outLen);
}

/** `murmur3_x86_32(utf8(input), seed)` as an unsigned 32-bit integer. */
export function murmur3(input: string, seed = 0): number {
  return hashStrings(input, "", seed >>> 0);
}

/** `murmur3_x86_32(utf8(salt + key), 0)`, without building the concatenation. */
export function hashSaltKey(salt: string, key: string): number {
  return hashStrings(salt, key, 0);
}

/**
 * `(hash × total) >> 32` in unsigned 64-bit arithmetic, exactly, without BigInt for totals below
 * 2^31 (the spec's maximum): the product is split into 16-bit halves so every partial product
 * stays below 2^53.
 */
export function bucketOf(hash: number, total: number): number {
  // Below 2^21 the product stays below 2^53, so the double is exact, and so is dividing by 2^32.
  if (total < 0x200000) return Math.floor((hash * total) / 4294967296);
  if (total < 0x80000000) {
    const a = (hash >>> 16) * total; // < 2^47
    const b = (hash & 0xffff) * total; // < 2^47
    return Math.floor((a + Math.floor(b / 65536)) / 65536);
  }
  return Number((BigInt(hash) * BigInt(total)) >> 32n);
}
