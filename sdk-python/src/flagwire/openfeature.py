"""An OpenFeature provider (PyPI `openfeature-sdk`, the `openfeature` extra) over a Flagwire
client: flags are evaluated locally from the client's live copy, in the caller's thread.

    from openfeature import api
    from flagwire.openfeature import FlagwireProvider

    api.set_provider_and_wait(FlagwireProvider.create("http://127.0.0.1:7070", token))
    flags = api.get_client()
    if flags.get_boolean_value("new-checkout", False, EvaluationContext("user-42")):
        ...

What maps to what:

- **Evaluation**: OpenFeature's typed calls go to the client's `*_details` getters; the
  reason (`STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED`, `PREREQUISITE_FAILED`, `ERROR`)
  and the error code keep their names, which are OpenFeature's. The flag metadata carries
  `flagVersion`, and `cohort` / `rolloutId` when a rollout's or release's split served the
  value. The context's `targeting_key` is ours; a `datetime` attribute becomes an RFC 3339
  string (the form the date operators compare); anything Flagwire cannot hold (a nested
  object) makes the evaluation return the default with `INVALID_CONTEXT`. Nothing raises.
- **Events**: the client's states become provider events once `initialize` has returned:
  READY -> `PROVIDER_READY` (after a STALE or ERROR spell), STALE -> `PROVIDER_STALE`, ERROR
  (the token refused) -> `PROVIDER_ERROR` with `GENERAL`, and every applied revision that
  changed flags -> `PROVIDER_CONFIGURATION_CHANGED` with `flags_changed` (the keys) and the
  revision in the metadata.
- **Tracking**: `client.track(name, context, TrackingEventDetails(value, attributes))` is the
  Flagwire client's `track(name, value)` (1 without a value). The attribute `kind` picks
  `"outcome"` (`track_outcome(name, attributes["ok"])`) or `"observe"` (`observe(name,
  value)`); the attribute `flags` (a key or a list of keys) names the flags an event outside
  a request scope belongs to, evaluated for the tracking context. Inside a request scope
  (`client.scope()`, the FastAPI middleware) the event goes to what the scope was served.

With an `AsyncClient`, start it (`await client.wait_ready()`) before
`set_provider_and_wait`: `initialize` blocks its thread while it waits for the flags.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    ErrorCode as OFErrorCode,
)
from openfeature.exception import (
    GeneralError,
    ProviderNotReadyError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from flagwire._clients import AsyncClient, Client
from flagwire._types import EvaluationDetails, FlagChange, State
from flagwire.context import Context

__all__ = ["FlagwireProvider", "to_context"]

T = TypeVar("T")

_Getter = Callable[[str, Context | None, T], EvaluationDetails[T]]


def _attribute(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        stamp = value.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")
    return value


def to_context(context: EvaluationContext | None) -> Context:
    """The Flagwire `Context` of an OpenFeature evaluation context (never raises: a value
    Flagwire cannot hold makes the context invalid, so evaluations return `INVALID_CONTEXT`)."""
    if context is None:
        return Context()
    attributes = {name: _attribute(v) for name, v in context.attributes.items()}
    return Context(context.targeting_key or "", attributes)


def _resolution(details: EvaluationDetails[Any]) -> FlagResolutionDetails[Any]:
    metadata: dict[str, bool | int | float | str] = {"flagVersion": details.flag_version}
    if details.cohort:
        metadata["cohort"] = details.cohort
    if details.rollout_id:
        metadata["rolloutId"] = details.rollout_id
    code = details.error_code
    return FlagResolutionDetails(
        value=details.value,
        error_code=OFErrorCode(code.value) if code is not None else None,
        error_message=details.error_message,
        reason=details.reason.value,
        variant=details.variant,
        flag_metadata=metadata,
    )


class FlagwireProvider(AbstractProvider):
    """An OpenFeature provider evaluating from a Flagwire `Client` or `AsyncClient`.

    `FlagwireProvider(client)` uses a client you own (shutting the provider down leaves it
    open); `FlagwireProvider.create(url, token, **options)` makes a `Client` that the
    provider closes on shutdown (which flushes its metrics). `ready_timeout` (seconds) bounds
    how long `initialize` waits for the first copy of the flags; past it the provider is in
    ERROR (`PROVIDER_NOT_READY`) and announces READY when the flags arrive.
    """

    def __init__(
        self, client: Client | AsyncClient, *, ready_timeout: float = 5.0, owned: bool = False
    ) -> None:
        super().__init__()
        self._client = client
        self._ready_timeout = ready_timeout
        self._owned = owned
        self._started = False
        self._unsubscribe: list[Callable[[], None]] = []

    @classmethod
    def create(
        cls, url: str, token: str, *, ready_timeout: float = 5.0, **options: Any
    ) -> FlagwireProvider:
        """A provider over a new `Client(url, token, **options)`, closed on shutdown."""
        return cls(Client(url, token, **options), ready_timeout=ready_timeout, owned=True)

    @property
    def client(self) -> Client | AsyncClient:
        """The Flagwire client (for `scope()`, `measure()`, `flush()`, ...)."""
        return self._client

    def get_metadata(self) -> Metadata:
        """The provider's name, `flagwire`."""
        return Metadata(name="flagwire")

    # -- lifecycle and events -----------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Waits up to `ready_timeout` for the first copy of the flags. Raises (so OpenFeature
        reports ERROR) when the token is refused or nothing arrived in time."""
        client = self._client
        self._unsubscribe = [
            client.on_state(self._on_state),
            client.on_change(self._on_change),
        ]
        try:
            state = client._core.wait_state(self._ready_timeout)
            if state is State.ERROR:
                raise GeneralError(f"the server refused the token: {client.last_error}")
            if state is State.CONNECTING:
                raise ProviderNotReadyError(f"no flags within {self._ready_timeout} s")
        finally:
            self._started = True
        if state is State.STALE:  # started from a bootstrap file, the server not yet reached
            self.emit_provider_stale(ProviderEventDetails(message="serving a bootstrap copy"))

    def shutdown(self) -> None:
        """Stops forwarding events; closes the client when the provider made it."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._started = False
        if self._owned and isinstance(self._client, Client):
            self._client.close()

    def _on_state(self, state: State) -> None:
        if not self._started:
            return  # initialize() reports the first state
        if state is State.READY:
            self.emit_provider_ready(ProviderEventDetails())
        elif state is State.STALE:
            self.emit_provider_stale(
                ProviderEventDetails(message="disconnected: serving the last copy")
            )
        elif state is State.ERROR:
            self.emit_provider_error(
                ProviderEventDetails(
                    message=self._client.last_error or "the server refused the token",
                    error_code=OFErrorCode.GENERAL,
                )
            )

    def _on_change(self, change: FlagChange) -> None:
        if self._started and change.flags:
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=list(change.flags), metadata={"revision": change.revision}
                )
            )

    # -- evaluation ---------------------------------------------------------------------------

    def _resolve(
        self, getter: _Getter[T], key: str, default: T, context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        try:
            return _resolution(getter(key, to_context(context), default))
        except Exception as error:  # evaluation never raises
            return FlagResolutionDetails(
                value=default,
                error_code=OFErrorCode.GENERAL,
                error_message=f"internal error: {error}",
                reason=OFReason.ERROR,
            )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """A boolean flag (`get_bool_details`)."""
        return self._resolve(
            self._client.get_bool_details, flag_key, default_value, evaluation_context
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """A string flag (`get_str_details`)."""
        return self._resolve(
            self._client.get_str_details, flag_key, default_value, evaluation_context
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """An integer flag (`get_int_details`; a float flag is a TYPE_MISMATCH)."""
        return self._resolve(
            self._client.get_int_details, flag_key, default_value, evaluation_context
        )

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """A float flag (`get_float_details`; an integer flag is a TYPE_MISMATCH)."""
        return self._resolve(
            self._client.get_float_details, flag_key, default_value, evaluation_context
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        """An object flag (`get_json_details`: a fresh dict)."""
        return self._resolve(
            self._client.get_json_details, flag_key, default_value, evaluation_context
        )

    # -- tracking -----------------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Records one of the team's metrics (see the module's docstring). Never raises: an
        invalid name or value is dropped and counted by the client, like its own calls."""
        try:
            details = tracking_event_details or TrackingEventDetails()
            attributes = details.attributes
            flags = attributes.get("flags")
            named = flags if isinstance(flags, (str, list, tuple)) else None
            context = to_context(evaluation_context) if named is not None else None
            value = details.value
            kind = attributes.get("kind", "track")
            client = self._client
            if kind == "outcome":
                ok = attributes.get("ok")
                client.track_outcome(tracking_event_name, ok, context=context, flags=named)  # type: ignore[arg-type]
            elif kind == "observe":
                client.observe(tracking_event_name, value, context=context, flags=named)  # type: ignore[arg-type]
            else:
                track_value = 1.0 if value is None else value
                client.track(tracking_event_name, track_value, context=context, flags=named)
        except Exception:  # tracking never raises either
            client = self._client
            recorder = client._core.recorder
            if recorder is not None:
                recorder.drop()
