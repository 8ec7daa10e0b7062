"""What `AsyncClient` and `Client` share below their getters: the options, and `Core`, the
state one client holds (the current snapshot, loaded first from the bootstrap file when there
is one; the state; the listeners; the metrics recorder). The getters that read it are
`flagwire._reader._Reader`; outcome measurement is `flagwire._measurement`."""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flagwire._endpoints import split_endpoints
from flagwire._metrics import Recorder
from flagwire._proto.flagwire.v1 import flag_service_pb2
from flagwire._snapshot import Snapshot
from flagwire._types import ErrorCode, FlagChange, State
from flagwire.errors import BootstrapError, ConfigError

log = logging.getLogger("flagwire")

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """A client's configuration (see `AsyncClient` for each option's meaning). `endpoints` is
    `url` split (`split_endpoints`) when not given."""

    url: str
    token: str
    environment: str = ""
    connect_timeout: float = 5.0
    heartbeat_timeout: float = 45.0
    min_backoff: float = 0.1
    max_backoff: float = 30.0
    metrics_flush_interval: float = 10.0
    bootstrap_file: str | None = None
    offline: bool = False
    metrics: bool = True
    tls_root_certificates: bytes | None = None
    endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.endpoints and not self.offline:
            object.__setattr__(self, "endpoints", split_endpoints(self.url))
        for name in (
            "connect_timeout",
            "heartbeat_timeout",
            "min_backoff",
            "max_backoff",
            "metrics_flush_interval",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_backoff < self.min_backoff:
            object.__setattr__(self, "max_backoff", self.min_backoff)


def load_bootstrap(path: str) -> Snapshot:
    """Reads a bootstrap file: a serialized `flagwire.v1.Snapshot`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise BootstrapError(f"{path}: {error}") from error
    message = flag_service_pb2.Snapshot()
    try:
        message.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or anything the decoder raises
        raise BootstrapError(f"{path}: not a snapshot: {error}") from error
    return Snapshot.from_proto(message)


def save_bootstrap(path: str, data: bytes) -> None:
    """Writes a bootstrap file atomically (a temporary file renamed over it), so a crash
    mid-write leaves the previous file intact."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Core:
    """The state one client holds. The snapshot reference is swapped whole by the stream
    applier; readers load it once per evaluation."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.instance_id = str(uuid.uuid4())
        self.sequence = itertools.count(1)
        self.snapshot: Snapshot | None = None
        self.not_ready = ErrorCode.PROVIDER_NOT_READY
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._change_listeners: list[Callable[[FlagChange], None]] = []
        self._state_listeners: list[Callable[[State], None]] = []

        path = options.bootstrap_file
        if options.offline and path is None:
            raise ConfigError("offline mode needs a bootstrap file")
        if path is not None and os.path.exists(path):
            try:
                self.snapshot = load_bootstrap(path)
            except BootstrapError as error:
                if options.offline:
                    raise
                log.warning("flagwire: ignoring the bootstrap file: %s", error)
                self.not_ready = ErrorCode.PARSE_ERROR
        elif options.offline:
            raise ConfigError(f"offline mode needs an existing bootstrap file ({path})")
        if self.snapshot is None:
            self.state = State.CONNECTING
        else:
            self.state = State.READY if options.offline else State.STALE
        self.recorder = Recorder() if options.metrics and not options.offline else None

    # -- state and listeners ------------------------------------------------------------------

    def set_state(self, state: State, error: str | None = None) -> None:
        with self._cond:
            changed = state is not self.state or error != self.last_error
            self.state = state
            self.last_error = error
            self._cond.notify_all()
        if changed:
            for listener in list(self._state_listeners):
                _call(listener, state)

    def wait_state(self, timeout: float) -> State:
        """Blocks until the state is READY or ERROR, or `timeout` passes; returns the state."""
        with self._cond:
            self._cond.wait_for(lambda: self.state in (State.READY, State.ERROR), timeout)
            return self.state

    def emit_change(self, change: FlagChange) -> None:
        for listener in list(self._change_listeners):
            _call(listener, change)

    def add_change_listener(self, listener: Callable[[FlagChange], None]) -> Callable[[], None]:
        self._change_listeners.append(listener)
        return functools.partial(_remove, self._change_listeners, listener)

    def add_state_listener(self, listener: Callable[[State], None]) -> Callable[[], None]:
        self._state_listeners.append(listener)
        return functools.partial(_remove, self._state_listeners, listener)


def _remove(listeners: list[Any], listener: Any) -> None:
    with contextlib.suppress(ValueError):
        listeners.remove(listener)


def _call(listener: Callable[[T], None], value: T) -> None:
    try:
        listener(value)
    except Exception:
        log.exception("flagwire: a listener raised")
