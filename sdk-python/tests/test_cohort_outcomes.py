"""Release cohort outcomes without a server: a request scope (`client.scope()`, `measure`
outside a scope, the FastAPI middleware's request) counts ONE outcome per (release, cohort) it
was in, however many of the release's flags it read; what is not in a cohort, or not in a
scope, counts nothing; the window is bounded; a failed flush puts the outcomes back.

The flags are laid out the way the server rewrites a release's flags (serve.rs): one salt and
rollout id per release, entries `[stage variant: canary, baseline: rest, baseline: control]`.
The client reads them from a bootstrap file and never connects."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import grpc
import grpc.aio
import pytest
from fake_sync import FakeTransport

from flagwire import AsyncClient, Context, Scope
from flagwire._metrics import MAX_COHORTS, Recorder, Window
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2, metrics_pb2
from flagwire._result import Result
from flagwire._runtime import Runtime
from flagwire._transport import Metadata
from flagwire._types import Reason
from flagwire.fastapi import FlagwireMiddleware
from flagwire.histogram import Histogram

REL1_FLAGS = ("checkout", "tax", "banner")  # release "rel-1"
REL2_FLAG = "search"  # release "rel-2"


def _flag(key: str, release: str, share: int) -> flag_pb2.Flag:
    flag = flag_pb2.Flag(
        key=key, type=flag_pb2.VALUE_TYPE_BOOLEAN, version=2,
        variants=[
            flag_pb2.Variant(key="on", value=flag_pb2.FlagValue(bool_value=True)),
            flag_pb2.Variant(key="off", value=flag_pb2.FlagValue(bool_value=False)),
        ],
    )  # fmt: skip
    config = flag.environments["prod"]
    config.enabled = True
    config.off_variant = "off"
    if not release:
        config.default_rule.split.salt = key
        config.default_rule.split.entries.add(variant="on", weight=50, label="canary")
        config.default_rule.split.entries.add(variant="off", weight=50)
        return flag
    split = config.default_rule.split
    split.salt = f"{release}-salt"
    split.rollout_id = release
    split.entries.add(variant="on", weight=share, label="canary")
    split.entries.add(variant="off", weight=10_000 - 2 * share)
    split.entries.add(variant="off", weight=share, label="control")
    return flag


@pytest.fixture
def client(tmp_path: pathlib.Path) -> AsyncClient:
    flags = [_flag(k, "rel-1", 2500) for k in REL1_FLAGS]
    flags.append(_flag(REL2_FLAG, "rel-2", 5000))
    # A split labelled "canary" without a rollout id (a person's label): not a release cohort.
    flags.append(_flag("plain", "", 0))
    path = tmp_path / "release.bin"
    snapshot = flag_service_pb2.Snapshot(environment="prod", revision=3, flags=flags)
    path.write_bytes(snapshot.SerializeToString())
    return AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=path)


def _recorder(client: AsyncClient) -> Recorder:
    recorder = client._core.recorder
    assert recorder is not None
    return recorder


def _user(client: AsyncClient, cohort: str, flag: str = "checkout", **more: str) -> Context:
    """The first user whose unit is in `cohort` ("" = neither) of `flag`'s release, and in the
    cohorts `more` names of other flags. The flags of one release share a salt, so the unit is
    in that cohort on every one of them."""
    wanted = {flag: cohort, **more}
    for i in range(10_000):
        ctx = Context(f"user-{i}")
        if all(
            (client.get_bool_details(f, ctx, False).cohort or "") == c for f, c in wanted.items()
        ):
            _recorder(client).take()  # forget the search's evaluations
            return ctx
    raise AssertionError(f"no user in {wanted}")


def _cohorts(window: Window) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(release, cohort) -> (successes, errors, latency count)."""
    return {
        (c.release_id, c.cohort): (c.successes, c.errors, c.latency_us.count)
        for c in window.cohort_outcomes
    }


def _outcomes(window: Window) -> dict[str, tuple[int, int]]:
    """flag -> (successes, errors) over its series."""
    out: dict[str, tuple[int, int]] = {}
    for s in window.series:
        successes, errors = out.get(s.flag_key, (0, 0))
        out[s.flag_key] = (successes + s.successes, errors + s.errors)
    return out


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The clock outcome latencies are measured with, as a list of readings (ns)."""
    readings: list[int] = []
    monkeypatch.setattr("flagwire._measurement.clock_ns", lambda: readings.pop(0))
    return readings


def test_a_scope_reading_three_flags_of_a_release_is_one_outcome(
    client: AsyncClient, fake_clock: list[int]
) -> None:
    ctx = _user(client, "canary")
    fake_clock.extend([1_000_000, 1_250_000])  # entry, exit: 250 us
    with client.scope(ctx) as flags:
        assert all(flags.get_bool(key, False) for key in REL1_FLAGS)
    window = _recorder(client).take()
    (outcome,) = window.cohort_outcomes
    expected = Histogram()
    expected.record(250)
    assert outcome == metrics_pb2.CohortOutcome(
        release_id="rel-1", cohort="canary", successes=1, latency_us=expected.to_proto()
    )
    # Per-flag usage is unchanged: every flag's series has the request's outcome.
    assert _outcomes(window) == dict.fromkeys(REL1_FLAGS, (1, 0))


async def test_two_scopes_are_two_outcomes_and_errors_count(client: AsyncClient) -> None:
    ctx = _user(client, "canary")
    async with client.scope(ctx) as flags:
        for key in REL1_FLAGS:
            flags.get_bool(key, False)

    async def failing() -> None:
        async with client.scope(ctx) as flags:
            for key in REL1_FLAGS:
                flags.get_bool(key, False)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await failing()
    with client.scope(ctx) as flags:
        client.get_bool("tax", ctx, False)  # the client's getters count too
        flags.fail()
    window = _recorder(client).take()
    assert _cohorts(window) == {("rel-1", "canary"): (1, 2, 3)}
    assert _outcomes(window) == {"checkout": (1, 1), "tax": (1, 2), "banner": (1, 1)}


def test_flags_of_two_releases_count_once_per_release(client: AsyncClient) -> None:
    ctx = _user(client, "canary", search="control")
    with client.scope(ctx) as flags:
        for key in (*REL1_FLAGS, REL2_FLAG, REL2_FLAG):
            flags.get_bool(key, False)
    assert _cohorts(_recorder(client).take()) == {
        ("rel-1", "canary"): (1, 0, 1),
        ("rel-2", "control"): (1, 0, 1),
    }


def test_a_control_unit_counts_for_control(client: AsyncClient) -> None:
    ctx = _user(client, "control")
    with client.scope(ctx) as flags:
        assert not any(flags.get_bool(key, True) for key in REL1_FLAGS)
    assert _cohorts(_recorder(client).take()) == {("rel-1", "control"): (1, 0, 1)}


def test_unlabelled_and_unscoped_evaluations_count_nothing(client: AsyncClient) -> None:
    rest = _user(client, "")  # in neither cohort: the split's unlabelled entry
    plain = _user(client, "canary", "plain")  # "canary" without a rollout id
    canary = _user(client, "canary")
    with client.scope(rest) as flags:
        for key in REL1_FLAGS:
            flags.get_bool(key, False)
    with client.scope(plain) as flags:
        flags.get_bool("plain", False)
        flags.get_bool("missing", False)  # an error: no variant, nothing at all
    for key in REL1_FLAGS:  # no scope
        client.get_bool(key, canary, False)
    with client.scope(canary):
        pass  # no flag read: nothing recorded
    window = _recorder(client).take()
    assert window.cohort_outcomes == []
    assert _outcomes(window) == {**dict.fromkeys(REL1_FLAGS, (1, 0)), "plain": (1, 0)}


def test_measure_outside_a_scope_is_one_and_inside_joins_it(client: AsyncClient) -> None:
    ctx = _user(client, "canary")
    with client.measure("checkout", ctx):
        client.get_bool("tax", ctx, False)  # not part of measure's own outcome
    window = _recorder(client).take()
    assert _cohorts(window) == {("rel-1", "canary"): (1, 0, 1)}
    assert _outcomes(window) == {"checkout": (1, 0), "tax": (0, 0)}

    with client.scope(ctx) as flags:
        flags.get_bool("tax", False)
        with flags.measure("checkout"):
            pass
        with client.scope(ctx) as inner:  # joins the outer scope
            inner.get_bool("banner", False)
    window = _recorder(client).take()
    assert _cohorts(window) == {("rel-1", "canary"): (1, 0, 1)}
    # measure keeps its own series outcome, as before releases.
    assert _outcomes(window) == {"checkout": (2, 0), "tax": (1, 0), "banner": (1, 0)}


def test_fail_in_a_nested_scope_fails_the_request(client: AsyncClient) -> None:
    ctx = _user(client, "control")
    with client.scope(ctx):
        client.get_bool("checkout", ctx, False)
        with client.scope(ctx) as inner:
            inner.get_bool("tax", False)
            inner.fail()
    assert _cohorts(_recorder(client).take()) == {("rel-1", "control"): (0, 1, 1)}


async def test_reads_in_tasks_and_threads_of_the_scope_count(client: AsyncClient) -> None:
    ctx = _user(client, "canary")
    async with client.scope(ctx) as flags:
        await asyncio.to_thread(flags.get_bool, "checkout", False)
        await asyncio.ensure_future(asyncio.to_thread(client.get_bool, "tax", ctx, False))
    window = _recorder(client).take()
    assert _cohorts(window) == {("rel-1", "canary"): (1, 0, 1)}
    assert _outcomes(window) == {"checkout": (1, 0), "tax": (1, 0)}


def test_a_scope_is_entered_once(client: AsyncClient) -> None:
    scope: Scope = client.scope()
    with scope:
        pass
    with pytest.raises(RuntimeError, match="entered once"), scope:
        pass


async def test_the_middleware_counts_a_request_once_per_release_cohort(
    client: AsyncClient,
) -> None:
    ctx = _user(client, "canary")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for key in REL1_FLAGS:
            client.get_bool(key, ctx, False)
        status = 500 if scope["path"] == "/fail" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    handler = FlagwireMiddleware(app)
    for path in ("/", "/", "/fail"):
        await handler({"type": "http", "path": path, "headers": []}, receive, send)
    window = _recorder(client).take()
    assert _cohorts(window) == {("rel-1", "canary"): (2, 1, 3)}
    assert _outcomes(window) == dict.fromkeys(REL1_FLAGS, (2, 1))


def test_the_window_holds_at_most_max_cohorts_keys() -> None:
    recorder = Recorder()
    for i in range(MAX_COHORTS + 3):
        recorder.cohort_outcome((f"rel-{i}", "canary"), True, 10)
    recorder.cohort_outcome(("rel-0", "canary"), False, 10)  # a key it holds still counts
    series, cohorts, dropped, _ = recorder.take()
    assert (series, len(cohorts), dropped) == ([], MAX_COHORTS, 3)
    assert (cohorts[0].successes, cohorts[0].errors) == (1, 1)
    # Merging back obeys the same bound.
    recorder.cohort_outcome(("other", "control"), True, 10)
    recorder.merge_back(Window([], cohorts, 0, []))
    assert recorder.take().dropped == 1


class _Flaky(FakeTransport):
    """Refuses the first `failures` metrics reports with UNAVAILABLE; keeps the rest."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.delivered: list[metrics_pb2.ReportRequest] = []

    async def report(
        self, request: metrics_pb2.ReportRequest, metadata: Metadata, timeout: float
    ) -> None:
        if not request.series and not request.cohort_outcomes:
            return  # an acknowledgement
        if self.failures:
            self.failures -= 1
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        self.delivered.append(request)


async def test_a_failed_flush_puts_cohort_outcomes_back(client: AsyncClient) -> None:
    canary, control = _user(client, "canary"), _user(client, "control")
    transport = _Flaky(failures=1)
    runtime = Runtime(client._core, transport)
    runtime.start()
    try:
        for ctx in (canary, canary, control):
            with client.scope(ctx) as flags:
                for key in REL1_FLAGS:
                    flags.get_bool(key, False)
        assert not await runtime.flush(), "UNAVAILABLE: kept"
        with client.scope(control) as flags:
            flags.get_bool("tax", False)
            flags.fail()
        assert await runtime.flush()
    finally:
        await runtime.aclose()
    (report,) = transport.delivered
    assert _cohorts(Window(list(report.series), list(report.cohort_outcomes), 0, [])) == {
        ("rel-1", "canary"): (2, 0, 2),
        ("rel-1", "control"): (1, 1, 2),
    }


def test_only_canary_and_control_of_a_rollout_are_release_cohorts() -> None:
    def cohort_of(label: str, rollout_id: str) -> tuple[str, str] | None:
        return Result("f", "on", True, Reason.SPLIT, 1, label, rollout_id).release_cohort

    assert cohort_of("canary", "rel-1") == ("rel-1", "canary")
    assert cohort_of("control", "rel-1") == ("rel-1", "control")
    assert cohort_of("", "rel-1") is None
    assert cohort_of("beta", "rel-1") is None
    assert cohort_of("canary", "") is None
