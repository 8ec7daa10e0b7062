"""Flagwire's Python SDK: evaluate feature flags locally, in microseconds, from a copy of an
environment that the Flagwire server keeps current over a gRPC stream.

    from flagwire import AsyncClient, Context

    async with AsyncClient("http://127.0.0.1:7070", sdk_token) as client:
        await client.wait_ready()
        ctx = Context("user-42", {"country": "NL", "plan": "pro"})
        if client.get_bool("new-checkout", ctx, False):
            ...

- `AsyncClient` (asyncio) and `Client` (synchronous, a background thread) share one evaluation
  and state core: typed getters `get_bool`, `get_str`, `get_int`, `get_float`, `get_json` and
  their `*_details` forms, which never raise; states CONNECTING / READY / STALE / ERROR; change
  listeners; bootstrap file and offline mode; `measure()` for outcome metrics, and
  `scope()` (`Scope`) to measure a unit of work that reads several flags as one outcome (what
  releases are judged on); `track`, `track_outcome`, `observe` and `timer` (`Timer`) for the
  team's own metrics, attributed to the variants and release cohorts a scope was served.
- `flagwire.fastapi`: lifespan helper, request-scoped flags dependency and a middleware that
  attributes every request's latency and errors to the variants it was served.
- `flagwire.histogram`: the latency histogram (scale-3 exponential, exact integer indexing).

Semantics are docs/evaluation.md's; tests/vectors/ checks this package against every case.
"""

from flagwire._clients import AsyncClient, ChangeStream, Client
from flagwire._measurement import Measurement
from flagwire._scope import Scope
from flagwire._tracking import Timer
from flagwire._types import ErrorCode, EvaluationDetails, FlagChange, Reason, State
from flagwire._version import __version__
from flagwire.context import AttributeValue, Context
from flagwire.errors import (
    BootstrapError,
    ConfigError,
    FlagwireError,
    ReadyTimeoutError,
    UnauthorizedError,
)

__all__ = [
    "AsyncClient",
    "AttributeValue",
    "BootstrapError",
    "ChangeStream",
    "Client",
    "ConfigError",
    "Context",
    "ErrorCode",
    "EvaluationDetails",
    "FlagChange",
    "FlagwireError",
    "Measurement",
    "ReadyTimeoutError",
    "Reason",
    "Scope",
    "State",
    "Timer",
    "UnauthorizedError",
    "__version__",
]
