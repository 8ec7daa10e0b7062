"""A traffic generator: synthetic requests, measured per variant and per release cohort, for
canary rollouts and releases.

    FLAGWIRE_TOKEN=$(cat data/sdk-token) sdk-python/.venv/bin/python \\
        sdk-python/examples/traffic.py --flag new-checkout --instances 3 --error-rate on=0.2

It runs `--instances` independent `AsyncClient`s (each its own instance id, Watch stream and
metrics reports) and issues `--rps` requests per second in total, open loop (a request starts
on schedule whether or not earlier ones have finished), round-robin over the instances. Each
request picks a user `user-<k>` (k uniform in 0..100000) as the targeting key and, inside ONE
`client.scope(context)`, evaluates every `--flag` in order (any type); it then sleeps a
lognormal latency (median `--latency-ms` of the variant the FIRST flag served, sigma 0.5) and
fails by raising, which the scope records as an error outcome, with the probability
`--error-rate` gives that variant, or, when the request was served every FLAG=VARIANT pair of
an `--error-when` condition, that condition's probability (the largest of those matching).
The scope records the request's outcome on every flag's series and once per release cohort it
was in.

The team's own metrics, recorded in the request's scope (`scope.track_outcome`, `observe`,
`track`) after its latency and before it fails, so that a release's gates have something to
judge (each option repeatable; the last one of a name counts):
  --outcome NAME=P      `track_outcome(NAME, ok)`, ok with probability P (a mem0 write);
  --outcome-when NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P
                        for requests served every pair, ok with probability P instead (the
                        smallest P of the matching conditions; NAME needs an --outcome);
  --observe NAME=MEDIAN `observe(NAME, value)`, lognormal around MEDIAN (sigma 0.5; a latency);
  --track NAME=V[,V...] `track(NAME, value)` of one of the values, uniformly (a score).
Every second a line of progress goes to stderr; at `--duration` seconds, or on
SIGINT/SIGTERM, it lets requests in flight finish, flushes and closes the clients, prints a
summary (per metric too: `metric NAME: events=N`, with `failed=M` for outcomes) and exits 0.
It exits 1 when the clients cannot become ready within 10 s (wrong endpoint or token) and 2 on
bad arguments.

The Rust SDK (`cargo run -p flagwire --example traffic -- ...`) and the TypeScript SDK
(`node sdk-ts/dist-examples/traffic.js ...`) have generators with the same options.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from flagwire import AsyncClient, Context, Scope, UnauthorizedError

READY_TIMEOUT = 10.0
USERS = 100_000
SIGMA = 0.5
DEFAULT_ERROR_RATE = 0.01
DEFAULT_LATENCY_MS = 20.0
DRAIN_TIMEOUT = 10.0


class SimulatedFailure(Exception):
    """The failure a request of a variant is told to have."""


@dataclass
class VariantStats:
    requests: int = 0
    errors: int = 0
    completed: int = 0
    latency_s: float = 0.0  # summed over completed requests


@dataclass
class MetricStats:
    """Events recorded of one of the team's metrics; outcomes count their failures."""

    events: int = 0
    failed: int = 0

    def add(self, ok: bool) -> None:
        self.events += 1
        self.failed += not ok


@dataclass
class Stats:
    sent: int = 0
    completed: int = 0
    by_variant: dict[str, VariantStats] = field(default_factory=dict)
    # (release id, cohort) -> its requests, each counted once (as the SDK reports them).
    by_cohort: dict[tuple[str, str], VariantStats] = field(default_factory=dict)
    by_metric: dict[str, MetricStats] = field(default_factory=dict)

    def metric(self, name: str) -> MetricStats:
        stats = self.by_metric.get(name)
        if stats is None:
            stats = self.by_metric[name] = MetricStats()
        return stats

    def variant(self, key: str) -> VariantStats:
        stats = self.by_variant.get(key)
        if stats is None:
            stats = self.by_variant[key] = VariantStats()
        return stats

    def cohort(self, key: tuple[str, str]) -> VariantStats:
        stats = self.by_cohort.get(key)
        if stats is None:
            stats = self.by_cohort[key] = VariantStats()
        return stats

    def line(self) -> str:
        variants = sorted(self.by_variant.items())
        parts = ", ".join(f"{_label(k)}: {v.requests} (err {v.errors})" for k, v in variants)
        line = f"sent={self.sent} in_flight={self.sent - self.completed} by_variant={{{parts}}}"
        if self.by_cohort:
            cohorts = sorted(self.by_cohort.items())
            parts = ", ".join(f"{r}/{c}: {v.requests} (err {v.errors})" for (r, c), v in cohorts)
            line += f" by_release_cohort={{{parts}}}"
        return line


def _label(variant: str) -> str:
    return variant or "(none)"


def _pairs(
    p: argparse.ArgumentParser, values: Sequence[str], option: str, key_is: str = "VARIANT"
) -> dict[str, float]:
    """`KEY=NUMBER` options (repeatable; the last one of a key counts)."""
    out: dict[str, float] = {}
    for value in values:
        key, sep, number = value.rpartition("=")
        if not sep or not key:
            p.error(f"{option} wants {key_is}=NUMBER, got {value!r}")
        try:
            out[key] = float(number)
        except ValueError:
            p.error(f"{option} {value}: {number!r} is not a number")
    return out


Condition = tuple[tuple[tuple[str, str], ...], float]
"""((flag, variant) pairs that must all have been served, failure probability)."""

OutcomeCondition = tuple[str, tuple[tuple[str, str], ...], float]
"""(metric, (flag, variant) pairs that must all have been served, success probability)."""

METRIC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""What the SDKs accept as a metric name (tests/metrics/README.md); others are refused here
rather than dropped silently by the SDK."""


def _condition(
    p: argparse.ArgumentParser, option: str, value: str, flags: Sequence[str]
) -> Condition:
    """`FLAG=VARIANT[,FLAG=VARIANT...]:P` (of `value`, for messages), each FLAG a --flag."""
    pairs, sep, number = value.rpartition(":")
    if not sep or not pairs:
        p.error(f"{option} wants FLAG=VARIANT[,FLAG=VARIANT...]:P, got {value!r}")
    conds = []
    for pair in pairs.split(","):
        flag, eq, variant = pair.partition("=")
        if not eq or not flag or not variant:
            p.error(f"{option} {value}: {pair!r} is not FLAG=VARIANT")
        if flag not in flags:
            p.error(f"{option} {value}: no --flag {flag} is read, so it never matches")
        conds.append((flag, variant))
    try:
        rate = float(number)
    except ValueError:
        p.error(f"{option} {value}: {number!r} is not a number")
    if not 0 <= rate <= 1:
        p.error(f"{option} {value}: a probability is between 0 and 1")
    return tuple(conds), rate


def _conditions(
    p: argparse.ArgumentParser, values: Sequence[str], flags: Sequence[str]
) -> list[Condition]:
    """`--error-when FLAG=VARIANT[,FLAG=VARIANT...]:P` options."""
    return [_condition(p, "--error-when", value, flags) for value in values]


def _metric(p: argparse.ArgumentParser, option: str, value: str, name: str) -> str:
    if not METRIC_NAME.fullmatch(name):
        p.error(
            f"{option} {value}: {name!r} is not a metric name (lowercase letters, digits, '.',"
            " '_', '-', starting with a letter or digit, at most 64)"
        )
    return name


def _outcome_conditions(
    p: argparse.ArgumentParser,
    values: Sequence[str],
    flags: Sequence[str],
    outcomes: dict[str, float],
) -> list[OutcomeCondition]:
    """`--outcome-when NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P` options, NAME an --outcome."""
    out: list[OutcomeCondition] = []
    option = "--outcome-when"
    for value in values:
        name, sep, condition = value.partition(":")
        if not sep or not name:
            p.error(f"{option} wants NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P, got {value!r}")
        if name not in outcomes:
            p.error(f"{option} {value}: no --outcome {name}=P to replace")
        pairs, rate = _condition(p, option, condition, flags)
        out.append((name, pairs, rate))
    return out


def _tracks(p: argparse.ArgumentParser, values: Sequence[str]) -> dict[str, list[float]]:
    """`--track NAME=V[,V...]` options (the last one of a name counts)."""
    out: dict[str, list[float]] = {}
    for value in values:
        name, sep, numbers = value.partition("=")
        if not sep or not numbers:
            p.error(f"--track wants NAME=VALUE[,VALUE...], got {value!r}")
        try:
            values_ = [float(n) for n in numbers.split(",")]
        except ValueError:
            p.error(f"--track {value}: {numbers!r} are not numbers")
        if not all(math.isfinite(v) for v in values_):
            p.error(f"--track {value}: the values must be finite")
        out[_metric(p, "--track", value, name)] = values_
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="traffic.py",
        description="Send measured synthetic traffic for flags through Flagwire SDK clients.",
    )
    p.add_argument("--endpoint", default="http://127.0.0.1:7070", help="the server's gRPC URL")
    p.add_argument(
        "--token",
        default=os.environ.get("FLAGWIRE_TOKEN", ""),
        help="an sdk token (default: $FLAGWIRE_TOKEN)",
    )
    p.add_argument(
        "--flag",
        action="append",
        required=True,
        metavar="KEY",
        help="a flag to evaluate (any type; repeatable: each request reads every one, in order,"
        " in one scope; the first one's variant picks --error-rate and --latency-ms)",
    )
    p.add_argument("--rps", type=float, default=200.0, help="requests per second, all instances")
    p.add_argument("--instances", type=int, default=1, help="independent SDK clients")
    p.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until SIGINT/SIGTERM")
    p.add_argument(
        "--error-rate",
        action="append",
        default=[],
        metavar="V=P",
        help=f"failure probability of variant V (repeatable; default {DEFAULT_ERROR_RATE})",
    )
    p.add_argument(
        "--latency-ms",
        action="append",
        default=[],
        metavar="V=MS",
        help=f"median latency of variant V (repeatable; default {DEFAULT_LATENCY_MS:g})",
    )
    p.add_argument(
        "--error-when",
        action="append",
        default=[],
        metavar="F=V[,F=V...]:P",
        help="failure probability of requests served every FLAG=VARIANT pair (repeatable; the"
        " largest matching P replaces the --error-rate of the first flag's variant)",
    )
    p.add_argument(
        "--outcome",
        action="append",
        default=[],
        metavar="NAME=P",
        help="record track_outcome(NAME, ok) in every request, ok with probability P (repeatable)",
    )
    p.add_argument(
        "--outcome-when",
        action="append",
        default=[],
        metavar="NAME:F=V[,F=V...]:P",
        help="success probability of NAME for requests served every FLAG=VARIANT pair (repeatable;"
        " the smallest matching P replaces the --outcome of NAME)",
    )
    p.add_argument(
        "--observe",
        action="append",
        default=[],
        metavar="NAME=MEDIAN",
        help="record observe(NAME, value) in every request, lognormal around MEDIAN (sigma"
        f" {SIGMA:g}; repeatable)",
    )
    p.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="NAME=V[,V...]",
        help="record track(NAME, value) in every request, one of the values at random (repeatable)",
    )
    p.add_argument("--flush-ms", type=float, default=1000.0, help="metrics flush interval")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = p.parse_args(argv)
    if not args.token:
        p.error("no token: pass --token or set FLAGWIRE_TOKEN")
    if not (args.rps > 0 and math.isfinite(args.rps)):
        p.error("--rps must be positive")
    if args.instances < 1:
        p.error("--instances must be at least 1")
    if not (args.duration >= 0 and math.isfinite(args.duration)):
        p.error("--duration must be 0 or positive")
    if not (args.flush_ms > 0 and math.isfinite(args.flush_ms)):
        p.error("--flush-ms must be positive")
    args.error_rate = _pairs(p, args.error_rate, "--error-rate")
    args.latency_ms = _pairs(p, args.latency_ms, "--latency-ms")
    for key, rate in args.error_rate.items():
        if not 0 <= rate <= 1:
            p.error(f"--error-rate {key}={rate:g}: a probability is between 0 and 1")
    for key, ms in args.latency_ms.items():
        if not (ms >= 0 and math.isfinite(ms)):
            p.error(f"--latency-ms {key}={ms:g}: must be 0 or positive")
    args.error_when = _conditions(p, args.error_when, args.flag)
    args.outcome = _pairs(p, args.outcome, "--outcome", "NAME")
    for name, rate in args.outcome.items():
        _metric(p, "--outcome", f"{name}={rate:g}", name)
        if not 0 <= rate <= 1:
            p.error(f"--outcome {name}={rate:g}: a probability is between 0 and 1")
    args.outcome_when = _outcome_conditions(p, args.outcome_when, args.flag, args.outcome)
    args.observe = _pairs(p, args.observe, "--observe", "NAME")
    for name, median in args.observe.items():
        _metric(p, "--observe", f"{name}={median:g}", name)
        if not (median > 0 and math.isfinite(median)):
            p.error(f"--observe {name}={median:g}: the median must be positive")
    args.track = _tracks(p, args.track)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**63)
    return args


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.flags: list[str] = args.flag
        self.error_rate: dict[str, float] = args.error_rate
        self.error_when: list[Condition] = args.error_when
        self.latency_ms: dict[str, float] = args.latency_ms
        self.outcome: dict[str, float] = args.outcome
        self.outcome_when: list[OutcomeCondition] = args.outcome_when
        self.observe: dict[str, float] = args.observe
        self.track: dict[str, list[float]] = args.track
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.clients: list[AsyncClient] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.stop = asyncio.Event()
        self.warned: set[str] = set()

    def request(self, client: AsyncClient) -> None:
        """Starts one request (its random draws are made now, in order, so a seed replays)."""
        user = self.rng.randrange(USERS)
        u = self.rng.random()
        z = self.rng.gauss(0.0, 1.0)
        # The metrics' draws come after, so a seed replays the same requests with or without.
        draws = [self.rng.random() for _ in self.outcome]
        draws += [self.rng.gauss(0.0, 1.0) for _ in self.observe]
        draws += [self.rng.random() for _ in self.track]
        self.stats.sent += 1
        task = asyncio.ensure_future(self._run(client, f"user-{user}", u, z, draws))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def failure_rate(self, served: dict[str, str]) -> float:
        """The request's failure probability: the largest `--error-when` whose pairs were all
        served, else the `--error-rate` of the first flag's variant."""
        matching = [
            rate
            for pairs, rate in self.error_when
            if all(served.get(flag) == variant for flag, variant in pairs)
        ]
        if matching:
            return max(matching)
        return self.error_rate.get(served[self.flags[0]], DEFAULT_ERROR_RATE)

    def success_rate(self, name: str, served: dict[str, str]) -> float:
        """The success probability of outcome `name`: the smallest `--outcome-when` of `name`
        whose pairs were all served, else its `--outcome`."""
        matching = [
            rate
            for metric, pairs, rate in self.outcome_when
            if metric == name and all(served.get(flag) == variant for flag, variant in pairs)
        ]
        return min(matching) if matching else self.outcome[name]

    def _record(self, scope: Scope, served: dict[str, str], draws: list[float]) -> None:
        """Records the request's own metrics in its scope, from its draws."""
        at = iter(draws)
        for name in self.outcome:
            ok = next(at) < self.success_rate(name, served)
            scope.track_outcome(name, ok)
            self.stats.metric(name).add(ok)
        for name, median in self.observe.items():
            scope.observe(name, median * math.exp(SIGMA * next(at)))
            self.stats.metric(name).add(True)
        for name, values in self.track.items():
            scope.track(name, values[min(int(next(at) * len(values)), len(values) - 1)])
            self.stats.metric(name).add(True)

    def _served(self, scope: Scope) -> tuple[dict[str, str], set[tuple[str, str]]]:
        """Evaluates every flag in the scope: the variant each served, and the release cohorts
        the request is in."""
        served: dict[str, str] = {}
        cohorts: set[tuple[str, str]] = set()
        for key in self.flags:
            details = scope.get_value_details(key, None)
            served[key] = details.variant or ""
            if details.rollout_id and details.cohort in ("canary", "control"):
                cohorts.add((details.rollout_id, details.cohort))
            if not details.variant and key not in self.warned:
                self.warned.add(key)
                print(
                    f"traffic: warning: flag {key!r} served no variant "
                    "(missing from the token's environment?); it is not measured",
                    file=sys.stderr,
                )
        return served, cohorts

    async def _run(
        self, client: AsyncClient, user: str, u: float, z: float, draws: list[float]
    ) -> None:
        started = time.monotonic()
        variant = ""
        cohorts: set[tuple[str, str]] = set()
        failed = False
        try:
            async with client.scope(Context(user)) as scope:
                served, cohorts = self._served(scope)
                variant = served[self.flags[0]]
                self.stats.variant(variant).requests += 1
                for key in cohorts:
                    self.stats.cohort(key).requests += 1
                median = self.latency_ms.get(variant, DEFAULT_LATENCY_MS)
                await asyncio.sleep(median * math.exp(SIGMA * z) / 1000)
                self._record(scope, served, draws)
                if u < self.failure_rate(served):
                    raise SimulatedFailure(variant)
        except SimulatedFailure:
            failed = True
        finally:
            elapsed = time.monotonic() - started
            for stats in [self.stats.variant(variant), *map(self.stats.cohort, cohorts)]:
                stats.completed += 1
                stats.errors += failed
                stats.latency_s += elapsed
            self.stats.completed += 1

    async def connect(self) -> None:
        flush = self.args.flush_ms / 1000
        self.clients = [
            AsyncClient(self.args.endpoint, self.args.token, metrics_flush_interval=flush)
            for _ in range(self.args.instances)
        ]
        results = await asyncio.gather(
            *(c.wait_ready(READY_TIMEOUT) for c in self.clients), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await asyncio.gather(*(c.aclose() for c in self.clients))
            error = errors[0]
            why = (
                f"the server refused the token ({error})"
                if isinstance(error, UnauthorizedError)
                else f"not ready within {READY_TIMEOUT:g} s ({error})"
            )
            raise SystemExit(f"traffic: the SDK could not connect to {self.args.endpoint}: {why}")
        for i, c in enumerate(self.clients):
            print(f"traffic: instance {i} {c.instance_id} ready", file=sys.stderr)

    async def close(self) -> bool:
        """Flushes and closes every client; returns whether every final flush was delivered."""
        delivered = await asyncio.gather(*(c.flush() for c in self.clients))
        await asyncio.gather(*(c.aclose() for c in self.clients))
        return all(delivered)

    async def dispatch(self) -> float:
        """Issues requests on schedule until --duration or a signal; returns the seconds run."""
        loop = asyncio.get_running_loop()
        rps, duration = self.args.rps, self.args.duration
        start = loop.time()
        report = asyncio.ensure_future(self._report(start))
        n = 0
        while not self.stop.is_set():
            elapsed = loop.time() - start
            if duration and elapsed >= duration:
                elapsed = duration
            # Request i is due at i / rps seconds; all of them before --duration are sent.
            due = math.floor(elapsed * rps) + 1
            if duration:
                due = min(due, math.ceil(duration * rps))
            while n < due:
                self.request(self.clients[n % len(self.clients)])
                n += 1
            if duration and elapsed >= duration:
                break
            wait = n / rps - (loop.time() - start)
            await asyncio.sleep(min(max(wait, 0.0), 0.05))
        ran = min(loop.time() - start, duration) if duration else loop.time() - start
        report.cancel()
        return ran

    async def _report(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        for second in range(1, sys.maxsize):
            await asyncio.sleep(max(0.0, start + second - loop.time()))
            states = [c.state.value for c in self.clients]
            unready = [s for s in states if s != "READY"]
            extra = f" states={','.join(states)}" if unready else ""
            print(f"t={second}s {self.stats.line()}{extra}", file=sys.stderr, flush=True)

    async def drain(self) -> None:
        if self.in_flight:
            _, pending = await asyncio.wait(self.in_flight, timeout=DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()

    def summary(self, ran: float, delivered: bool) -> str:
        s = self.stats
        lines = [
            f"summary: ran={ran:.1f}s instances={len(self.clients)} sent={s.sent} "
            f"completed={s.completed} rps={s.sent / ran if ran else 0:.1f} seed={self.args.seed} "
            f"metrics_flushed={'yes' if delivered else 'NO'}"
        ]
        for key, v in sorted(s.by_variant.items()):
            rate = v.errors / v.completed if v.completed else 0.0
            mean = v.latency_s / v.completed * 1000 if v.completed else 0.0
            lines.append(
                f"  {_label(key)}: requests={v.requests} errors={v.errors} "
                f"error_rate={rate:.3f} mean_latency_ms={mean:.1f}"
            )
        for (release, cohort), v in sorted(s.by_cohort.items()):
            rate = v.errors / v.completed if v.completed else 0.0
            lines.append(
                f"  release {release} {cohort}: requests={v.requests} errors={v.errors} "
                f"error_rate={rate:.3f}"
            )
        for name, m in sorted(s.by_metric.items()):
            failed = f" failed={m.failed}" if name in self.outcome else ""
            lines.append(f"  metric {name}: events={m.events}{failed}")
        return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    gen = Generator(args)
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        print(f"traffic: {signal.Signals(signum).name}: stopping", file=sys.stderr)
        gen.stop.set()
        for s in (signal.SIGINT, signal.SIGTERM):  # a second signal ends it at once
            loop.remove_signal_handler(s)
            signal.signal(s, signal.SIG_DFL)

    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, on_signal, s)

    print(
        f"traffic: flag={','.join(args.flag)} endpoint={args.endpoint} instances={args.instances} "
        f"rps={args.rps:g} duration={args.duration:g}s seed={args.seed}",
        file=sys.stderr,
    )
    await gen.connect()
    ran = await gen.dispatch()
    await gen.drain()
    delivered = await gen.close()
    print(gen.summary(ran, delivered), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))  # SystemExit("message") prints it and exits 1
