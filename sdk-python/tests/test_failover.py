"""Several endpoints (docs/reference/sync.md, "Several endpoints"), against real server binaries:
a client fails over to the next endpoint when its server is killed, resumes there with
`since_revision`, keeps serving meanwhile, and ends with that server's state; a client whose
first endpoint is down at start connects to the next one; a name with several addresses is
expanded to all of them.

The replicas: server B is restored from a backup of server A (same flags, tokens and revisions),
which is what a second replica on the same store looks like to an SDK. Failover between real
replicas on one PostgreSQL database (a kill -9 during a write storm) is tested with the Rust
SDK (sdk-rust/tests/integration/failover.rs); the three SDKs' sync loops are held to one
behaviour by tests/sync/.
"""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from certs import make
from support import (
    WAIT,
    Admin,
    Server,
    bool_flag,
    eventually,
    eventually_async,
    require_binary,
)

from flagwire import AsyncClient, Client, Context, FlagChange, Reason, State, _endpoints

pytestmark = pytest.mark.integration

ENV = "production"
FLAG = "new-checkout"
CTX = Context("user-1")


@dataclass
class Replicas:
    """Servers A and B holding the same state; `revision` is the environment's on both."""

    a: Server
    b: Server
    admin_a: Admin
    admin_b: Admin
    token: str
    revision: int


def start_replicas(
    tmp_path: pathlib.Path, b_host: str = "127.0.0.1", same_port: bool = False
) -> Replicas:
    """A with environment `production`, flag `new-checkout` (disabled) and an sdk token, then B
    restored from A's backup (on `b_host`, and on A's port when `same_port`)."""
    require_binary()
    a = Server(tmp_path / "a")
    a.start()
    admin_a = Admin(a)
    admin_a.env(ENV)
    admin_a.create_flag(bool_flag(FLAG, ENV))
    token = admin_a.sdk_token("svc", ENV)
    backup = tmp_path / "a.backup"
    a.backup(backup)
    b = Server(tmp_path / "b", host=b_host)
    b.restore(backup)
    if same_port:
        b.port = a.port
    b.start()
    return Replicas(a, b, admin_a, Admin(b), token, admin_a.revision(ENV))


def stop_replicas(r: Replicas) -> None:
    r.admin_a.close()
    r.admin_b.close()
    r.a.stop(kill=True)
    r.b.stop(kill=True)


@pytest.fixture
def replicas(tmp_path: pathlib.Path) -> Iterator[Replicas]:
    r = start_replicas(tmp_path)
    try:
        yield r
    finally:
        stop_replicas(r)


def connected(admin: Admin, instance_id: str) -> bool:
    """Whether the server has a Watch stream of `instance_id` open."""
    return any(i.instance_id == instance_id and i.connected for i in admin.instances(ENV))


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fail_over(r: Replicas, client: AsyncClient) -> None:
    """Connected to A: kill -9 A; the client serves its copy meanwhile, reconnects to B,
    resumes there (no snapshot: B has the same revisions) and follows B's changes."""
    states: list[State] = []
    client.on_state(states.append)
    await client.wait_ready(WAIT)
    assert client.revision == r.revision
    assert connected(r.admin_a, client.instance_id)
    assert not connected(r.admin_b, client.instance_id)
    changes: list[FlagChange] = []
    client.on_change(changes.append)

    r.a.stop(kill=True)
    await eventually_async(lambda: State.STALE in states, "STALE after A died")
    served = client.get_bool_details(FLAG, CTX, True)
    assert (served.value, served.reason) == (False, Reason.DISABLED), "serves its copy meanwhile"
    await eventually_async(lambda: connected(r.admin_b, client.instance_id), "a stream on B")
    await eventually_async(lambda: client.state is State.READY, "READY on B")

    r.admin_b.set(FLAG, ENV, True)
    await eventually_async(lambda: changes, "B's change")
    # One change, B's: the session on B resumed from the revision held instead of starting
    # from a snapshot (which would have announced a change at the revision held first).
    assert changes == [FlagChange(r.revision + 1, (FLAG,))]
    assert client.get_bool(FLAG, CTX, False) is True
    # Reports follow the session: B hears the applied-revision acknowledgement.
    await eventually_async(
        lambda: r.admin_b.applied(ENV, r.revision + 1) == (1, 1), "B counts the instance applied"
    )


async def test_fails_over_to_the_next_endpoint_and_ends_with_its_state(
    replicas: Replicas,
) -> None:
    r = replicas
    async with AsyncClient(
        [r.a.url, r.b.url], r.token, min_backoff=0.05, max_backoff=0.5, heartbeat_timeout=3
    ) as client:
        await fail_over(r, client)


async def test_a_replica_that_cannot_resume_answers_with_a_snapshot(
    replicas: Replicas,
) -> None:
    """The client applied a revision on A that B never had (B was restored before it): B
    cannot resume from it and sends its snapshot, which the client takes as it is."""
    r = replicas
    async with AsyncClient(
        [r.a.url, r.b.url], r.token, min_backoff=0.05, max_backoff=0.5, heartbeat_timeout=3
    ) as client:
        await client.wait_ready(WAIT)
        changes: list[FlagChange] = []
        client.on_change(changes.append)
        r.admin_a.set(FLAG, ENV, True)
        await eventually_async(lambda: client.revision == r.revision + 1, "A's change")
        r.a.stop(kill=True)
        await eventually_async(lambda: connected(r.admin_b, client.instance_id), "a stream on B")
        await eventually_async(lambda: client.revision == r.revision, "B's snapshot")
        assert changes[-1] == FlagChange(r.revision, (FLAG,))
        assert client.get_bool(FLAG, CTX, True) is False
        assert client.state is State.READY


async def test_first_endpoint_down_at_start_connects_to_the_next(replicas: Replicas) -> None:
    r = replicas
    down = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient([down, r.b.url], r.token, min_backoff=0.05, max_backoff=0.5) as client:
        await client.wait_ready(WAIT)
        assert connected(r.admin_b, client.instance_id)
        assert client.get_bool(FLAG, CTX, True) is False


def test_sync_client_takes_comma_separated_endpoints(replicas: Replicas) -> None:
    """The form an environment variable holds; also down-at-start, for the synchronous client."""
    r = replicas
    urls = f"http://127.0.0.1:{free_port()}, {r.b.url}"
    with Client(urls, r.token, min_backoff=0.05, max_backoff=0.5) as client:
        client.wait_ready(WAIT)
        assert connected(r.admin_b, client.instance_id)
        r.admin_b.set(FLAG, ENV, True)
        eventually(lambda: client.get_bool(FLAG, CTX, False), "B's change")
        assert client.revision == r.revision + 1


async def test_a_name_with_several_addresses_fails_over_between_them(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A on 127.0.0.1:P, B on 127.0.0.2:P, and a name resolving to both. No name on this
    machine resolves to several addresses (/etc/hosts has localhost as 127.0.0.1 only), so the
    resolver is injected; the connections, the `:authority` and the failover are real."""
    replicas = start_replicas(tmp_path, b_host="127.0.0.2", same_port=True)
    asked: list[str] = []

    async def resolve(host: str) -> Sequence[str]:
        asked.append(host)
        return ["127.0.0.1", "127.0.0.2"] if host == "replicas.flagwire.test" else []

    monkeypatch.setattr(_endpoints, "system_resolve", resolve)
    try:
        url = f"http://replicas.flagwire.test:{replicas.a.port}"
        async with AsyncClient(
            url, replicas.token, min_backoff=0.05, max_backoff=0.5, heartbeat_timeout=3
        ) as client:
            await fail_over(replicas, client)
        assert asked[0] == "replicas.flagwire.test"
    finally:
        stop_replicas(replicas)


async def test_a_pinned_address_keeps_the_name_for_tls(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS server on 127.0.0.2 with a certificate for localhost and 127.0.0.1 only, and
    `localhost` made to resolve to 127.0.0.2 first: the client connects to 127.0.0.2 and
    verifies the certificate against the name, as it would have without expansion."""
    require_binary()
    certs = make(tmp_path)
    server = Server(tmp_path / "data", tls=certs, host="127.0.0.2")
    server.start()
    admin = Admin(server)

    async def resolve(host: str) -> Sequence[str]:
        return ["127.0.0.2", "127.0.0.1"] if host == "localhost" else []

    monkeypatch.setattr(_endpoints, "system_resolve", resolve)
    try:
        admin.env(ENV)
        admin.create_flag(bool_flag(FLAG, ENV))
        token = admin.sdk_token("svc", ENV)
        assert server.url == f"https://localhost:{server.port}"
        async with AsyncClient(
            server.url, token, tls_root_certificates=certs.ca_pem, min_backoff=0.05
        ) as client:
            await client.wait_ready(WAIT)
            assert connected(admin, client.instance_id)
    finally:
        admin.close()
        server.stop()
