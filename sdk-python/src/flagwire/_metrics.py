"""Usage and outcome metrics between flushes.

Evaluations are counted per (flag, variant, cohort, reason), only for evaluations that served a
variant (the server accepts series of known variants only). Measured outcomes count successes
and errors per (flag, variant, cohort) and record their latency in microseconds into a scale-3
exponential histogram. At most `MAX_SERIES` (flag, variant, cohort) series are held per window;
further ones are dropped and counted, and the count is reported as `dropped_series`. `take()`
hands the window over for a flush; a failed flush puts it back with `merge_back()`.

The hot path is one uncontended lock and one dict update keyed by the engine's pre-built
`Result` (hashed by identity), so counting costs well under a microsecond.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable
from contextvars import ContextVar
from typing import Final

from flagwire._engine import Result
from flagwire._proto.flagwire.v1 import metrics_pb2
from flagwire.histogram import Histogram

MAX_SERIES: Final = 10_000
REASONS: Final = (
    "STATIC",
    "TARGETING_MATCH",
    "SPLIT",
    "DISABLED",
    "PREREQUISITE_FAILED",
    "ERROR",
)

SeriesKey = tuple[str, str, str]
"""(flag, variant, cohort)."""
MetricKey = tuple[str, str, str, str]
"""(flag, variant, cohort, reason)."""


class _Outcomes:
    __slots__ = ("errors", "latency", "successes")

    def __init__(self) -> None:
        self.successes = 0
        self.errors = 0
        self.latency = Histogram()


class Recorder:
    """One client's metrics window. Thread-safe."""

    __slots__ = ("_dropped", "_evaluations", "_lock", "_series")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Keys are engine Results (the hot path) or MetricKeys (merged back after a failure).
        self._evaluations: dict[Hashable, int] = {}
        self._series: dict[SeriesKey, _Outcomes] = {}
        self._dropped = 0

    def _admit(self, key: SeriesKey) -> _Outcomes | None:
        """The series' outcomes, created if there is room (the lock is held)."""
        outcomes = self._series.get(key)
        if outcomes is None:
            if len(self._series) >= MAX_SERIES:
                self._dropped += 1
                return None
            outcomes = self._series[key] = _Outcomes()
        return outcomes

    def evaluation(self, result: Result) -> None:
        """Counts one evaluation that served a variant."""
        with self._lock:
            n = self._evaluations.get(result)
            if n is not None:
                self._evaluations[result] = n + 1
            elif self._admit(result.series_key) is not None:
                self._evaluations[result] = 1

    def outcome(self, key: SeriesKey, ok: bool, micros: int) -> None:
        """Records one measured outcome of the series `key`."""
        with self._lock:
            outcomes = self._admit(key)
            if outcomes is None:
                return
            if ok:
                outcomes.successes += 1
            else:
                outcomes.errors += 1
            outcomes.latency.record(micros)

    def take(self) -> tuple[list[metrics_pb2.Series], int]:
        """Hands over the window: its non-empty series and the dropped count, leaving an empty
        window behind."""
        with self._lock:
            evaluations, series, dropped = self._evaluations, self._series, self._dropped
            self._evaluations, self._series, self._dropped = {}, {}, 0
        reasons: dict[SeriesKey, dict[str, int]] = {}
        for key, n in evaluations.items():
            metric: MetricKey = key.metric_key if isinstance(key, Result) else key  # type: ignore[assignment]
            flag, variant, cohort, reason = metric
            counts = reasons.setdefault((flag, variant, cohort), {})
            counts[reason] = counts.get(reason, 0) + n
        out = []
        for key, outcomes in series.items():
            counts = reasons.get(key, {})
            if not counts and not outcomes.successes and not outcomes.errors:
                continue
            message = metrics_pb2.Series(
                flag_key=key[0],
                variant=key[1],
                cohort=key[2],
                evaluations=[
                    metrics_pb2.ReasonCount(reason=r, count=counts[r])
                    for r in REASONS
                    if counts.get(r)
                ],
                successes=outcomes.successes,
                errors=outcomes.errors,
            )
            if outcomes.latency:
                message.latency_us.CopyFrom(outcomes.latency.to_proto())
            out.append(message)
        return out, dropped

    def merge_back(self, series: list[metrics_pb2.Series], dropped: int) -> None:
        """Puts back what a failed flush took, so nothing is lost while the server is away."""
        with self._lock:
            self._dropped += dropped
            for s in series:
                outcomes = self._admit((s.flag_key, s.variant, s.cohort))
                if outcomes is None:
                    continue
                for rc in s.evaluations:
                    key = (s.flag_key, s.variant, s.cohort, rc.reason)
                    self._evaluations[key] = self._evaluations.get(key, 0) + rc.count
                outcomes.successes += s.successes
                outcomes.errors += s.errors
                if s.HasField("latency_us"):
                    with contextlib.suppress(ValueError):
                        outcomes.latency.merge(Histogram.from_proto(s.latency_us))


class RequestScope:
    """The flags served while handling one request (the FastAPI middleware's scope)."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served: dict[SeriesKey, Recorder] = {}

    def record(self, ok: bool, micros: int) -> None:
        """Records the request's outcome against every variant it was served."""
        for key, recorder in self.served.items():
            recorder.outcome(key, ok, micros)


REQUEST_SCOPE: ContextVar[RequestScope | None] = ContextVar("flagwire_request_scope", default=None)
