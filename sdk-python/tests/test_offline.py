"""The client without a server: contexts, getters that never raise, readiness before any
snapshot, bootstrap files and offline mode, measurement, and the metrics recorder's bounds."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from flagwire import (
    AsyncClient,
    BootstrapError,
    Client,
    ConfigError,
    Context,
    ErrorCode,
    FlagChange,
    Reason,
    State,
)
from flagwire._metrics import MAX_SERIES, Recorder, Window
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._runtime import Runtime


def _snapshot() -> flag_service_pb2.Snapshot:
    def variant(key: str, **value: Any) -> flag_pb2.Variant:
        return flag_pb2.Variant(key=key, value=flag_pb2.FlagValue(**value))

    flags = [
        flag_pb2.Flag(
            key="b", type=flag_pb2.VALUE_TYPE_BOOLEAN, version=3,
            variants=[variant("on", bool_value=True), variant("off", bool_value=False)],
            environments={"prod": flag_pb2.FlagConfig(
                enabled=True, off_variant="off", default_rule=flag_pb2.Serve(variant="on"))},
        ),
        flag_pb2.Flag(
            key="s", type=flag_pb2.VALUE_TYPE_STRING, version=1,
            variants=[variant("red", string_value="#f00"), variant("blue", string_value="#00f")],
            environments={"prod": flag_pb2.FlagConfig(
                enabled=True, off_variant="red", default_rule=flag_pb2.Serve(variant="blue"))},
        ),
        flag_pb2.Flag(
            key="i", type=flag_pb2.VALUE_TYPE_INTEGER, version=1,
            variants=[variant("big", int_value=2**62)],
            environments={"prod": flag_pb2.FlagConfig(
                enabled=True, off_variant="big", default_rule=flag_pb2.Serve(variant="big"))},
        ),
        flag_pb2.Flag(
            key="f", type=flag_pb2.VALUE_TYPE_FLOAT, version=1,
            variants=[variant("half", float_value=0.5)],
            environments={"prod": flag_pb2.FlagConfig(
                enabled=True, off_variant="half", default_rule=flag_pb2.Serve(variant="half"))},
        ),
    ]  # fmt: skip
    obj = flag_pb2.Flag(key="o", type=flag_pb2.VALUE_TYPE_OBJECT, version=1)
    v = obj.variants.add(key="cfg")
    v.value.object_value.update({"limit": 5, "tags": ["a", "b"], "nested": {"x": True}})
    obj.environments["prod"].enabled = True
    obj.environments["prod"].off_variant = "cfg"
    obj.environments["prod"].default_rule.variant = "cfg"
    flags.append(obj)
    return flag_service_pb2.Snapshot(environment="prod", revision=7, flags=flags)


@pytest.fixture
def bootstrap(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "flags.bin"
    path.write_bytes(_snapshot().SerializeToString())
    return path


@pytest.fixture
def offline(bootstrap: pathlib.Path) -> Client:
    return Client("http://unused.invalid", "-", bootstrap_file=bootstrap, offline=True)


def test_context_normalises_and_validates() -> None:
    ctx = Context("u", {"n": 3, "f": 1.5, "b": True, "l": ["x", "y"], "none": None, "s": "v"})
    assert ctx.invalid_reason is None
    assert ctx.targeting_key == "u"
    assert ctx.attributes["n"] == 3
    assert ctx.with_attributes(plan="pro").attributes["plan"] == "pro"
    wrong: list[Any] = [{"a": 1}, ["x", 1], object()]
    for value in wrong:
        assert Context("u", {"o": value}).invalid_reason is not None
    assert Context("u", {"n": float("nan")}).invalid_reason is not None
    assert Context("u", {"n": 10**400}).invalid_reason is not None
    with pytest.raises(AttributeError):
        ctx.targeting_key = "other"  # type: ignore[misc]
    assert Context.from_dict({"targetingKey": "k", "attributes": {"a": 1}}) == Context(
        "k", {"a": 1}
    )
    wire = Context("u", {"n": 3, "b": False, "l": ["x"]}).to_proto()
    assert wire.targeting_key == "u"
    assert wire.attributes["n"].number_value == 3.0
    assert next(iter(wire.attributes["l"].list_value.values)).string_value == "x"


def test_typed_getters(offline: Client) -> None:
    ctx = Context("user-1")
    assert offline.state is State.READY
    assert offline.revision == 7
    assert offline.get_bool("b", ctx, False) is True
    assert offline.get_str("s", ctx, "") == "#00f"
    assert offline.get_int("i", ctx, 0) == 2**62
    assert offline.get_float("f", ctx, 0.0) == 0.5
    value = offline.get_json("o", ctx, {})
    assert value == {"limit": 5.0, "tags": ["a", "b"], "nested": {"x": True}}
    value["limit"] = 99  # a copy: the next read is unaffected
    assert offline.get_json("o", ctx, {})["limit"] == 5.0
    details = offline.get_bool_details("b", None, False)
    assert (details.value, details.variant, details.reason, details.flag_version) == (
        True, "on", Reason.STATIC, 3,
    )  # fmt: skip
    assert offline.get_value_details("i", ctx, None).value == 2**62
    assert offline.flag_keys() == ("b", "f", "i", "o", "s")


def test_getters_never_raise(offline: Client) -> None:
    ctx = Context("u")
    assert offline.get_str("b", ctx, "dflt") == "dflt"
    mismatch = offline.get_str_details("b", ctx, "d")
    assert (mismatch.reason, mismatch.error_code, mismatch.variant) == (
        Reason.ERROR, ErrorCode.TYPE_MISMATCH, None,
    )  # fmt: skip
    assert offline.get_float_details("i", ctx, 1.0).error_code is ErrorCode.TYPE_MISMATCH
    assert offline.get_int_details("nope", ctx, 7).error_code is ErrorCode.FLAG_NOT_FOUND
    assert offline.get_int("nope", ctx, 7) == 7
    nested: Any = {"nested": 1}
    bad = Context("u", {"x": nested})
    assert offline.get_bool_details("b", bad, False).error_code is ErrorCode.INVALID_CONTEXT
    not_a_context: Any = {"targetingKey": "u"}
    assert offline.get_bool("b", not_a_context, False) is False
    assert offline.get_bool_details("b", not_a_context, False).reason is Reason.ERROR


def test_before_the_first_snapshot_defaults_are_served() -> None:
    client = AsyncClient("http://127.0.0.1:1", "-")
    details = client.get_bool_details("b", Context("u"), True)
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    assert client.state is State.CONNECTING
    assert client.revision == 0


def test_an_unreadable_bootstrap_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\xff\xff\xff not a snapshot")
    with pytest.raises(BootstrapError):
        Client("http://x", "-", bootstrap_file=path, offline=True)
    client = AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=path)
    assert client.get_bool_details("b", None, True).error_code is ErrorCode.PARSE_ERROR


def test_offline_needs_an_existing_bootstrap_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError):
        Client("http://x", "-", offline=True)
    with pytest.raises(ConfigError):
        Client("http://x", "-", offline=True, bootstrap_file=tmp_path / "none")
    with pytest.raises(ConfigError):
        AsyncClient("http://x", "-", heartbeat_timeout=0)


def test_a_bootstrap_file_serves_stale_values_until_the_server_answers(
    bootstrap: pathlib.Path,
) -> None:
    client = AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=bootstrap)
    assert client.state is State.STALE
    assert client.get_str("s", Context("u"), "") == "#00f"


async def test_async_offline_client(bootstrap: pathlib.Path) -> None:
    async with AsyncClient("http://x", "-", bootstrap_file=bootstrap, offline=True) as client:
        await client.wait_ready(0.01)
        assert client.get_bool("b", Context("u"), False)
        assert await client.flush()


async def test_wait_ready_times_out() -> None:
    from flagwire import ReadyTimeoutError

    client = AsyncClient("http://127.0.0.1:1", "-", min_backoff=0.05, connect_timeout=0.2)
    with pytest.raises(ReadyTimeoutError):
        await client.wait_ready(0.3)
    assert client.state is State.CONNECTING
    await client.aclose()


def test_listeners_and_unsubscribe(offline: Client) -> None:
    seen: list[FlagChange] = []
    unsubscribe = offline.on_change(seen.append)
    offline._core.emit_change(FlagChange(8, ("b",)))
    unsubscribe()
    offline._core.emit_change(FlagChange(9, ("b",)))
    assert seen == [FlagChange(8, ("b",))]

    def broken(change: FlagChange) -> None:
        raise RuntimeError("listener bug")

    offline.on_change(broken)
    offline._core.emit_change(FlagChange(10, ()))  # logged, not raised


async def test_change_stream(bootstrap: pathlib.Path) -> None:
    client = AsyncClient("http://x", "-", bootstrap_file=bootstrap, offline=True)
    async with client.changes() as stream:
        for revision in range(300):
            client._core.emit_change(FlagChange(revision, ()))
        first = await asyncio.wait_for(stream.__anext__(), 1)
        assert first.revision == 300 - 256, "the oldest are dropped beyond 256"


# -- metrics ------------------------------------------------------------------------------------


def _served(client: AsyncClient | Client, key: str) -> Any:
    snapshot = client._core.snapshot
    assert snapshot is not None
    return snapshot.evaluate(key, Context("u"), None)


def test_recorder_take_and_merge_back(offline: Client) -> None:
    recorder = Recorder()
    r = _served(offline, "b")
    recorder.evaluation(r)
    recorder.evaluation(r)
    recorder.outcome(r.series_key, False, 1500)
    recorder.outcome(r.series_key, True, 0)
    series, cohorts, dropped, metrics = recorder.take()
    assert (cohorts, dropped, metrics) == ([], 0, [])
    assert len(series) == 1
    s = series[0]
    assert (s.flag_key, s.variant, s.cohort, s.rollout_id) == ("b", "on", "", "")
    assert [(rc.reason, rc.count) for rc in s.evaluations] == [("STATIC", 2)]
    assert (s.successes, s.errors) == (1, 1)
    assert (s.latency_us.count, s.latency_us.zero_count, s.latency_us.sum) == (2, 1, 1500.0)
    assert recorder.take() == Window([], [], 0, []), "taken counters are gone"
    recorder.merge_back(Window(series, [], 3, []))
    assert recorder.take() == Window(series, [], 3, [])


def test_recorder_is_bounded() -> None:
    recorder = Recorder()
    for i in range(MAX_SERIES + 5):
        recorder.outcome((f"f{i}", "on", "", ""), True, 10)
    series, _, dropped, _ = recorder.take()
    assert (len(series), dropped) == (MAX_SERIES, 5)


def test_measure_records_outcomes(bootstrap: pathlib.Path, monkeypatch: Any) -> None:
    client = AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=bootstrap)
    recorder = client._core.recorder
    assert recorder is not None
    # (creation, entry, exit) of each measurement: 180 us and 310 us, then one unrecorded.
    clock = iter([0, 1_000, 181_000, 0, 5_000_000, 5_310_000, 0, 0, 0])
    monkeypatch.setattr("flagwire._measurement.clock_ns", lambda: next(clock))
    with client.measure("b", Context("u")) as variant:
        assert variant == "on"
    with pytest.raises(KeyError), client.measure("b", Context("u")):
        raise KeyError("boom")
    m = client.measure("nope", Context("u"))
    with m as variant:
        assert variant == ""
    series = recorder.take().series
    assert len(series) == 1
    s = series[0]
    assert [(rc.reason, rc.count) for rc in s.evaluations] == [("STATIC", 2)]
    assert (s.successes, s.errors) == (1, 1)
    assert (s.latency_us.offset, list(s.latency_us.bucket_counts)) == (59, [1, 0, 0, 0, 0, 0, 0, 1])


def _canary_bootstrap(tmp_path: pathlib.Path) -> pathlib.Path:
    """A flag whose default serves the canary / rest / control split of rollout "ro-1" (the
    layout the server gives a rollout's flag; buckets as in tests/vectors/splits.json), behind a
    rule serving the treatment as a fixed variant to internal users."""
    flag = flag_pb2.Flag(
        key="checkout", type=flag_pb2.VALUE_TYPE_STRING, version=4,
        variants=[
            flag_pb2.Variant(key="treatment", value=flag_pb2.FlagValue(string_value="new")),
            flag_pb2.Variant(key="baseline", value=flag_pb2.FlagValue(string_value="old")),
        ],
    )  # fmt: skip
    config = flag.environments["prod"]
    config.enabled = True
    config.off_variant = "baseline"
    rule = config.rules.add()
    clause = rule.clauses.add(attribute="plan", operator=flag_pb2.OPERATOR_IN)
    clause.values.add().string_value = "internal"
    rule.serve.variant = "treatment"
    split = config.default_rule.split
    split.salt = "checkout-canary"
    split.rollout_id = "ro-1"
    split.entries.add(variant="treatment", weight=10, label="canary")
    split.entries.add(variant="baseline", weight=80)
    split.entries.add(variant="baseline", weight=10, label="control")
    path = tmp_path / "canary.bin"
    snapshot = flag_service_pb2.Snapshot(environment="prod", revision=1, flags=[flag])
    path.write_bytes(snapshot.SerializeToString())
    return path


async def test_a_report_after_a_canary_split_carries_the_rollout_id(
    tmp_path: pathlib.Path,
) -> None:
    client = AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=_canary_bootstrap(tmp_path))
    details = client.get_str_details("checkout", Context("user-9"), "")
    assert (details.variant, details.cohort, details.rollout_id) == ("treatment", "canary", "ro-1")
    assert client.get_str_details("checkout", Context("user-0"), "").rollout_id == "ro-1"
    assert client.get_str_details("checkout", Context("user-1"), "").cohort == "control"
    internal = client.get_str_details("checkout", Context("user-9", {"plan": "internal"}), "")
    assert (internal.variant, internal.rollout_id) == ("treatment", None), "a fixed variant"
    with client.measure("checkout", Context("user-9")):
        pass
    recorder = client._core.recorder
    assert recorder is not None
    series, _, dropped, _ = recorder.take()
    # The request a flush sends, built the way flush builds it.
    report = Runtime(client._core)._report_request(series=series, dropped_series=dropped)
    got = {
        (s.variant, s.cohort, s.rollout_id): ([(rc.reason, rc.count) for rc in s.evaluations],
                                              s.successes)
        for s in report.series
    }  # fmt: skip
    assert got == {
        ("treatment", "canary", "ro-1"): ([("SPLIT", 2)], 1),
        ("baseline", "", "ro-1"): ([("SPLIT", 1)], 0),
        ("baseline", "control", "ro-1"): ([("SPLIT", 1)], 0),
        # The same variant served by the rule is a series of its own, outside the rollout.
        ("treatment", "", ""): ([("TARGETING_MATCH", 1)], 0),
    }
    # What a failed flush puts back keeps its rollout id.
    recorder.merge_back(Window(list(report.series), [], 0, []))
    again = recorder.take().series
    assert sorted((s.variant, s.cohort, s.rollout_id) for s in again) == sorted(got)


async def test_measured_decorator(bootstrap: pathlib.Path) -> None:
    client = AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=bootstrap)

    @client.measured("b", lambda user: Context(user))
    async def handler(user: str) -> str:
        return user.upper()

    @client.measured("s", Context("u"))
    def failing() -> None:
        raise ValueError("no")

    assert await handler("ada") == "ADA"
    with pytest.raises(ValueError, match="no"):
        failing()
    recorder = client._core.recorder
    assert recorder is not None
    outcomes = {(s.flag_key, s.variant): (s.successes, s.errors) for s in recorder.take()[0]}
    assert outcomes == {("b", "on"): (1, 0), ("s", "blue"): (0, 1)}
