"""tests/vectors/bucketing.json bit for bit: murmur3 known answers and (salt, key, totalWeight)
-> (hash, bucket) pairs, and the split a flag serves follows those buckets."""

from __future__ import annotations

import json
from typing import Any

from support import ROOT

from flagwire._engine import Snapshot, bucket, murmur3
from flagwire._proto.flagwire.v1 import flag_pb2
from flagwire.context import Context

DATA: dict[str, Any] = json.loads((ROOT / "tests" / "vectors" / "bucketing.json").read_text())


def test_murmur3_known_answers() -> None:
    wrong = [
        (c["input"], c["seed"], murmur3(c["input"], c["seed"]), c["hash"])
        for c in DATA["murmur3"]
        if murmur3(c["input"], c["seed"]) != c["hash"]
    ]
    assert not wrong
    assert len(DATA["murmur3"]) >= 20


def test_bucket_pairs() -> None:
    wrong = []
    for c in DATA["buckets"]:
        got = bucket(c["salt"], c["key"], c["totalWeight"])
        if got != (c["hash"], c["bucket"]):
            wrong.append((c, got))
    assert not wrong, wrong[:5]
    assert len(DATA["buckets"]) >= 3000


def test_a_split_serves_the_entry_its_bucket_falls_in() -> None:
    # Weights 1/2/3 of total 6: buckets 0 -> a, 1-2 -> b, 3-5 -> c.
    flag = flag_pb2.Flag(
        key="f",
        type=flag_pb2.VALUE_TYPE_STRING,
        variants=[flag_pb2.Variant(key=k, value=flag_pb2.FlagValue(string_value=k)) for k in "abc"],
    )
    config = flag.environments["e"]
    config.enabled = True
    config.off_variant = "a"
    split = config.default_rule.split
    split.salt = "s"
    for variant, weight in (("a", 1), ("b", 2), ("c", 3)):
        split.entries.add(variant=variant, weight=weight, label=variant.upper())
    snapshot = Snapshot.build("e", 1, [flag])
    for c in DATA["buckets"][:500]:
        if c["salt"] != "s":
            continue
        _, b = bucket("s", c["key"], 6)
        want = "a" if b < 1 else "b" if b < 3 else "c"
        r = snapshot.evaluate("f", Context(c["key"]), None)
        assert (r.variant, r.cohort) == (want, want.upper())
    for i in range(300):
        key = f"user-{i}"
        _, b = bucket("s", key, 6)
        want = "a" if b < 1 else "b" if b < 3 else "c"
        assert snapshot.evaluate("f", Context(key), None).variant == want
