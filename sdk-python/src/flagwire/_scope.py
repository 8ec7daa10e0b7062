"""Request scopes outside web frameworks: `Scope` measures one unit of work (a request, a job,
a message) that reads several flags as ONE outcome, and `_BoundFlags`, the typed getters bound
to one evaluation context that `Scope` and `flagwire.fastapi.RequestFlags` share.

A scope is the `REQUEST_SCOPE` context variable set to a fresh `RequestScope` for the duration
of the block: every evaluation made inside (through the scope's getters or the client's, in
the same task or thread and in tasks and threads that copy the context, like asyncio tasks and
`asyncio.to_thread`) adds its flag to it. When the block ends, its outcome (an escaping
exception or `fail()` is an error; the latency is the block's duration) is recorded on the
series of every flag read (per-flag usage) and once per release cohort the unit was in (what a
release is judged on). Scopes nest: one opened inside an open scope (a `Scope`, or the FastAPI
middleware's request) joins it, so a request is one outcome however it is measured.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from flagwire import _measurement
from flagwire._measurement import Measurement
from flagwire._metrics import REQUEST_SCOPE, RequestScope, open_scope
from flagwire._reader import _Reader
from flagwire._tracking import Flags, Timer, _Tracking
from flagwire._types import EvaluationDetails
from flagwire.context import Context


class _BoundFlags:
    """A client's getters and tracking calls bound to one evaluation context (none of them
    raises)."""

    __slots__ = ("_client", "context")

    def __init__(self, client: _ScopedReader, context: Context | None = None) -> None:
        self._client = client
        self.context = context if context is not None else Context()
        """The evaluation context every getter uses."""

    def get_bool(self, key: str, default: bool) -> bool:
        """A boolean flag's value, or `default` on any problem."""
        return self._client.get_bool(key, self.context, default)

    def get_str(self, key: str, default: str) -> str:
        """A string flag's value, or `default` on any problem."""
        return self._client.get_str(key, self.context, default)

    def get_int(self, key: str, default: int) -> int:
        """An integer flag's value, or `default` on any problem."""
        return self._client.get_int(key, self.context, default)

    def get_float(self, key: str, default: float) -> float:
        """A float flag's value, or `default` on any problem."""
        return self._client.get_float(key, self.context, default)

    def get_json(self, key: str, default: Any) -> Any:
        """An object flag's value (a fresh dict), or `default` on any problem."""
        return self._client.get_json(key, self.context, default)

    def get_bool_details(self, key: str, default: bool) -> EvaluationDetails[bool]:
        """`get_bool` with the facts behind the value."""
        return self._client.get_bool_details(key, self.context, default)

    def get_str_details(self, key: str, default: str) -> EvaluationDetails[str]:
        """`get_str` with the facts behind the value."""
        return self._client.get_str_details(key, self.context, default)

    def get_int_details(self, key: str, default: int) -> EvaluationDetails[int]:
        """`get_int` with the facts behind the value."""
        return self._client.get_int_details(key, self.context, default)

    def get_float_details(self, key: str, default: float) -> EvaluationDetails[float]:
        """`get_float` with the facts behind the value."""
        return self._client.get_float_details(key, self.context, default)

    def get_json_details(self, key: str, default: Any) -> EvaluationDetails[Any]:
        """`get_json` with the facts behind the value."""
        return self._client.get_json_details(key, self.context, default)

    def get_value_details(self, key: str, default: Any) -> EvaluationDetails[Any]:
        """Any flag's value without a type check, for generic tools (`get_value_details`)."""
        return self._client.get_value_details(key, self.context, default)

    def measure(self, flag: str) -> Measurement:
        """The client's `measure` with this context."""
        return self._client.measure(flag, self.context)

    def track(self, name: str, value: float = 1.0, *, flags: Flags | None = None) -> None:
        """The client's `track` with this context (used only with `flags`)."""
        self._client.track(name, value, context=self.context, flags=flags)

    def track_outcome(self, name: str, ok: bool, *, flags: Flags | None = None) -> None:
        """The client's `track_outcome` with this context (used only with `flags`)."""
        self._client.track_outcome(name, ok, context=self.context, flags=flags)

    def observe(self, name: str, value: float, *, flags: Flags | None = None) -> None:
        """The client's `observe` with this context (used only with `flags`)."""
        self._client.observe(name, value, context=self.context, flags=flags)

    def timer(self, name: str, *, flags: Flags | None = None) -> Timer:
        """The client's `timer` with this context (used only with `flags`)."""
        return self._client.timer(name, context=self.context, flags=flags)


class Scope(_BoundFlags):
    """One unit of work measured as a whole: `client.scope(context)`.

        async with client.scope(Context("user-42")) as flags:   # or `with` in sync code
            if flags.get_bool("new-checkout", False) and flags.get_bool("fast-tax", False):
                ...            # an exception escaping the block counts as an error

    Every flag read inside the block (through these getters or the client's) is attributed
    the block's outcome: its latency, and whether it failed (an exception escaping the block,
    or `fail()`). A release is credited ONE outcome per cohort the unit was in, however many
    of its flags were read. The team's metrics recorded inside (`client.track(...)`, ...) go,
    when the block ends, to every variant read and once to each release cohort among them.
    A block that reads no flag records nothing. Opened inside another
    open scope (e.g. in a handler under `flagwire.fastapi.FlagwireMiddleware`), it joins that
    one instead, whose outcome is the request's; its `fail()` then fails the enclosing scope.
    A `Scope` is entered once.
    """

    __slots__ = ("_entered", "_failed", "_request", "_started", "_token")

    def __init__(self, client: _ScopedReader, context: Context | None = None) -> None:
        super().__init__(client, context)
        self._entered = False
        self._failed = False
        self._request: RequestScope | None = None  # None: joined an enclosing scope
        self._token: Any = None
        self._started = 0

    def fail(self) -> None:
        """Marks the outcome as an error without raising."""
        self._failed = True
        outer = open_scope()
        if self._entered and self._request is None and outer is not None:
            outer.failed = True

    def __enter__(self) -> Scope:
        if self._entered:
            raise RuntimeError("a flagwire Scope can be entered once; make another")
        self._entered = True
        if open_scope() is None:
            self._request = RequestScope()
            self._token = REQUEST_SCOPE.set(self._request)
        self._started = _measurement.clock_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        request = self._request
        if request is None:
            return
        REQUEST_SCOPE.reset(self._token)
        ok = exc_type is None and not self._failed
        request.record(ok, (_measurement.clock_ns() - self._started) // 1000)

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _ScopedReader(_Reader, _Tracking):
    """`_Reader` with `scope()` and the tracking calls: what both clients are."""

    def scope(self, context: Context | None = None) -> Scope:
        """A request scope with `context` (none when omitted) for a unit of work that reads
        several flags, measured as one outcome (see `Scope`):

            async with client.scope(Context("user-42")) as flags:
                variant = flags.get_str("checkout-flow", "classic")
        """
        return Scope(self, context)
