"""Exceptions. Evaluation never raises; these come from configuration and `wait_ready`."""

from __future__ import annotations


class FlagwireError(Exception):
    """Base class of the SDK's exceptions."""


class ConfigError(FlagwireError, ValueError):
    """The client's options are unusable (e.g. offline mode without a bootstrap file)."""


class BootstrapError(FlagwireError):
    """A bootstrap file could not be read or decoded."""


class UnauthorizedError(FlagwireError):
    """The server refused the token (`UNAUTHENTICATED` or `PERMISSION_DENIED`)."""


class ReadyTimeoutError(FlagwireError, TimeoutError):
    """No snapshot was applied within the time given to `wait_ready`."""
