"""The background work of a client, on an asyncio event loop (the application's for
`AsyncClient`, a private one in a thread for `Client`):

- `Watch`: applies the snapshot and every change in revision order, resumes with
  `since_revision` after a disconnect (a gap or a change before any snapshot reconnects, and the
  server fills the gap), on the next endpoint when there are several, treats a stream silent
  past the heartbeat timeout as dead, reconnects with capped exponential backoff and jitter,
  and on UNAUTHENTICATED / PERMISSION_DENIED sets state ERROR and retries only at the maximum
  backoff;
- acknowledgement: tells the server each applied revision through `MetricsService.Report` at
  once, one report in flight at a time;
- metrics: flushes the window (series, release cohort outcomes, the team's own metrics, the
  dropped count) every flush interval, merging it back when the server cannot be reached and
  dropping it when the server refuses its content (INVALID_ARGUMENT).

The rules are docs/reference/sync.md's; tests/sync/ pins them (tests/test_sync_scenarios.py runs
them through an in-memory `Transport` on a virtual clock).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Final

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2

from flagwire._core import Core, save_bootstrap
from flagwire._proto.flagwire.v1 import flag_service_pb2, metrics_pb2
from flagwire._snapshot import ApplyError, Snapshot
from flagwire._transport import GrpcTransport, Transport, WatchCall, target_of
from flagwire._types import FlagChange, State
from flagwire._version import SDK_NAME, __version__

log = logging.getLogger("flagwire")

__all__ = ["Runtime", "target_of"]

_REFUSED: Final = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
# An acknowledgement refused with these would be refused again: that revision is given up.
_ACK_GIVE_UP: Final = (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT)
_ACK_RETRY: Final = 0.25
_REPORT_TIMEOUT: Final = 10.0
_CLOSE_TIMEOUT: Final = 5.0


@dataclass
class _Refused:
    message: str


@dataclass
class _Failed:
    reason: str
    ready: bool  # the session reached READY: the backoff starts over


class _Resync(Exception):
    """The stream delivered something that cannot be applied on top of what is held."""


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


class Runtime:
    """The tasks of one client on one event loop."""

    def __init__(self, core: Core, transport: Transport | None = None) -> None:
        """`transport` replaces the grpc.aio one (the sync scenario tests' in-memory one)."""
        self.core = core
        self._metadata = (("authorization", f"Bearer {core.options.token}"),)
        self._given_transport = transport
        self._transport: Transport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._applied = 0
        self._applied_event = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._window_start = time.time_ns()
        self._closed = False
        self._persisting: asyncio.Future[None] | None = None
        self._call: WatchCall | None = None
        self.connections = 0  # sessions started (tests read it)

    def start(self) -> None:
        """Starts the tasks on the running loop."""
        self._transport = self._given_transport or GrpcTransport(self.core.options)
        self._tasks = [asyncio.ensure_future(self._run()), asyncio.ensure_future(self._ack())]
        if self.core.recorder is not None:
            self._tasks.append(asyncio.ensure_future(self._flush_loop()))

    async def aclose(self) -> None:
        """Flushes metrics, then stops every task and closes the channels."""
        if self._closed:
            return
        self._closed = True
        await self.flush()
        # grpc completes a pending read only when its call is cancelled (cancelling the awaiting
        # task alone can leave grpc waiting forever): cancel the call first, then the tasks.
        if self._call is not None:
            self._call.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=_CLOSE_TIMEOUT)
        if self._transport is not None:
            await self._transport.close()
        if self._persisting is not None:
            await self._persisting

    # -- Watch --------------------------------------------------------------------------------

    async def _run(self) -> None:
        options = self.core.options
        delay = options.min_backoff
        while not self._closed:
            try:
                end = await self._session()
            except Exception as error:  # a bug must not stop the client from syncing
                log.exception("flagwire: the stream failed unexpectedly")
                end = _Failed(f"unexpected: {error!r}", False)
            if isinstance(end, _Refused):
                log.warning("flagwire: token refused (%s); retrying slowly", end.message)
                self.core.set_state(State.ERROR, end.message)
                wait = options.max_backoff
            else:
                log.debug("flagwire: stream ended (%s); reconnecting", end.reason)
                # The next session goes to the next endpoint (replica); a refusal would be the
                # same on every replica, so it stays.
                assert self._transport is not None
                self._transport.rotate()
                stale = self.core.snapshot is not None
                self.core.set_state(State.STALE if stale else State.CONNECTING)
                if end.ready:
                    delay = options.min_backoff
                current, delay = delay, min(delay * 2, options.max_backoff)
                # Jitter in [d/2, d] spreads a fleet reconnecting after a server restart.
                wait = random.uniform(current / 2, current)
            if self._closed:
                return
            await asyncio.sleep(wait)

    async def _session(self) -> _Refused | _Failed:
        assert self._transport is not None
        self.connections += 1
        ready = False
        call: WatchCall | None = None
        try:
            snapshot = self.core.snapshot
            request = flag_service_pb2.WatchRequest(
                environment=self.core.options.environment,
                since_revision=snapshot.revision if snapshot is not None else 0,
                instance_id=self.core.instance_id,
                sdk_name=SDK_NAME,
                sdk_version=__version__,
            )
            try:
                call = await self._transport.watch(request, self._metadata)
            except (ConnectionError, TimeoutError) as error:
                return _Failed(f"connect: {error}", False)
            self._call = call
            # The heartbeat timeout cancels the call (see aclose: never the pending read). It
            # runs from the start of the call, and again from each message.
            expired = False
            watch = call

            def expire() -> None:
                nonlocal expired
                expired = True
                watch.cancel()

            loop = asyncio.get_running_loop()
            timeout = self.core.options.heartbeat_timeout
            timer = loop.call_later(timeout, expire)
            try:
                while True:
                    try:
                        message = await call.read()
                    except asyncio.CancelledError:
                        if expired and not self._closed:
                            return _Failed("no message within the heartbeat timeout", ready)
                        raise
                    if expired:
                        return _Failed("no message within the heartbeat timeout", ready)
                    timer.cancel()
                    timer = loop.call_later(timeout, expire)
                    if message is None:
                        return _Failed("stream ended", ready)
                    try:
                        ready |= await self._apply(message)
                    except _Resync as error:
                        return _Failed(str(error), ready)
            finally:
                timer.cancel()
        except grpc.aio.AioRpcError as error:
            if error.code() in _REFUSED:
                return _Refused(error.details() or error.code().name)
            return _Failed(f"{error.code().name}: {error.details()}", ready)
        finally:
            self._call = None
            if call is not None:
                await call.close()

    async def _apply(self, message: flag_service_pb2.WatchResponse) -> bool:
        """Applies one stream message; returns whether the client is READY through it (a
        revision applied, or the held one confirmed by a heartbeat)."""
        core = self.core
        current = core.snapshot
        event = message.WhichOneof("event")
        if event == "snapshot":
            nxt = Snapshot.from_proto(message.snapshot)
            changed = current.changed_flags(nxt) if current is not None else nxt.flag_keys()
        elif event == "change":
            if current is None:
                raise _Resync("a change arrived before any snapshot")
            try:
                nxt, changed = current.apply(message.change)
            except ApplyError as error:
                # Reconnecting resumes from what is held; the server fills the gap.
                raise _Resync(str(error)) from None
        elif event == "heartbeat":
            held = current.revision if current is not None else 0
            if message.heartbeat.revision > held:
                raise _Resync(f"heartbeat at {message.heartbeat.revision} but holding {held}")
            if current is None:
                return False
            if core.state is not State.READY:
                core.set_state(State.READY)
            # A copy never acknowledged (a bootstrap) is acknowledged once confirmed.
            self._acknowledge(current.revision)
            return True
        else:
            return False
        core.snapshot = nxt
        # Announce before declaring READY, so whoever subscribes after wait_ready() returns
        # sees only later revisions.
        core.emit_change(FlagChange(nxt.revision, changed))
        core.set_state(State.READY)
        self._acknowledge(nxt.revision)
        if core.options.bootstrap_file is not None:
            data = nxt.to_proto().SerializeToString()
            self._persisting = asyncio.ensure_future(self._persist(self._persisting, data))
        return True

    async def _persist(self, previous: asyncio.Future[None] | None, data: bytes) -> None:
        """Writes the bootstrap file in a worker thread, after the previous write (so the
        newest snapshot is the one left on disk). Not cancelled by `aclose()`, which waits."""
        if previous is not None:
            await previous
        path = self.core.options.bootstrap_file
        assert path is not None
        try:
            await asyncio.to_thread(save_bootstrap, path, data)
        except OSError as error:
            log.warning("flagwire: could not write the bootstrap file: %s", error)

    # -- reports ------------------------------------------------------------------------------

    def _report_request(self, **fields: object) -> metrics_pb2.ReportRequest:
        core = self.core
        return metrics_pb2.ReportRequest(
            instance_id=core.instance_id,
            sequence=next(core.sequence),
            sdk_name=SDK_NAME,
            sdk_version=__version__,
            environment=core.options.environment,
            **fields,  # type: ignore[arg-type]
        )

    async def _report(self, request: metrics_pb2.ReportRequest) -> None:
        assert self._transport is not None
        await self._transport.report(request, self._metadata, _REPORT_TIMEOUT)

    def _acknowledge(self, revision: int) -> None:
        self._applied = revision
        self._applied_event.set()

    async def _ack(self) -> None:
        """Tells the server which revision this instance applied (docs/reference/sync.md,
        "Applied-revision acknowledgements"): at once, without a timer (a kill switch is
        confirmed only when every instance has said so), one report in flight at a time;
        whatever was applied meanwhile is sent when it returns. "Differs", not "is greater": a
        server restored from a backup sends a lower revision."""
        acked = 0
        while True:
            await self._applied_event.wait()
            self._applied_event.clear()
            while self._applied != acked:
                revision = self._applied
                try:
                    await self._report(self._report_request(applied_revision=revision))
                    acked = revision
                except grpc.aio.AioRpcError as error:
                    if error.code() in _ACK_GIVE_UP:
                        acked = revision
                        continue
                    log.debug("flagwire: applied-revision report failed: %s", error.code())
                    refused = error.code() in _REFUSED
                    await asyncio.sleep(self.core.options.max_backoff if refused else _ACK_RETRY)

    async def _flush_loop(self) -> None:
        interval = self.core.options.metrics_flush_interval
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    async def flush(self) -> bool:
        """Sends the metrics window now. Returns whether it was delivered (or empty)."""
        recorder = self.core.recorder
        if recorder is None or self._transport is None:
            return True
        async with self._flush_lock:
            window = recorder.take()
            if window.empty:
                return True
            now = time.time_ns()
            snapshot = self.core.snapshot
            request = self._report_request(
                applied_revision=snapshot.revision if snapshot is not None else 0,
                window_start=_timestamp(self._window_start),
                window_end=_timestamp(now),
                series=window.series,
                dropped_series=window.dropped,
                cohort_outcomes=window.cohort_outcomes,
                metrics=window.metrics,
            )
            try:
                await self._report(request)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    # The server refused the window's content (e.g. a flag deleted since it was
                    # read): resending it would be refused forever, so it is dropped.
                    log.warning("flagwire: metrics window refused, dropped: %s", error.details())
                    return False
                log.debug("flagwire: metrics flush failed (%s); kept", error.code())
                recorder.merge_back(window)
                return False
            self._window_start = now
            return True
