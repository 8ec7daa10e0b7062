#!/usr/bin/env python3
"""Generates tests/vectors/histogram.json: latency-histogram bucket indexes and merges.

    .venv/bin/python tests/vectors/gen/histogram.py          # (re)writes histogram.json
    .venv/bin/python tests/vectors/gen/histogram.py --check  # exit 1 if the file differs

Written from docs/evaluation.md ("Latency histograms"), independently of core/src/histogram.rs.
The bucket index comes straight from the definition with Python's big integers:
bucket i holds v when 2^(i/8) < v <= 2^((i+1)/8), i.e. 2^i < v^8 <= 2^(i+1), so i + 1 is the
least j with v^8 <= 2^j, which is (v^8 - 1).bit_length(). No floating point is involved.
The spec's fast algorithm (normalise to [2^63, 2^64), compare with eight constants) is
implemented too, its constants derived here by integer 8th roots, and asserted equal to the
definition on every value written.

The output is a pure function of this file (a fixed splitmix64 stream, no `random`, no clock),
so re-running it produces identical bytes; gen/check.py regenerates it in memory and compares.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import vectorfile

OUT = Path(__file__).resolve().parent.parent / "histogram.json"

U64_MAX = (1 << 64) - 1
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def index(v: int) -> int | None:
    """The bucket index of v at scale 3 by the definition; None for 0 (the zero bucket)."""
    if v == 0:
        return None
    return (v**8 - 1).bit_length() - 1


def iroot8(n: int) -> int:
    """The largest r with r**8 <= n (binary search on integers)."""
    lo, hi = 0, 1 << ((n.bit_length() + 7) // 8)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid**8 <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


# T[k] = floor(2^(63 + k/8)), the spec's constants.
T = [iroot8(1 << (504 + k)) for k in range(8)]


def index_fast(v: int) -> int | None:
    """The spec's algorithm, as the SDKs implement it."""
    if v == 0:
        return None
    e = v.bit_length() - 1
    m = v << (63 - e)
    if m == 1 << 63:
        return 8 * e - 1
    k = max(k for k in range(8) if m > T[k])
    return 8 * e + k


def upper_bound(i: int) -> float:
    return 2.0 ** ((i + 1) / 8)


class Histogram:
    """Counts by bucket index, the zero count, the count and the exact integer sum."""

    def __init__(self):
        self.count = 0
        self.sum = 0
        self.zero = 0
        self.buckets: dict[int, int] = {}

    def record(self, v: int) -> None:
        self.count += 1
        self.sum += v
        i = index(v)
        if i is None:
            self.zero += 1
        else:
            self.buckets[i] = self.buckets.get(i, 0) + 1

    def merge(self, other: "Histogram") -> None:
        self.count += other.count
        self.sum += other.sum
        self.zero += other.zero
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n

    def dense(self) -> tuple[int, list[int]]:
        """(offset, bucketCounts): dense from the lowest to the highest non-empty bucket."""
        if not self.buckets:
            return 0, []
        lo, hi = min(self.buckets), max(self.buckets)
        return lo, [self.buckets.get(i, 0) for i in range(lo, hi + 1)]

    def quantile(self, q: float) -> dict | None:
        """rank = ceil(q * count) in IEEE double; the zero bucket first, then by index."""
        if self.count == 0:
            return None
        rank = min(max(math.ceil(q * self.count), 1), self.count)
        if rank <= self.zero:
            return {"index": None, "upperBoundUs": 0.0}
        seen = self.zero
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                return {"index": i, "upperBoundUs": upper_bound(i)}
        raise AssertionError("count and buckets disagree")


def merged(histograms: list[list[int]]) -> dict:
    total = Histogram()
    for values in histograms:
        h = Histogram()
        for v in values:
            h.record(v)
        total.merge(h)
    offset, counts = total.dense()
    out = {
        "count": total.count,
        "sum": str(total.sum),
        "zeroCount": total.zero,
        "offset": offset,
        "bucketCounts": counts,
    }
    for name, q in QUANTILES:
        out[name] = total.quantile(q)
    return out


# splitmix64: a tiny PRNG whose output is fixed forever (the same as gen/bucketing.py's).
_MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n


def _latency(rng: SplitMix64, lo_bits: int, hi_bits: int) -> int:
    """A log-uniform-ish latency: a random bit length in [lo_bits, hi_bits], random mantissa."""
    bits = lo_bits + rng.below(hi_bits - lo_bits + 1)
    if bits == 0:
        return 0
    return (1 << (bits - 1)) | rng.below(1 << (bits - 1))


def index_values() -> list[int]:
    values = {0, 1, 2, 3, U64_MAX, U64_MAX - 1}
    for e in range(64):
        p = 1 << e
        values.update({p - 1, p, p + 1})
    # Both sides of every irrational boundary 2^(j/8) (j not a multiple of 8) up to 2^(511/8).
    for j in range(1, 512):
        if j % 8 == 0:
            continue
        floor = iroot8(1 << j)
        values.update({floor - 1, floor, floor + 1, floor + 2})
    rng = SplitMix64(0x4849_5354_4F47_5241)  # "HISTOGRA"
    for _ in range(200):
        values.add(rng.next())
        values.add(_latency(rng, 1, 40))
    return sorted(v for v in values if 0 <= v <= U64_MAX)


def merge_cases() -> list[dict]:
    rng = SplitMix64(0x4D45_5247_4553_0001)
    cases = [
        ("no histograms at all", []),
        ("one empty histogram", [[]]),
        ("a single value of 1 (bucket -1, upper bound 1)", [[1]]),
        ("zeros only: every quantile is the zero bucket", [[0, 0], [0]]),
        ("zeros then values: p50 in the zero bucket, p95 and p99 above",
         [[0] * 10 + [150], [0] * 5, [900, 1200, 4000] + [0]]),
        ("20 values: p95 rank 0.95 * 20 = 19 exactly, p50 rank 10",
         [list(range(1, 21))]),
        ("100 values in two histograms: p99 rank 99, p95 rank 95, p50 rank 50",
         [list(range(1, 21)), [1000 + 37 * k for k in range(80)]]),
        ("disjoint ranges: the dense buckets fill the gap with zeros",
         [[1, 2, 3, 5, 8], [1_000_000, 2_000_000, 9_999_999]]),
        ("powers of two sit on bucket boundaries (2^e is in bucket 8e - 1)",
         [[1 << e for e in range(0, 40, 3)], [(1 << e) + 1 for e in range(0, 40, 3)]]),
        ("values just below and above irrational boundaries",
         [[iroot8(1 << j) for j in range(40, 200, 7)],
          [iroot8(1 << j) + 1 for j in range(40, 200, 7)]]),
        ("extremes 1 and 2^64 - 1: 513 buckets, the most a histogram can hold",
         [[1], [U64_MAX], [U64_MAX, 1 << 63]]),
        ("empty histograms among non-empty ones",
         [[], [250, 260, 270], [], [0], []]),
        ("one hour in microseconds and one microsecond", [[3_600_000_000, 1], [3_600_000_000]]),
    ]
    for n in (3, 5):
        cases.append((
            f"{n} instances of typical latencies (100 us to 2 s, log-uniform)",
            [[_latency(rng, 7, 21) for _ in range(1 + rng.below(200))] for _ in range(n)],
        ))
    cases.append((
        "a slow tail: 990 fast values and 10 very slow ones (p99 rank 990 is the last fast one)",
        [[_latency(rng, 8, 10) for _ in range(990)], [_latency(rng, 30, 34) for _ in range(10)]],
    ))
    cases.append((
        "many small histograms with zeros mixed in",
        [[_latency(rng, 0, 16) for _ in range(rng.below(8))] for _ in range(40)],
    ))
    return [
        {"description": d, "histograms": [[str(v) for v in h] for h in hs], "expected": merged(hs)}
        for d, hs in cases
    ]


def build() -> dict:
    # The generator's own consistency checks: the spec's constants are exact floors of
    # 2^(63 + k/8), and the spec's algorithm equals the definition on every value written.
    for k, t in enumerate(T):
        assert t**8 <= 1 << (504 + k) < (t + 1) ** 8
    assert T[0] == 1 << 63
    values = index_values()
    for v in values:
        assert index_fast(v) == index(v), v
    return {
        "description": (
            "Generated by tests/vectors/gen/histogram.py; do not edit. Latency histograms at "
            "scale 3 (docs/evaluation.md, \"Latency histograms\"). Values are microseconds as "
            "decimal strings (some exceed 2^53). indices: the bucket index of each value, null "
            "for the zero bucket. merges: histograms given as the values recorded into each, "
            "merged; expected count, exact sum (decimal string), zeroCount, offset and dense "
            "bucketCounts, and p50/p95/p99 as {index, upperBoundUs} (null when empty); compare "
            "indexes exactly and upperBoundUs with relative tolerance 1e-9."
        ),
        "boundaries": [str(t) for t in T],
        "indices": [{"value": str(v), "index": index(v)} for v in values],
        "merges": merge_cases(),
    }


def render(doc: dict) -> str:
    """Stable text: one index entry or merge case per line, trailing newline."""
    return vectorfile.render(doc, ['description', 'boundaries'], ['indices', 'merges'])


def generate() -> str:
    return render(build())


def main(argv: list[str]) -> int:
    return vectorfile.main(argv, OUT, "gen/histogram.py", __doc__, generate,
                           lambda d: f"{len(d['indices'])} indices, {len(d['merges'])} merges")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
