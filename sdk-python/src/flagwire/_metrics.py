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

Releases are judged on cohort outcomes: one outcome per (release id, cohort) per request scope
that read any flag of the release in that cohort, however many of its flags it read
(`RequestScope` collects the pairs; `cohort_outcome()` counts them, at most `MAX_COHORTS` keys
per window, the rest dropped and counted in `dropped_series` like series).

The team's own metrics (`track`, `track_outcome`, `observe`; `flagwire._own_metrics`) are kept
per (flag, variant, cohort, rollout id, name), at most `MAX_SERIES` keys per window. A request
scope holds its events until it ends and then attributes them to what it was served; events
that cannot be attributed or recorded are counted in `dropped_series` too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Final, NamedTuple, TypeVar

from flagwire._own_metrics import MAX_KEYS, Kind, OwnMetrics, ScopeEvents
from flagwire._proto.flagwire.v1 import metrics_pb2
from flagwire._result import Result
from flagwire.histogram import Histogram

MAX_SERIES: Final = MAX_KEYS
MAX_COHORTS: Final = 10_000
"""Distinct (release id, cohort) keys per window: the same order as series (a release has two
cohorts, so this is far more than any environment holds)."""
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
CohortKey = tuple[str, str]
"""(release id, cohort): the cohort is "canary" or "control"."""

K = TypeVar("K")


class _Outcomes:
    __slots__ = ("errors", "latency", "successes")

    def __init__(self) -> None:
        self.successes = 0
        self.errors = 0
        self.latency = Histogram()

    def add(self, ok: bool, micros: int) -> None:
        if ok:
            self.successes += 1
        else:
            self.errors += 1
        self.latency.record(micros)

    def merge(self, successes: int, errors: int, latency: metrics_pb2.ExponentialHistogram) -> None:
        self.successes += successes
        self.errors += errors
        if latency.count:
            with contextlib.suppress(ValueError):  # not ours to send again
                self.latency.merge(Histogram.from_proto(latency))


class Window(NamedTuple):
    """One metrics window, as a report carries it."""

    series: list[metrics_pb2.Series]
    cohort_outcomes: list[metrics_pb2.CohortOutcome]
    dropped: int
    """Series, cohort and metric keys that did not fit, and metric events that could not be
    recorded (`ReportRequest.dropped_series`)."""
    metrics: list[metrics_pb2.MetricSeries]
    """The team's own metrics (`ReportRequest.metrics`), sorted by key."""

    @property
    def empty(self) -> bool:
        """Whether there is nothing to report."""
        return not (self.series or self.cohort_outcomes or self.metrics or self.dropped)


def _count(counter: object) -> int:
    """The value of an `itertools.count()`: how many times `next()` was called on it."""
    return int(repr(counter)[6:-1])  # "count(N)"


class Recorder:
    """One client's metrics window. Thread-safe."""

    __slots__ = ("_cohorts", "_dropped", "_lock", "_merged", "_outcomes", "_own", "_registered")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: list[Result] = []
        self._merged: dict[MetricKey, int] = {}
        self._outcomes: dict[SeriesKey, _Outcomes] = {}
        self._cohorts: dict[CohortKey, _Outcomes] = {}
        self._own = OwnMetrics()
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

    def _slot(self, table: dict[K, _Outcomes], key: K, cap: int) -> _Outcomes | None:
        """The outcomes of `key` in `table`, made if there is room; None (counted as dropped)
        when `table` is full. Called with the lock held."""
        outcomes = table.get(key)
        if outcomes is None:
            if len(table) >= cap:
                self._dropped += 1
                return None
            outcomes = table[key] = _Outcomes()
        return outcomes

    def outcome(self, key: SeriesKey, ok: bool, micros: int) -> None:
        """Records one measured outcome of the series `key`."""
        with self._lock:
            outcomes = self._slot(self._outcomes, key, MAX_SERIES)
            if outcomes is not None:
                outcomes.add(ok, micros)

    def cohort_outcome(self, key: CohortKey, ok: bool, micros: int) -> None:
        """Records the outcome of one request scope in the release cohort `key`."""
        with self._lock:
            outcomes = self._slot(self._cohorts, key, MAX_COHORTS)
            if outcomes is not None:
                outcomes.add(ok, micros)

    def drop(self, events: int = 1) -> None:
        """Counts metric events that could not be recorded (a bad name or value, nothing to
        attribute them to) in `dropped_series`, so a team sees that some went missing."""
        with self._lock:
            self._dropped += events

    def metric_event(
        self, served: Sequence[SeriesKey], name: str, kind: Kind, value: float
    ) -> None:
        """Records one of the team's metric events against the flags `served` (outside any
        request scope: no request is counted)."""
        with self._lock:
            self._dropped += self._own.event(served, name, kind, value)

    def metric_scope(self, served: Sequence[SeriesKey], events: ScopeEvents) -> None:
        """Records the metric events of one ended request scope against what it was served."""
        with self._lock:
            self._dropped += self._own.scope(served, events)

    def take(self) -> Window:
        """Hands over the window: its non-empty series, its cohort outcomes, the team's metrics
        and the dropped count, leaving an empty window behind."""
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
            outcomes, cohorts, dropped = self._outcomes, self._cohorts, self._dropped
            own = self._own
            self._merged, self._outcomes, self._cohorts, self._dropped = {}, {}, {}, 0
            self._own = OwnMetrics()

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
        cohort_outcomes = [
            metrics_pb2.CohortOutcome(
                release_id=release_id,
                cohort=cohort,
                successes=measured.successes,
                errors=measured.errors,
                latency_us=measured.latency.to_proto(),
            )
            for (release_id, cohort), measured in cohorts.items()
        ]
        return Window(out, cohort_outcomes, dropped, own.to_proto())

    def merge_back(self, window: Window) -> None:
        """Puts back what a failed flush took, so nothing is lost while the server is away."""
        with self._lock:
            self._dropped += window.dropped
            for s in window.series:
                key = (s.flag_key, s.variant, s.cohort, s.rollout_id)
                for rc in s.evaluations:
                    metric = (s.flag_key, s.variant, s.cohort, s.rollout_id, rc.reason)
                    self._merged[metric] = self._merged.get(metric, 0) + rc.count
                if s.successes or s.errors:
                    outcomes = self._slot(self._outcomes, key, MAX_SERIES)
                    if outcomes is not None:
                        outcomes.merge(s.successes, s.errors, s.latency_us)
            for c in window.cohort_outcomes:
                outcomes = self._slot(self._cohorts, (c.release_id, c.cohort), MAX_COHORTS)
                if outcomes is not None:
                    outcomes.merge(c.successes, c.errors, c.latency_us)
            self._dropped += self._own.merge_back(window.metrics)


class RequestScope:
    """What one request scope was served (the FastAPI middleware's request, or a `Scope`): the
    series of every flag evaluated in it and the distinct release cohorts they placed the unit
    in (a `measure` outside both records its one flag itself). Evaluations in any task or
    thread that inherited the `REQUEST_SCOPE` context variable add to it (dict writes are
    atomic in CPython). The team's metric events recorded in it wait in `events` until it ends,
    and then go to what it was served."""

    __slots__ = ("cohorts", "events", "failed", "joinable", "open", "served")

    def __init__(self, joinable: bool = True) -> None:
        self.served: dict[SeriesKey, Recorder] = {}
        self.cohorts: dict[CohortKey, Recorder] = {}
        self.events: dict[Recorder, ScopeEvents] = {}
        """Each client's metric events, attributed when the scope ends."""
        self.failed = False
        """Set by a nested `Scope.fail()`: the request failed whatever its owner saw."""
        self.open = True
        """False once its outcome is recorded: later scopes start their own."""
        self.joinable = joinable
        """False for a `measure` outside any scope: it only holds metric events for its one
        flag, and scopes opened inside it start their own, as they did before it held any."""

    def add_event(self, recorder: Recorder, name: str, kind: Kind, value: float) -> bool:
        """Holds one metric event until the scope ends; False when it has ended."""
        if not self.open:
            return False
        events = self.events.get(recorder)
        if events is None:
            events = self.events.setdefault(recorder, ScopeEvents())
        return events.add(name, kind, value)

    def record(self, ok: bool, micros: int) -> None:
        """Records the request's outcome against every variant it was served (per-flag usage)
        and once against each release cohort it was in (what releases are judged on)."""
        self.open = False
        ok = ok and not self.failed
        for key, recorder in list(self.served.items()):
            recorder.outcome(key, ok, micros)
        for cohort, recorder in list(self.cohorts.items()):
            recorder.cohort_outcome(cohort, ok, micros)
        self.attribute()

    def attribute(self, served: Sequence[SeriesKey] | None = None) -> None:
        """Ends the scope's metric events: each client's go to the series that client served
        in the scope (or to `served`), and to the release cohorts among them."""
        self.open = False
        if not self.events:
            return
        for recorder, events in list(self.events.items()):
            if served is None:
                mine = [key for key, r in list(self.served.items()) if r is recorder]
                recorder.metric_scope(mine, events.close())
            else:
                recorder.metric_scope(served, events.close())


REQUEST_SCOPE: ContextVar[RequestScope | None] = ContextVar("flagwire_request_scope", default=None)


def open_scope() -> RequestScope | None:
    """The request scope evaluations made here add to, if one is open (a `measure`'s, which
    holds only metric events, is not one)."""
    scope = REQUEST_SCOPE.get()
    return scope if scope is not None and scope.open and scope.joinable else None
