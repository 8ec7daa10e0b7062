"""What each official provider can carry of a vector case's expectation (CASES.md says why).

`Profile.expect(case)` returns the fields to compare (`value`, `variant`, `reason`,
`errorCode`, and the metadata fields `flagVersion`, `cohort`, `rolloutId`,
`flagwireReason`), or `None` when the provider cannot express the case at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Case = dict[str, Any]
#: Flag key -> declared type (`boolean`, `string`, ...) of the case file.
Types = dict[str, str]

TYPE_NAMES = {
    "VALUE_TYPE_BOOLEAN": "boolean",
    "VALUE_TYPE_STRING": "string",
    "VALUE_TYPE_INTEGER": "integer",
    "VALUE_TYPE_FLOAT": "float",
    "VALUE_TYPE_OBJECT": "object",
}


def flag_types(case_file: dict[str, Any]) -> Types:
    return {f["key"]: TYPE_NAMES.get(f.get("type", ""), "") for f in case_file["flags"]}


def call_type(case: Case, types: Types) -> str:
    """The typed call a case is made with. OpenFeature has no untyped evaluation: `any` is
    the flag's declared type (what a caller who does not constrain the type would write), or
    the default's type for a flag the file does not define."""
    if case["type"] != "any":
        return str(case["type"])
    declared = types.get(case["flag"])
    if declared:
        return declared
    default = case["default"]
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "float"
    return "string" if isinstance(default, str) else "object"


def invalid_context(case: Case) -> bool:
    """Whether the server refuses the case's context (INVALID_CONTEXT) before any type check."""
    for value in ((case.get("context") or {}).get("attributes") or {}).values():
        if isinstance(value, dict):
            return True
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            return True
    return False


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers numerically, booleans are not numbers, objects by keys."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def attribute_named_targeting_key(case: Case) -> bool:
    """OFREP's context is flat: an attribute named `targetingKey` is the targeting key."""
    return "targetingKey" in ((case.get("context") or {}).get("attributes") or {})


def ofrep_expectation(case: Case) -> dict[str, Any]:
    """What the server answers over OFREP, in the vectors' terms."""
    e = case["expected"]
    if e["reason"] == "ERROR":
        return {
            "value": case["default"],
            "variant": "",
            "reason": "ERROR",
            "errorCode": e["errorCode"],
        }
    reason, flagwire_reason = e["reason"], None
    if reason == "PREREQUISITE_FAILED":
        reason, flagwire_reason = "DISABLED", "PREREQUISITE_FAILED"
    out = {
        "value": e["value"],
        "variant": e["variant"],
        "reason": reason,
        "errorCode": None,
        "cohort": e.get("cohort"),
        "rolloutId": e.get("rolloutId"),
        "flagwireReason": flagwire_reason,
    }
    if "flagVersion" in e:
        out["flagVersion"] = e["flagVersion"]
    return out


@dataclass
class Profile:
    """One provider's abilities."""

    #: Whether the provider emits PROVIDER_CONFIGURATION_CHANGED on a change (else the harness
    #: waits for the next evaluation to see it).
    events: bool
    #: Rules that leave a case out, each with the reason CASES.md gives.
    cannot: list[tuple[str, Callable[[Case, Types], bool]]] = field(default_factory=list)
    #: Rewrites of the expectation for what the provider reports differently.
    adjust: Callable[[Case, dict[str, Any]], dict[str, Any]] = lambda _c, e: e

    def expect(self, case: Case, types: Types) -> dict[str, Any] | None:
        if any(rule(case, types) for _, rule in COMMON + self.cannot):
            return None
        return self.adjust(case, ofrep_expectation(case))


def type_mismatch(case: Case) -> bool:
    return bool(case["expected"].get("errorCode") == "TYPE_MISMATCH")


#: What no OFREP provider can express.
COMMON: list[tuple[str, Callable[[Case, Types], bool]]] = [
    ("an attribute named targetingKey", lambda c, _t: attribute_named_targeting_key(c)),
    (
        "TYPE_MISMATCH ranked before a server-side error",
        lambda c, _t: type_mismatch(c) and invalid_context(c),
    ),
]


def bool_as_integer(case: Case, types: Types) -> bool:
    """A boolean flag asked as an integer: Python's `isinstance(True, int)` holds."""
    return case["type"] == "integer" and types.get(case["flag"]) == "boolean"


PROFILES: dict[str, Profile] = {}

PROFILES["python"] = Profile(
    events=False, cannot=[("a boolean flag asked as an integer", bool_as_integer)]
)


def context_with_list_object_or_null(case: Case, _types: Types) -> bool:
    """The Rust SDK's `EvaluationContext` holds booleans, numbers, strings and dates only."""
    attributes = ((case.get("context") or {}).get("attributes") or {}).values()
    return any(v is None or isinstance(v, (list, dict)) for v in attributes)


def holds_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_null(v) for v in value)
    return value is None


def rust_adjust(_case: Case, expected: dict[str, Any]) -> dict[str, Any]:
    """open-feature-ofrep 0.1.2 reports every success as STATIC without metadata, and every
    400 as INVALID_CONTEXT: only value, variant and the error code's class are carried."""
    if expected["reason"] == "ERROR":
        if expected["errorCode"] in ("TARGETING_KEY_MISSING", "GENERAL"):
            return {**expected, "errorCode": "INVALID_CONTEXT"}
        return expected
    return {k: expected[k] for k in ("value", "variant", "errorCode")}


PROFILES["rust"] = Profile(
    events=False,
    cannot=[
        ("a list, object or null attribute", context_with_list_object_or_null),
        ("TYPE_MISMATCH", lambda c, _t: type_mismatch(c)),
        ("an object value holding null", lambda c, _t: holds_null(c["expected"].get("value"))),
    ],
    adjust=rust_adjust,
)


def js_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "object"


JS_KINDS = {"boolean": "boolean", "string": "string", "integer": "number", "float": "number"}


def default_of_another_kind(case: Case, types: Types) -> bool:
    """The JS SDKs report TYPE_MISMATCH when the value's `typeof` differs from the default's,
    so an `any` case whose default is of another kind than the flag cannot be asked."""
    return JS_KINDS.get(call_type(case, types), "object") != js_kind(case["default"])


def integer_or_float_mismatch(case: Case, types: Types) -> bool:
    """JavaScript has one number type: an integer flag asked as a float (or the reverse) is
    not a mismatch there."""
    kinds = {case["type"], types.get(case["flag"])}
    return type_mismatch(case) and kinds == {"integer", "float"}


JS_CANNOT: list[tuple[str, Callable[[Case, Types], bool]]] = [
    ("a default of another kind than the flag", default_of_another_kind),
    ("an integer asked as a float or the reverse", integer_or_float_mismatch),
]

PROFILES["node-web"] = Profile(events=True, cannot=JS_CANNOT)
PROFILES["node-server"] = Profile(events=False, cannot=JS_CANNOT)
