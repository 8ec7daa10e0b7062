"""FastAPI (and Starlette) integration. Needs the `fastapi` extra:
`pip install 'flagwire[fastapi]'`.

    client = AsyncClient(url, token)
    app = FastAPI(lifespan=flagwire_lifespan(client))
    app.add_middleware(FlagwireMiddleware)

    def context_of(request: Request) -> Context:
        return Context(request.headers.get("x-user-id", ""))

    Flags = Annotated[RequestFlags, Depends(flags_dependency(client, context_of))]

    @app.get("/checkout")
    async def checkout(flags: Flags) -> dict[str, str]:
        return {"checkout": "new" if flags.get_bool("new-checkout", False) else "classic"}

- `flagwire_lifespan(client)`: starts the client at startup (optionally waiting until it is
  ready) and closes it, flushing metrics, at shutdown; it can wrap the app's own lifespan.
- `flags_dependency(client, context_of)`: a dependency giving handlers `RequestFlags`, the
  client's getters bound to the request's evaluation context, which `context_of(request)`
  builds (sync or async: a user id from a header, auth claims, ...).
- `FlagwireMiddleware`: measures every HTTP request (its duration; an error is an unhandled
  exception or a 5xx response) and attributes it to every variant served while handling it,
  and once to each release cohort the request was in, through a `ContextVar` request scope, so
  canary metrics need no code in handlers. Flags read in the request's task, its
  dependencies, and sync handlers run in the thread pool all count; `client.scope()` and
  `measure()` inside a request join its scope. The team's metrics recorded while handling it
  (`client.track(...)`, `flags.track(...)`, ...) go to the same variants and cohorts.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

try:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("flagwire.fastapi needs FastAPI: pip install 'flagwire[fastapi]'") from error

from flagwire import _measurement
from flagwire._clients import AsyncClient
from flagwire._metrics import REQUEST_SCOPE, RequestScope
from flagwire._scope import _BoundFlags
from flagwire.context import Context
from flagwire.errors import FlagwireError

__all__ = [
    "FlagwireMiddleware",
    "RequestFlags",
    "flags_dependency",
    "flagwire_lifespan",
]

log = logging.getLogger("flagwire")

AppT = TypeVar("AppT")
Lifespan = Callable[[AppT], contextlib.AbstractAsyncContextManager[Any]]
ContextBuilder = Callable[[Request], Context | Awaitable[Context]]


def flagwire_lifespan(
    client: AsyncClient,
    *,
    wait_ready: float | None = 5.0,
    lifespan: Lifespan[AppT] | None = None,
) -> Lifespan[AppT]:
    """A FastAPI/Starlette lifespan that starts `client` at startup and closes it (flushing its
    metrics) at shutdown.

    With `wait_ready` (seconds; None to skip), startup waits until the client holds the flags,
    so the first requests see real values; if it is not ready in time, or the token is refused,
    startup goes on with a warning and getters serve defaults until it is. `lifespan` is the
    app's own lifespan, run inside this one (its state, if any, is passed through).
    """

    @contextlib.asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[Any]:
        client.start()
        if wait_ready is not None:
            try:
                await client.wait_ready(wait_ready)
            except FlagwireError as error:
                log.warning("flagwire: starting without flags: %s", error)
        try:
            if lifespan is None:
                yield None
            else:
                async with lifespan(app) as state:
                    yield state
        finally:
            await client.aclose()

    return run


class RequestFlags(_BoundFlags):
    """The client's getters (`get_bool(key, default)`, ..., `*_details`, `measure(flag)`)
    bound to one request's evaluation context (`context`)."""

    __slots__ = ()

    def __init__(self, client: AsyncClient, context: Context) -> None:
        super().__init__(client, context)


def flags_dependency(
    client: AsyncClient, context_of: ContextBuilder | None = None
) -> Callable[[Request], Awaitable[RequestFlags]]:
    """A FastAPI dependency giving a handler `RequestFlags` for the request, with the context
    `context_of(request)` returns (sync or async; no context when omitted):

        Flags = Annotated[RequestFlags, Depends(flags_dependency(client, context_of))]
    """

    async def dependency(request: Request) -> RequestFlags:
        if context_of is None:
            return RequestFlags(client, Context())
        context = context_of(request)
        if inspect.isawaitable(context):
            context = await context
        return RequestFlags(client, context)

    return dependency


class FlagwireMiddleware:
    """ASGI middleware measuring every HTTP request against the flags it was served:

        app.add_middleware(FlagwireMiddleware)

    A request is an error when the app raises (an unhandled exception) or answers with a
    status of 500 or more, or when `fail()` was called on a `client.scope()` inside it; its
    latency runs from the call until the app returns (the response has been sent). The
    outcome is recorded on every variant served and once per release cohort the request was
    in (however many of the release's flags it read). Requests that evaluated no flag record
    nothing. Works with any client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_scope = RequestScope()
        token = REQUEST_SCOPE.set(request_scope)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = _measurement.clock_ns()
        ok = False
        try:
            await self.app(scope, receive, send_status)
            ok = 0 < status < 500
        finally:
            REQUEST_SCOPE.reset(token)
            request_scope.record(ok, (_measurement.clock_ns() - started) // 1000)
