"""Where the runtime connects: the configured endpoints (replicas), each DNS name expanded to
every address it resolves to, and the rotation through them (docs/reference/sync.md,
"Several endpoints").

Expansion is ours rather than grpc's: a grpc channel to a name with several addresses picks
one for its whole life (pick_first), while failover needs the *next* address after a
disconnect. A name that resolves to one address, or that cannot be resolved, stays a name and
grpc resolves it as before. A pinned address keeps the name as the `:authority` and the TLS
name, so virtual hosts and certificates see what they would see without expansion.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from flagwire.errors import ConfigError

Resolver = Callable[[str], Awaitable[Sequence[str]]]
"""host -> its addresses (IPv4 or IPv6 literals), in the resolver's order."""


def split_endpoints(url: str | Sequence[str]) -> tuple[str, ...]:
    """The endpoints of a `url` option: one URL, several separated by commas (the form an
    environment variable holds), or a sequence of them. Raises `ConfigError` when empty."""
    parts = [url] if isinstance(url, str) else list(url)
    endpoints = tuple(e.strip() for part in parts for e in part.split(",") if e.strip())
    if not endpoints:
        raise ConfigError("at least one endpoint (url) is required")
    return endpoints


def target_of(url: str) -> tuple[str, bool]:
    """(gRPC target, whether TLS is used) of `http://host:port`, `https://host:port` or
    `host:port`."""
    for scheme, secure in (("http://", False), ("https://", True)):
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/"), secure
    return url, False


@dataclass(frozen=True)
class Target:
    """One place to connect to.

    `address` is the grpc target; `authority` is set when the address was pinned from a name
    (the `host:port` to present instead of the address, and whose host TLS verifies)."""

    address: str
    secure: bool
    authority: str | None = None


async def system_resolve(host: str) -> Sequence[str]:
    """Every address `host` resolves to through the system resolver (getaddrinfo, as grpc's
    native resolver does), without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def expand(url: str, resolve: Resolver) -> list[Target]:
    """The targets of one endpoint: one per address of a name that resolves to several, else
    the endpoint itself."""
    target, secure = target_of(url)
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or _is_literal(host) or "/" in target:
        return [Target(target, secure)]
    try:
        addresses = list(await resolve(host))
    except (OSError, UnicodeError):
        # grpc resolves it again and the connection fails or succeeds as it would have.
        return [Target(target, secure)]
    if len(addresses) < 2:
        return [Target(target, secure)]
    return [
        Target(f"ipv6:[{a}]:{port}" if ":" in a else f"ipv4:{a}:{port}", secure, target)
        for a in addresses
    ]


class Endpoints:
    """The endpoints in order, each expanded, and which one is current. Starts at the first;
    `advance()` moves to the next and wraps around, resolving every name again when it does (a
    replica added to or removed from the DNS name is seen after one round)."""

    def __init__(self, urls: Sequence[str], resolve: Resolver | None = None) -> None:
        self._urls = tuple(urls)
        self._resolve = resolve
        self._targets: list[Target] | None = None
        self._index = 0

    async def current(self) -> Target:
        """The target the next connection goes to."""
        if self._targets is None:
            resolve = self._resolve or system_resolve
            targets: list[Target] = []
            for url in self._urls:
                targets += await expand(url, resolve)
            self._targets = targets
            self._index %= len(targets)
        return self._targets[self._index]

    def advance(self) -> None:
        """Moves to the next target (after a session ended or a connection failed)."""
        self._index += 1
        if self._targets is not None and self._index >= len(self._targets):
            self._index = 0
            if len(self._urls) > 1 or len(self._targets) > 1:
                self._targets = None
