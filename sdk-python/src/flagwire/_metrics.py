"""Usage and outcome metrics between flushes.

Evaluations are counted per (flag, variant, cohort, rollout id, reason), only for evaluations
that served a variant (the server accepts series of known variants only). Measured outcomes
count successes and errors per (flag, variant, cohort, rollout id) and record their latency in
microseconds into a scale-3 exponential histogram. The rollout id is part of the key so that a
window spanning a rollout's start or rollback never mixes the rollout's canary and control with
what the flag served outside it. At most `MAX_SERIES` series are reported per window;
evaluations and outcomes of further series are dropped and counted, and the count is reported as
`dropped_series`. `take()` hands the window over for a flush; a failed flush puts it back with
`merge_back()`.

The evaluation hot path takes no lock: each pre-built engine `Result` carries an
`itertools.count`, whose `next()` is one atomic C-level increment, and is registered with the
recorder (under the lock) only the first time it is served in a window. `take()` reports each
registered result's increase since the last report, so no increment is ever lost to a race with
a flush; results idle for a whole window are unregistered, so memory follows what is in use.
"""

from __future__ import annotations

import contextlib
import threading
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

SeriesKey = tuple[str, str, str, str]
"""(flag, variant, cohort, rollout id)."""
MetricKey = tuple[str, str, str, str, str]
"""(flag, variant, cohort, rollout id, reason)."""


class _Outcomes:
    __slots__ = ("errors", "latency", "successes")

    def __init__(self) -> None:
        self.successes = 0
        self.errors = 0
        self.latency = Histogram()


def _count(counter: object) -> int:
    """The value of an `itertools.count()`: how many times `next()` was called on it."""
    return int(repr(counter)[6:-1])  # "count(N)"


class Recorder:
    """One client's metrics window. Thread-safe."""

    __slots__ = ("_dropped", "_lock", "_merged", "_outcomes", "_registered")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: list[Result] = []
        self._merged: dict[MetricKey, int] = {}
        self._outcomes: dict[SeriesKey, _Outcomes] = {}
        self._dropped = 0

    def evaluation(self, result: Result) -> None:
        """Counts one evaluation that served a variant (the client inlines this)."""
        next(result.counter)
        if result.registry is not self:
            self.register(result)

    def register(self, result: Result) -> None:
        """Makes `result`'s counter part of the window."""
        with self._lock:
            if result.registry is not self:
                result.registry = self
                self._registered.append(result)

    def outcome(self, key: SeriesKey, ok: bool, micros: int) -> None:
        """Records one measured outcome of the series `key`."""
        with self._lock:
            outcomes = self._outcomes.get(key)
            if outcomes is None:
                if len(self._outcomes) >= MAX_SERIES:
                    self._dropped += 1
                    return
                outcomes = self._outcomes[key] = _Outcomes()
            if ok:
                outcomes.successes += 1
            else:
                outcomes.errors += 1
            outcomes.latency.record(micros)

    def take(self) -> tuple[list[metrics_pb2.Series], int]:
        """Hands over the window: its non-empty series and the dropped count, leaving an empty
        window behind."""
        counts: dict[MetricKey, int] = {}
        with self._lock:
            keep = []
            for result in self._registered:
                total = _count(result.counter)
                delta = total - result.reported
                if delta:
                    result.reported = total
                    key = result.metric_key
                    counts[key] = counts.get(key, 0) + delta
                    keep.append(result)
                else:
                    result.registry = None  # idle for a window: forget it
            self._registered = keep
            for key, n in self._merged.items():
                counts[key] = counts.get(key, 0) + n
            outcomes, dropped = self._outcomes, self._dropped
            self._merged, self._outcomes, self._dropped = {}, {}, 0

        reasons: dict[SeriesKey, dict[str, int]] = {}
        for (flag, variant, cohort, rollout_id, reason), n in counts.items():
            series = (flag, variant, cohort, rollout_id)
            new = series not in reasons and series not in outcomes
            if new and len(reasons) + len(outcomes) >= MAX_SERIES:
                dropped += n
                continue
            by_reason = reasons.setdefault(series, {})
            by_reason[reason] = by_reason.get(reason, 0) + n
        out = []
        for series in {**dict.fromkeys(outcomes), **dict.fromkeys(reasons)}:
            by_reason = reasons.get(series, {})
            measured = outcomes.get(series) or _Outcomes()
            message = metrics_pb2.Series(
                flag_key=series[0],
                variant=series[1],
                cohort=series[2],
                rollout_id=series[3],
                evaluations=[
                    metrics_pb2.ReasonCount(reason=r, count=by_reason[r])
                    for r in REASONS
                    if by_reason.get(r)
                ],
                successes=measured.successes,
                errors=measured.errors,
            )
            if measured.latency:
                message.latency_us.CopyFrom(measured.latency.to_proto())
            out.append(message)
        return out, dropped

    def merge_back(self, series: list[metrics_pb2.Series], dropped: int) -> None:
        """Puts back what a failed flush took, so nothing is lost while the server is away."""
        with self._lock:
            self._dropped += dropped
            for s in series:
                key = (s.flag_key, s.variant, s.cohort, s.rollout_id)
                for rc in s.evaluations:
                    metric = (s.flag_key, s.variant, s.cohort, s.rollout_id, rc.reason)
                    self._merged[metric] = self._merged.get(metric, 0) + rc.count
                if not s.successes and not s.errors:
                    continue
                outcomes = self._outcomes.get(key)
                if outcomes is None:
                    if len(self._outcomes) >= MAX_SERIES:
                        self._dropped += 1
                        continue
                    outcomes = self._outcomes[key] = _Outcomes()
                outcomes.successes += s.successes
                outcomes.errors += s.errors
                if s.HasField("latency_us"):
                    with contextlib.suppress(ValueError):  # not ours to send again
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
