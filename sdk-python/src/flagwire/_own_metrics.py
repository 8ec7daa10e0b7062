"""The team's own metrics (`track`, `track_outcome`, `observe`) between flushes.

tests/metrics/README.md holds the rules and tests/metrics/encoding.json pins the result. An
event is attributed to what its request scope was served when the scope ends (or, outside any
scope, to the flags the call names): a per-flag key for every (flag, variant, cohort, rollout
id) served, and one release-cohort key (no flag, no variant) per distinct (rollout id,
"canary" | "control") among them, so a gate judges a request once however many of the
release's flags it read. A window aggregates per (flag, variant, cohort, rollout id, name).

Nothing here raises on the caller's input: `value_of` turns what is not a usable number into
None, and every addition that would make a sum non-finite (the server refuses a window holding
one, and the whole window would be lost) is refused and counted by the caller as dropped. These
tables take no lock: `Recorder` calls them under its own, and `ScopeEvents` locks itself.
"""

from __future__ import annotations

import enum
import math
import numbers
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Final

from flagwire._proto.flagwire.v1 import metrics_pb2
from flagwire.histogram import Histogram

MAX_KEYS: Final = 10_000
"""Keys per window, and metric names per scope: the cap of series (`_metrics.MAX_SERIES`)."""
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_RELEASE_COHORTS: Final = ("canary", "control")

SeriesKey = tuple[str, str, str, str]
"""(flag, variant, cohort, rollout id): what a request scope was served."""
OwnKey = tuple[str, str, str, str, str]
"""(flag, variant, cohort, rollout id, name); flag and variant empty for a release cohort."""


class Kind(enum.Enum):
    """How an event was recorded, which decides the fields it fills."""

    TRACK = "track"
    """A count or a value: count, sum, sum of squares, and the request's total."""
    OBSERVE = "observe"
    """A value of a distribution: as TRACK, and the histogram (not the request's total)."""
    OUTCOME = "outcome"
    """A success (value 1) or failure (value 0) of a sub-operation."""


def valid_name(name: object) -> bool:
    """Whether `name` is a metric name the server accepts (the same rule as server/custom.rs)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def value_of(kind: Kind, value: object) -> float | None:
    """`value` as a float if the event can be recorded, else None: not a real number (a bool
    is not one: it is `track_outcome`'s), not finite, too large to square (its square is in
    the window), or a negative `observe` (distributions hold non-negative values)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    if not math.isfinite(v * v) or (kind is Kind.OBSERVE and v < 0):
        return None
    return v


def attribution_keys(served: Sequence[SeriesKey], name: str) -> list[OwnKey]:
    """The keys an event named `name` adds to: every series served, then every distinct
    release cohort among them (a labelled split entry of a rollout)."""
    keys: dict[OwnKey, None] = {(*s, name): None for s in served}
    for _flag, _variant, cohort, rollout_id in served:
        if rollout_id and cohort in _RELEASE_COHORTS:
            keys.setdefault(("", "", cohort, rollout_id, name))
    return list(keys)


class MetricAgg:
    """One key's aggregate (or one scope's, per name). Sums stay finite: an addition that
    would overflow them is refused (returns False)."""

    __slots__ = (
        "count",
        "failures",
        "histogram",
        "request_sum_of_squares",
        "requests",
        "successes",
        "sum",
        "sum_of_squares",
    )

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.sum_of_squares = 0.0
        self.histogram: Histogram | None = None
        self.successes = 0
        self.failures = 0
        self.requests = 0
        self.request_sum_of_squares = 0.0

    def add(self, kind: Kind, value: float) -> bool:
        """Adds one event (`value_of` checked it)."""
        if kind is Kind.OUTCOME:
            if value:
                self.successes += 1
            else:
                self.failures += 1
            return True
        total, squares = self.sum + value, self.sum_of_squares + value * value
        if not math.isfinite(total) or not math.isfinite(squares):
            return False
        self.count += 1
        self.sum, self.sum_of_squares = total, squares
        if kind is Kind.OBSERVE:
            if self.histogram is None:
                self.histogram = Histogram()
            # Thousandths of the unit, halves up (never negative): ms land in µs buckets.
            self.histogram.record(math.floor(value * 1000 + 0.5))
        return True

    def merge(self, other: MetricAgg, requests: int = 0, request_total: float = 0.0) -> bool:
        """Adds `other`, and `requests` requests whose total is `request_total` each."""
        total = self.sum + other.sum
        squares = self.sum_of_squares + other.sum_of_squares
        request_squares = (
            self.request_sum_of_squares
            + other.request_sum_of_squares
            + requests * request_total * request_total
        )
        if not all(math.isfinite(x) for x in (total, squares, request_squares)):
            return False
        self.count += other.count
        self.sum, self.sum_of_squares = total, squares
        self.request_sum_of_squares = request_squares
        self.successes += other.successes
        self.failures += other.failures
        self.requests += other.requests + requests
        if other.histogram is not None:
            if self.histogram is None:
                self.histogram = Histogram()
            self.histogram.merge(other.histogram)
        return True

    def to_proto(self, key: OwnKey) -> metrics_pb2.MetricSeries:
        """The wire form of `key`'s aggregate."""
        flag, variant, cohort, rollout_id, name = key
        message = metrics_pb2.MetricSeries(
            name=name,
            flag_key=flag,
            variant=variant,
            cohort=cohort,
            rollout_id=rollout_id,
            count=self.count,
            sum=self.sum,
            sum_of_squares=self.sum_of_squares,
            successes=self.successes,
            failures=self.failures,
            requests=self.requests,
            request_sum_of_squares=self.request_sum_of_squares,
        )
        if self.histogram is not None:
            message.histogram.CopyFrom(self.histogram.to_proto())
        return message

    @classmethod
    def from_proto(cls, m: metrics_pb2.MetricSeries) -> MetricAgg:
        """What a report carried, to merge back (a histogram it cannot read is left out)."""
        agg = cls()
        agg.count, agg.sum, agg.sum_of_squares = m.count, m.sum, m.sum_of_squares
        agg.successes, agg.failures = m.successes, m.failures
        agg.requests, agg.request_sum_of_squares = m.requests, m.request_sum_of_squares
        if m.HasField("histogram"):
            try:
                agg.histogram = Histogram.from_proto(m.histogram)
            except ValueError:  # not ours to send again
                agg.histogram = None
        return agg


class ScopeEvents:
    """The events one request scope recorded for one client, per name, until the scope ends:
    each name's aggregate and the total of its `track` values (a request's count). Threads
    that copied the scope's context may add at once, hence the lock."""

    __slots__ = ("_closed", "_lock", "dropped", "names", "totals")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self.names: dict[str, MetricAgg] = {}
        self.totals: dict[str, float] = {}
        self.dropped = 0
        """Events refused (too many names, or a sum that would overflow)."""

    def add(self, name: str, kind: Kind, value: float) -> bool:
        """Adds one event; False once the scope has ended (the caller treats it as unscoped)."""
        with self._lock:
            if self._closed:
                return False
            agg = self.names.get(name)
            if agg is None:
                if len(self.names) >= MAX_KEYS:
                    self.dropped += 1
                    return True
                agg = self.names[name] = MetricAgg()
            if not agg.add(kind, value):
                self.dropped += 1
            elif kind is Kind.TRACK:
                self.totals[name] = self.totals.get(name, 0.0) + value
            return True

    def close(self) -> ScopeEvents:
        """Ends the scope: later events are not added. Returns self, now read-only."""
        with self._lock:
            self._closed = True
        return self

    @property
    def events(self) -> int:
        """How many events it holds (what is dropped when the scope was served nothing)."""
        return sum(a.count + a.successes + a.failures for a in self.names.values())


class OwnMetrics:
    """One window's metric keys, at most `MAX_KEYS`; each method returns how many additions
    did not fit, for `dropped_series`. Not thread-safe: `Recorder` holds its lock."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[OwnKey, MetricAgg] = {}

    def _slot(self, key: OwnKey) -> MetricAgg | None:
        agg = self._keys.get(key)
        if agg is None and len(self._keys) < MAX_KEYS:
            agg = self._keys[key] = MetricAgg()
        return agg

    def event(self, served: Sequence[SeriesKey], name: str, kind: Kind, value: float) -> int:
        """Attributes one event to what `served` names (outside any scope: no request)."""
        dropped = 0
        for key in attribution_keys(served, name):
            agg = self._slot(key)
            if agg is None or not agg.add(kind, value):
                dropped += 1
        return dropped

    def scope(self, served: Sequence[SeriesKey], events: ScopeEvents) -> int:
        """Attributes the events of one ended scope to what it was served: each name also
        counts the request once, with the square of its `track` total."""
        dropped = events.dropped
        if not served:
            return dropped + events.events  # nothing to attribute them to
        for name, agg in events.names.items():
            total = events.totals.get(name, 0.0)
            for key in attribution_keys(served, name):
                slot = self._slot(key)
                if slot is None or not slot.merge(agg, 1, total):
                    dropped += 1
        return dropped

    def merge_back(self, metrics: Iterable[metrics_pb2.MetricSeries]) -> int:
        """Puts back what a failed flush took."""
        dropped = 0
        for m in metrics:
            slot = self._slot((m.flag_key, m.variant, m.cohort, m.rollout_id, m.name))
            if slot is None or not slot.merge(MetricAgg.from_proto(m)):
                dropped += 1
        return dropped

    def to_proto(self) -> list[metrics_pb2.MetricSeries]:
        """The window as `ReportRequest.metrics`, sorted by key (flag, variant, cohort,
        rollout id, name) so reports are reproducible."""
        return [self._keys[key].to_proto(key) for key in sorted(self._keys)]

    def __len__(self) -> int:
        return len(self._keys)
