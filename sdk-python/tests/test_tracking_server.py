"""The team's own metrics reach the real server: a report carrying them is accepted, usage rows
(`GetUsage`) show each name's statistic for the variant (a rate for outcomes, a distribution's
median/p95/p99 for observed values, else the mean), and a release's closed windows hold each
cohort's metrics, counted once per request."""

from __future__ import annotations

import pytest
from support import WAIT, Admin, Server, Setup, bool_flag, eventually_async, held_release

from flagwire import AsyncClient, Client, Context
from flagwire._proto.flagwire.v1 import metrics_pb2, release_pb2
from flagwire.histogram import bucket_index, upper_bound

pytestmark = pytest.mark.integration


def _quantile_ms(thousandths: int) -> float:
    """What the server shows for an observed value: its bucket's upper bound, in the unit."""
    index = bucket_index(thousandths)
    assert index is not None
    return upper_bound(index) / 1000


async def test_usage_rows_show_each_metric(setup: Setup) -> None:
    async with AsyncClient(setup.server.url, setup.token, metrics_flush_interval=3600) as client:
        await client.wait_ready(WAIT)
        ctx = Context("user-1")
        async with client.scope(ctx) as flags:
            assert not flags.get_bool("new-checkout", True)  # disabled: serves "off"
            for ok in (True, True, True, False):
                client.track_outcome("mem0_write", ok)
            for ms in (1.0, 2.0, 40.0):
                client.observe("fast_path_ms", ms)
            flags.track("satisfaction", 4)
            flags.track("satisfaction", 5)
        client.track("signup", context=ctx, flags=["new-checkout"])
        assert await client.flush(), "the report carrying metrics was accepted"
    (row,) = setup.admin.usage("production", "new-checkout")
    assert (row.variant, row.evaluations) == ("off", 1), "flags= does not count an evaluation"
    stats = {m.name: m for m in row.metrics}
    assert stats == {
        "mem0_write": metrics_pb2.MetricStat(name="mem0_write", n=4, value=0.75),
        "fast_path_ms": metrics_pb2.MetricStat(
            name="fast_path_ms",
            n=3,
            value=_quantile_ms(2000),
            p95=_quantile_ms(40_000),
            p99=_quantile_ms(40_000),
        ),
        "satisfaction": metrics_pb2.MetricStat(name="satisfaction", n=2, value=4.5),
        "signup": metrics_pb2.MetricStat(name="signup", n=1, value=1.0),
    }


def test_the_sync_client_reports_a_measure_blocks_metrics(setup: Setup) -> None:
    with Client(setup.server.url, setup.token, metrics_flush_interval=3600) as client:
        client.wait_ready(WAIT)
        with client.measure("new-checkout", Context("user-1")):
            client.track("hits", 3)
        assert client.flush()
    (row,) = setup.admin.usage("production", "new-checkout")
    assert (row.successes, list(row.metrics)) == (
        1,
        [metrics_pb2.MetricStat(name="hits", n=1, value=3.0)],
    )


REQUESTS = 40


async def test_a_release_window_holds_each_cohorts_metrics(server: Server, admin: Admin) -> None:
    admin.env("production")
    for key in ("checkout", "tax"):
        admin.create_flag(bool_flag(key, "production", enabled=True))
    release = admin.create_release(held_release("production", ("checkout", "tax")))
    assert admin.start_release(release.id).state == release_pb2.RELEASE_STATE_RUNNING
    token = admin.sdk_token("svc", "production")
    hits = {"canary": 0.0, "control": 0.0}
    requests = {"canary": 0, "control": 0}
    async with AsyncClient(server.url, token, metrics_flush_interval=3600) as client:
        await client.wait_ready(WAIT)
        for i in range(REQUESTS):
            async with client.scope(Context(f"user-{i}")) as flags:
                flags.get_bool("checkout", False)
                cohort = flags.get_bool_details("tax", False).cohort
                client.track("hits", i % 3)  # two flags read: still one request
                if cohort in hits:
                    hits[cohort] += i % 3
                    requests[cohort] += 1
        assert await client.flush()
    assert min(requests.values()) > 0, requests

    def totals() -> dict[str, tuple[float, int]] | None:
        out: dict[str, tuple[float, int]] = {}
        for window in admin.get_release(release.id, window_limit=100).windows:
            for m in window.metrics:
                assert (m.name, m.flag_key) == ("hits", ""), m  # release-cohort attribution
                total, n = out.get(m.cohort, (0.0, 0))
                out[m.cohort] = (total + m.sum, n + m.requests)
        done = sum(n for _, n in out.values()) >= sum(requests.values())
        return out if done else None

    got = await eventually_async(totals, "a closed window holding the metrics")
    assert got == {c: (hits[c], requests[c]) for c in hits}
