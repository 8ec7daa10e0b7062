"""Public value types: reasons, error codes, states, change events and evaluation details."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class Reason(str, enum.Enum):
    """Why a value was served (the OpenFeature names)."""

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


class ErrorCode(str, enum.Enum):
    """Why evaluation failed (the OpenFeature names)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    PARSE_ERROR = "PARSE_ERROR"

    def __str__(self) -> str:
        return self.value


class State(str, enum.Enum):
    """Where a client's copy of the flags stands."""

    CONNECTING = "CONNECTING"
    """No snapshot yet: getters return defaults with `PROVIDER_NOT_READY`."""
    READY = "READY"
    """The stream is up and the copy is current."""
    STALE = "STALE"
    """Disconnected (or started from a bootstrap file): serving the last good copy."""
    ERROR = "ERROR"
    """The server refused the token; retried at the maximum backoff, never spun on."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class FlagChange:
    """Flags that changed with one applied revision."""

    revision: int
    """The revision now applied."""
    flags: tuple[str, ...]
    """Keys of the flags added, changed or removed (sorted). A segment change lists every flag."""


@dataclass(slots=True)
class EvaluationDetails(Generic[T]):
    """A value with the facts behind it. (Not frozen: creating frozen dataclasses costs a
    microsecond, which matters on this path; treat it as read-only.)"""

    flag_key: str
    """The flag evaluated."""
    value: T
    """The value served, or the caller's default on error."""
    variant: str | None
    """The variant served; `None` on error."""
    reason: Reason
    """Why the value was served."""
    error_code: ErrorCode | None = None
    """Set when `reason` is `ERROR`."""
    error_message: str | None = None
    """Detail of an error."""
    flag_version: int = 0
    """The version of the flag evaluated (0 when not found)."""
    cohort: str | None = None
    """The label of the split entry served (canary cohorts), if any."""
    rollout_id: str | None = None
    """The rollout owning the split served, if any: set on every entry of a rollout's canary
    split (the unlabelled rest too), never on a fixed variant or an error."""
