"""The outcome of one evaluation (`Result`), shared by the engine, the generated evaluation
functions (`flagwire._codegen`) and the metrics."""

from __future__ import annotations

import itertools
from typing import Any, Final

from flagwire._types import ErrorCode, Reason

_RELEASE_COHORTS: Final = frozenset(("canary", "control"))
"""The split labels that place a unit in a release's cohorts (other labels are for people)."""


class Result:
    """The outcome of one evaluation. Successful outcomes are built once per snapshot and shared,
    so treat every field as read-only."""

    __slots__ = (
        "cohort",
        "counter",
        "error_code",
        "error_message",
        "flag_key",
        "flag_version",
        "metric_key",
        "reason",
        "registry",
        "release_cohort",
        "reported",
        "rollout_id",
        "series_key",
        "value",
        "variant",
    )

    flag_key: str
    variant: str
    value: Any
    reason: Reason
    error_code: ErrorCode | None
    error_message: str
    flag_version: int
    cohort: str
    # The rollout owning the split served: reported with the metrics so that the server judges
    # the rollout on the evaluations of its own split, not on those of a split it replaced.
    rollout_id: str
    series_key: tuple[str, str, str, str]
    metric_key: tuple[str, str, str, str, str]
    # (release id, "canary" | "control") when this outcome puts the unit in a cohort of a
    # release, else None: what a request scope collects to report one outcome per cohort.
    release_cohort: tuple[str, str] | None
    # Metrics (see flagwire._metrics): how often this outcome was served, counted with a
    # C-level atomic increment; how much of that was already reported; the recorder that knows
    # about it in the current window.
    counter: itertools.count[int]
    reported: int
    registry: object

    def __init__(
        self,
        flag_key: str,
        variant: str,
        value: Any,
        reason: Reason,
        flag_version: int,
        cohort: str = "",
        rollout_id: str = "",
        error_code: ErrorCode | None = None,
        error_message: str = "",
    ) -> None:
        self.flag_key = flag_key
        self.variant = variant
        self.value = value
        self.reason = reason
        self.flag_version = flag_version
        self.cohort = cohort
        self.rollout_id = rollout_id
        self.error_code = error_code
        self.error_message = error_message
        self.series_key = (flag_key, variant, cohort, rollout_id)
        self.metric_key = (flag_key, variant, cohort, rollout_id, reason.value)
        labelled = rollout_id and cohort in _RELEASE_COHORTS and error_code is None
        self.release_cohort = (rollout_id, cohort) if labelled else None
        self.counter = itertools.count()
        self.reported = 0
        self.registry = None

    @classmethod
    def error(cls, flag_key: str, code: ErrorCode, message: str, flag_version: int) -> Result:
        """An error outcome: no variant, no value (the caller's default applies)."""
        return cls(flag_key, "", None, Reason.ERROR, flag_version, "", "", code, message)

    def __repr__(self) -> str:
        if self.error_code is not None:
            return f"Result({self.flag_key!r}, ERROR {self.error_code.value})"
        return f"Result({self.flag_key!r}, {self.variant!r}, {self.reason.value})"
