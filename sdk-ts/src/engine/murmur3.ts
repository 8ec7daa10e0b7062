/**
 * murmur3_x86_32 of `utf8(salt + key)` with seed 0, and the split bucket of a hash.
 *
 * A small implementation of our own rather than an npm package, on purpose: the widely used
 * packages hash the string's UTF-16 code units or their low bytes (`murmurhash`,
 * `imurmurhash`, `murmurhash-js`), which differs from the UTF-8 bytes the spec hashes as soon
 * as a key is not ASCII, or take a byte array (`murmurhash3js-revisited`), which would cost a
 * `TextEncoder` allocation per evaluation. This one encodes salt and key as UTF-8 into a reused
 * buffer (no allocation on the hot path) and hashes it; `tests/vectors/bucketing.json`
 * (murmur3 known answers plus 3,000+ salt/key/weight pairs generated with PyPI `mmh3`) pins it
 * bit for bit in `test/bucketing.test.ts`.
 */

let buffer = new Uint8Array(256);

function grow(needed: number): void {
  let size = buffer.length;
  while (size < needed) size *= 2;
  const next = new Uint8Array(size);
  next.set(buffer); // keeps the salt already written when the key needs more room
  buffer = next;
}

/** Writes the UTF-8 bytes of `s` at `at`; lone surrogates become U+FFFD like `TextEncoder`. */
function writeUtf8(s: string, at: number): number {
  const n = s.length;
  // At most 3 bytes per UTF-16 code unit.
  if (at + n * 3 > buffer.length) grow(at + n * 3);
  const b = buffer;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      b[at++] = c;
    } else if (c < 0x800) {
      b[at++] = 0xc0 | (c >> 6);
      b[at++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          b[at++] = 0xf0 | (cp >> 18);
          b[at++] = 0x80 | ((cp >> 12) & 0x3f);
          b[at++] = 0x80 | ((cp >> 6) & 0x3f);
          b[at++] = 0x80 | (cp & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      b[at++] = 0xe0 | (c >> 12);
      b[at++] = 0x80 | ((c >> 6) & 0x3f);
      b[at++] = 0x80 | (c & 0x3f);
    }
  }
  return at;
}

function hashBytes(b: Uint8Array, len: number, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = len & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail !== 0) {
    let k = 0;
    if (tail === 3) k ^= b[i + 2]! << 16;
    if (tail >= 2) k ^= b[i + 1]! << 8;
    k ^= b[i]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `murmur3_x86_32(utf8(input), seed)` as an unsigned 32-bit integer. */
export function murmur3(input: string, seed = 0): number {
  const len = writeUtf8(input, 0);
  return hashBytes(buffer, len, seed >>> 0);
}

/** `murmur3_x86_32(utf8(salt + key), 0)`, without building the concatenation. */
export function hashSaltKey(salt: string, key: string): number {
  const len = writeUtf8(key, writeUtf8(salt, 0));
  return hashBytes(buffer, len, 0);
}

/**
 * `(hash × total) >> 32` in unsigned 64-bit arithmetic, exactly, without BigInt for totals below
 * 2^31 (the spec's maximum): the product is split into 16-bit halves so every partial product
 * stays below 2^53.
 */
export function bucketOf(hash: number, total: number): number {
  if (total < 0x80000000) {
    const a = (hash >>> 16) * total; // < 2^47
    const b = (hash & 0xffff) * total; // < 2^47
    return Math.floor((a + Math.floor(b / 65536)) / 65536);
  }
  return Number((BigInt(hash) * BigInt(total)) >> 32n);
}
