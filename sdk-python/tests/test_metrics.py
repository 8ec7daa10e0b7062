"""What the SDK reports reaches the real server: applied revisions, exact evaluation counts,
measured outcomes in the exact latency buckets, merge-back while the server is away, windows the
server refuses are dropped, and closing flushes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import WAIT, Admin, Setup, eventually, eventually_async

from flagwire import AsyncClient, Client, Context
from flagwire.histogram import upper_bound

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Outcome latencies from a list: each measurement reads (creation, entry, exit)."""
    durations: list[int] = []

    def readings() -> Iterator[int]:
        now = 0
        while True:
            micros = durations.pop(0)
            yield now  # creation
            yield now  # entry
            now += micros * 1000
            yield now  # exit

    clock = readings()
    monkeypatch.setattr("flagwire._measurement.clock_ns", lambda: next(clock))
    return durations


async def test_async_acknowledges_each_applied_revision(setup: Setup) -> None:
    async with AsyncClient(setup.server.url, setup.token) as client:
        await client.wait_ready(WAIT)
        await eventually_async(lambda: setup.admin.applied("production", 1) == (1, 1), "ack 1")
        setup.admin.set("new-checkout", "production", True)
        revision = setup.admin.revision("production")
        await eventually_async(
            lambda: setup.admin.applied("production", revision) == (1, 1), "acknowledgement"
        )
        (instance,) = setup.admin.instances("production")
        assert (instance.instance_id, instance.sdk_name) == (client.instance_id, "flagwire-python")
        assert instance.applied_revision == revision


def test_sync_acknowledges_each_applied_revision(setup: Setup) -> None:
    with Client(setup.server.url, setup.token) as client:
        client.wait_ready(WAIT)
        setup.admin.set("new-checkout", "production", True)
        revision = setup.admin.revision("production")
        eventually(lambda: setup.admin.applied("production", revision) == (1, 1), "ack")


def _row(admin: Admin, flag: str = "new-checkout") -> Any:
    rows = admin.usage("production", flag)
    assert len(rows) == 1, rows
    return rows[0]


async def test_counts_outcomes_and_latency_buckets_arrive(
    setup: Setup, fake_clock: list[int]
) -> None:
    setup.admin.set("new-checkout", "production", True)
    async with AsyncClient(setup.server.url, setup.token, metrics_flush_interval=3600) as client:
        await client.wait_ready(WAIT)
        ctx = Context("user-1")
        for _ in range(10):
            assert client.get_bool("new-checkout", ctx, False)
        # 180, 210, 240 and 310 us fall into buckets 59, 61, 63 and 66.
        fake_clock.extend([180, 210, 240, 310])
        for i in range(4):
            measurement = client.measure("new-checkout", ctx)
            async with measurement as variant:
                assert variant == "on"
                if i == 3:
                    measurement.fail()
        assert await client.flush(), "the window was delivered"
        row = _row(setup.admin)
        assert (row.variant, row.evaluations, row.successes, row.errors) == ("on", 14, 3, 1)
        assert row.error_rate == 0.25
        assert row.p50_us == pytest.approx(upper_bound(61), rel=1e-9)  # 210 us: rank 2 of 4
        assert row.p95_us == pytest.approx(upper_bound(66), rel=1e-9)  # 310 us
        assert row.p99_us == pytest.approx(upper_bound(66), rel=1e-9)
        assert await client.flush(), "nothing left to send"
        assert _row(setup.admin).evaluations == 14


def test_sync_client_counts_and_measures(setup: Setup) -> None:
    with Client(setup.server.url, setup.token, metrics_flush_interval=3600) as client:
        client.wait_ready(WAIT)
        ctx = Context("u")
        for _ in range(5):
            client.get_bool("new-checkout", ctx, True)
        with client.measure("new-checkout", ctx) as variant:
            assert variant == "off"
            time.sleep(0.02)
        assert client.flush()
        row = _row(setup.admin)
        assert (row.variant, row.evaluations, row.successes, row.errors) == ("off", 6, 1, 0)
        assert 20_000 <= row.p50_us < 25_000


async def test_a_failed_flush_is_merged_back_and_sent_later(setup: Setup) -> None:
    async with AsyncClient(
        setup.server.url, setup.token, metrics_flush_interval=3600, min_backoff=0.05,
        max_backoff=0.2,
    ) as client:  # fmt: skip
        await client.wait_ready(WAIT)
        ctx = Context("u")
        for _ in range(3):
            client.get_bool("new-checkout", ctx, True)
        setup.server.stop()
        assert not await client.flush(), "the server is down"
        for _ in range(2):
            client.get_bool("new-checkout", ctx, True)
        setup.server.start()  # usage is in memory only: the restarted server starts empty
        admin = Admin(setup.server)
        try:
            deadline = time.monotonic() + WAIT
            while not await client.flush():
                assert time.monotonic() < deadline, "no flush was delivered"
                await asyncio.sleep(0.05)
            row = _row(admin)
            assert (row.variant, row.evaluations) == ("off", 5)
        finally:
            admin.close()


async def test_a_refused_window_is_dropped_not_retried(setup: Setup) -> None:
    async with AsyncClient(setup.server.url, setup.token, metrics_flush_interval=3600) as client:
        await client.wait_ready(WAIT)
        client.get_bool("new-checkout", Context("u"), True)
        setup.admin.delete_flag("new-checkout")  # the window now names an unknown flag
        assert not await client.flush(), "refused with INVALID_ARGUMENT"
        assert await client.flush(), "and dropped: nothing left to send"
        recorder = client._core.recorder
        assert recorder is not None
        assert recorder.take().empty


async def test_closing_flushes(setup: Setup) -> None:
    client = AsyncClient(setup.server.url, setup.token, metrics_flush_interval=3600)
    await client.wait_ready(WAIT)
    for _ in range(7):
        client.get_bool("new-checkout", Context("u"), True)
    await client.aclose()
    assert _row(setup.admin).evaluations == 7


async def test_periodic_flush(setup: Setup) -> None:
    async with AsyncClient(setup.server.url, setup.token, metrics_flush_interval=0.2) as client:
        await client.wait_ready(WAIT)
        client.get_bool("new-checkout", Context("u"), True)
        await eventually_async(lambda: setup.admin.usage("production", "new-checkout"), "usage")
        await asyncio.sleep(0)


def test_a_script_that_forgets_close_still_flushes_at_exit(setup: Setup) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from flagwire import Client, Context\n"
        "client = Client(sys.argv[1], sys.argv[2])\n"
        "client.wait_ready(10)\n"
        "for _ in range(4):\n"
        "    client.get_bool('new-checkout', Context('u'), True)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, setup.server.url, setup.token], check=True, timeout=WAIT
    )
    assert _row(setup.admin).evaluations == 4
