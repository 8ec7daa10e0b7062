"""Both clients over TLS against the real server binary, serving a certificate from a CA the
test made: `tls_root_certificates` trusts it; without it the client never becomes ready."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest
from certs import ServerCerts, make
from support import WAIT, Admin, Server, bool_flag, require_binary

from flagwire import AsyncClient, Client, Context, ReadyTimeoutError, State

pytestmark = pytest.mark.integration


@pytest.fixture
def certs(tmp_path: pathlib.Path) -> ServerCerts:
    return make(tmp_path)


@pytest.fixture
def tls_server(tmp_path: pathlib.Path, certs: ServerCerts) -> Iterator[Server]:
    require_binary()
    server = Server(tmp_path / "data", tls=certs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def token(tls_server: Server) -> Iterator[str]:
    admin = Admin(tls_server)
    try:
        admin.env("production")
        admin.create_flag(bool_flag("new-checkout", "production"))
        yield admin.sdk_token("svc", "production")
    finally:
        admin.close()


async def test_async_client_watches_over_tls(
    tls_server: Server, certs: ServerCerts, token: str
) -> None:
    assert tls_server.url.startswith("https://localhost:")
    ctx = Context("user-1")
    async with AsyncClient(tls_server.url, token, tls_root_certificates=certs.ca_pem) as client:
        await client.wait_ready(WAIT)
        assert client.get_bool("new-checkout", ctx, True) is False
        changes = client.changes()
        admin = Admin(tls_server)
        try:
            admin.set("new-checkout", "production", True)
        finally:
            admin.close()
        change = await asyncio.wait_for(changes.__anext__(), WAIT)
        assert change.flags == ("new-checkout",)
        assert client.get_bool("new-checkout", ctx, False) is True


def test_sync_client_over_tls(tls_server: Server, certs: ServerCerts, token: str) -> None:
    with Client(tls_server.url, token, tls_root_certificates=certs.ca_pem) as client:
        client.wait_ready(WAIT)
        assert client.state is State.READY
        assert client.get_bool("new-checkout", Context("user-1"), True) is False


async def test_without_the_ca_the_server_is_not_trusted(tls_server: Server, token: str) -> None:
    async with AsyncClient(tls_server.url, token) as client:
        with pytest.raises(ReadyTimeoutError):
            await client.wait_ready(1.0)
        assert client.state is not State.READY
