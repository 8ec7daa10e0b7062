"""The in-memory server the sync scenarios (tests/sync/) script, as a `Transport` the runtime
runs over: every Watch call and every acknowledgement (a Report without series) is queued,
stamped with the loop's (virtual) clock, for the runner to match and answer; nothing is sent or
answered until it says so. Errors are the `grpc.aio.AioRpcError`s grpc.aio raises."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2, metrics_pb2
from flagwire._transport import Metadata, WatchCall

ENVIRONMENT = "production"
"""The environment every scenario's flags belong to."""

Flags = dict[str, bool]


def error(code: str, message: str = "scripted") -> grpc.aio.AioRpcError:
    """What grpc.aio raises for a call the server ended with `code` (`UNAVAILABLE`, ...)."""
    return grpc.aio.AioRpcError(
        grpc.StatusCode[code], grpc.aio.Metadata(), grpc.aio.Metadata(), details=message
    )


def bool_flag(key: str, enabled: bool, revision: int) -> flag_pb2.Flag:
    """`True`: enabled, serving `on`; `False`: disabled, serving `off`; version `revision`."""
    return flag_pb2.Flag(
        key=key,
        type=flag_pb2.VALUE_TYPE_BOOLEAN,
        version=revision,
        variants=[
            flag_pb2.Variant(key="on", value=flag_pb2.FlagValue(bool_value=True)),
            flag_pb2.Variant(key="off", value=flag_pb2.FlagValue(bool_value=False)),
        ],
        environments={
            ENVIRONMENT: flag_pb2.FlagConfig(
                enabled=enabled, off_variant="off", default_rule=flag_pb2.Serve(variant="on")
            )
        },
    )


def snapshot(revision: int, flags: Flags) -> flag_service_pb2.Snapshot:
    """A snapshot of `flags` at `revision`."""
    return flag_service_pb2.Snapshot(
        environment=ENVIRONMENT,
        revision=revision,
        flags=[bool_flag(k, v, revision) for k, v in flags.items()],
    )


def message(spec: dict[str, Any]) -> flag_service_pb2.WatchResponse:
    """The Watch message of a scenario's `send` step."""
    if "snapshot" in spec:
        s = spec["snapshot"]
        return flag_service_pb2.WatchResponse(snapshot=snapshot(s["revision"], s["flags"]))
    if "heartbeat" in spec:
        revision = spec["heartbeat"]["revision"]
        return flag_service_pb2.WatchResponse(
            heartbeat=flag_service_pb2.Heartbeat(revision=revision)
        )
    c = spec["change"]
    change = flag_service_pb2.Change(revision=c["revision"])
    flags = [bool_flag(k, v, c["revision"]) for k, v in c.get("set", {}).items()]
    if "delete" in c:
        change.flag_deleted = c["delete"]
    elif len(flags) == 1:
        change.flag_upserted.CopyFrom(flags[0])
    else:
        change.flags_upserted.CopyFrom(flag_service_pb2.FlagBatch(flags=flags))
    return flag_service_pb2.WatchResponse(change=change)


_End = grpc.aio.AioRpcError | None  # None: a clean end


class FakeWatch:
    """One Watch call. Like grpc.aio's, a pending read raises `CancelledError` once the call is
    cancelled."""

    def __init__(self, request: flag_service_pb2.WatchRequest, at: float) -> None:
        self.request = request
        self.at = at
        self._commands: asyncio.Queue[flag_service_pb2.WatchResponse | _End] = asyncio.Queue()
        self._pending: asyncio.Future[flag_service_pb2.WatchResponse | _End] | None = None
        self._cancelled = False

    def send(self, response: flag_service_pb2.WatchResponse) -> None:
        self._commands.put_nowait(response)

    def end(self, end: _End) -> None:
        self._commands.put_nowait(end)

    async def read(self) -> flag_service_pb2.WatchResponse | None:
        if self._cancelled:
            raise asyncio.CancelledError
        self._pending = asyncio.ensure_future(self._commands.get())
        try:
            command = await self._pending
        finally:
            self._pending = None
        if isinstance(command, grpc.aio.AioRpcError):
            self._cancelled = True  # nothing follows an error
            raise command
        return command

    def cancel(self) -> None:
        self._cancelled = True
        if self._pending is not None:
            self._pending.cancel()

    async def close(self) -> None:
        self.cancel()


@dataclass
class FakeAck:
    """One acknowledgement; the runner resolves `reply` (or sets an error on it)."""

    request: metrics_pb2.ReportRequest
    at: float
    reply: asyncio.Future[None] = field(repr=False)


class FakeTransport:
    """The runtime's transport; `watches` and `acks` are the runner's queues."""

    def __init__(self) -> None:
        self.watches: asyncio.Queue[FakeWatch] = asyncio.Queue()
        self.acks: asyncio.Queue[FakeAck] = asyncio.Queue()

    async def watch(self, request: flag_service_pb2.WatchRequest, metadata: Metadata) -> WatchCall:
        call = FakeWatch(request, asyncio.get_running_loop().time())
        self.watches.put_nowait(call)
        return call

    async def report(
        self, request: metrics_pb2.ReportRequest, metadata: Metadata, timeout: float
    ) -> None:
        if request.series or request.cohort_outcomes or request.metrics:  # windows: not sync
            return
        loop = asyncio.get_running_loop()
        ack = FakeAck(request, loop.time(), loop.create_future())
        self.acks.put_nowait(ack)
        await ack.reply

    def rotate(self) -> None:
        """One scripted server stands for every endpoint: the scenarios pin the loop's timing
        and requests, which rotation does not change (test_failover.py tests rotation)."""

    async def close(self) -> None:
        return None
