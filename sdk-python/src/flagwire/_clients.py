"""`AsyncClient` (asyncio, on the application's event loop) and `Client` (synchronous, with a
private event loop in a background thread). Both share the evaluation and state core."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from flagwire._core import Core, Options
from flagwire._endpoints import split_endpoints
from flagwire._runtime import Runtime
from flagwire._scope import _ScopedReader
from flagwire._types import FlagChange, State
from flagwire.errors import ReadyTimeoutError, UnauthorizedError

T = TypeVar("T")

_CHANGE_BUFFER = 256


def _options(
    url: str | Sequence[str],
    token: str,
    environment: str,
    connect_timeout: float,
    heartbeat_timeout: float,
    min_backoff: float,
    max_backoff: float,
    metrics_flush_interval: float,
    bootstrap_file: str | os.PathLike[str] | None,
    offline: bool,
    metrics: bool,
    tls_root_certificates: bytes | None,
) -> Options:
    endpoints = split_endpoints(url) if not offline else ()
    return Options(
        url=url if isinstance(url, str) else ",".join(url),
        endpoints=endpoints,
        token=token,
        environment=environment,
        connect_timeout=connect_timeout,
        heartbeat_timeout=heartbeat_timeout,
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        metrics_flush_interval=metrics_flush_interval,
        bootstrap_file=os.fspath(bootstrap_file) if bootstrap_file is not None else None,
        offline=offline,
        metrics=metrics,
        tls_root_certificates=tls_root_certificates,
    )


class ChangeStream:
    """An async iterator over `FlagChange`s, from the moment it was created. A consumer more
    than 256 changes behind loses the oldest ones. `aclose()` (or leaving `async with`)
    unsubscribes."""

    def __init__(self, client: AsyncClient) -> None:
        self._queue: asyncio.Queue[FlagChange] = asyncio.Queue(_CHANGE_BUFFER)
        self._unsubscribe = client.on_change(self._push)

    def _push(self, change: FlagChange) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(change)

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> FlagChange:
        return await self._queue.get()

    async def aclose(self) -> None:
        self._unsubscribe()

    async def __aenter__(self) -> ChangeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncClient(_ScopedReader):
    """A Flagwire client for asyncio applications.

    It keeps a local copy of one environment's flags, which the server keeps current over a
    gRPC stream, and evaluates flags from it in microseconds without I/O. Evaluation never
    raises: any problem returns your default.

        async with AsyncClient("http://127.0.0.1:7070", token) as client:
            await client.wait_ready()
            if client.get_bool("new-checkout", Context("user-42"), False):
                ...

    The client starts on `start()` (or `async with`, or `wait_ready()`), on the running event
    loop, and stops on `aclose()`, which also flushes the metrics.

    `url` is the server's gRPC address, or several (replicas): a list, or one string with commas
    (`"http://a:7070,http://b:7070"`, as an environment variable holds them). The client
    connects to the first; when a session ends or cannot start, the next attempt goes to the
    next one, in order and round again, resuming from the revision held. A name that resolves to
    several addresses counts as one endpoint per address (docs/reference/sync.md, "Several
    endpoints").

    Options (all keyword-only; times in seconds):

    - `environment`: the environment to watch, for admin or read-only tokens (sdk tokens are
      bound to one and need none);
    - `connect_timeout` (5): how long one connection attempt may take;
    - `heartbeat_timeout` (45): a stream silent this long is dead and is reconnected (three
      times the server's default heartbeat interval);
    - `min_backoff`, `max_backoff` (0.1, 30): reconnection waits start at the minimum and double
      per failure up to the maximum, with jitter, starting over once READY; a refused token
      waits the maximum (docs/reference/sync.md);
    - `metrics_flush_interval` (10): how often evaluation counts and outcomes are sent;
    - `bootstrap_file`: persist every applied snapshot there (a serialized
      `flagwire.v1.Snapshot`), and start from it when present (state STALE until the server
      answers);
    - `offline`: evaluate from the bootstrap file only; never connect (state READY);
    - `metrics` (True): count evaluations, measured outcomes and the team's own metrics
      (`track`, ...) and report them;
    - `tls_root_certificates`: PEM CA certificates to trust for TLS (`https://` URLs use the
      system's roots otherwise).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        token: str,
        *,
        environment: str = "",
        connect_timeout: float = 5.0,
        heartbeat_timeout: float = 45.0,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
        metrics_flush_interval: float = 10.0,
        bootstrap_file: str | os.PathLike[str] | None = None,
        offline: bool = False,
        metrics: bool = True,
        tls_root_certificates: bytes | None = None,
    ) -> None:
        self._core = Core(
            _options(
                url,
                token,
                environment,
                connect_timeout,
                heartbeat_timeout,
                min_backoff,
                max_backoff,
                metrics_flush_interval,
                bootstrap_file,
                offline,
                metrics,
                tls_root_certificates,
            )
        )
        self._runtime: Runtime | None = None
        self._closed = False

    def start(self) -> None:
        """Starts syncing on the running event loop (idempotent; nothing to do offline)."""
        if self._runtime is not None or self._closed or self._core.options.offline:
            return
        asyncio.get_running_loop()  # raises RuntimeError outside a running loop
        self._runtime = Runtime(self._core)
        self._runtime.start()

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Waits until a snapshot is applied (state READY). Raises `UnauthorizedError` when the
        server refuses the token and `ReadyTimeoutError` after `timeout` seconds."""
        self.start()
        core = self._core
        future: asyncio.Future[State] = asyncio.get_running_loop().create_future()

        def on_state(state: State) -> None:
            if state in (State.READY, State.ERROR) and not future.done():
                future.set_result(state)

        unsubscribe = core.add_state_listener(on_state)
        try:
            on_state(core.state)
            state = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise ReadyTimeoutError(f"not ready after {timeout} s (state {core.state})") from None
        finally:
            unsubscribe()
        if state is State.ERROR:
            raise UnauthorizedError(core.last_error or "token refused")

    def changes(self) -> ChangeStream:
        """An async iterator of every applied revision's `FlagChange`, from now on:

        async for change in client.changes():
            print(change.revision, change.flags)
        """
        return ChangeStream(self)

    async def states(self) -> AsyncIterator[State]:
        """An async iterator of state transitions, from its first iteration on."""
        queue: asyncio.Queue[State] = asyncio.Queue()
        unsubscribe = self.on_state(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    async def flush(self) -> bool:
        """Sends the metrics gathered so far now (they are also sent every flush interval and
        on close). Returns whether they were delivered."""
        if self._runtime is None:
            return True
        return await self._runtime.flush()

    async def aclose(self) -> None:
        """Flushes metrics and stops syncing. The last copy can still be read."""
        self._closed = True
        if self._runtime is not None:
            await self._runtime.aclose()

    async def __aenter__(self) -> AsyncClient:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncClient({self._core.options.url!r}, state={self.state.value}, "
            f"revision={self.revision})"
        )


class Client(_ScopedReader):
    """A synchronous Flagwire client, for scripts, WSGI (e.g. Django) apps and task workers
    (e.g. Celery): the same local evaluation as `AsyncClient`, kept current by a private
    asyncio event loop in a daemon thread. It starts syncing when created. Evaluation runs in
    the caller's thread. Listeners are called on the background thread.

    Takes the same options as `AsyncClient`. Create it after a process forks (e.g. in Celery's
    `worker_process_init`), not before: threads do not survive `fork()`.

        client = Client("http://127.0.0.1:7070", token)
        client.wait_ready()
        enabled = client.get_bool("new-checkout", Context("user-42"), False)
        client.close()
    """

    def __init__(
        self,
        url: str | Sequence[str],
        token: str,
        *,
        environment: str = "",
        connect_timeout: float = 5.0,
        heartbeat_timeout: float = 45.0,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
        metrics_flush_interval: float = 10.0,
        bootstrap_file: str | os.PathLike[str] | None = None,
        offline: bool = False,
        metrics: bool = True,
        tls_root_certificates: bytes | None = None,
    ) -> None:
        self._core = Core(
            _options(
                url,
                token,
                environment,
                connect_timeout,
                heartbeat_timeout,
                min_backoff,
                max_backoff,
                metrics_flush_interval,
                bootstrap_file,
                offline,
                metrics,
                tls_root_certificates,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtime: Runtime | None = None
        self._closed = False
        if not offline:
            self._start()

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                try:
                    pending = asyncio.all_tasks(loop)
                    for task in pending:
                        task.cancel()
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())
                finally:
                    loop.close()

        self._thread = threading.Thread(target=run, name="flagwire", daemon=True)
        self._thread.start()
        started.wait()

        async def start_runtime() -> Runtime:
            runtime = Runtime(self._core)
            runtime.start()
            return runtime

        self._runtime = self._run(start_runtime())
        # A script that forgets close() still flushes its metrics at exit.
        self._at_exit = self.close
        atexit.register(self._at_exit)

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Blocks until a snapshot is applied (state READY). Raises `UnauthorizedError` when the
        server refuses the token and `ReadyTimeoutError` after `timeout` seconds."""
        state = self._core.wait_state(timeout)
        if state is State.ERROR:
            raise UnauthorizedError(self._core.last_error or "token refused")
        if state is not State.READY:
            raise ReadyTimeoutError(f"not ready after {timeout} s (state {state})")

    def flush(self, timeout: float = 15.0) -> bool:
        """Sends the metrics gathered so far now. Returns whether they were delivered."""
        runtime = self._runtime
        if runtime is None or self._closed:
            return True
        return self._run(runtime.flush(), timeout)

    def close(self, timeout: float = 15.0) -> None:
        """Flushes metrics, stops syncing and the background thread. The last copy can still
        be read."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        runtime, loop, thread = self._runtime, self._loop, self._thread
        if runtime is None or loop is None or thread is None:
            return
        try:
            self._run(runtime.aclose(), timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Client({self._core.options.url!r}, state={self.state.value}, "
            f"revision={self.revision})"
        )
