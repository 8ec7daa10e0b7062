"""How the runtime reaches the server: a `Transport` opens one `Watch` call per session and
sends `Report`s to the endpoint of the last session, and moves to the next endpoint when told
(`rotate`). `GrpcTransport` is the real one, over grpc.aio; the sync scenario tests
(tests/sync/) substitute an in-memory one, since grpc.aio has no in-process channel.

Errors are grpc's: a call that the server ends with a status raises `grpc.aio.AioRpcError`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import grpc
import grpc.aio

from flagwire._core import Options
from flagwire._endpoints import Endpoints, Resolver, Target, target_of
from flagwire._proto.flagwire.v1 import (
    flag_service_pb2,
    flag_service_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
)

Metadata = tuple[tuple[str, str], ...]

_CONNECT_POLL: Final = 0.005
# How long a report in flight on the previous endpoint's channel may take to finish.
_REPORT_GRACE: Final = 5.0


class WatchCall(Protocol):
    """One open `Watch` call."""

    async def read(self) -> flag_service_pb2.WatchResponse | None:
        """The next message; `None` once the server ended the stream with OK. Raises
        `grpc.aio.AioRpcError` when it ended with another status, and `asyncio.CancelledError`
        once `cancel()` was called."""

    def cancel(self) -> None:
        """Ends the call; a pending `read()` raises `asyncio.CancelledError`."""

    async def close(self) -> None:
        """Cancels the call if needed and releases its connection."""


class Transport(Protocol):
    """The runtime's way to the server."""

    async def watch(self, request: flag_service_pb2.WatchRequest, metadata: Metadata) -> WatchCall:
        """Connects (raising `ConnectionError` or `TimeoutError` when it cannot) and starts a
        `Watch` call."""

    async def report(
        self, request: metrics_pb2.ReportRequest, metadata: Metadata, timeout: float
    ) -> None:
        """Sends one `Report`."""

    def rotate(self) -> None:
        """The next `watch` goes to the next endpoint (a session ended or could not start)."""

    async def close(self) -> None:
        """Releases every connection."""


__all__ = ["GrpcTransport", "Metadata", "Transport", "WatchCall", "target_of"]


class _GrpcWatch:
    def __init__(self, channel: grpc.aio.Channel, call: grpc.aio.UnaryStreamCall[Any, Any]) -> None:
        self._channel = channel
        self._call = call

    async def read(self) -> flag_service_pb2.WatchResponse | None:
        message: flag_service_pb2.WatchResponse | object = await self._call.read()
        return message if isinstance(message, flag_service_pb2.WatchResponse) else None

    def cancel(self) -> None:
        # grpc completes a pending read only when its call is cancelled (cancelling the awaiting
        # task alone can leave grpc waiting forever).
        self._call.cancel()

    async def close(self) -> None:
        self._call.cancel()
        await self._channel.close()


class GrpcTransport:
    """grpc.aio channels to the current endpoint of `options.endpoints`: a new one per `Watch`
    session (as after a server restart), and one shared, self-reconnecting channel for reports,
    replaced when a session starts on another endpoint. Create it on the event loop it will run
    on. `resolve` replaces the system resolver (tests)."""

    def __init__(self, options: Options, resolve: Resolver | None = None) -> None:
        self._options = options
        self._endpoints = Endpoints(options.endpoints, resolve)
        self._reports: tuple[Target, grpc.aio.Channel] | None = None
        self._retired: dict[asyncio.Task[None], grpc.aio.Channel] = {}

    @property
    def endpoints(self) -> Endpoints:
        """The endpoints and which one is current."""
        return self._endpoints

    def _channel(self, target: Target, reconnect: bool) -> grpc.aio.Channel:
        options = self._options
        channel_options: list[tuple[str, int | str]] = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # A channel of its own connection: each Watch session dials anew (as after a server
            # restart), instead of sharing grpc's process-wide subchannels.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if reconnect:
            channel_options += [
                ("grpc.initial_reconnect_backoff_ms", max(int(options.min_backoff * 1000), 1)),
                ("grpc.min_reconnect_backoff_ms", max(int(options.min_backoff * 1000), 1)),
                ("grpc.max_reconnect_backoff_ms", max(int(options.max_backoff * 1000), 1)),
            ]
        if target.authority is not None:
            # An address pinned from a name: present the name, as a connection to it would
            # (grpc also verifies the server's certificate against the authority's host).
            channel_options.append(("grpc.default_authority", target.authority))
        if target.secure or options.tls_root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(options.tls_root_certificates)
            return grpc.aio.secure_channel(target.address, credentials, options=channel_options)
        return grpc.aio.insecure_channel(target.address, options=channel_options)

    async def _connect(self, channel: grpc.aio.Channel) -> None:
        """Waits until `channel` is connected: raises on a failed attempt (no retry here: the
        backoff is the runtime's) or after the connect timeout. Polls the connectivity state
        rather than awaiting grpc's state-change futures, which a timeout would have to
        cancel."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.connect_timeout
        state = channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.READY:
            if state in (
                grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                grpc.ChannelConnectivity.SHUTDOWN,
            ):
                raise ConnectionError("connection failed")
            if loop.time() > deadline:
                raise TimeoutError("connect timeout")
            await asyncio.sleep(_CONNECT_POLL)
            state = channel.get_state(try_to_connect=False)

    async def _report_channel(self) -> grpc.aio.Channel:
        """The reports channel to the current endpoint. The previous one is closed in the
        background with a grace period, so a report in flight on it can still complete."""
        target = await self._endpoints.current()
        if self._reports is not None and self._reports[0] == target:
            return self._reports[1]
        if self._reports is not None:
            old = self._reports[1]
            task = asyncio.ensure_future(old.close(grace=_REPORT_GRACE))
            self._retired[task] = old
            task.add_done_callback(self._retired.pop)
        channel = self._channel(target, reconnect=True)
        self._reports = (target, channel)
        return channel

    async def watch(self, request: flag_service_pb2.WatchRequest, metadata: Metadata) -> WatchCall:
        await self._report_channel()  # reports follow the session to its endpoint
        channel = self._channel(await self._endpoints.current(), reconnect=False)
        try:
            await self._connect(channel)
        except BaseException:
            await channel.close()
            raise
        call = flag_service_pb2_grpc.FlagServiceStub(channel).Watch(request, metadata=metadata)
        return _GrpcWatch(channel, call)

    async def report(
        self, request: metrics_pb2.ReportRequest, metadata: Metadata, timeout: float
    ) -> None:
        # The latest session's endpoint (a rotation moves reports when the next session starts).
        channel = self._reports[1] if self._reports is not None else await self._report_channel()
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        await stub.Report(request, metadata=metadata, timeout=timeout)

    def rotate(self) -> None:
        self._endpoints.advance()

    async def close(self) -> None:
        if self._reports is not None:
            await self._reports[1].close()
        # Channels of earlier endpoints still in their grace period: no more waiting.
        for task, channel in list(self._retired.items()):
            await channel.close()
            await task
