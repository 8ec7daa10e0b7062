"""Outcome measurement: `Measurement`, what `measure()` returns, and `clock_ns`, the clock that
it, `Scope`, `Timer` and the FastAPI middleware measure latencies with."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from flagwire._metrics import REQUEST_SCOPE, Recorder, RequestScope, open_scope
from flagwire._result import Result

clock_ns: Callable[[], int] = time.perf_counter_ns
"""The monotonic clock outcome latencies are measured with (tests replace it)."""


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
