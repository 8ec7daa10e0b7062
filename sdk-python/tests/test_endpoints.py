"""Several endpoints without a server: splitting the option, expanding a name to its addresses
(the resolver injected: no name on this machine resolves to several), the rotation through
them, and the system resolver itself. tests/test_failover.py runs the same against servers."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from flagwire import AsyncClient, Client
from flagwire._endpoints import Endpoints, Target, expand, split_endpoints, system_resolve
from flagwire.errors import ConfigError


def test_split_endpoints() -> None:
    assert split_endpoints("http://a:1") == ("http://a:1",)
    assert split_endpoints(" http://a:1 ,http://b:2,") == ("http://a:1", "http://b:2")
    assert split_endpoints(["http://a:1", "b:2"]) == ("http://a:1", "b:2")
    with pytest.raises(ConfigError):
        split_endpoints([])
    with pytest.raises(ConfigError):
        split_endpoints(" , ")


async def test_expand_pins_each_address_under_the_name() -> None:
    async def resolve(host: str) -> Sequence[str]:
        return {"multi": ["10.0.0.1", "fd00::1"], "single": ["10.0.0.9"]}[host]

    assert await expand("https://multi:7070", resolve) == [
        Target("ipv4:10.0.0.1:7070", True, "multi:7070"),
        Target("ipv6:[fd00::1]:7070", True, "multi:7070"),
    ]
    # One address, a literal, no port, or a name that does not resolve: grpc resolves it.
    assert await expand("single:7070", resolve) == [Target("single:7070", False)]
    assert await expand("http://127.0.0.1:7070", resolve) == [Target("127.0.0.1:7070", False)]
    assert await expand("http://[::1]:7070", resolve) == [Target("[::1]:7070", False)]
    assert await expand("http://multi", resolve) == [Target("multi", False)]

    async def fails(host: str) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "unknown")

    assert await expand("http://multi:7070", fails) == [Target("multi:7070", False)]


async def test_rotation_goes_through_every_address_in_order_and_resolves_again() -> None:
    calls: list[str] = []

    async def resolve(host: str) -> Sequence[str]:
        calls.append(host)
        return ["10.0.0.1", "10.0.0.2"] if host == "multi" else []

    endpoints = Endpoints(["http://multi:1", "http://other:2"], resolve)
    seen = []
    for _ in range(4):
        seen.append((await endpoints.current()).address)
        endpoints.advance()
    assert seen == ["ipv4:10.0.0.1:1", "ipv4:10.0.0.2:1", "other:2", "ipv4:10.0.0.1:1"]
    assert calls == ["multi", "other", "multi", "other"]  # again after a full round

    single = Endpoints(["http://h:1"], resolve)
    for _ in range(3):
        assert (await single.current()).address == "h:1"
        single.advance()


async def test_the_system_resolver_answers_for_localhost() -> None:
    """The default resolver, for real: every address of `localhost` (here 127.0.0.1 only)."""
    addresses = await system_resolve("localhost")
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


def test_a_client_without_an_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        AsyncClient("", "t")
    with pytest.raises(ConfigError, match="endpoint"):
        Client([], "t")
