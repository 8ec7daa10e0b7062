"""How the runtime reaches the server: a `Transport` opens one `Watch` call per session and
sends `Report`s. `GrpcTransport` is the real one, over grpc.aio; the sync scenario tests
(tests/sync/) substitute an in-memory one, since grpc.aio has no in-process channel.

Errors are grpc's: a call that the server ends with a status raises `grpc.aio.AioRpcError`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

import grpc
import grpc.aio

from flagwire._core import Options
from flagwire._proto.flagwire.v1 import (
    flag_service_pb2,
    flag_service_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
)

Metadata = tuple[tuple[str, str], ...]

_CONNECT_POLL: Final = 0.005


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

    async def close(self) -> None:
        """Releases every connection."""


def target_of(url: str) -> tuple[str, bool]:
    """(gRPC target, whether TLS is used) of `http://host:port`, `https://host:port` or
    `host:port`."""
    for scheme, secure in (("http://", False), ("https://", True)):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/"), secure
    return url, False


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
    """grpc.aio channels to `options.url`: a new one per `Watch` session (as after a server
    restart), and one shared, self-reconnecting channel for reports. Create it on the event
    loop it will run on."""

    def __init__(self, options: Options) -> None:
        self._options = options
        self._target, self._secure = target_of(options.url)
        self._reports = self._channel(reconnect=True)

    def _channel(self, reconnect: bool) -> grpc.aio.Channel:
        options = self._options
        channel_options: list[tuple[str, int]] = [
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
        if self._secure or options.tls_root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(options.tls_root_certificates)
            return grpc.aio.secure_channel(self._target, credentials, options=channel_options)
        return grpc.aio.insecure_channel(self._target, options=channel_options)

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

    async def watch(self, request: flag_service_pb2.WatchRequest, metadata: Metadata) -> WatchCall:
        channel = self._channel(reconnect=False)
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
        stub = metrics_pb2_grpc.MetricsServiceStub(self._reports)
        await stub.Report(request, metadata=metadata, timeout=timeout)

    async def close(self) -> None:
        await self._reports.close()
