"""tests/vectors/bucketing.json bit for bit: murmur3 known answers and (salt, key, totalWeight)
-> (hash, bucket) pairs, and the split a flag serves follows those buckets."""

from __future__ import annotations

import bisect
import itertools
import json
import pathlib
import random
from typing import Any

from support import ROOT

from flagwire import Client
from flagwire._codegen import hash_threshold
from flagwire._flags import bucket, murmur3
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._snapshot import Snapshot
from flagwire._types import ErrorCode
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


def _split_flag(weights: list[int]) -> flag_pb2.Flag:
    flag = flag_pb2.Flag(
        key="w",
        type=flag_pb2.VALUE_TYPE_STRING,
        variants=[
            flag_pb2.Variant(key=f"v{i}", value=flag_pb2.FlagValue(string_value=f"v{i}"))
            for i in range(len(weights))
        ],
    )
    config = flag.environments["e"]
    config.enabled = True
    config.off_variant = "v0"
    config.default_rule.split.salt = "salt-ü"
    for i, weight in enumerate(weights):
        config.default_rule.split.entries.add(variant=f"v{i}", weight=weight)
    return flag


def test_the_generated_split_chooses_as_bisect_does() -> None:
    """Splits of up to 8 entries choose by a chain of `if`s in the flag's generated function,
    longer ones by `bisect`: both must serve the entry `bisect_right(running totals, bucket)`
    names, zero weights (never served) and one-entry splits included."""
    rng = random.Random(18)
    shapes = [[1], [0, 5], [5, 0], [0, 0, 7, 0], [3333] * 3, [1] * 8, [2] * 9, [0] * 12 + [1]]
    shapes += [[rng.choice((0, 1, 10, 1000)) for _ in range(rng.randint(1, 12))] for _ in range(40)]
    checked = 0
    for weights in shapes:
        if sum(weights) == 0:
            continue
        snapshot = Snapshot.build("e", 1, [_split_flag(weights)])
        running = list(itertools.accumulate(weights))
        for i in range(200):
            key = f"unit-{i}-é" if i % 7 == 0 else f"unit-{i}"
            _, b = bucket("salt-ü", key, sum(weights))
            want = f"v{bisect.bisect_right(running, b)}"
            r = snapshot.evaluate("w", Context(key), None)
            assert (r.variant, r.reason.value) == (want, "SPLIT"), (weights, key)
            checked += 1
    assert checked >= 8000


def test_a_generated_split_without_a_key_or_with_a_lone_surrogate() -> None:
    snapshot = Snapshot.build("e", 1, [_split_flag([1, 2, 3])])
    missing = snapshot.evaluate("w", Context(""), None)
    assert (missing.error_code, missing.variant) == (ErrorCode.TARGETING_KEY_MISSING, "")
    unencodable = snapshot.evaluate("w", Context("\ud800"), None)
    assert (unencodable.error_code, unencodable.variant) == (ErrorCode.GENERAL, "")


def test_a_client_survives_keys_without_a_utf8_form(tmp_path: pathlib.Path) -> None:
    """mmh3 5.3.1 crashes the process on a str holding a lone surrogate (json.loads makes them
    from "\\ud800"); the getters must answer GENERAL instead, for a split on the targeting key
    (generated code) and one on an attribute (the chooser closure)."""
    by_key = _split_flag([1, 2, 3])
    by_attribute = _split_flag([1, 2, 3])
    by_attribute.key = "by-attribute"
    by_attribute.environments["e"].default_rule.split.bucket_by = "org"
    path = tmp_path / "snapshot.bin"
    message = flag_service_pb2.Snapshot(environment="e", revision=1, flags=[by_key, by_attribute])
    path.write_bytes(message.SerializeToString())
    client = Client("http://unused.invalid", "-", bootstrap_file=str(path), offline=True)
    lone = json.loads('"\\ud800"')
    assert client.get_str("w", Context(lone), "default") == "default"
    assert client.get_str_details("w", Context(lone), "d").error_code is ErrorCode.GENERAL
    ctx = Context("u", {"org": f"acme{lone}"})
    assert client.get_str("by-attribute", ctx, "default") == "default"
    assert client.get_str_details("by-attribute", ctx, "d").error_code is ErrorCode.GENERAL
    # Non-ASCII keys that do have a UTF-8 form are hashed, as the vectors' pairs pin.
    assert client.get_str("w", Context("ünit"), "default") in ("v0", "v1", "v2")


def test_the_hash_thresholds_of_generated_splits_bound_the_buckets() -> None:
    """A generated split compares the hash with `hash_threshold(running, total)` instead of
    computing the bucket: at and around every threshold (where a product rounding would show),
    the comparison must agree with `(h * total) >> 32 < running`."""
    totals = [1, 2, 3, 6, 7, 100, 9999, 10_000, 65_537, 1_000_003, 2**31 - 1]
    checked = 0
    for total in totals:
        for running in sorted({0, 1, total // 3, total // 2, total - 1, total}):
            threshold = hash_threshold(running, total)
            for h in (0, threshold - 2, threshold - 1, threshold, threshold + 1, 2**32 - 1):
                if 0 <= h < 2**32:
                    assert (h < threshold) == (((h * total) >> 32) < running), (total, running, h)
                    checked += 1
    assert checked > 250
