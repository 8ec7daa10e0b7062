"""The window of the team's metrics: bounded (metric keys share the cap of series; beyond it an
event is dropped and counted), merged back when a report fails, dropped when the server refuses
it (INVALID_ARGUMENT), and carried in `ReportRequest.metrics` through the runtime's flush."""

from __future__ import annotations

import grpc
import grpc.aio
from fake_sync import FakeTransport
from serving import serving_snapshot

from flagwire import AsyncClient, Context
from flagwire._metrics import MAX_SERIES, Recorder, Window
from flagwire._own_metrics import MAX_KEYS, Kind, ScopeEvents
from flagwire._proto.flagwire.v1 import metrics_pb2
from flagwire._runtime import Runtime
from flagwire._transport import Metadata

BANNER = ("banner", "blue", "", "")
CANARY = ("checkout", "on", "canary", "rel-1")


def test_metric_keys_share_the_series_cap() -> None:
    assert MAX_KEYS == MAX_SERIES
    recorder = Recorder()
    for i in range(MAX_SERIES + 3):
        recorder.metric_event([BANNER], f"m{i}", Kind.TRACK, 1.0)
    recorder.metric_event([BANNER], "m0", Kind.TRACK, 2.0)  # a key it holds still counts
    window = recorder.take()
    assert (len(window.metrics), window.dropped) == (MAX_SERIES, 3)
    m0 = next(m for m in window.metrics if m.name == "m0")
    assert (m0.count, m0.sum) == (2, 3.0)
    # Merging back obeys the same bound: the new key takes a place, one of the old does not fit.
    recorder.metric_event([CANARY], "x", Kind.OBSERVE, 1.0)  # two keys: flag and cohort
    recorder.merge_back(window)
    assert recorder.take().dropped == 3 + 2


def test_a_scope_holds_at_most_max_keys_names() -> None:
    events = ScopeEvents()
    for i in range(MAX_KEYS + 2):
        assert events.add(f"m{i}", Kind.TRACK, 1.0)
    assert (len(events.names), events.dropped) == (MAX_KEYS, 2)
    events.close()
    assert not events.add("m0", Kind.TRACK, 1.0), "an ended scope takes nothing"


def test_a_merged_back_window_adds_up() -> None:
    recorder = Recorder()
    recorder.metric_event([CANARY], "wait_ms", Kind.OBSERVE, 2.5)
    recorder.metric_event([CANARY], "saved", Kind.OUTCOME, 1.0)
    taken = recorder.take()
    recorder.metric_event([CANARY], "wait_ms", Kind.OBSERVE, 0.5)
    recorder.merge_back(taken)
    recorder.merge_back(Window([], [], 1, []))
    window = recorder.take()
    by_key = {(m.flag_key, m.name): m for m in window.metrics}
    assert window.dropped == 1
    assert set(by_key) == {(f, n) for f in ("", "checkout") for n in ("saved", "wait_ms")}
    wait = by_key[("", "wait_ms")]
    assert (wait.count, wait.sum, wait.histogram.count, wait.histogram.sum) == (2, 3.0, 2, 3000.0)
    assert by_key[("checkout", "saved")].successes == 1


class _Scripted(FakeTransport):
    """Answers metrics reports with the scripted errors first (None: accepted), keeping the
    accepted ones; acknowledgements pass."""

    def __init__(self, *errors: grpc.StatusCode | None) -> None:
        super().__init__()
        self.errors = list(errors)
        self.delivered: list[metrics_pb2.ReportRequest] = []

    async def report(
        self, request: metrics_pb2.ReportRequest, metadata: Metadata, timeout: float
    ) -> None:
        if not request.HasField("window_end"):
            return  # an acknowledgement
        code = self.errors.pop(0) if self.errors else None
        if code is not None:
            raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata())
        self.delivered.append(request)


def _client() -> AsyncClient:
    client = AsyncClient("http://127.0.0.1:1", "-")  # the runtime below is its only I/O
    client._core.snapshot = serving_snapshot([CANARY, BANNER])
    return client


def _request(client: AsyncClient, value: float) -> None:
    with client.scope(Context("u")) as flags:
        flags.get_str("checkout", "")
        client.track("hits", value)


async def test_a_failed_report_is_merged_back_and_sent_with_the_next() -> None:
    client = _client()
    transport = _Scripted(grpc.StatusCode.UNAVAILABLE)
    runtime = Runtime(client._core, transport)
    runtime.start()
    try:
        _request(client, 2)
        client.track("lost")  # no scope, no flags: dropped and counted
        assert not await runtime.flush(), "UNAVAILABLE: kept"
        _request(client, 3)
        assert await runtime.flush()
        assert await runtime.flush(), "nothing left"
    finally:
        await runtime.aclose()
    (report,) = transport.delivered
    assert report.dropped_series == 1
    assert [(m.flag_key, m.cohort, m.count, m.sum, m.requests, m.request_sum_of_squares)
            for m in report.metrics] == [
        ("", "canary", 2, 5.0, 2, 13.0),
        ("checkout", "canary", 2, 5.0, 2, 13.0),
    ]  # fmt: skip


async def test_a_refused_report_is_dropped() -> None:
    client = _client()
    transport = _Scripted(grpc.StatusCode.INVALID_ARGUMENT)
    runtime = Runtime(client._core, transport)
    runtime.start()
    try:
        _request(client, 2)
        assert not await runtime.flush(), "refused"
        _request(client, 3)
        assert await runtime.flush()
    finally:
        await runtime.aclose()
    (report,) = transport.delivered
    assert [(m.flag_key, m.sum) for m in report.metrics] == [("", 3.0), ("checkout", 3.0)]
