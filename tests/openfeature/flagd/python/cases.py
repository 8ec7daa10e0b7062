"""Vector cases through an OpenFeature client, compared with the answers of `flagwire-core`.

What a provider or mode cannot carry is decided here, by rules that CASES.md lists with their
reasons: a case the rules leave out is reported, never silently passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails

# Error codes the flagd RPC protocol has no gRPC status for: flagd's RPC providers read any
# status but NOT_FOUND, INVALID_ARGUMENT and DATA_LOSS as GENERAL.
RPC_GENERAL = {"TARGETING_KEY_MISSING", "INVALID_CONTEXT"}


@dataclass
class Tally:
    """Passes, failures (with the case description) and cases left out, by reason."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)

    def leave_out(self, reason: str) -> None:
        self.left_out[reason] = self.left_out.get(reason, 0) + 1

    def summary(self) -> str:
        left = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items()))
        return f"{self.passed} passed, {len(self.failures)} failed; left out: {left or 'none'}"


def context(case: Mapping[str, Any]) -> EvaluationContext:
    ctx = case.get("context") or {}
    return EvaluationContext(
        targeting_key=ctx.get("targetingKey") or None,
        attributes=dict(ctx.get("attributes") or {}),
    )


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON: numbers numerically, booleans never numbers, objects by keys."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=0) or a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def evaluate(client: OpenFeatureClient, case: Mapping[str, Any]) -> FlagEvaluationDetails[Any]:
    """The typed `get_*_details` call of the case's type (not for `any`)."""
    key, default, ctx = case["flag"], case["default"], context(case)
    kind = case["type"]
    if kind == "boolean":
        return client.get_boolean_details(key, default, ctx)
    if kind == "string":
        return client.get_string_details(key, default, ctx)
    if kind == "integer":
        return client.get_integer_details(key, default, ctx)
    if kind == "float":
        return client.get_float_details(key, float(default), ctx)
    if kind == "object":
        return client.get_object_details(key, default, ctx)
    raise ValueError(f"no typed call for {kind}")


def targeting_key_attribute(case: Mapping[str, Any]) -> bool:
    """Whether the case has an attribute named `targetingKey`: an OpenFeature context is flat,
    so such an attribute and the targeting key are the same field there."""
    return "targetingKey" in ((case.get("context") or {}).get("attributes") or {})


def partial_version(case: Mapping[str, Any], flags: list[Mapping[str, Any]]) -> bool:
    """Whether a SEMVER clause of the case's flag reads an attribute holding a partial version
    (`1.9`, `2`): flagd's `sem_ver` pads it to `1.9.0`, Flagwire does not read it as a version
    (and JsonLogic cannot count the dots to tell)."""
    flag = next((f for f in flags if f["key"] == case["flag"]), None)
    if flag is None:
        return False
    attributes = (case.get("context") or {}).get("attributes") or {}
    for config in flag.get("environments", {}).values():
        for rule in config.get("rules", []):
            for clause in rule.get("clauses", []):
                if not str(clause.get("operator", "")).startswith("OPERATOR_SEMVER"):
                    continue
                value = attributes.get(clause.get("attribute"))
                if isinstance(value, str):
                    core = value.split("-")[0].split("+")[0]
                    if core.count(".") < 2:
                        return True
    return False


Expect = Callable[[Mapping[str, Any]], "dict[str, Any] | str"]
"""A mode's expectation of a case: the expected result, or why the case is left out."""


def check(
    client: OpenFeatureClient, cases: list[Mapping[str, Any]], expect: Expect, tally: Tally
) -> None:
    """Runs every case the mode can carry and records the outcome in `tally`."""
    for case in cases:
        expected = expect(case)
        if isinstance(expected, str):
            tally.leave_out(expected)
            continue
        details = evaluate(client, case)
        error = details.error_code.value if details.error_code is not None else None
        got = {
            "value": details.value,
            "variant": details.variant or "",
            "reason": str(getattr(details.reason, "value", details.reason)),
            "errorCode": error,
        }
        want = {
            "value": expected["value"],
            "variant": expected.get("variant") or "",
            "reason": expected["reason"],
            "errorCode": expected.get("errorCode"),
        }
        problems = [
            f"{k}: got {got[k]!r}, want {want[k]!r}"
            for k in want
            if not (same_json(got[k], want[k]) if k == "value" else got[k] == want[k])
        ]
        metadata = expected.get("metadata", {})
        for k, v in metadata.items():
            if details.flag_metadata.get(k) != v:
                problems.append(f"metadata {k}: got {details.flag_metadata.get(k)!r}, want {v!r}")
        if problems:
            tally.failures.append(f"{case['description']}: {'; '.join(problems)}")
        else:
            tally.passed += 1
