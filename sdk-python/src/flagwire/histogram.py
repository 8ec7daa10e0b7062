"""Latency histograms: OpenTelemetry's base-2 exponential layout at the fixed scale 3.

Every Flagwire SDK puts every value into the same bucket, so that the server can add histograms
from many instances bucket by bucket. The index is therefore computed with integer arithmetic
alone, never a floating-point logarithm (docs/evaluation.md, "Latency histograms";
tests/vectors/histogram.json pins it):

- bucket `i` holds the values `v` with `2^(i/8) < v <= 2^((i+1)/8)`; `0` goes to `zero_count`;
- for `v > 0`: `e = bit_length(v) - 1`, `m = v << (63 - e)` (so `2^63 <= m < 2^64`); a power of
  two (`m == 2^63`) is in bucket `8e - 1`, anything else in `8e + k` for the largest `k` with
  `m > T[k]`, where `T[k] = floor(2^(63 + k/8))`.

Values are unsigned 64-bit microseconds: larger ones are clamped to `2^64 - 1` (bucket 511),
negative ones to 0.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from flagwire._proto.flagwire.v1 import metrics_pb2

SCALE: Final = 3
MIN_INDEX: Final = -1
MAX_INDEX: Final = 511
U64_MAX: Final = 2**64 - 1

BOUNDARIES: Final = (
    0x8000000000000000,  # 2^63
    0x8B95C1E3EA8BD6E6,  # floor(2^(63 + 1/8))
    0x9837F0518DB8A96F,
    0xA5FED6A9B15138EA,
    0xB504F333F9DE6484,  # floor(2^(63 + 4/8)) = floor(sqrt(2) * 2^63)
    0xC5672A115506DADD,
    0xD744FCCAD69D6AF4,
    0xEAC0C6E7DD24392E,  # floor(2^(63 + 7/8))
)
"""`T[k] = floor(2^(63 + k/8))`: the largest integer `r` with `r^8 <= 2^(504 + k)`."""


def bucket_index(value: int) -> int | None:
    """The bucket index of `value` at scale 3, or None for the zero bucket."""
    if value <= 0:
        return None
    if value > U64_MAX:
        value = U64_MAX
    e = value.bit_length() - 1
    m = value << (63 - e)
    if m == 0x8000000000000000:
        return 8 * e - 1
    # The number of boundaries below m, minus one, is the largest k with m > T[k].
    return 8 * e + bisect_left(BOUNDARIES, m) - 1


def upper_bound(index: int) -> float:
    """The upper bound of bucket `index`, `2^((index + 1) / 8)`, in double precision."""
    return float(2.0 ** ((index + 1) / 8))


@dataclass(frozen=True, slots=True)
class QuantileAt:
    """A quantile: the bucket holding it (None for the zero bucket) and its upper bound."""

    index: int | None
    upper_bound_us: float


class Histogram:
    """A histogram of integer microseconds. `count == zero_count + sum of the bucket counts`."""

    __slots__ = ("_buckets", "count", "sum", "zero_count")

    def __init__(self, values: Iterable[int] = ()) -> None:
        self.count = 0
        self.sum = 0  # exact (an int); a double on the wire
        self.zero_count = 0
        self._buckets: dict[int, int] = {}
        for value in values:
            self.record(value)

    def record(self, value: int) -> None:
        """Records one value (clamped to 0 .. 2^64 - 1)."""
        value = min(max(value, 0), U64_MAX)
        self.count += 1
        self.sum += value
        index = bucket_index(value)
        if index is None:
            self.zero_count += 1
        else:
            self._buckets[index] = self._buckets.get(index, 0) + 1

    def merge(self, other: Histogram) -> None:
        """Adds every value of `other`: counts of equal indexes add."""
        self.count += other.count
        self.sum += other.sum
        self.zero_count += other.zero_count
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n

    def __bool__(self) -> bool:
        return self.count > 0

    @property
    def offset(self) -> int:
        """Index of the lowest non-empty bucket (0 when there is none)."""
        return min(self._buckets) if self._buckets else 0

    @property
    def bucket_counts(self) -> list[int]:
        """Dense counts from `offset` to the highest non-empty bucket."""
        if not self._buckets:
            return []
        low, high = min(self._buckets), max(self._buckets)
        return [self._buckets.get(i, 0) for i in range(low, high + 1)]

    def quantile(self, q: float) -> QuantileAt | None:
        """The bucket holding the value of rank `ceil(q * count)` (zero bucket first, then by
        increasing index); None when empty or `q` is outside (0, 1]."""
        if self.count == 0 or math.isnan(q) or not 0.0 < q <= 1.0:
            return None
        rank = min(max(math.ceil(q * float(self.count)), 1), self.count)
        if rank <= self.zero_count:
            return QuantileAt(None, 0.0)
        seen = self.zero_count
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return QuantileAt(index, upper_bound(index))
        raise AssertionError("unreachable: count = zero_count + bucket counts")

    def to_proto(self) -> metrics_pb2.ExponentialHistogram:
        """The wire form, trimmed."""
        return metrics_pb2.ExponentialHistogram(
            scale=SCALE,
            count=self.count,
            sum=float(self.sum),
            zero_count=self.zero_count,
            offset=self.offset,
            bucket_counts=self.bucket_counts,
        )

    @classmethod
    def from_proto(cls, proto: metrics_pb2.ExponentialHistogram) -> Histogram:
        """Reads the wire form; raises ValueError for an invalid histogram."""
        if proto.scale != SCALE:
            raise ValueError(f"scale {proto.scale}, not {SCALE}")
        if not math.isfinite(proto.sum) or proto.sum < 0:
            raise ValueError("sum is negative or not finite")
        histogram = cls()
        histogram.count = proto.count
        histogram.sum = round(proto.sum)
        histogram.zero_count = proto.zero_count
        for j, n in enumerate(proto.bucket_counts):
            if n:
                index = proto.offset + j
                if not MIN_INDEX <= index <= MAX_INDEX:
                    raise ValueError(f"bucket {index} is outside {MIN_INDEX}..{MAX_INDEX}")
                histogram._buckets[index] = n
        if histogram.count != histogram.zero_count + sum(histogram._buckets.values()):
            raise ValueError("count differs from zero_count plus the bucket counts")
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.count, self.sum, self.zero_count, self._buckets) == (
            other.count,
            other.sum,
            other.zero_count,
            other._buckets,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Histogram(count={self.count}, sum={self.sum}, zero_count={self.zero_count}, "
            f"offset={self.offset}, bucket_counts={self.bucket_counts})"
        )
