"""What `AsyncClient` and `Client` share: options, the current snapshot, the state, listeners,
metrics, and the typed getters (`_Reader`), which evaluate in the caller's thread or task with
no I/O and no lock beyond the metrics counter's."""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from flagwire import _engine
from flagwire._endpoints import split_endpoints
from flagwire._engine import Result, Snapshot, copy_json
from flagwire._metrics import REQUEST_SCOPE, Recorder, RequestScope, open_scope
from flagwire._proto.flagwire.v1 import flag_service_pb2
from flagwire._types import ErrorCode, EvaluationDetails, FlagChange, Reason, State
from flagwire.context import EMPTY, Context
from flagwire.errors import BootstrapError, ConfigError

log = logging.getLogger("flagwire")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

clock_ns: Callable[[], int] = time.perf_counter_ns
"""The monotonic clock outcome latencies are measured with (tests replace it)."""


@dataclass(frozen=True)
class Options:
    """A client's configuration (see `AsyncClient` for each option's meaning). `endpoints` is
    `url` split (`split_endpoints`) when not given."""

    url: str
    token: str
    environment: str = ""
    connect_timeout: float = 5.0
    heartbeat_timeout: float = 45.0
    min_backoff: float = 0.1
    max_backoff: float = 30.0
    metrics_flush_interval: float = 10.0
    bootstrap_file: str | None = None
    offline: bool = False
    metrics: bool = True
    tls_root_certificates: bytes | None = None
    endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.endpoints and not self.offline:
            object.__setattr__(self, "endpoints", split_endpoints(self.url))
        for name in (
            "connect_timeout",
            "heartbeat_timeout",
            "min_backoff",
            "max_backoff",
            "metrics_flush_interval",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_backoff < self.min_backoff:
            object.__setattr__(self, "max_backoff", self.min_backoff)


def load_bootstrap(path: str) -> Snapshot:
    """Reads a bootstrap file: a serialized `flagwire.v1.Snapshot`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise BootstrapError(f"{path}: {error}") from error
    message = flag_service_pb2.Snapshot()
    try:
        message.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or anything the decoder raises
        raise BootstrapError(f"{path}: not a snapshot: {error}") from error
    return Snapshot.from_proto(message)


def save_bootstrap(path: str, data: bytes) -> None:
    """Writes a bootstrap file atomically (a temporary file renamed over it), so a crash
    mid-write leaves the previous file intact."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Core:
    """The state one client holds. The snapshot reference is swapped whole by the stream
    applier; readers load it once per evaluation."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.instance_id = str(uuid.uuid4())
        self.sequence = itertools.count(1)
        self.snapshot: Snapshot | None = None
        self.not_ready = ErrorCode.PROVIDER_NOT_READY
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._change_listeners: list[Callable[[FlagChange], None]] = []
        self._state_listeners: list[Callable[[State], None]] = []

        path = options.bootstrap_file
        if options.offline and path is None:
            raise ConfigError("offline mode needs a bootstrap file")
        if path is not None and os.path.exists(path):
            try:
                self.snapshot = load_bootstrap(path)
            except BootstrapError as error:
                if options.offline:
                    raise
                log.warning("flagwire: ignoring the bootstrap file: %s", error)
                self.not_ready = ErrorCode.PARSE_ERROR
        elif options.offline:
            raise ConfigError(f"offline mode needs an existing bootstrap file ({path})")
        if self.snapshot is None:
            self.state = State.CONNECTING
        else:
            self.state = State.READY if options.offline else State.STALE
        self.recorder = Recorder() if options.metrics and not options.offline else None

    # -- state and listeners ------------------------------------------------------------------

    def set_state(self, state: State, error: str | None = None) -> None:
        with self._cond:
            changed = state is not self.state or error != self.last_error
            self.state = state
            self.last_error = error
            self._cond.notify_all()
        if changed:
            for listener in list(self._state_listeners):
                _call(listener, state)

    def wait_state(self, timeout: float) -> State:
        """Blocks until the state is READY or ERROR, or `timeout` passes; returns the state."""
        with self._cond:
            self._cond.wait_for(lambda: self.state in (State.READY, State.ERROR), timeout)
            return self.state

    def emit_change(self, change: FlagChange) -> None:
        for listener in list(self._change_listeners):
            _call(listener, change)

    def add_change_listener(self, listener: Callable[[FlagChange], None]) -> Callable[[], None]:
        self._change_listeners.append(listener)
        return functools.partial(_remove, self._change_listeners, listener)

    def add_state_listener(self, listener: Callable[[State], None]) -> Callable[[], None]:
        self._state_listeners.append(listener)
        return functools.partial(_remove, self._state_listeners, listener)


def _remove(listeners: list[Any], listener: Any) -> None:
    with contextlib.suppress(ValueError):
        listeners.remove(listener)


def _call(listener: Callable[[T], None], value: T) -> None:
    try:
        listener(value)
    except Exception:
        log.exception("flagwire: a listener raised")


_NOT_READY_MESSAGE: Final = {
    ErrorCode.PROVIDER_NOT_READY: "no flags received yet",
    ErrorCode.PARSE_ERROR: "the bootstrap file could not be decoded and no flags arrived yet",
}


def _identity(value: T) -> T:
    return value


def _json_any(value: Any) -> Any:
    return copy_json(value)


class Measurement:
    """An outcome being measured under the variant a flag served; see `_Reader.measure`.

    Use it as a context manager (`with` or `async with`, which give the variant served); an
    exception escaping the block, or a call to `fail()`, records an error, anything else a
    success. The latency is the time spent inside the block.

    Outside any request scope it is one: when the variant placed the unit in a release's
    cohort, the outcome also counts once for that cohort, and the team's metrics recorded
    inside the block (`track`, `observe`, ...) go to that variant and cohort. Inside one (a
    `Scope`, the FastAPI middleware's request), the flag joins that scope, whose outcome is the
    request's, and so are the metrics.
    """

    __slots__ = (
        "_enclosed",
        "_failed",
        "_finished",
        "_metric_scope",
        "_recorder",
        "_result",
        "_started",
        "_token",
    )

    def __init__(self, recorder: Recorder | None, result: Result | None) -> None:
        self._recorder = recorder
        self._result = result
        self._enclosed = open_scope() is not None
        self._failed = False
        self._finished = False
        self._metric_scope: RequestScope | None = None
        self._token: Any = None
        self._started = clock_ns()

    @property
    def variant(self) -> str:
        """The variant served ("" when the flag could not be evaluated)."""
        r = self._result
        return r.variant if r is not None else ""

    def fail(self) -> None:
        """Marks the outcome as an error without raising."""
        self._failed = True

    def finish(self, ok: bool = True) -> None:
        """Records the outcome now (only the first call counts)."""
        if self._finished:
            return
        self._finished = True
        r, recorder = self._result, self._recorder
        if recorder is not None and r is not None and r.error_code is None:
            micros = (clock_ns() - self._started) // 1000
            ok = ok and not self._failed
            recorder.outcome(r.series_key, ok, micros)
            if r.release_cohort is not None and not self._enclosed:
                recorder.cohort_outcome(r.release_cohort, ok, micros)
        scope = self._metric_scope
        if scope is not None:
            scope.open = False
            if scope.events:  # nothing to attribute them to without a variant
                scope.attribute([r.series_key] if r is not None and r.error_code is None else [])

    def __enter__(self) -> str:
        self._started = clock_ns()
        if not self._enclosed and self._recorder is not None and self._metric_scope is None:
            # Holds the metric events of the block; evaluations in it stay their own.
            self._metric_scope = RequestScope(joinable=False)
            self._token = REQUEST_SCOPE.set(self._metric_scope)
        return self.variant

    def _leave(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs ~0.3 µs on every measure
                REQUEST_SCOPE.reset(token)
            except ValueError:  # left in another context than the one entered
                pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        self.finish(exc_type is None)

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        self.finish(exc_type is None)


def _join(scope: RequestScope, r: Result, recorder: Recorder) -> None:
    """Notes in a request scope that `r` was served (for its outcome and its cohort's)."""
    scope.served[r.series_key] = recorder
    if r.release_cohort is not None:
        scope.cohorts[r.release_cohort] = recorder


class _Reader:
    """The typed getters, shared by `AsyncClient` and `Client`. None of them raises: on any
    problem they return the caller's default (and, in the details, reason `ERROR` with an
    error code)."""

    _core: Core

    # -- the hot path -------------------------------------------------------------------------

    def _evaluate(self, key: str, context: Context | None, expected: int | None) -> Result | None:
        core = self._core
        snapshot = core.snapshot
        if snapshot is None:
            return None
        try:
            ctx = EMPTY if context is None else context
            # Snapshot.evaluate, inlined (a call is ~60 ns): the flag's generated function does
            # the rest; a missing, archived or mistyped flag takes the general path.
            flag = snapshot.flags.get(key)
            if (
                flag is None
                or flag.archived
                or (expected is not None and expected != flag.value_type)
            ):
                r = snapshot.evaluate(key, ctx, expected)
            else:
                r = flag.evaluate(ctx, snapshot)
            if r.error_code is None:
                recorder = core.recorder
                if recorder is not None:
                    next(r.counter)  # Recorder.evaluation, inlined
                    if r.registry is not recorder:
                        recorder.register(r)
                    scope = REQUEST_SCOPE.get()
                    if scope is not None:
                        _join(scope, r, recorder)
            return r
        except Exception as error:  # evaluation never raises
            if not isinstance(context, Context):
                return Result.error(key, ErrorCode.INVALID_CONTEXT, "not a flagwire.Context", 0)
            log.exception("flagwire: evaluating %r failed", key)
            return Result.error(key, ErrorCode.GENERAL, f"internal error: {error}", 0)

    def get_bool(self, key: str, context: Context | None, default: bool) -> bool:
        """A boolean flag's value, or `default` on any problem."""
        # `_evaluate`, inlined (the same lines in each scalar getter: a call is ~60 ns, a tenth
        # of a five-rule split flag): a flag found with this type is evaluated and counted
        # here; anything else, or an exception, goes the general way.
        core = self._core
        snapshot = core.snapshot
        if snapshot is not None:
            flag = snapshot.flags.get(key)
            if flag is not None and flag.value_type == _engine.BOOLEAN and not flag.archived:
                try:
                    r = flag.evaluate(EMPTY if context is None else context, snapshot)
                    if r.error_code is not None:
                        return default
                    recorder = core.recorder
                    if recorder is not None:
                        next(r.counter)  # Recorder.evaluation, inlined
                        if r.registry is not recorder:
                            recorder.register(r)
                        scope = REQUEST_SCOPE.get()
                        if scope is not None:
                            _join(scope, r, recorder)
                    value: bool = r.value  # typed without a `cast` call
                    return value
                except Exception:  # `_evaluate` below logs or reports it
                    pass
        slow = self._evaluate(key, context, _engine.BOOLEAN)
        if slow is None or slow.error_code is not None:
            return default
        served: bool = slow.value
        return served

    def get_str(self, key: str, context: Context | None, default: str) -> str:
        """A string flag's value, or `default` on any problem."""
        # `_evaluate`, inlined (the same lines in each scalar getter: a call is ~60 ns, a tenth
        # of a five-rule split flag): a flag found with this type is evaluated and counted
        # here; anything else, or an exception, goes the general way.
        core = self._core
        snapshot = core.snapshot
        if snapshot is not None:
            flag = snapshot.flags.get(key)
            if flag is not None and flag.value_type == _engine.STRING and not flag.archived:
                try:
                    r = flag.evaluate(EMPTY if context is None else context, snapshot)
                    if r.error_code is not None:
                        return default
                    recorder = core.recorder
                    if recorder is not None:
                        next(r.counter)  # Recorder.evaluation, inlined
                        if r.registry is not recorder:
                            recorder.register(r)
                        scope = REQUEST_SCOPE.get()
                        if scope is not None:
                            _join(scope, r, recorder)
                    value: str = r.value  # typed without a `cast` call
                    return value
                except Exception:  # `_evaluate` below logs or reports it
                    pass
        slow = self._evaluate(key, context, _engine.STRING)
        if slow is None or slow.error_code is not None:
            return default
        served: str = slow.value
        return served

    def get_int(self, key: str, context: Context | None, default: int) -> int:
        """An integer flag's value, or `default` on any problem."""
        # `_evaluate`, inlined (the same lines in each scalar getter: a call is ~60 ns, a tenth
        # of a five-rule split flag): a flag found with this type is evaluated and counted
        # here; anything else, or an exception, goes the general way.
        core = self._core
        snapshot = core.snapshot
        if snapshot is not None:
            flag = snapshot.flags.get(key)
            if flag is not None and flag.value_type == _engine.INTEGER and not flag.archived:
                try:
                    r = flag.evaluate(EMPTY if context is None else context, snapshot)
                    if r.error_code is not None:
                        return default
                    recorder = core.recorder
                    if recorder is not None:
                        next(r.counter)  # Recorder.evaluation, inlined
                        if r.registry is not recorder:
                            recorder.register(r)
                        scope = REQUEST_SCOPE.get()
                        if scope is not None:
                            _join(scope, r, recorder)
                    value: int = r.value  # typed without a `cast` call
                    return value
                except Exception:  # `_evaluate` below logs or reports it
                    pass
        slow = self._evaluate(key, context, _engine.INTEGER)
        if slow is None or slow.error_code is not None:
            return default
        served: int = slow.value
        return served

    def get_float(self, key: str, context: Context | None, default: float) -> float:
        """A float flag's value, or `default` on any problem."""
        # `_evaluate`, inlined (the same lines in each scalar getter: a call is ~60 ns, a tenth
        # of a five-rule split flag): a flag found with this type is evaluated and counted
        # here; anything else, or an exception, goes the general way.
        core = self._core
        snapshot = core.snapshot
        if snapshot is not None:
            flag = snapshot.flags.get(key)
            if flag is not None and flag.value_type == _engine.FLOAT and not flag.archived:
                try:
                    r = flag.evaluate(EMPTY if context is None else context, snapshot)
                    if r.error_code is not None:
                        return default
                    recorder = core.recorder
                    if recorder is not None:
                        next(r.counter)  # Recorder.evaluation, inlined
                        if r.registry is not recorder:
                            recorder.register(r)
                        scope = REQUEST_SCOPE.get()
                        if scope is not None:
                            _join(scope, r, recorder)
                    value: float = r.value  # typed without a `cast` call
                    return value
                except Exception:  # `_evaluate` below logs or reports it
                    pass
        slow = self._evaluate(key, context, _engine.FLOAT)
        if slow is None or slow.error_code is not None:
            return default
        served: float = slow.value
        return served

    def get_json(self, key: str, context: Context | None, default: Any) -> Any:
        """An object flag's value (a fresh dict), or `default` on any problem."""
        r = self._evaluate(key, context, _engine.OBJECT)
        return default if r is None or r.error_code is not None else copy_json(r.value)

    # -- details ------------------------------------------------------------------------------

    def _details(
        self,
        key: str,
        context: Context | None,
        expected: int | None,
        default: T,
        convert: Callable[[Any], T],
    ) -> EvaluationDetails[T]:
        r = self._evaluate(key, context, expected)
        if r is None:
            code = self._core.not_ready
            return EvaluationDetails(
                key, default, None, Reason.ERROR, code, _NOT_READY_MESSAGE[code], 0, None
            )
        if r.error_code is not None:
            return EvaluationDetails(
                key,
                default,
                None,
                Reason.ERROR,
                r.error_code,
                r.error_message or None,
                r.flag_version,
                None,
            )
        return EvaluationDetails(
            key,
            convert(r.value),
            r.variant,
            r.reason,
            None,
            None,
            r.flag_version,
            r.cohort or None,
            r.rollout_id or None,
        )

    def get_bool_details(
        self, key: str, context: Context | None, default: bool
    ) -> EvaluationDetails[bool]:
        """`get_bool` with the facts behind the value."""
        return self._details(key, context, _engine.BOOLEAN, default, _identity)

    def get_str_details(
        self, key: str, context: Context | None, default: str
    ) -> EvaluationDetails[str]:
        """`get_str` with the facts behind the value."""
        return self._details(key, context, _engine.STRING, default, _identity)

    def get_int_details(
        self, key: str, context: Context | None, default: int
    ) -> EvaluationDetails[int]:
        """`get_int` with the facts behind the value."""
        return self._details(key, context, _engine.INTEGER, default, _identity)

    def get_float_details(
        self, key: str, context: Context | None, default: float
    ) -> EvaluationDetails[float]:
        """`get_float` with the facts behind the value."""
        return self._details(key, context, _engine.FLOAT, default, _identity)

    def get_json_details(
        self, key: str, context: Context | None, default: Any
    ) -> EvaluationDetails[Any]:
        """`get_json` with the facts behind the value."""
        return self._details(key, context, _engine.OBJECT, default, _json_any)

    def get_value_details(
        self, key: str, context: Context | None, default: Any
    ) -> EvaluationDetails[Any]:
        """Any flag's value without a type check (bool, str, int, float or dict), for generic
        tools that do not know a flag's type. The typed getters are the everyday API."""
        return self._details(key, context, None, default, _json_any)

    # -- measurement --------------------------------------------------------------------------

    def measure(self, flag: str, context: Context | None = None) -> Measurement:
        """Evaluates `flag` (any type) and measures an outcome under the variant it served:

            async with client.measure("new-checkout", ctx) as variant:
                ...  # an exception here counts as an error

        The duration of the block and whether it raised are recorded against that variant
        (and cohort and rollout), and reach the server with the next metrics flush. Outside a
        request scope, a variant served to a release's canary or control cohort also counts one
        outcome for that cohort; inside one, the request's outcome counts instead (see
        `scope()`).
        """
        return Measurement(self._core.recorder, self._evaluate(flag, context, None))

    def measured(
        self, flag: str, context: Context | Callable[..., Context] | None = None
    ) -> Callable[[F], F]:
        """A decorator measuring every call of a function (sync or async) under `flag`.
        `context` is a Context, or a function of the decorated function's arguments that
        returns one."""

        def context_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Context | None:
            if context is None or isinstance(context, Context):
                return context
            return context(*args, **kwargs)

        def decorate(fn: F) -> F:
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    async with self.measure(flag, context_for(args, kwargs)):
                        return await cast(Callable[..., Awaitable[Any]], fn)(*args, **kwargs)

                return cast(F, async_wrapper)

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.measure(flag, context_for(args, kwargs)):
                    return fn(*args, **kwargs)

            return cast(F, wrapper)

        return decorate

    # -- state --------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return self._core.state

    @property
    def last_error(self) -> str | None:
        """Why the state is ERROR (the server's message), else None."""
        return self._core.last_error

    @property
    def revision(self) -> int:
        """The revision of the copy being served (0 before the first snapshot)."""
        snapshot = self._core.snapshot
        return snapshot.revision if snapshot is not None else 0

    @property
    def instance_id(self) -> str:
        """This client's instance id (a UUID), as the server's instance registry shows it."""
        return self._core.instance_id

    def flag_keys(self) -> tuple[str, ...]:
        """Keys of every flag in the copy being served (archived ones excluded), sorted."""
        snapshot = self._core.snapshot
        return snapshot.flag_keys() if snapshot is not None else ()

    def on_change(self, listener: Callable[[FlagChange], None]) -> Callable[[], None]:
        """Calls `listener` with every applied revision's `FlagChange` (on the client's event
        loop; for `Client`, its background thread). Returns a function that unsubscribes."""
        return self._core.add_change_listener(listener)

    def on_state(self, listener: Callable[[State], None]) -> Callable[[], None]:
        """Calls `listener` with every state transition. Returns a function that
        unsubscribes."""
        return self._core.add_state_listener(listener)
