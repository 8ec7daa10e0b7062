"""The typed getters that `AsyncClient` and `Client` share (`_Reader`), which evaluate in the
caller's thread or task with no I/O and no lock beyond the metrics counter's, with `measure`
and the client's state."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, cast

from flagwire import _values
from flagwire._core import Core
from flagwire._measurement import Measurement
from flagwire._metrics import REQUEST_SCOPE, Recorder, RequestScope
from flagwire._result import Result
from flagwire._types import ErrorCode, EvaluationDetails, FlagChange, Reason, State
from flagwire._values import copy_json
from flagwire.context import EMPTY, Context

log = logging.getLogger("flagwire")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


_NOT_READY_MESSAGE: Final = {
    ErrorCode.PROVIDER_NOT_READY: "no flags received yet",
    ErrorCode.PARSE_ERROR: "the bootstrap file could not be decoded and no flags arrived yet",
}


def _identity(value: T) -> T:
    return value


def _json_any(value: Any) -> Any:
    return copy_json(value)


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
            if flag is not None and flag.value_type == _values.BOOLEAN and not flag.archived:
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
        slow = self._evaluate(key, context, _values.BOOLEAN)
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
            if flag is not None and flag.value_type == _values.STRING and not flag.archived:
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
        slow = self._evaluate(key, context, _values.STRING)
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
            if flag is not None and flag.value_type == _values.INTEGER and not flag.archived:
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
        slow = self._evaluate(key, context, _values.INTEGER)
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
            if flag is not None and flag.value_type == _values.FLOAT and not flag.archived:
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
        slow = self._evaluate(key, context, _values.FLOAT)
        if slow is None or slow.error_code is not None:
            return default
        served: float = slow.value
        return served

    def get_json(self, key: str, context: Context | None, default: Any) -> Any:
        """An object flag's value (a fresh dict), or `default` on any problem."""
        r = self._evaluate(key, context, _values.OBJECT)
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
        return self._details(key, context, _values.BOOLEAN, default, _identity)

    def get_str_details(
        self, key: str, context: Context | None, default: str
    ) -> EvaluationDetails[str]:
        """`get_str` with the facts behind the value."""
        return self._details(key, context, _values.STRING, default, _identity)

    def get_int_details(
        self, key: str, context: Context | None, default: int
    ) -> EvaluationDetails[int]:
        """`get_int` with the facts behind the value."""
        return self._details(key, context, _values.INTEGER, default, _identity)

    def get_float_details(
        self, key: str, context: Context | None, default: float
    ) -> EvaluationDetails[float]:
        """`get_float` with the facts behind the value."""
        return self._details(key, context, _values.FLOAT, default, _identity)

    def get_json_details(
        self, key: str, context: Context | None, default: Any
    ) -> EvaluationDetails[Any]:
        """`get_json` with the facts behind the value."""
        return self._details(key, context, _values.OBJECT, default, _json_any)

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
