"""The bundled traffic generator (examples/traffic.py) run as a subprocess against the real
server: its instances connect and report, every request's outcome reaches GetUsage with the
configured error rate and latency of the variant served, and it exits 0 after --duration;
with several --flag, each request reads them all in one scope: --error-when fails exactly the
requests served a combination, and a release counts one outcome per request per cohort; the
team's own metrics (--outcome, --outcome-when, --observe, --track) are recorded once in every
request's scope and reach GetUsage per variant."""

import os
import pathlib
import re
import subprocess
import sys
import time

import pytest
from support import (
    Admin,
    Server,
    bool_flag,
    eventually,
    held_release,
    split_flag,
    window_totals,
)

pytestmark = pytest.mark.integration

TRAFFIC = pathlib.Path(__file__).resolve().parents[1] / "examples" / "traffic.py"


def _traffic(*args: str, token: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRAFFIC), *args],
        env={**os.environ, "FLAGWIRE_TOKEN": token},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_traffic_generator_reports_outcomes_per_variant(server: Server, admin: Admin) -> None:
    admin.env("production")
    admin.create_flag(split_flag("new-checkout", "production"))  # 50/50 on/off
    token = admin.sdk_token("traffic", "production")

    started = time.monotonic()
    result = _traffic(
        "--endpoint", server.url, "--flag", "new-checkout",
        "--instances", "2", "--rps", "100", "--duration", "3",
        "--error-rate", "on=1.0", "--error-rate", "off=0",
        "--latency-ms", "on=20", "--latency-ms", "off=2",
        "--flush-ms", "500", "--seed", "42",
        token=token,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    log = result.stderr
    assert result.returncode == 0, log
    assert 3 <= elapsed < 15, log

    # Progress every second, then the summary: 100 rps for 3 s is 300 requests, all finished.
    assert re.search(r"^t=1s sent=\d+ .*by_variant=\{", log, re.MULTILINE), log
    summary = re.search(r"^summary: .* sent=(\d+) completed=(\d+) .*metrics_flushed=yes", log, re.M)
    assert summary is not None, log
    assert summary.groups() == ("300", "300"), log

    # Both instances connected (ListInstances) and reported the revision they applied.
    ids = re.findall(r"^traffic: instance \d+ (\S+) ready$", log, re.MULTILINE)
    assert len(set(ids)) == 2, log
    instances = {i.instance_id: i for i in admin.instances("production")}
    revision = admin.revision("production")
    for instance_id in ids:
        assert instance_id in instances, (instance_id, instances)
        assert instances[instance_id].sdk_name == "flagwire-python"
        assert instances[instance_id].applied_revision == revision

    # Every request was evaluated once and measured once, with the variant's error rate.
    rows = {r.variant: r for r in admin.usage("production", "new-checkout")}
    assert set(rows) == {"on", "off"}, rows
    on, off = rows["on"], rows["off"]
    assert on.evaluations + off.evaluations == 300
    assert on.evaluations > 0
    assert (on.successes, on.errors) == (0, on.evaluations)
    assert off.evaluations > 0
    assert (off.successes, off.errors) == (off.evaluations, 0)
    assert on.cohort == "canary"
    # The work awaited the variant's latency inside measure (medians 20 ms and 2 ms).
    assert on.p50_us >= 15_000, on
    assert on.p50_us > off.p50_us >= 1_500, (on, off)


def test_traffic_generator_exits_nonzero_on_a_refused_token(server: Server, admin: Admin) -> None:
    admin.env("production")
    result = _traffic("--endpoint", server.url, "--flag", "new-checkout", token="fw_wrong")
    assert result.returncode == 1, result.stderr
    assert "refused the token" in result.stderr, result.stderr


def _summary(log: str) -> tuple[int, int]:
    summary = re.search(r"^summary: .* sent=(\d+) completed=(\d+) .*metrics_flushed=yes", log, re.M)
    assert summary is not None, log
    sent, completed = map(int, summary.groups())
    return sent, completed


def test_error_when_fails_the_requests_served_a_combination(server: Server, admin: Admin) -> None:
    admin.env("production")
    for key in ("a", "b"):  # 50/50 on/off, independently (each flag's key is its salt)
        admin.create_flag(split_flag(key, "production"))
    token = admin.sdk_token("traffic", "production")

    result = _traffic(
        "--endpoint", server.url, "--flag", "a", "--flag", "b",
        "--rps", "100", "--duration", "2", "--flush-ms", "500", "--seed", "7",
        # The first flag's variant rate (on=1) is replaced by any matching condition, and of
        # those the largest wins: a=on with b=on always fails, a=on with b=off never does.
        "--error-rate", "on=1", "--error-rate", "off=0",
        "--error-when", "a=on:0", "--error-when", "a=on,b=on:1",
        token=token,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _summary(result.stderr) == (200, 200), result.stderr

    a = {r.variant: r for r in admin.usage("production", "a")}
    b = {r.variant: r for r in admin.usage("production", "b")}
    # Every request read both flags once, in one scope whose outcome each flag's series has.
    for rows in (a, b):
        assert sum(r.evaluations for r in rows.values()) == 200, rows
        assert all(r.successes + r.errors == r.evaluations for r in rows.values()), rows
    both = a["on"].errors
    assert 0 < both < a["on"].evaluations, "only a=on requests that were also served b=on failed"
    assert b["on"].errors == both, (a, b)
    assert a["off"].errors == 0, a
    assert b["off"].errors == 0, b


def test_a_release_counts_one_outcome_per_request_and_cohort(server: Server, admin: Admin) -> None:
    admin.env("production")
    flags = ("x", "y", "z")
    for key in flags:
        admin.create_flag(bool_flag(key, "production", enabled=True))
    release = admin.create_release(held_release("production", flags))
    admin.start_release(release.id)
    token = admin.sdk_token("traffic", "production")

    result = _traffic(
        "--endpoint", server.url, "--flag", "x", "--flag", "y", "--flag", "z",
        "--instances", "2", "--rps", "100", "--duration", "2", "--flush-ms", "500",
        "--error-rate", "on=0", "--error-rate", "off=0", "--seed", "11",
        token=token,
    )  # fmt: skip
    log = result.stderr
    assert result.returncode == 0, log
    sent, _ = _summary(log)
    cohorts = {
        cohort: int(n)
        for cohort, n in re.findall(
            rf"^  release {release.id} (canary|control): requests=(\d+) errors=0 ", log, re.M
        )
    }
    assert set(cohorts) == {"canary", "control"}, log
    assert sum(cohorts.values()) == sent == 200, log  # a 50 % share: everyone is in a cohort
    assert re.search(rf"^t=1s .* by_release_cohort=\{{{release.id}/canary: \d+", log, re.M), log

    def counted() -> dict[str, tuple[int, int, int]] | None:
        totals = window_totals(admin.get_release(release.id, window_limit=100))
        return totals if sum(n for n, _, _ in totals.values()) >= sent else None

    totals = eventually(counted, "closed windows holding every request")
    assert totals == {c: (n, 0, n) for c, n in cohorts.items()}, (totals, log)


def test_metric_options_record_the_teams_metrics_in_every_scope(
    server: Server, admin: Admin
) -> None:
    admin.env("production")
    admin.create_flag(split_flag("fast-path", "production"))  # 50/50 on/off
    token = admin.sdk_token("traffic", "production")

    result = _traffic(
        "--endpoint", server.url, "--flag", "fast-path",
        "--rps", "100", "--duration", "2", "--flush-ms", "500", "--seed", "5",
        "--error-rate", "on=0", "--error-rate", "off=0",
        # Writes always succeed, except for requests served fast-path=on: of the two matching
        # conditions the smaller P (0) wins.
        "--outcome", "mem0.write=1",
        "--outcome-when", "mem0.write:fast-path=on:0.5",
        "--outcome-when", "mem0.write:fast-path=on:0",
        "--observe", "fast-path.ms=100", "--track", "satisfaction=3,5",
        token=token,
    )  # fmt: skip
    log = result.stderr
    assert result.returncode == 0, log
    assert _summary(log) == (200, 200), log

    rows = {r.variant: r for r in admin.usage("production", "fast-path")}
    assert set(rows) == {"on", "off"}, rows
    on = {m.name: m for m in rows["on"].metrics}
    off = {m.name: m for m in rows["off"].metrics}
    for variant, metrics in (("on", on), ("off", off)):
        # Each request recorded each metric once, attributed to the variant its scope served.
        assert set(metrics) == {"mem0.write", "fast-path.ms", "satisfaction"}, metrics
        evaluations = rows[variant].evaluations
        assert all(m.n == evaluations for m in metrics.values()), (evaluations, metrics)
        # Lognormal around 100 ms: the median (its bucket's upper bound) is near 100 and the
        # p95 above it; a score of 3 or 5 at random averages strictly between them.
        assert 75 <= metrics["fast-path.ms"].value <= 135, metrics
        assert metrics["fast-path.ms"].p95 > metrics["fast-path.ms"].value, metrics
        assert 3 < metrics["satisfaction"].value < 5, metrics
    assert (on["mem0.write"].value, off["mem0.write"].value) == (0.0, 1.0), (on, off)
    on_requests = rows["on"].evaluations
    assert f"  metric mem0.write: events=200 failed={on_requests}" in log, log
    assert "  metric fast-path.ms: events=200\n" in log, log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome", "mem0.write=2"], "--outcome mem0.write=2: a probability is between 0 and 1"),
        (["--outcome", "Mem0=1"], "'Mem0' is not a metric name"),
        (["--outcome-when", "w:a=on:0.5"], "--outcome-when w:a=on:0.5: no --outcome w=P"),
        (["--outcome", "w=1", "--outcome-when", "w:a=on"], "--outcome-when wants FLAG=VARIANT"),
        (["--outcome", "w=1", "--outcome-when", "w:b=on:0"], "no --flag b is read"),
        (["--observe", "ms=0"], "--observe ms=0: the median must be positive"),
        (["--track", "score=4,x"], "--track score=4,x: '4,x' are not numbers"),
    ],
)
def test_bad_metric_options_exit_2(args: list[str], message: str) -> None:
    result = _traffic("--flag", "a", *args, token="fw_unused")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
