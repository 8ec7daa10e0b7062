"""The table scripts/bench prints: issue 18's goals, each judged against what the run measured.

Figures come from three machine-readable sources, never from the benches' prose:

- ``BENCH <name>=<number> <unit>`` lines anywhere in a suite's log (the server benches, the
  TypeScript bench and scripts/bench-peers print them);
- criterion's ``new/benchmark.json`` + ``new/estimates.json`` under ``<target>/criterion``
  written since the run started (median, in ns), named ``criterion:<full id>``;
- pytest-benchmark's ``--benchmark-json`` files (median, in ns), named ``python:<test name>``.

A goal whose figure is missing shows "not measured" instead of failing, and every figure no goal
names is listed under "Other figures", so a bench that gains a line never breaks the table.

    python3 report.py --logs DIR --criterion DIR --since EPOCH [--header FILE]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
from dataclasses import dataclass

TIMES = "\u00d7"  # the multiplication sign of a ratio
BENCH_LINE = re.compile(r"^BENCH ([A-Za-z0-9_.:-]+)=(-?[0-9.eE+-]+)(?: (.*))?$")


@dataclass(frozen=True)
class Figure:
    """One measured number, with the unit it was printed in."""

    value: float
    unit: str


@dataclass(frozen=True)
class Goal:
    """One row of issue 18's goal table: a figure (or the ratio of two) against a bound."""

    label: str
    key: str
    bound: float
    at_most: bool
    unit: str
    divide_by: str | None = None

    def judge(self, figures: dict[str, Figure]) -> tuple[str, str]:
        """The measured cell and the verdict cell."""
        got = figures.get(self.key)
        if got is None or (self.divide_by is not None and self.divide_by not in figures):
            return "not measured", "—"
        value = got.value
        if self.divide_by is not None:
            value /= figures[self.divide_by].value
        met = value <= self.bound if self.at_most else value >= self.bound
        return f"{fmt(value)} {self.unit}".strip(), "met" if met else "**not met**"

    def goal_text(self) -> str:
        """The bound as the issue writes it."""
        return f"{'≤' if self.at_most else '≥'} {fmt(self.bound)} {self.unit}".strip()


CORE = "criterion:5 rules + 3-way split"
PEERS = "criterion:5 rules + 3-way split/"
GOALS = [
    Goal("core evaluation, 5 rules + 3-way split", CORE, 75, True, "ns"),
    Goal(
        "core, prepared context",
        "criterion:5 rules + 3-way split, prepared context",
        75,
        True,
        "ns",
    ),
    Goal(
        "core / unleash-yggdrasil, same run",
        PEERS + "flagwire-core",
        0.1,
        True,
        TIMES,
        divide_by=PEERS + "unleash-yggdrasil 0.21.7",
    ),
    Goal(
        "Rust SDK, same flag (`with_str_value`)",
        "criterion:sdk with_str_value, 5 rules + 3-way split",
        100,
        True,
        "ns",
    ),
    Goal(
        "Rust SDK `start_measure` + `finish`",
        "criterion:sdk start_measure + finish (bool flag), excluding the work",
        150,
        True,
        "ns",
    ),
    Goal("Python SDK, same flag", "python:test_split_flag_5_rules", 1000, True, "ns"),
    Goal(
        "TypeScript SDK, same flag (metrics on)",
        "ts.5_rules_3_way_split_getstring_metrics_on",
        300,
        True,
        "ns",
    ),
    Goal("change → arrival p99, 1,000 watchers", "load.arrival_p99.1000", 10, True, "ms"),
    Goal("change → arrival p99, 10,000 watchers", "load.arrival_p99.10000", 60, True, "ms"),
    Goal("server memory per watcher (1,000)", "load.kib_per_watcher.1000", 30, True, "KiB"),
    Goal("server memory per watcher (10,000)", "load.kib_per_watcher.10000", 30, True, "KiB"),
    Goal("`Report` ingestion, 20 series each", "ingest.reports_per_s", 20_000, False, "/s"),
    Goal("`Report` ingestion, batched", "ingest.batched.series_per_s", 400_000, False, "series/s"),
    Goal("kill switch acknowledged by 1,000 instances, p99", "kill_ack.p99", 100, True, "ms"),
    Goal(
        "a staging write: production messages",
        "load.staging.production_messages",
        0,
        True,
        "",
    ),
    Goal("`Evaluate` / bare unary, 64 in flight", "rpc.ratio.64", 0.9, False, TIMES),
    Goal("OFREP / Unleash Edge requests/s", "peers.ratio", 2, False, TIMES),
    Goal(
        "OFREP p99 / Unleash Edge p99",
        "peers.ofrep.p99",
        1,
        True,
        TIMES,
        divide_by="peers.edge.p99",
    ),
]


def fmt(value: float) -> str:
    """Three significant digits, thousands separated: 79.4, 0.213, 21,964."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def bench_lines(logs: pathlib.Path) -> dict[str, Figure]:
    """Every ``BENCH`` line of every ``*.log`` in ``logs`` (a later line wins)."""
    found: dict[str, Figure] = {}
    for log in sorted(logs.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            m = BENCH_LINE.match(line.strip())
            if m:
                found[m.group(1)] = Figure(float(m.group(2)), m.group(3) or "")
    return found


def criterion(root: pathlib.Path, since: float) -> dict[str, Figure]:
    """Medians of the criterion benchmarks written at or after ``since``."""
    found: dict[str, Figure] = {}
    for meta in root.glob("**/new/benchmark.json"):
        estimates = meta.with_name("estimates.json")
        if not estimates.exists() or estimates.stat().st_mtime < since:
            continue
        full_id = json.loads(meta.read_text())["full_id"]
        median = json.loads(estimates.read_text())["median"]["point_estimate"]
        found[f"criterion:{full_id}"] = Figure(float(median), "ns")
    return found


def pytest_benchmark(logs: pathlib.Path) -> dict[str, Figure]:
    """Medians of every pytest-benchmark JSON file (``*.json``) in ``logs``."""
    found: dict[str, Figure] = {}
    for path in sorted(logs.glob("*.json")):
        for bench in json.loads(path.read_text()).get("benchmarks", []):
            found[f"python:{bench['name']}"] = Figure(bench["stats"]["median"] * 1e9, "ns")
    return found


def table(figures: dict[str, Figure]) -> str:
    """The goal table, then every other figure."""
    rows = ["| figure | measured | goal | met? |", "|---|---|---|---|"]
    named: set[str] = set()
    for goal in GOALS:
        measured, verdict = goal.judge(figures)
        rows.append(f"| {goal.label} | {measured} | {goal.goal_text()} | {verdict} |")
        named.update(k for k in (goal.key, goal.divide_by) if k is not None)
    others = sorted(k for k in figures if k not in named)
    if others:
        rows += ["", "Other figures:", "", "| figure | measured |", "|---|---|"]
        rows += [f"| `{k}` | {fmt(figures[k].value)} {figures[k].unit} |" for k in others]
    return "\n".join(rows)


def main() -> None:
    """Prints the header file (if any) and the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", type=pathlib.Path, required=True)
    p.add_argument("--criterion", type=pathlib.Path, required=True)
    p.add_argument("--since", type=float, required=True)
    p.add_argument("--header", type=pathlib.Path)
    args = p.parse_args()
    figures = {
        **criterion(args.criterion, args.since),
        **pytest_benchmark(args.logs),
        **bench_lines(args.logs),
    }
    if args.header:
        print(args.header.read_text().rstrip() + "\n")
    print(table(figures))


if __name__ == "__main__":
    main()
