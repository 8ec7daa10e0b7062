"""The tracking calls without a server: where an event goes (a request scope's flags when the
scope ends, a `measure` block's flag, the flags named with `flags=` evaluated without counting),
what is dropped and counted instead of raising, and the timer. The flags serve fixed variants,
cohorts and rollout ids (tests/serving.py); one splits units 50/50 so the context matters."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest
from serving import serving_snapshot

from flagwire import AsyncClient, Context
from flagwire._metrics import Recorder, Window
from flagwire._proto.flagwire.v1 import flag_pb2, metrics_pb2
from flagwire.fastapi import FlagwireMiddleware
from flagwire.histogram import bucket_index

SERVED = [
    ("checkout", "on", "canary", "rel-1"),
    ("tax", "on", "canary", "rel-1"),
    ("search", "off", "control", "rel-2"),
    ("banner", "blue", "", ""),
]
REL1, REL2 = ("", "", "canary", "rel-1"), ("", "", "control", "rel-2")
CHECKOUT, TAX, SEARCH, BANNER = SERVED


def _split_flag() -> flag_pb2.Flag:
    """`coin`: heads or tails, 50/50 by targeting key."""
    flag = flag_pb2.Flag(
        key="coin", type=flag_pb2.VALUE_TYPE_STRING, version=1,
        variants=[
            flag_pb2.Variant(key=v, value=flag_pb2.FlagValue(string_value=v))
            for v in ("heads", "tails")
        ],
    )  # fmt: skip
    config = flag.environments["prod"]
    config.enabled, config.off_variant = True, "heads"
    config.default_rule.split.salt = "coin"
    config.default_rule.split.entries.add(variant="heads", weight=5000)
    config.default_rule.split.entries.add(variant="tails", weight=5000)
    return flag


@pytest.fixture
def client() -> AsyncClient:
    client = AsyncClient("http://127.0.0.1:1", "-")  # never started: no connection
    client._core.snapshot = serving_snapshot(SERVED, [_split_flag()])
    return client


def _recorder(client: AsyncClient) -> Recorder:
    recorder = client._core.recorder
    assert recorder is not None
    return recorder


def _by_key(window: Window) -> dict[tuple[str, ...], metrics_pb2.MetricSeries]:
    return {(m.flag_key, m.variant, m.cohort, m.rollout_id, m.name): m for m in window.metrics}


def _key(served: tuple[str, ...], name: str) -> tuple[str, ...]:
    return (*served, name)


def _sums(m: metrics_pb2.MetricSeries) -> tuple[Any, ...]:
    """(count, sum, successes, failures, requests, request sum of squares)."""
    return (m.count, m.sum, m.successes, m.failures, m.requests, m.request_sum_of_squares)


def _evaluations(window: Window) -> dict[str, int]:
    return {s.flag_key: sum(r.count for r in s.evaluations) for s in window.series}


def test_a_scope_attributes_its_events_when_it_ends(client: AsyncClient) -> None:
    recorder = _recorder(client)
    with client.scope(Context("u")) as flags:
        client.track("hits")  # before any flag is read: the scope's end decides
        for key in ("checkout", "tax", "search", "banner"):
            flags.get_str(key, "")
        flags.track("hits", 2)
        client.track_outcome("saved", False)
        assert recorder.take().metrics == [], "nothing before the scope ends"
    by_key = _by_key(recorder.take())
    hits = (2, 3.0, 0, 0, 1, 9.0)
    saved = (0, 0.0, 0, 1, 1, 0.0)
    expected = {
        (*k, name): sums
        for k in (CHECKOUT, TAX, SEARCH, BANNER, REL1, REL2)
        for name, sums in (("hits", hits), ("saved", saved))
    }
    assert {k: _sums(m) for k, m in by_key.items()} == expected


async def test_the_middleware_request_is_a_scope(client: AsyncClient) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        client.get_str("checkout", Context("u"), "")
        await asyncio.to_thread(client.track, "hits")  # threads that copy the context count
        client.observe("render_ms", 1.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    for _ in range(2):
        await FlagwireMiddleware(app)({"type": "http", "path": "/", "headers": []}, receive, send)
    by_key = _by_key(_recorder(client).take())
    assert set(by_key) == {(*k, n) for k in (CHECKOUT, REL1) for n in ("hits", "render_ms")}
    assert _sums(by_key[_key(REL1, "hits")]) == (2, 2.0, 0, 0, 2, 2.0)
    histogram = by_key[_key(CHECKOUT, "render_ms")].histogram
    assert (histogram.count, histogram.sum, histogram.offset) == (2, 3000.0, bucket_index(1500))


def test_a_measure_block_attributes_to_its_flag_alone(client: AsyncClient) -> None:
    ctx = Context("u")
    with client.measure("checkout", ctx):
        client.get_str("banner", ctx, "")  # read, but not what the block measures
        client.track("hits")
    assert set(_by_key(_recorder(client).take())) == {(*CHECKOUT, "hits"), (*REL1, "hits")}

    with client.scope(ctx) as flags:  # inside a scope, measure joins it
        flags.get_str("banner", "")
        with flags.measure("search"):
            client.track("hits")
    assert set(_by_key(_recorder(client).take())) == {(*k, "hits") for k in (BANNER, SEARCH, REL2)}

    with client.measure("checkout", ctx):  # a scope inside a measure is its own
        with client.scope(ctx) as flags:
            flags.get_str("banner", "")
            client.track("inner")
        client.track("outer")
    assert set(_by_key(_recorder(client).take())) == {
        (*BANNER, "inner"),
        (*CHECKOUT, "outer"),
        (*REL1, "outer"),
    }


def test_events_of_a_scope_that_read_no_flag_are_dropped(client: AsyncClient) -> None:
    with client.scope(Context("u")):
        client.track("hits")
        client.track_outcome("saved", True)
    with client.measure("missing", Context("u")):  # an unknown flag serves no variant
        client.track("hits")
    window = _recorder(client).take()
    assert (window.metrics, window.dropped) == ([], 3)


def test_outside_a_scope_flags_are_evaluated_without_counting(client: AsyncClient) -> None:
    ctx = Context("u")
    client.track("signup", context=ctx, flags=["checkout", "banner"])
    client.track_outcome("paid", True, context=ctx, flags="banner")  # one key alone
    client.observe("wait_ms", 4, context=ctx, flags=["missing", "tax"])  # unknown: left out
    window = _recorder(client).take()
    assert _evaluations(window) == {}, "no evaluation counted"
    by_key = _by_key(window)
    assert set(by_key) == {
        *((*k, "signup") for k in (CHECKOUT, BANNER, REL1)),
        (*BANNER, "paid"),
        *((*k, "wait_ms") for k in (TAX, REL1)),
    }
    assert _sums(by_key[_key(REL1, "signup")]) == (1, 1.0, 0, 0, 0, 0.0), "no request"
    assert _sums(by_key[_key(BANNER, "paid")]) == (0, 0.0, 1, 0, 0, 0.0)


def test_flags_are_evaluated_for_the_context(client: AsyncClient) -> None:
    variants: dict[str, Context] = {}
    for i in itertools.count():
        ctx = Context(f"user-{i}")
        variants.setdefault(client.get_str("coin", ctx, ""), ctx)
        if len(variants) == 2:
            break
    _recorder(client).take()
    for ctx in variants.values():
        client.track("flips", context=ctx, flags=["coin"])
    with client.scope(variants["tails"]) as flags:  # bound calls use the scope's context
        flags.track("flips", 2, flags=["coin"])
    by_key = _by_key(_recorder(client).take())
    assert {k: m.sum for k, m in by_key.items()} == {
        ("coin", "heads", "", "", "flips"): 1.0,
        ("coin", "tails", "", "", "flips"): 3.0,
    }


def test_named_flags_inside_a_scope_are_attributed_at_once(client: AsyncClient) -> None:
    with client.scope(Context("u")) as flags:
        flags.get_str("search", "")
        client.track("signup", context=Context("u"), flags=["banner"])
        assert set(_by_key(_recorder(client).take())) == {(*BANNER, "signup")}
    assert _recorder(client).take().metrics == []


def test_without_a_scope_or_flags_an_event_is_dropped(client: AsyncClient) -> None:
    client.track("hits")
    client.observe("wait_ms", 3)
    client.track("hits", context=Context("u"))  # a context alone names nothing
    client.track("hits", context=Context("u"), flags=[])
    window = _recorder(client).take()
    assert (window.metrics, window.dropped) == ([], 4)


def test_bad_names_and_values_are_dropped_and_counted(client: AsyncClient) -> None:
    bad_calls: list[Any] = [
        lambda: client.track(""),
        lambda: client.track("Upper"),
        lambda: client.track("_lead"),
        lambda: client.track("a b"),
        lambda: client.track("x" * 65),
        lambda: client.track(5),  # type: ignore[arg-type]
        lambda: client.track("v", "3"),  # type: ignore[arg-type]
        lambda: client.track("v", None),  # type: ignore[arg-type]
        lambda: client.track("v", True),
        lambda: client.track("v", math.nan),
        lambda: client.track("v", math.inf),
        lambda: client.track("v", 1e200),  # its square is not finite
        lambda: client.track("v", 10**400),
        lambda: client.observe("v", -1),
        lambda: client.observe("v", -math.inf),
        lambda: client.observe("v", "1"),  # type: ignore[arg-type]
        lambda: client.track_outcome("v", 1),  # type: ignore[arg-type]
        lambda: client.track_outcome("v", None),  # type: ignore[arg-type]
        lambda: client.track("v", flags=["banner"], context="u"),  # type: ignore[arg-type]
        lambda: client.track("v", flags=[["unhashable"]], context=Context("u")),  # type: ignore[list-item]
    ]
    with client.scope(Context("u")) as flags:
        flags.get_str("banner", "")
        for call in bad_calls:
            call()  # never raises
        client.track("x" * 64, -2.5)  # valid: 64 characters, a negative count
        client.track("0.a_b-c")
        client.observe("zero", 0)
    window = _recorder(client).take()
    assert window.dropped == len(bad_calls)
    assert {m.name for m in window.metrics} == {"x" * 64, "0.a_b-c", "zero"}


def test_observe_buckets_thousandths_rounded_half_up(client: AsyncClient) -> None:
    assert 0.0025 * 1000 == 2.5  # what the values below rely on
    assert 0.0004 * 1000 < 0.5
    with client.scope(Context("u")) as flags:
        flags.get_str("banner", "")
        client.observe("tiny", 0.0025)  # 2.5 thousandths: 3
        client.observe("tiny", 0.0004)  # 0.4 thousandths: zero
    (m,) = _recorder(client).take().metrics
    assert (m.histogram.count, m.histogram.zero_count, m.histogram.sum) == (2, 1, 3.0)
    assert (m.histogram.offset, list(m.histogram.bucket_counts)) == (bucket_index(3), [1])


def test_sums_never_overflow(client: AsyncClient) -> None:
    with client.scope(Context("u")) as flags:
        flags.get_str("banner", "")
        client.track("big", 1e154)
        client.track("big", 1e154)  # its square would make the sum of squares infinite
    window = _recorder(client).take()
    ((m,), dropped) = window.metrics, window.dropped
    assert (m.count, m.sum, dropped) == (1, 1e154, 1)
    assert math.isfinite(m.request_sum_of_squares)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The clock timers read, as a list of readings in ns."""
    readings: list[int] = []
    monkeypatch.setattr("flagwire._measurement.clock_ns", lambda: readings.pop(0))
    return readings


async def test_a_timer_observes_elapsed_milliseconds(client: AsyncClient, clock: list[int]) -> None:
    ctx = Context("u")
    clock.extend([0, 1_000_000, 3_500_000])  # made, entered, left: 2.5 ms
    with client.timer("fast_ms", context=ctx, flags=["banner"]) as timer:
        pass
    clock.append(9_000_000)
    assert timer.stop() == 8.0, "a stopped timer still tells the time"
    clock.extend([0, 0, 1_250_000])

    async def failing() -> None:
        async with client.timer("fast_ms", context=ctx, flags=["banner"]):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await failing()  # a failed call took time too
    clock.extend([0, 500_000])
    assert client.timer("fast_ms", context=ctx, flags="banner").stop() == 0.5
    (m,) = _recorder(client).take().metrics
    assert (m.count, m.sum) == (3, 4.25)
    expected = sorted(bucket_index(v) or 0 for v in (2500, 1250, 500))
    low = expected[0]
    counts = [expected.count(i) for i in range(low, expected[-1] + 1)]
    assert (m.histogram.offset, list(m.histogram.bucket_counts)) == (low, counts)


def test_with_metrics_off_tracking_does_nothing() -> None:
    client = AsyncClient("http://127.0.0.1:1", "-", metrics=False)
    client.track("hits", flags=["x"], context=Context("u"))
    with client.timer("t"):
        pass
    assert client._core.recorder is None
