/** tests/vectors/histogram.json: exact bucket indexes (number and BigInt paths) and merges. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BOUNDARIES, bucketIndex, Histogram } from "@flagwire/sdk";
import { VECTORS } from "./support/vectors.js";

interface Quantile {
  index: number | null;
  upperBoundUs: number;
}
interface HistogramFile {
  boundaries: string[];
  indices: { value: string; index: number | null }[];
  merges: {
    description: string;
    histograms: string[][];
    expected: {
      count: number;
      sum: string;
      zeroCount: number;
      offset: number;
      bucketCounts: number[];
      p50: Quantile | null;
      p95: Quantile | null;
      p99: Quantile | null;
    };
  }[];
}
const file = JSON.parse(readFileSync(join(VECTORS, "histogram.json"), "utf8")) as HistogramFile;

function closeTo(got: number, want: number): void {
  expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * Math.abs(want));
}

describe("histogram.json", () => {
  it("the boundaries are the spec's", () => {
    expect(BOUNDARIES.map(String)).toEqual(file.boundaries);
  });

  it(`bucket indexes (${file.indices.length} values)`, () => {
    expect(file.indices.length).toBeGreaterThan(2000);
    let fast = 0;
    for (const c of file.indices) {
      const v = BigInt(c.value);
      expect(bucketIndex(v) ?? null, c.value).toBe(c.index);
      if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        fast++;
        expect(bucketIndex(Number(v)) ?? null, `${c.value} as a number`).toBe(c.index);
      }
    }
    expect(fast).toBeGreaterThan(500);
  });

  for (const m of file.merges) {
    it(`merge: ${m.description}`, () => {
      const merged = new Histogram();
      for (const values of m.histograms) {
        const h = new Histogram();
        for (const v of values) h.record(BigInt(v) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : BigInt(v));
        merged.merge(h);
      }
      const e = m.expected;
      expect(merged.count).toBe(e.count);
      expect(merged.zeroCount).toBe(e.zeroCount);
      expect(merged.buckets.length === 0 ? 0 : merged.offset).toBe(e.offset);
      expect(merged.buckets).toEqual(e.bucketCounts);
      if (BigInt(e.sum) < 2n ** 53n) expect(merged.sum).toBe(Number(e.sum));
      const wire = merged.toProto();
      expect(wire.bucketCounts.map(Number)).toEqual(e.bucketCounts);
      expect(Histogram.fromProto(wire)?.buckets).toEqual(e.bucketCounts);
      for (const [q, want] of [
        [0.5, e.p50],
        [0.95, e.p95],
        [0.99, e.p99],
      ] as const) {
        const got = merged.quantile(q);
        if (want === null) {
          expect(got).toBeUndefined();
        } else {
          expect(got?.index ?? null).toBe(want.index);
          closeTo(got?.upperBoundUs ?? NaN, want.upperBoundUs);
        }
      }
    });
  }
});
