"""The team's own metrics on the clients: `track`, `track_outcome`, `observe` and `timer`.

The names follow OpenFeature's tracking API (`client.track(event_name, context, details)`
with `details.value`), so an OpenFeature provider can map its `track` onto `track(name, value,
context=...)`. What each call adds, and to which series, is tests/metrics/README.md's:

- inside a request scope (the FastAPI middleware's request, `client.scope()`, a `measure`
  block) the event waits for the scope to end and then goes to every variant the scope was
  served and once to each release cohort among them;
- outside any scope, `flags=[...]` names the flags to attribute it to: they are evaluated for
  `context` (an empty one when omitted) WITHOUT counting an evaluation, and the event goes to
  what they serve, without counting a request (inside a scope too: named flags win);
- with neither, there is nothing to attribute it to: it is dropped and counted in the report's
  `dropped_series`, like an invalid name or value. None of these calls ever raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import TypeAlias

from flagwire import _measurement
from flagwire._core import Core
from flagwire._metrics import REQUEST_SCOPE
from flagwire._own_metrics import Kind, SeriesKey, valid_name, value_of
from flagwire.context import EMPTY, Context

log = logging.getLogger("flagwire")

Flags: TypeAlias = "str | Iterable[str]"
"""Flag keys to attribute an event to outside a request scope (a single key is accepted)."""


class Timer:
    """Observes the milliseconds between its start and `stop()` (or the end of a `with` /
    `async with` block, an escaping exception included: a failed call took time too) as a value
    of a distribution. Made by `client.timer(name)`; it starts when made and again when entered.
    """

    __slots__ = ("_context", "_flags", "_name", "_started", "_stopped", "_tracker")

    def __init__(
        self, tracker: _Tracking, name: str, context: Context | None, flags: Flags | None
    ) -> None:
        self._tracker = tracker
        self._name = name
        self._context = context
        self._flags = flags
        self._stopped = False
        self._started = _measurement.clock_ns()

    def stop(self) -> float:
        """Observes the elapsed milliseconds now (only the first call records) and returns
        them."""
        elapsed = (_measurement.clock_ns() - self._started) / 1_000_000
        if not self._stopped:
            self._stopped = True
            self._tracker.observe(self._name, elapsed, context=self._context, flags=self._flags)
        return elapsed

    def __enter__(self) -> Timer:
        self._started = _measurement.clock_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Timer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Tracking:
    """The tracking calls both clients have (see the module's docstring for attribution)."""

    _core: Core

    def track(
        self,
        name: str,
        value: float = 1.0,
        *,
        context: Context | None = None,
        flags: Flags | None = None,
    ) -> None:
        """Records an event: a count (`track("cache_hit")`) or a value (a satisfaction score),
        so releases can be judged on what the team cares about, not only errors and latency.
        Per request, the values of one name add up (hits per query).

        `name`: lowercase letters, digits, `.`, `_`, `-`, at most 64 characters. Inside a
        request scope the event goes to what the scope was served; outside, to what `flags`
        serve for `context`. Never raises: an invalid name or value is dropped and counted.
        """
        self._record(Kind.TRACK, name, value, context, flags)

    def track_outcome(
        self,
        name: str,
        ok: bool,
        *,
        context: Context | None = None,
        flags: Flags | None = None,
    ) -> None:
        """Records whether a sub-operation succeeded (a memory write, a payment), giving a rate
        per variant and release cohort. `ok` must be a bool; otherwise as `track`."""
        value: object = (1.0 if ok else 0.0) if isinstance(ok, bool) else None
        self._record(Kind.OUTCOME, name, value, context, flags)

    def observe(
        self,
        name: str,
        value: float,
        *,
        context: Context | None = None,
        flags: Flags | None = None,
    ) -> None:
        """Records a value of a distribution (a fast path's latency in ms, a payload size), so
        its median and tail can be compared between variants. The value must be finite and
        not negative; it is bucketed in thousandths of its unit. Otherwise as `track`."""
        self._record(Kind.OBSERVE, name, value, context, flags)

    def timer(
        self, name: str, *, context: Context | None = None, flags: Flags | None = None
    ) -> Timer:
        """A `Timer` observing elapsed milliseconds under `name` when it stops:

        with client.timer("fast_path_ms"):       # or `async with`, or t = ...; t.stop()
            ...
        """
        return Timer(self, name, context, flags)

    def _record(
        self, kind: Kind, name: str, value: object, context: Context | None, flags: Flags | None
    ) -> None:
        recorder = self._core.recorder
        if recorder is None:  # metrics off, or offline
            return
        try:
            v = value_of(kind, value)
            if v is None or not valid_name(name):
                recorder.drop()
            elif flags is not None:
                served = self._serve(flags, context)
                if served:
                    recorder.metric_event(served, name, kind, v)
                else:
                    recorder.drop()
            else:
                scope = REQUEST_SCOPE.get()
                if scope is None or not scope.add_event(recorder, name, kind, v):
                    recorder.drop()
        except Exception:  # recording a metric never raises (e.g. unhashable flag keys)
            log.exception("flagwire: recording metric %r failed", name)
            recorder.drop()

    def _serve(self, flags: Flags, context: Context | None) -> list[SeriesKey]:
        """What `flags` serve for `context`, without counting evaluations (the event is not
        one); flags that serve no variant (unknown, wrong context) are left out."""
        snapshot = self._core.snapshot
        if snapshot is None:
            return []
        if not isinstance(context, Context):
            if context is not None:
                return []
            context = EMPTY
        keys = (flags,) if isinstance(flags, str) else flags
        served = []
        for key in keys:
            r = snapshot.evaluate(key, context, None)
            if r.error_code is None:
                served.append(r.series_key)
        return served
