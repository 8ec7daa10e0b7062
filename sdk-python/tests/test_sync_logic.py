"""The stream applier and the metrics window without a server: snapshots, changes in order,
gaps and early changes resynchronise, heartbeats, change events; exact counts under threads."""

from __future__ import annotations

import threading

import pytest

from flagwire import Context, FlagChange, State
from flagwire._core import Core, Options
from flagwire._metrics import MAX_SERIES, Recorder
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._result import Result
from flagwire._runtime import Runtime, _Resync, target_of
from flagwire._snapshot import ApplyError, Snapshot
from flagwire._types import Reason


def flag(key: str, version: int, enabled: bool = True) -> flag_pb2.Flag:
    return flag_pb2.Flag(
        key=key,
        type=flag_pb2.VALUE_TYPE_BOOLEAN,
        version=version,
        variants=[
            flag_pb2.Variant(key="on", value=flag_pb2.FlagValue(bool_value=True)),
            flag_pb2.Variant(key="off", value=flag_pb2.FlagValue(bool_value=False)),
        ],
        environments={
            "prod": flag_pb2.FlagConfig(
                enabled=enabled, off_variant="off", default_rule=flag_pb2.Serve(variant="on")
            )
        },
    )


def snapshot_message(revision: int, *flags: flag_pb2.Flag) -> flag_service_pb2.WatchResponse:
    return flag_service_pb2.WatchResponse(
        snapshot=flag_service_pb2.Snapshot(environment="prod", revision=revision, flags=flags)
    )


def change_message(revision: int, **kind: object) -> flag_service_pb2.WatchResponse:
    return flag_service_pb2.WatchResponse(
        change=flag_service_pb2.Change(revision=revision, **kind)  # type: ignore[arg-type]
    )


def test_apply_follows_revisions() -> None:
    snap = Snapshot.build("prod", 3, [flag("a", 1), flag("b", 1)])
    nxt, changed = snap.apply(flag_service_pb2.Change(revision=4, flag_upserted=flag("a", 2)))
    assert (nxt.revision, changed, snap.revision) == (4, ("a",), 3), "the old one is untouched"
    assert nxt.flags["b"] is snap.flags["b"], "untouched flags are shared"
    with pytest.raises(ApplyError):
        nxt.apply(flag_service_pb2.Change(revision=6, flag_deleted="a"))
    with pytest.raises(ApplyError):
        nxt.apply(flag_service_pb2.Change(revision=4, flag_deleted="a"))
    gone, changed = nxt.apply(flag_service_pb2.Change(revision=5, flag_deleted="a"))
    assert "a" not in gone.flags
    assert changed == ("a",)
    segment = flag_pb2.Segment(key="s", environment="prod", included=["u"])
    seg, changed = gone.apply(flag_service_pb2.Change(revision=6, segment_upserted=segment))
    assert changed == ("b",), "a segment change concerns every flag"
    assert seg.in_segment("s", {}, "u")
    assert snap.changed_flags(seg) == ("a",)
    proto = seg.to_proto()
    assert (proto.revision, [f.key for f in proto.flags], [s.key for s in proto.segments]) == (
        6,
        ["b"],
        ["s"],
    )


def test_a_batch_applies_every_flag_in_one_revision() -> None:
    snap = Snapshot.build("prod", 3, [flag("a", 1), flag("b", 1), flag("c", 1)])
    batch = flag_service_pb2.FlagBatch(
        flags=[flag("a", 2, enabled=False), flag("c", 2, enabled=False), flag("d", 1)]
    )
    nxt, changed = snap.apply(flag_service_pb2.Change(revision=4, flags_upserted=batch))
    assert (nxt.revision, changed) == (4, ("a", "c", "d")), "every key of the batch is reported"
    ctx = Context("u")
    assert {k: nxt.evaluate(k, ctx, None).reason for k in "abcd"} == {
        "a": Reason.DISABLED,
        "b": Reason.STATIC,
        "c": Reason.DISABLED,
        "d": Reason.STATIC,
    }
    assert {k: f.version for k, f in nxt.flags.items()} == {"a": 2, "b": 1, "c": 2, "d": 1}
    assert nxt.flags["b"] is snap.flags["b"], "flags outside the batch are shared"
    # The old snapshot (what an evaluation in flight holds) has none of the batch: the swap to
    # the new one is the only way to see it, so no evaluation sees half of it.
    assert snap.revision == 3
    assert {k: f.version for k, f in snap.flags.items()} == {"a": 1, "b": 1, "c": 1}
    assert all(snap.evaluate(k, ctx, None).reason is Reason.STATIC for k in "abc")
    assert snap.changed_flags(nxt) == ("a", "c", "d")

    # The same ordering rules as any change: a gap or an old revision is refused.
    with pytest.raises(ApplyError):
        nxt.apply(flag_service_pb2.Change(revision=6, flags_upserted=batch))
    with pytest.raises(ApplyError):
        nxt.apply(flag_service_pb2.Change(revision=4, flags_upserted=batch))

    # A key twice in one batch: the last one wins and the key is reported once.
    twice = flag_service_pb2.FlagBatch(flags=[flag("b", 2, enabled=False), flag("b", 3)])
    again, changed = nxt.apply(flag_service_pb2.Change(revision=5, flags_upserted=twice))
    assert (again.revision, changed, again.flags["b"].version) == (5, ("b",), 3)
    # An empty batch still advances the revision.
    empty, changed = again.apply(
        flag_service_pb2.Change(revision=6, flags_upserted=flag_service_pb2.FlagBatch())
    )
    assert (empty.revision, changed, empty.flags) == (6, (), again.flags)
    # A batch round-trips through the bootstrap form like any other change.
    assert Snapshot.from_proto(nxt.to_proto()).changed_flags(nxt) == ()


async def test_the_applier() -> None:
    core = Core(Options(url="http://127.0.0.1:1", token="-"))
    runtime = Runtime(core)
    seen: list[FlagChange] = []
    core.add_change_listener(seen.append)

    with pytest.raises(_Resync, match="before any snapshot"):
        await runtime._apply(change_message(2, flag_deleted="a"))
    with pytest.raises(_Resync, match="heartbeat at 5"):
        await runtime._apply(
            flag_service_pb2.WatchResponse(heartbeat=flag_service_pb2.Heartbeat(revision=5))
        )
    assert await runtime._apply(snapshot_message(5, flag("a", 1), flag("b", 1)))
    assert core.state is State.READY
    assert seen == [FlagChange(5, ("a", "b"))]
    with pytest.raises(_Resync, match="does not follow"):
        await runtime._apply(change_message(7, flag_deleted="a"))
    assert await runtime._apply(change_message(6, flag_upserted=flag("a", 2, enabled=False)))
    assert seen[-1] == FlagChange(6, ("a",))
    assert core.snapshot is not None
    assert core.snapshot.evaluate("a", Context("u"), None).reason is Reason.DISABLED

    core.set_state(State.STALE)
    heartbeat = flag_service_pb2.WatchResponse(heartbeat=flag_service_pb2.Heartbeat(revision=6))
    assert await runtime._apply(heartbeat), "READY through it: the backoff starts over"
    assert core.state is State.READY, "a heartbeat at the held revision means current"
    # A fresh snapshot replaces everything: only the flags that differ are announced.
    assert await runtime._apply(snapshot_message(9, flag("a", 2, enabled=False), flag("c", 1)))
    assert seen[-1] == FlagChange(9, ("b", "c"))

    # A batch (the kill switch): one revision, one event naming every flag, all applied.
    with pytest.raises(_Resync, match="does not follow"):
        await runtime._apply(
            change_message(11, flags_upserted=flag_service_pb2.FlagBatch(flags=[flag("a", 3)]))
        )
    assert core.snapshot is not None
    assert core.snapshot.revision == 9, "a gap applies nothing"
    batch = flag_service_pb2.FlagBatch(
        flags=[flag("a", 3, enabled=False), flag("c", 2, enabled=False)]
    )
    assert await runtime._apply(change_message(10, flags_upserted=batch))
    assert seen[-1] == FlagChange(10, ("a", "c"))
    assert len(seen) == 4, "one event for the whole batch"
    assert core.snapshot.revision == 10
    reasons = [core.snapshot.evaluate(k, Context("u"), None).reason for k in ("a", "c")]
    assert reasons == [Reason.DISABLED, Reason.DISABLED]


def test_targets() -> None:
    assert target_of("http://h:1") == ("h:1", False)
    assert target_of("https://h:1/") == ("h:1", True)
    assert target_of("h:1") == ("h:1", False)


def test_counting_is_exact_across_threads() -> None:
    snap = Snapshot.build("prod", 1, [flag("a", 1)])
    recorder = Recorder()
    result = snap.evaluate("a", Context("u"), None)
    totals: list[int] = []

    def work() -> None:
        for _ in range(20_000):
            recorder.evaluation(result)

    def flusher(stop: threading.Event) -> None:
        while not stop.is_set():
            series = recorder.take().series
            totals.extend(rc.count for s in series for rc in s.evaluations)

    stop = threading.Event()
    background = threading.Thread(target=flusher, args=(stop,))
    background.start()
    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    background.join()
    series = recorder.take().series
    totals.extend(rc.count for s in series for rc in s.evaluations)
    assert sum(totals) == 80_000, "every evaluation counted once, flushes racing or not"


def test_evaluation_series_beyond_the_bound_are_dropped() -> None:
    recorder = Recorder()
    for i in range(MAX_SERIES + 3):
        recorder.evaluation(Result(f"f{i}", "on", True, Reason.STATIC, 1))
    series, _, dropped, _ = recorder.take()
    assert (len(series), dropped) == (MAX_SERIES, 3)


def test_generated_rules_take_names_and_values_as_data() -> None:
    tricky = "x') or True or ('{N}{K}\n"
    f = flag("f", 1)
    config = f.environments["prod"]
    rule = config.rules.add(id="r")
    rule.serve.variant = "off"
    clause = rule.clauses.add(attribute=tricky, operator=flag_pb2.OPERATOR_IN)
    clause.values.add().string_value = tricky
    snap = Snapshot.build("prod", 1, [f])
    assert snap.evaluate("f", Context("u", {tricky: tricky}), None).variant == "off"
    assert snap.evaluate("f", Context("u", {tricky: "other"}), None).variant == "on"
    assert snap.evaluate("f", Context("u"), None).variant == "on"
