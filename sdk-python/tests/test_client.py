"""Both clients against the real server binary on loopback: readiness, live changes, an outage
with resume and no lost changes, a refused token, bootstrap files."""

from __future__ import annotations

import asyncio
import pathlib
import time

import pytest
from support import WAIT, Admin, CountingProxy, Setup, eventually, eventually_async

from flagwire import (
    AsyncClient,
    Client,
    Context,
    ErrorCode,
    FlagChange,
    Reason,
    State,
    UnauthorizedError,
)

pytestmark = pytest.mark.integration


async def next_change(stream: object) -> FlagChange:
    return await asyncio.wait_for(stream.__anext__(), WAIT)  # type: ignore[attr-defined]


async def test_async_ready_then_changes_arrive_and_apply(setup: Setup) -> None:
    client = AsyncClient(setup.server.url, setup.token)
    ctx = Context("user-1", {"country": "NL"})
    before = client.get_bool_details("new-checkout", ctx, True)
    assert before.error_code is ErrorCode.PROVIDER_NOT_READY
    async with client:
        await client.wait_ready(WAIT)
        assert client.state is State.READY
        off = client.get_bool_details("new-checkout", ctx, True)
        assert (off.value, off.reason, off.variant) == (False, Reason.DISABLED, "off")

        seen: list[FlagChange] = []
        client.on_change(seen.append)
        stream = client.changes()
        setup.admin.set("new-checkout", "production", True)
        change = await next_change(stream)
        assert change.flags == ("new-checkout",)
        assert change.revision == client.revision == 2
        assert seen == [change]
        on = client.get_bool_details("new-checkout", ctx, False)
        assert (on.value, on.reason, on.flag_version) == (True, Reason.STATIC, 2)
        assert client.get_str("new-checkout", ctx, "dflt") == "dflt"
        assert client.get_int_details("nope", ctx, 7).error_code is ErrorCode.FLAG_NOT_FOUND
        await stream.aclose()


def test_sync_ready_then_changes_arrive_and_apply(setup: Setup) -> None:
    with Client(setup.server.url, setup.token) as client:
        client.wait_ready(WAIT)
        assert client.state is State.READY
        ctx = Context("user-1")
        assert client.get_bool("new-checkout", ctx, True) is False
        seen: list[FlagChange] = []
        client.on_change(seen.append)
        setup.admin.set("new-checkout", "production", True)
        eventually(lambda: seen, "a change")
        assert seen == [FlagChange(2, ("new-checkout",))]
        assert client.get_bool("new-checkout", ctx, False) is True


async def test_async_serves_last_values_through_an_outage_then_resumes_in_order(
    setup: Setup,
) -> None:
    async with AsyncClient(
        setup.server.url, setup.token, min_backoff=0.05, max_backoff=0.2, heartbeat_timeout=3
    ) as client:
        await client.wait_ready(WAIT)
        stream = client.changes()
        setup.admin.set("new-checkout", "production", True)
        await next_change(stream)
        ctx = Context("u")

        setup.server.stop()
        await eventually_async(lambda: client.state is State.STALE, "state STALE")
        assert client.get_bool("new-checkout", ctx, False), "last good value while down"
        held = client.revision

        setup.server.start()  # same port, same data directory
        setup.admin.close()
        admin = Admin(setup.server)
        for i in range(5):
            admin.set("new-checkout", "production", i % 2 == 0)
        target = admin.revision("production")
        admin.close()
        seen: list[int] = []
        while not seen or seen[-1] != target:
            seen.append((await next_change(stream)).revision)
        assert seen == list(range(held + 1, target + 1)), "every change, once, in order"
        assert client.state is State.READY
        assert client.get_bool("new-checkout", ctx, False)


def test_sync_serves_last_values_through_an_outage_then_resumes(setup: Setup) -> None:
    with Client(
        setup.server.url, setup.token, min_backoff=0.05, max_backoff=0.2, heartbeat_timeout=3
    ) as client:
        client.wait_ready(WAIT)
        revisions: list[int] = []
        client.on_change(lambda c: revisions.append(c.revision))
        setup.server.stop(kill=True)
        eventually(lambda: client.state is State.STALE, "state STALE")
        assert client.get_bool("new-checkout", Context("u"), True) is False
        setup.server.start()
        setup.admin.set("new-checkout", "production", True)  # the channel reconnects
        setup.admin.set("new-checkout", "production", False)
        eventually(lambda: revisions == [2, 3], f"revisions 2 and 3, got {revisions}")
        assert client.state is State.READY


async def test_a_refused_token_surfaces_error_without_a_busy_loop(setup: Setup) -> None:
    proxy = CountingProxy(setup.server.port)
    await proxy.start()
    client = AsyncClient(proxy.url, "fw_wrong", min_backoff=0.01, max_backoff=0.5)
    try:
        with pytest.raises(UnauthorizedError, match="token"):
            await client.wait_ready(WAIT)
        assert client.state is State.ERROR
        assert client.last_error is not None
        await asyncio.sleep(1.6)
        # With 500 ms after each refusal: the first attempt plus at most four more.
        assert 2 <= proxy.connections <= 5, f"{proxy.connections} connections in ~1.6 s"
        with pytest.raises(UnauthorizedError):
            await client.wait_ready(WAIT)
    finally:
        await client.aclose()
        await proxy.close()


def test_sync_refused_token(setup: Setup) -> None:
    with Client(setup.server.url, "fw_wrong", max_backoff=0.5) as client:
        with pytest.raises(UnauthorizedError):
            client.wait_ready(WAIT)
        assert client.state is State.ERROR


async def test_bootstrap_file_serves_while_the_server_is_unreachable_and_offline(
    setup: Setup, tmp_path: pathlib.Path
) -> None:
    setup.admin.set("new-checkout", "production", True)
    path = tmp_path / "flags.bin"
    async with AsyncClient(setup.server.url, setup.token, bootstrap_file=path) as client:
        await client.wait_ready(WAIT)
        stream = client.changes()
        setup.admin.set("new-checkout", "production", False)
        await next_change(stream)
    url = setup.server.url
    setup.server.stop()

    ctx = Context("u")
    cold = AsyncClient(url, setup.token, bootstrap_file=path)
    assert cold.state is State.STALE
    r = cold.get_bool_details("new-checkout", ctx, True)
    assert (r.value, r.reason, r.flag_version) == (False, Reason.DISABLED, 3)

    offline = Client("http://unused.invalid", "-", bootstrap_file=path, offline=True)
    assert offline.state is State.READY
    offline.wait_ready(0.01)
    assert offline.get_bool("new-checkout", ctx, True) is False


async def test_heartbeat_timeout_reconnects(setup: Setup) -> None:
    # The server heartbeats every second; a 0.5 s timeout declares each quiet stream dead, so
    # the client keeps reconnecting (resuming at its revision) and stays serving.
    async with AsyncClient(
        setup.server.url, setup.token, heartbeat_timeout=0.5, min_backoff=0.01, max_backoff=0.05
    ) as client:
        await client.wait_ready(WAIT)
        runtime = client._runtime
        assert runtime is not None
        started = time.monotonic()
        await eventually_async(lambda: runtime.connections >= 3, "reconnections")
        assert time.monotonic() - started < 5
        assert client.get_bool("new-checkout", Context("u"), True) is False


async def test_a_deleted_flag_is_announced_and_then_not_found(setup: Setup) -> None:
    async with AsyncClient(setup.server.url, setup.token) as client:
        await client.wait_ready(WAIT)
        async with client.changes() as stream:
            setup.admin.delete_flag("new-checkout")
            change = await next_change(stream)
        assert change.flags == ("new-checkout",)
        details = client.get_bool_details("new-checkout", Context("u"), True)
        assert (details.value, details.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        assert client.flag_keys() == ()
