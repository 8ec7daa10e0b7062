"""Releases judged on what the SDK reports, against the real server: a 3-flag release started
through ReleaseService (one stage, a 50 % share with an equal control cohort, 1 s windows);
scoped requests each reading the three flags; the release's closed windows (GetRelease with
window_limit) then count ONE outcome per request in its cohort, not one per flag read, and
size each cohort by its requests too."""

from __future__ import annotations

import pytest
from support import WAIT, Admin, Server, bool_flag, eventually_async, held_release, window_totals

from flagwire import AsyncClient, Context
from flagwire._proto.flagwire.v1 import release_pb2

pytestmark = pytest.mark.integration

FLAGS = ("checkout", "tax", "banner")
REQUESTS = 60


def _start(admin: Admin) -> tuple[str, str]:
    """Environment, flags, the started release and an sdk token: (release id, token)."""
    admin.env("production")
    for key in FLAGS:
        admin.create_flag(bool_flag(key, "production", enabled=True))
    release = admin.create_release(held_release("production", FLAGS))
    started = admin.start_release(release.id)
    assert started.state == release_pb2.RELEASE_STATE_RUNNING, started
    return release.id, admin.sdk_token("svc", "production")


async def test_a_release_counts_one_outcome_per_scoped_request(
    server: Server, admin: Admin
) -> None:
    release_id, token = _start(admin)
    expected = {"canary": [0, 0], "control": [0, 0]}  # outcomes, errors
    async with AsyncClient(server.url, token, metrics_flush_interval=3600) as client:
        await client.wait_ready(WAIT)
        for i in range(REQUESTS):
            async with client.scope(Context(f"user-{i}")) as flags:
                served = [flags.get_bool_details(key, False) for key in FLAGS]
                cohorts = {(d.rollout_id, d.cohort, d.value) for d in served}
                # The release's salt puts a unit in the same cohort on each of its flags.
                assert len(cohorts) == 1, served
                ((rollout_id, cohort, on),) = cohorts
                assert rollout_id == release_id
                assert cohort in expected, served
                assert on == (cohort == "canary"), served
                expected[cohort][0] += 1
                if i % 4 == 0:
                    flags.fail()
                    expected[cohort][1] += 1
        assert await client.flush(), "the report with cohort outcomes was accepted"
    assert min(n for n, _ in expected.values()) > 0, expected

    def counted() -> dict[str, tuple[int, int, int]] | None:
        totals = window_totals(admin.get_release(release_id, window_limit=100))
        outcomes = sum(n for n, _, _ in totals.values())
        return totals if outcomes >= REQUESTS else None

    totals = await eventually_async(counted, "a closed window holding the outcomes")
    # One outcome per request (not one per flag read), in its cohort, with its errors; the
    # cohort's size (what the sample-ratio check compares) counts the requests too.
    assert totals == {cohort: (n, errors, n) for cohort, (n, errors) in expected.items()}
