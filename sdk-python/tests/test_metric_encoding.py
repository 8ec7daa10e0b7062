"""Every case of tests/metrics/encoding.json through the SDK's public tracking calls and its
recorder: each scope is a real `client.scope()` that reads the flags the case lists (served by
a snapshot built to serve exactly those), records the case's events with `track`,
`track_outcome` and `observe`, and ends; each unscoped event names its flags with `flags=`.
The window's `metrics` must equal the case's, field by field, in the order given (doubles to a
relative 1e-12, absent fields as zero)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from serving import Served, serving_snapshot
from support import ROOT

from flagwire import AsyncClient, Context
from flagwire._proto.flagwire.v1 import metrics_pb2

FIXTURE = ROOT / "tests" / "metrics" / "encoding.json"
DOUBLES = ("sum", "sum_of_squares", "request_sum_of_squares", "histogram.sum")


def cases() -> list[Any]:
    data = json.loads(FIXTURE.read_text())
    return [pytest.param(case, id=case["description"]) for case in data["cases"]]


def served_of(entries: list[dict[str, str]]) -> list[Served]:
    return [(s["flag"], s["variant"], s["cohort"], s["rolloutId"]) for s in entries]


def record(client: AsyncClient, event: dict[str, Any], **attribution: Any) -> None:
    """One event of a case through the tracking call it names."""
    if "track" in event:
        client.track(event["track"], event.get("value", 1.0), **attribution)
    elif "observe" in event:
        client.observe(event["observe"], event["value"], **attribution)
    else:
        client.track_outcome(event["outcome"], event["ok"], **attribution)


def fields(m: metrics_pb2.MetricSeries) -> dict[str, Any]:
    """Every field of `m`, the histogram's flattened (an absent histogram reads as zeros)."""
    out = {f.name: getattr(m, f.name) for f in m.DESCRIPTOR.fields if f.name != "histogram"}
    h = m.histogram
    for f in h.DESCRIPTOR.fields:
        value = getattr(h, f.name)
        out[f"histogram.{f.name}"] = list(value) if f.name == "bucket_counts" else value
    return out


def assert_same(actual: metrics_pb2.MetricSeries, expected: metrics_pb2.MetricSeries) -> None:
    got, want = fields(actual), fields(expected)
    assert got.keys() == want.keys()
    for name, value in want.items():
        if name in DOUBLES:
            assert got[name] == pytest.approx(value, rel=1e-12, abs=0), name
        else:
            assert got[name] == value, name


@pytest.mark.parametrize("case", cases())
def test_encoding_case(case: dict[str, Any]) -> None:
    client = AsyncClient("http://127.0.0.1:1", "-")  # never started: no connection
    core, recorder = client._core, client._core.recorder
    assert recorder is not None
    for i, scope in enumerate(case.get("scopes", [])):
        served = served_of(scope["served"])
        core.snapshot = serving_snapshot(served)
        with client.scope(Context(f"unit-{i}")) as flags:
            for flag, variant, cohort, rollout_id in served:
                details = flags.get_str_details(flag, "")
                assert (details.variant, details.cohort or "", details.rollout_id or "") == (
                    variant,
                    cohort,
                    rollout_id,
                )
            for event in scope["events"]:
                record(client, event)
    for event in case.get("unscoped", []):
        served = served_of(event["flags"])
        core.snapshot = serving_snapshot(served)
        record(client, event, context=Context("unit"), flags=[s[0] for s in served])
    window = recorder.take()
    expected = [json_format.ParseDict(m, metrics_pb2.MetricSeries()) for m in case["metrics"]]
    assert [m.name for m in window.metrics] == [m.name for m in expected]
    for i, (actual, want) in enumerate(zip(window.metrics, expected, strict=True)):
        try:
            assert_same(actual, want)
        except AssertionError as error:
            raise AssertionError(f"metrics[{i}]: {error}\n{actual}\n!=\n{want}") from None
    assert window.dropped == 0, "nothing was dropped"
