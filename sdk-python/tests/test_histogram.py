"""tests/vectors/histogram.json bit for bit: the boundary constants, every bucket index, and
merges with their counts, sums and quantiles."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from support import ROOT

from flagwire.histogram import BOUNDARIES, Histogram, bucket_index, upper_bound

DATA: dict[str, Any] = json.loads((ROOT / "tests" / "vectors" / "histogram.json").read_text())


def test_boundaries_are_the_exact_eighth_roots() -> None:
    assert [str(t) for t in BOUNDARIES] == DATA["boundaries"]
    for k, t in enumerate(BOUNDARIES):
        assert t**8 <= 2 ** (504 + k) < (t + 1) ** 8


def test_every_index() -> None:
    wrong = [
        (c["value"], bucket_index(int(c["value"])), c["index"])
        for c in DATA["indices"]
        if bucket_index(int(c["value"])) != c["index"]
    ]
    assert not wrong, wrong[:10]
    assert len(DATA["indices"]) >= 2000


def test_index_matches_the_definition_around_every_boundary() -> None:
    # bit_length(v^8 - 1) - 1 is the definition's index, with Python's big integers.
    for j in range(512):
        low = math.isqrt(math.isqrt(math.isqrt(2**j)))  # floor(2^(j/8))
        for v in range(max(low - 2, 1), low + 3):
            if v < 2**64:
                assert bucket_index(v) == (v**8 - 1).bit_length() - 1, v


def test_values_are_clamped_to_u64() -> None:
    assert bucket_index(0) is None
    assert bucket_index(-5) is None
    assert bucket_index(2**70) == 511
    h = Histogram([2**70, -3])
    assert (h.count, h.zero_count, h.offset, h.bucket_counts) == (2, 1, 511, [1])


@pytest.mark.parametrize("merge", DATA["merges"], ids=lambda m: m["description"])
def test_merge(merge: dict[str, Any]) -> None:
    merged = Histogram()
    for values in merge["histograms"]:
        merged.merge(Histogram(int(v) for v in values))
    expected = merge["expected"]
    assert merged.count == expected["count"]
    assert merged.zero_count == expected["zeroCount"]
    assert merged.offset == expected["offset"]
    assert merged.bucket_counts == expected["bucketCounts"]
    assert merged.sum == int(expected["sum"])
    wire = merged.to_proto()
    if int(expected["sum"]) < 2**53:
        assert wire.sum == float(int(expected["sum"]))
    assert Histogram.from_proto(wire) == merged or int(expected["sum"]) >= 2**53
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        got, want = merged.quantile(q), expected[name]
        if want is None:
            assert got is None
            continue
        assert got is not None
        assert got.index == want["index"], name
        assert got.upper_bound_us == pytest.approx(want["upperBoundUs"], rel=1e-9, abs=0.0)


def test_invalid_wire_histograms_are_refused() -> None:
    good = Histogram([5, 9, 0]).to_proto()
    mutations: list[tuple[str, Any]] = [
        ("scale", 2),
        ("count", 7),
        ("sum", -1.0),
        ("offset", 600),
    ]
    for field, value in mutations:
        bad = type(good)()
        bad.CopyFrom(good)
        setattr(bad, field, value)
        with pytest.raises(ValueError, match=r"scale|count|sum|bucket"):
            Histogram.from_proto(bad)


def test_upper_bounds() -> None:
    assert upper_bound(-1) == 1.0
    assert upper_bound(7) == 2.0
    assert upper_bound(61) == pytest.approx(215.2694823049509, rel=1e-12)
