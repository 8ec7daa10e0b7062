#!/usr/bin/env python3
"""Generates tests/metrics/encoding.json: how SDKs aggregate the team's own metrics.

    .venv/bin/python tests/metrics/gen.py          # (re)writes encoding.json
    .venv/bin/python tests/metrics/gen.py --check  # exit 1 if the file differs

Each case is a window of an SDK instance: request scopes (the flags each served, with variant,
cohort label and rollout id, the metric events recorded in it), and events recorded outside
any scope with the flags named explicitly. The expected `metrics` are the
`flagwire.v1.MetricSeries` a report carries for the window (protobuf JSON), in a fixed order,
computed here from the rules in tests/metrics/README.md, independently of the SDKs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vectors" / "gen"))
from histogram import Histogram  # noqa: E402

OUT = Path(__file__).resolve().parent / "encoding.json"
RELEASE_COHORTS = ("canary", "control")


def served(flag: str, variant: str, cohort: str = "", rollout_id: str = "") -> dict:
    return {"flag": flag, "variant": variant, "cohort": cohort, "rolloutId": rollout_id}


class Agg:
    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.sum_sq = 0.0
        self.hist: Histogram | None = None
        self.successes = 0
        self.failures = 0
        self.requests = 0
        self.request_sum_sq = 0.0

    def add_event(self, e: dict) -> None:
        if "track" in e:
            v = float(e.get("value", 1.0))
            self.count += 1
            self.sum += v
            self.sum_sq += v * v
        elif "observe" in e:
            v = float(e["value"])
            self.count += 1
            self.sum += v
            self.sum_sq += v * v
            if self.hist is None:
                self.hist = Histogram()
            # Thousandths of the unit, halves rounded up (values are never negative).
            self.hist.record(math.floor(v * 1000 + 0.5))
        elif "outcome" in e:
            if e["ok"]:
                self.successes += 1
            else:
                self.failures += 1

    def to_json(self, key: tuple[str, str, str, str, str]) -> dict:
        flag, variant, cohort, rollout_id, name = key
        out: dict = {"name": name}
        for k, v in (("flagKey", flag), ("variant", variant), ("cohort", cohort), ("rolloutId", rollout_id)):
            if v:
                out[k] = v
        if self.count:
            out["count"] = str(self.count)
        if self.sum:
            out["sum"] = self.sum
        if self.sum_sq:
            out["sumOfSquares"] = self.sum_sq
        if self.hist is not None:
            offset, counts = self.hist.dense()
            h: dict = {"scale": 3, "count": str(self.hist.count), "sum": float(self.hist.sum)}
            if self.hist.zero:
                h["zeroCount"] = str(self.hist.zero)
            if offset:
                h["offset"] = offset
            if counts:
                h["bucketCounts"] = [str(c) for c in counts]
            out["histogram"] = h
        if self.successes:
            out["successes"] = str(self.successes)
        if self.failures:
            out["failures"] = str(self.failures)
        if self.requests:
            out["requests"] = str(self.requests)
        if self.request_sum_sq:
            out["requestSumOfSquares"] = self.request_sum_sq
        return out


def name_of(e: dict) -> str:
    return e.get("track") or e.get("observe") or e["outcome"]


def keys_for(flags: list[dict], name: str) -> list[tuple[str, str, str, str, str]]:
    """Per-flag keys of every flag served, then one key per distinct release cohort."""
    keys = []
    seen = set()
    for s in flags:
        k = (s["flag"], s["variant"], s["cohort"], s["rolloutId"], name)
        if k not in seen:
            seen.add(k)
            keys.append(k)
    for s in flags:
        if s["rolloutId"] and s["cohort"] in RELEASE_COHORTS:
            k = ("", "", s["cohort"], s["rolloutId"], name)
            if k not in seen:
                seen.add(k)
                keys.append(k)
    return keys


def expected(case: dict) -> list[dict]:
    aggs: dict[tuple, Agg] = {}
    for scope in case.get("scopes", []):
        totals: dict[str, float] = {}
        names: list[str] = []
        for e in scope["events"]:
            name = name_of(e)
            if name not in names:
                names.append(name)
            for k in keys_for(scope["served"], name):
                aggs.setdefault(k, Agg()).add_event(e)
            if "track" in e:
                totals[name] = totals.get(name, 0.0) + float(e.get("value", 1.0))
        for name in names:
            x = totals.get(name, 0.0)
            for k in keys_for(scope["served"], name):
                a = aggs[k]
                a.requests += 1
                a.request_sum_sq += x * x
    for e in case.get("unscoped", []):
        for k in keys_for(e["flags"], name_of(e)):
            aggs.setdefault(k, Agg()).add_event(e)
    return [aggs[k].to_json(k) for k in sorted(aggs)]


CASES = [
    {
        "description": "one scope, one flag, one track: per-flag only (no release)",
        "scopes": [{"served": [served("banner", "blue")], "events": [{"track": "clicks"}]}],
    },
    {
        "description": "a scope that read three flags of one release: per flag, and once for the release cohort",
        "scopes": [
            {
                "served": [
                    served("shadow", "on", "canary", "rel-1"),
                    served("fast-path", "off", "canary", "rel-1"),
                    served("reads", "off", "canary", "rel-1"),
                ],
                "events": [{"outcome": "mem0_write", "ok": True}, {"outcome": "mem0_write", "ok": False}],
            }
        ],
    },
    {
        "description": "values: track sums and squares, per request totals; two scopes of one cohort",
        "scopes": [
            {
                "served": [served("chat", "on", "control", "rel-2")],
                "events": [{"track": "satisfaction", "value": 4}, {"track": "satisfaction", "value": 5}],
            },
            {
                "served": [served("chat", "off", "control", "rel-2")],
                "events": [{"track": "satisfaction", "value": 2}],
            },
        ],
    },
    {
        "description": "observe: a distribution in thousandths of the unit (ms observed land in µs buckets)",
        "scopes": [
            {
                "served": [served("fast-path", "on", "canary", "rel-1")],
                "events": [
                    {"observe": "fast_path_ms", "value": 420.5},
                    {"observe": "fast_path_ms", "value": 0},
                    {"observe": "fast_path_ms", "value": 1.25},
                ],
            }
        ],
    },
    {
        "description": "count per request: cache hits tracked twice in one request, once in another; a request without hits adds nothing",
        "scopes": [
            {"served": [served("faq", "on", "canary", "rel-3")], "events": [{"track": "hits"}, {"track": "hits"}]},
            {"served": [served("faq", "on", "canary", "rel-3")], "events": [{"track": "hits"}]},
            {"served": [served("faq", "on", "canary", "rel-3")], "events": []},
        ],
    },
    {
        "description": "a scope that read flags of two releases and an unlabelled flag: one release cohort each",
        "scopes": [
            {
                "served": [
                    served("a", "on", "canary", "rel-a"),
                    served("b", "off", "control", "rel-b"),
                    served("c", "on", "", "rel-c"),
                ],
                "events": [{"track": "orders", "value": 1.5}],
            }
        ],
    },
    {
        "description": "outside any scope: attributed to the flags named, with no request counted",
        "unscoped": [
            {"track": "signup", "value": 1, "flags": [served("onboarding", "v2", "canary", "rel-9")]},
            {"outcome": "payment", "ok": True, "flags": [served("checkout", "new")]},
        ],
    },
    {
        "description": "observe rounds to whole thousandths, halves up: 0.0025 is 3, 0.0125 is 13 (both exact halves in binary)",
        "scopes": [
            {
                "served": [served("fast-path", "on")],
                "events": [
                    {"observe": "tiny_ms", "value": 0.0025},
                    {"observe": "tiny_ms", "value": 0.0125},
                ],
            }
        ],
    },
    {
        "description": "several kinds under several names in one scope",
        "scopes": [
            {
                "served": [served("x", "on", "canary", "rel-x")],
                "events": [
                    {"track": "items", "value": 3},
                    {"outcome": "saved", "ok": True},
                    {"observe": "render_ms", "value": 12},
                    {"track": "items", "value": 1},
                ],
            }
        ],
    },
]


def build() -> dict:
    return {
        "description": "Generated by tests/metrics/gen.py; do not edit. How an SDK turns the metric events of one window into ReportRequest.metrics (flagwire.v1.MetricSeries, protobuf JSON): see tests/metrics/README.md. Compare the list in this order (sorted by flagKey, variant, cohort, rolloutId, name; absent fields are zero); doubles with a relative tolerance of 1e-12.",
        "cases": [dict(c, metrics=expected(c)) for c in CASES],
    }


def main() -> int:
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run tests/metrics/gen.py", file=sys.stderr)
            return 1
        print("tests/metrics/encoding.json is current")
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
