/**
 * Latency histograms: OpenTelemetry's base-2 exponential layout at the fixed scale 3, for integer
 * microseconds, bucketed exactly as `docs/evaluation.md` ("Latency histograms") specifies, with
 * integer arithmetic only (never a floating-point logarithm), so the server can add histograms
 * from every SDK bucket by bucket. `tests/vectors/histogram.json` pins it.
 *
 * Values up to 2^53 (the usual case; 285 years of microseconds) take a fast path on plain numbers
 * that is exact: for `2^e <= v < 2^(e+1)`, `m = v · 2^(63−e) > T[k]` holds exactly when
 * `v > ⌊T[k] / 2^(63−e)⌋` (v is an integer), and those thresholds are below 2^53. Larger values,
 * and `bigint` inputs, follow the spec's algorithm on `BigInt`.
 */

import { create } from "@bufbuild/protobuf";
import { type ExponentialHistogram, ExponentialHistogramSchema } from "./gen/flagwire/v1/metrics_pb.js";

/** The only scale Flagwire uses: 8 buckets per power of two. */
export const SCALE = 3;
/** The index of the bucket of 1. */
export const MIN_INDEX = -1;
/** The index of the bucket of 2^64 − 1. */
export const MAX_INDEX = 511;

/** `T[k] = ⌊2^(63 + k/8)⌋`, the spec's table. */
export const BOUNDARIES: readonly bigint[] = [
  0x8000000000000000n,
  0x8b95c1e3ea8bd6e6n,
  0x9837f0518db8a96fn,
  0xa5fed6a9b15138ean,
  0xb504f333f9de6484n,
  0xc5672a115506daddn,
  0xd744fccad69d6af4n,
  0xeac0c6e7dd24392en,
];

const U64_MAX = (1n << 64n) - 1n;

// THRESHOLDS[e][k] = ⌊T[k] / 2^(63 − e)⌋ for e = 0..52: exact doubles.
const THRESHOLDS: readonly (readonly number[])[] = Array.from({ length: 53 }, (_, e) =>
  BOUNDARIES.map((t) => Number(t >> BigInt(63 - e))),
);

function indexBig(v: bigint): number | undefined {
  if (v <= 0n) return undefined;
  if (v > U64_MAX) v = U64_MAX;
  const e = v.toString(2).length - 1;
  const m = v << BigInt(63 - e);
  if (m === BOUNDARIES[0]) return 8 * e - 1;
  let k = 0;
  for (let j = 7; j > 0; j--) {
    if (m > BOUNDARIES[j]!) {
      k = j;
      break;
    }
  }
  return 8 * e + k;
}

/**
 * The bucket index of `v` microseconds at scale 3; `undefined` for 0 (the zero bucket). Numbers
 * are floored first; negative values count as 0, values beyond 2^64 − 1 as 2^64 − 1.
 */
export function bucketIndex(v: number | bigint): number | undefined {
  if (typeof v === "bigint") return indexBig(v);
  if (!(v >= 1)) return undefined; // 0, negatives, NaN
  if (v > Number.MAX_SAFE_INTEGER) return indexBig(v === Infinity ? U64_MAX : BigInt(Math.floor(v)));
  v = Math.floor(v);
  // e = ⌊log2 v⌋ from the 32-bit halves (exact for integers below 2^53).
  const hi = Math.floor(v / 4294967296);
  const e = hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(v >>> 0);
  const t = THRESHOLDS[e]!;
  if (v === t[0]) return 8 * e - 1; // a power of two sits exactly on a boundary
  let k = 7;
  while (k > 0 && !(v > t[k]!)) k--;
  return 8 * e + k;
}

/** The upper bound `2^((index + 1) / 8)` of a bucket, in microseconds. */
export function upperBound(index: number): number {
  return 2 ** ((index + 1) / 8);
}

/** A quantile: the bucket holding it (`undefined` for the zero bucket) and its upper bound. */
export interface QuantileAt {
  readonly index: number | undefined;
  readonly upperBoundUs: number;
}

/**
 * A histogram of latencies in integer microseconds. Buckets are dense from `offset` and kept
 * trimmed, so equal contents have equal representations. At most 513 buckets, whatever it is fed.
 */
export class Histogram {
  count = 0;
  sum = 0;
  zeroCount = 0;
  offset = 0;
  buckets: number[] = [];

  /** Whether nothing was recorded. */
  isEmpty(): boolean {
    return this.count === 0;
  }

  /** Records one value (microseconds). */
  record(v: number | bigint): void {
    this.count++;
    this.sum += typeof v === "bigint" ? Number(v) : Math.max(0, Math.floor(v));
    const i = bucketIndex(v);
    if (i === undefined) this.zeroCount++;
    else this.add(i, 1);
  }

  /** Adds every value of `other`. */
  merge(other: Histogram): void {
    this.count += other.count;
    this.sum += other.sum;
    this.zeroCount += other.zeroCount;
    for (let j = 0; j < other.buckets.length; j++) {
      const n = other.buckets[j]!;
      if (n !== 0) this.add(other.offset + j, n);
    }
  }

  private add(index: number, n: number): void {
    const b = this.buckets;
    if (b.length === 0) {
      this.offset = index;
      b.push(n);
      return;
    }
    if (index < this.offset) {
      const grow = this.offset - index;
      b.unshift(...new Array<number>(grow).fill(0));
      this.offset = index;
    } else if (index >= this.offset + b.length) {
      const grow = index - (this.offset + b.length) + 1;
      for (let j = 0; j < grow; j++) b.push(0);
    }
    b[index - this.offset]! += n;
  }

  /** The quantile `q` in (0, 1]; `undefined` when empty or `q` is out of range. */
  quantile(q: number): QuantileAt | undefined {
    if (this.count === 0 || !(q > 0 && q <= 1)) return undefined;
    const rank = Math.min(Math.max(Math.ceil(q * this.count), 1), this.count);
    if (rank <= this.zeroCount) return { index: undefined, upperBoundUs: 0 };
    let seen = this.zeroCount;
    for (let j = 0; j < this.buckets.length; j++) {
      seen += this.buckets[j]!;
      if (seen >= rank) return { index: this.offset + j, upperBoundUs: upperBound(this.offset + j) };
    }
    const last = this.offset + this.buckets.length - 1;
    return { index: last, upperBoundUs: upperBound(last) };
  }

  /** The wire form (`flagwire.v1.ExponentialHistogram`, scale 3). */
  toProto(): ExponentialHistogram {
    return create(ExponentialHistogramSchema, {
      scale: SCALE,
      count: BigInt(this.count),
      sum: this.sum,
      zeroCount: BigInt(this.zeroCount),
      offset: this.buckets.length === 0 ? 0 : this.offset,
      bucketCounts: this.buckets.map((n) => BigInt(n)),
    });
  }

  /** From the wire form; `undefined` when it is not a valid scale-3 histogram. */
  static fromProto(p: ExponentialHistogram): Histogram | undefined {
    if (p.scale !== SCALE) return undefined;
    const h = new Histogram();
    h.count = Number(p.count);
    h.sum = p.sum;
    h.zeroCount = Number(p.zeroCount);
    let total = h.zeroCount;
    p.bucketCounts.forEach((n, j) => {
      total += Number(n);
      if (n !== 0n) {
        const i = p.offset + j;
        if (i < MIN_INDEX || i > MAX_INDEX) total = Number.NaN;
        else h.add(i, Number(n));
      }
    });
    return total === h.count ? h : undefined;
  }
}
