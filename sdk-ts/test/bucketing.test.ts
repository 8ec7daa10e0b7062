/** tests/vectors/bucketing.json bit for bit: murmur3 known answers and (salt, key, total) → bucket. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bucketOf, hashSaltKey, murmur3 } from "@flagwire/sdk";
import { hashFrom, saltState } from "../src/engine/murmur3.js";
import { VECTORS } from "./support/vectors.js";

interface Bucketing {
  murmur3: { input: string; seed: number; hash: number }[];
  buckets: { salt: string; key: string; totalWeight: number; hash: number; bucket: number }[];
}
const file = JSON.parse(readFileSync(join(VECTORS, "bucketing.json"), "utf8")) as Bucketing;

describe("bucketing.json", () => {
  it(`murmur3 known answers (${file.murmur3.length})`, () => {
    for (const c of file.murmur3) expect(murmur3(c.input, c.seed), JSON.stringify(c)).toBe(c.hash);
  });

  it(`salt + key → hash and bucket (${file.buckets.length} pairs)`, () => {
    expect(file.buckets.length).toBeGreaterThan(3000);
    for (const c of file.buckets) {
      const h = hashSaltKey(c.salt, c.key);
      expect(h, JSON.stringify(c)).toBe(c.hash);
      // What splits do: the salt's state kept, then only the key's bytes.
      expect(hashFrom(saltState(c.salt), c.key), JSON.stringify(c)).toBe(c.hash);
      expect(murmur3(c.salt + c.key), JSON.stringify(c)).toBe(c.hash);
      expect(bucketOf(h, c.totalWeight), JSON.stringify(c)).toBe(c.bucket);
      // The exact 64-bit formula, independently.
      expect(Number((BigInt(h) * BigInt(c.totalWeight)) >> 32n)).toBe(c.bucket);
    }
  });

  it("buckets at the extremes", () => {
    expect(bucketOf(0xffffffff, 100)).toBe(99);
    expect(bucketOf(0, 100)).toBe(0);
    expect(bucketOf(0xffffffff, 2 ** 31 - 1)).toBe(2 ** 31 - 2);
    expect(bucketOf(0xffffffff, 2 ** 32)).toBe(2 ** 32 - 1);
  });

  it("long and non-ASCII inputs (buffer growth, surrogates)", () => {
    const long = "é😀x".repeat(500);
    expect(hashSaltKey(long, long)).toBe(murmur3(long + long));
    // A lone surrogate hashes as U+FFFD, like TextEncoder.
    expect(murmur3("a\ud800b")).toBe(murmur3("a\ufffdb"));
  });

  it("a salt's state then a key hashes as salt + key, for salts of every length mod 4", () => {
    const pieces = ["", "a", "é", "😀", "ab", "abc", "\ud800", "xyz1"];
    let checked = 0;
    for (const a of pieces) {
      for (const b of pieces) {
        for (const c of pieces) {
          const salt = a + b + c;
          const state = saltState(salt);
          for (const key of ["", "u", "user-1234567", "é😀é", "\udc00x", salt]) {
            expect(hashFrom(state, key), JSON.stringify([salt, key])).toBe(hashSaltKey(salt, key));
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(8 ** 3 * 6);
  });
});
