"""Reference implementation of docs/evaluation.md (spec version 1), in plain Python.

Written from the specification alone (not from core/), so that the vectors in tests/vectors/ are
checked by a second, independent implementation. It works on plain dicts: the protobuf JSON of
`flagwire.v1.Flag` / `flagwire.v1.Segment` (lowerCamelCase names, enums by name) and the
`context` / `default` of a vector case.

Only dependency: PyPI `mmh3` (murmur3_x86_32). SemVer 2.0.0 and the RFC 3339 subset of the spec
are parsed by hand, strictly.

    from reference import Evaluator
    ev = Evaluator(flags, segments, "test")
    result = ev.evaluate("my-flag", "boolean", {"targetingKey": "u1"}, False)
    # {"value": ..., "variant": ..., "reason": "STATIC", "errorCode": None,
    #  "flagVersion": 3, "cohort": "", "rolloutId": ""}
"""

from __future__ import annotations

import math
import re

import mmh3

__all__ = [
    "Evaluator",
    "murmur3",
    "bucket",
    "parse_semver",
    "semver_compare",
    "parse_rfc3339_millis",
    "MAX_PREREQUISITE_DEPTH",
    "MAX_TOTAL_WEIGHT",
]

#: "a chain deeper than 16" is not met. Depth counts prerequisite hops from the flag being
#: evaluated: its prerequisites are at depth 1, theirs at depth 2, ... A prerequisite that would be
#: evaluated at depth 17 is not met (without being evaluated).
MAX_PREREQUISITE_DEPTH = 16

MAX_TOTAL_WEIGHT = 2**31 - 1

VALUE_TYPES = {
    "VALUE_TYPE_BOOLEAN": "boolean",
    "VALUE_TYPE_STRING": "string",
    "VALUE_TYPE_INTEGER": "integer",
    "VALUE_TYPE_FLOAT": "float",
    "VALUE_TYPE_OBJECT": "object",
}

SEGMENT_OPERATORS = ("OPERATOR_IN_SEGMENT", "OPERATOR_NOT_IN_SEGMENT")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class EvalError(Exception):
    """Evaluation failed with an error code (the caller's default is served)."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code


# --------------------------------------------------------------------------------------------
# Bucketing


def murmur3(data: str | bytes, seed: int = 0) -> int:
    """murmur3_x86_32 of the UTF-8 bytes of `data`, as an unsigned 32-bit integer."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return mmh3.hash(data, seed, signed=False)


def bucket(salt: str, key: str, total_weight: int) -> tuple[int, int]:
    """(hash, bucket) for a bucketing key under a salt: bucket = (h * total) >> 32."""
    h = murmur3(salt + key, 0)
    return h, (h * total_weight) >> 32


# --------------------------------------------------------------------------------------------
# Attribute values


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_string_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(e, str) for e in v)


def context_is_valid(context: dict) -> bool:
    """Allowed attribute values: string, number, boolean, a list of strings, null (= absent)."""
    attrs = context.get("attributes") or {}
    for value in attrs.values():
        if value is None or isinstance(value, (str, bool)) or _is_number(value):
            continue
        if _is_string_list(value):
            continue
        return False
    return True


def _json_equal(a, b) -> bool:
    """Equality for IN: same JSON type; numbers as IEEE doubles; booleans as booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


# --------------------------------------------------------------------------------------------
# SemVer 2.0.0

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER_RE = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)


def parse_semver(text):
    """(major, minor, patch, prerelease identifiers) or None. Strict SemVer 2.0.0, ASCII only."""
    if not isinstance(text, str):
        return None
    m = _SEMVER_RE.fullmatch(text)
    if m is None or not text.isascii():
        return None
    pre = tuple(m.group(4).split(".")) if m.group(4) is not None else ()
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


def semver_compare(a, b) -> int:
    """SemVer precedence of two parsed versions: -1, 0 or 1 (build metadata already dropped)."""
    c = _cmp(a[:3], b[:3])
    if c:
        return c
    pa, pb = a[3], b[3]
    if not pa and not pb:
        return 0
    if not pa:
        return 1  # a release is greater than any of its pre-releases
    if not pb:
        return -1
    for x, y in zip(pa, pb):
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            c = _cmp(int(x), int(y))
        elif xn:
            c = -1  # numeric identifiers have lower precedence than alphanumeric ones
        elif yn:
            c = 1
        else:
            c = _cmp(x, y)  # ASCII order
        if c:
            return c
    return _cmp(len(pa), len(pb))


# --------------------------------------------------------------------------------------------
# RFC 3339 (the spec's strict subset)


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if _is_leap(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _digits(s: str, i: int, n: int):
    part = s[i : i + n]
    if len(part) != n or not all("0" <= c <= "9" for c in part):
        return None
    return int(part)


def parse_rfc3339_millis(text):
    """Milliseconds since the Unix epoch, or None when `text` is not
    YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) (upper-case T and Z, seconds 00-59, a valid
    calendar date, hours 00-23, minutes 00-59, offset hours 00-23 and minutes 00-59, >= 1
    fraction digit when the dot is there). Fraction digits past the third are truncated."""
    if not isinstance(text, str):
        return None
    s = text
    if len(s) < 20:
        return None
    year = _digits(s, 0, 4)
    month = _digits(s, 5, 2)
    day = _digits(s, 8, 2)
    hour = _digits(s, 11, 2)
    minute = _digits(s, 14, 2)
    second = _digits(s, 17, 2)
    if None in (year, month, day, hour, minute, second):
        return None
    if s[4] != "-" or s[7] != "-" or s[10] != "T" or s[13] != ":" or s[16] != ":":
        return None
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    i = 19
    millis = 0
    if i < len(s) and s[i] == ".":
        j = i + 1
        while j < len(s) and "0" <= s[j] <= "9":
            j += 1
        frac = s[i + 1 : j]
        if not frac:
            return None
        millis = int((frac + "00")[:3])
        i = j
    rest = s[i:]
    if rest == "Z":
        offset_min = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        oh = _digits(rest, 1, 2)
        om = _digits(rest, 4, 2)
        if oh is None or om is None or oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (1 if rest[0] == "+" else -1)
    else:
        return None
    days = _days_from_civil(year, month, day)
    local_seconds = days * 86400 + hour * 3600 + minute * 60 + second
    return (local_seconds - offset_min * 60) * 1000 + millis


def _instant_millis(attr):
    """An attribute for BEFORE/AFTER: an RFC 3339 string, or a number of seconds since the epoch
    (truncated to milliseconds). None when it is neither."""
    if isinstance(attr, str):
        return parse_rfc3339_millis(attr)
    if _is_number(attr):
        x = float(attr)
        if not math.isfinite(x):
            return None
        return math.floor(x * 1000)
    return None


# --------------------------------------------------------------------------------------------
# Operators


def _op_holds(op: str, attr, values: list) -> bool:
    """Whether `op` holds for a present attribute (before `negate`)."""
    if op == "OPERATOR_IN":
        items = attr if isinstance(attr, list) else [attr]
        return any(_json_equal(item, v) for item in items for v in values)
    if op == "OPERATOR_NOT_IN":
        return not _op_holds("OPERATOR_IN", attr, values)
    if op in ("OPERATOR_STARTS_WITH", "OPERATOR_ENDS_WITH"):
        if not isinstance(attr, str):
            return False
        strs = [v for v in values if isinstance(v, str)]
        if op == "OPERATOR_STARTS_WITH":
            return any(attr.startswith(v) for v in strs)
        return any(attr.endswith(v) for v in strs)
    if op == "OPERATOR_CONTAINS":
        strs = [v for v in values if isinstance(v, str)]
        if isinstance(attr, str):
            return any(v in attr for v in strs)
        if _is_string_list(attr):
            return any(e == v for e in attr for v in strs)
        return False
    if op in ("OPERATOR_LT", "OPERATOR_LTE", "OPERATOR_GT", "OPERATOR_GTE"):
        if not _is_number(attr):
            return False
        a = float(attr)
        nums = [float(v) for v in values if _is_number(v)]
        if op == "OPERATOR_LT":
            return any(a < v for v in nums)
        if op == "OPERATOR_LTE":
            return any(a <= v for v in nums)
        if op == "OPERATOR_GT":
            return any(a > v for v in nums)
        return any(a >= v for v in nums)
    if op in ("OPERATOR_SEMVER_EQ", "OPERATOR_SEMVER_LT", "OPERATOR_SEMVER_GT"):
        a = parse_semver(attr) if isinstance(attr, str) else None
        if a is None:
            return False
        want = {"OPERATOR_SEMVER_EQ": 0, "OPERATOR_SEMVER_LT": -1, "OPERATOR_SEMVER_GT": 1}[op]
        for v in values:
            b = parse_semver(v) if isinstance(v, str) else None
            if b is not None and semver_compare(a, b) == want:
                return True
        return False
    if op in ("OPERATOR_BEFORE", "OPERATOR_AFTER"):
        a = _instant_millis(attr)
        if a is None:
            return False
        for v in values:
            b = parse_rfc3339_millis(v) if isinstance(v, str) else None
            if b is None:
                continue
            if (op == "OPERATOR_BEFORE" and a < b) or (op == "OPERATOR_AFTER" and a > b):
                return True
        return False
    # OPERATOR_UNSPECIFIED or unknown: damaged data; never holds.
    return False


# --------------------------------------------------------------------------------------------
# Flag values


def flag_value_to_json(fv: dict, value_type: str):
    """The plain JSON of a FlagValue: bool, str, int, float or dict. Raises EvalError(GENERAL)
    when the member set does not match the flag's type (damaged data)."""
    member = {
        "boolean": "boolValue",
        "string": "stringValue",
        "integer": "intValue",
        "float": "floatValue",
        "object": "objectValue",
    }[value_type]
    if not isinstance(fv, dict) or member not in fv or len(fv) != 1:
        raise EvalError("GENERAL", f"variant value is not a {member}")
    v = fv[member]
    if value_type == "integer":
        return int(v)
    if value_type == "float":
        return float(v)  # also "NaN", "Infinity", "-Infinity" (protobuf JSON)
    return v


# --------------------------------------------------------------------------------------------
# The evaluator


class Evaluator:
    def __init__(self, flags: list, segments: list, environment: str):
        self.flags = {}
        for f in flags:
            if f["key"] in self.flags:
                raise ValueError(f"duplicate flag key {f['key']!r}")
            self.flags[f["key"]] = f
        self.environment = environment
        self.segments = {}
        for s in segments:
            # Only this environment's segments exist for the evaluation.
            if s.get("environment", "") != environment:
                continue
            if s["key"] in self.segments:
                raise ValueError(f"duplicate segment key {s['key']!r}")
            self.segments[s["key"]] = s

    # -- public ---------------------------------------------------------------------------

    def evaluate(self, flag_key: str, expected_type: str | None, context: dict, default) -> dict:
        """Evaluates one flag. `expected_type` is boolean/string/integer/float/object, or
        None / "any" for no expected type."""
        if expected_type == "any":
            expected_type = None
        context = {
            "targetingKey": context.get("targetingKey", "") or "",
            "attributes": context.get("attributes") or {},
        }
        flag = self.flags.get(flag_key)
        if flag is None or flag.get("archived", False):
            return self._error("FLAG_NOT_FOUND", default, None)
        version = int(flag.get("version", 0))
        flag_type = VALUE_TYPES.get(flag.get("type"))
        if expected_type is not None and expected_type != flag_type:
            return self._error("TYPE_MISMATCH", default, version)
        if not context_is_valid(context):
            return self._error("INVALID_CONTEXT", default, version)
        try:
            variant, reason, cohort, rollout_id = self._resolve(flag, context, depth=0)
            value = self._variant_value(flag, variant)
        except EvalError as e:
            return self._error(e.code, default, version)
        return {
            "value": value,
            "variant": variant,
            "reason": reason,
            "errorCode": None,
            "flagVersion": version,
            "cohort": cohort,
            "rolloutId": rollout_id,
        }

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _error(code: str, default, version) -> dict:
        return {
            "value": default,
            "variant": "",
            "reason": "ERROR",
            "errorCode": code,
            "flagVersion": version,
            "cohort": "",
            "rolloutId": "",
        }

    @staticmethod
    def _variant_value(flag: dict, variant: str):
        for v in flag.get("variants", []):
            if v.get("key") == variant:
                value_type = VALUE_TYPES.get(flag.get("type"))
                if value_type is None:
                    raise EvalError("GENERAL", "flag has no valid type")
                return flag_value_to_json(v.get("value"), value_type)
        raise EvalError("GENERAL", f"variant {variant!r} does not exist")

    @staticmethod
    def _has_variant(flag: dict, variant: str) -> bool:
        return any(v.get("key") == variant for v in flag.get("variants", []))

    def _resolve(self, flag: dict, ctx: dict, depth: int):
        """(variant, reason, cohort, rollout id) for a found, type-checked flag and a valid
        context. Raises EvalError for TARGETING_KEY_MISSING / GENERAL."""
        config = (flag.get("environments") or {}).get(self.environment)
        if config is None:
            variants = flag.get("variants") or []
            if not variants:
                raise EvalError("GENERAL", "flag has no variants")
            return variants[0]["key"], "DISABLED", "", ""
        off = config.get("offVariant", "")
        if not config.get("enabled", False):
            return self._checked(flag, off), "DISABLED", "", ""

        for prereq in config.get("prerequisites") or []:
            if not self._prerequisite_met(prereq, ctx, depth + 1):
                return self._checked(flag, off), "PREREQUISITE_FAILED", "", ""

        key = ctx["targetingKey"]
        if key != "":
            for target in config.get("targets") or []:
                if key in (target.get("values") or []):
                    variant = self._checked(flag, target.get("variant", ""))
                    return variant, "TARGETING_MATCH", "", ""

        for rule in config.get("rules") or []:
            if all(self._clause(c, ctx, ()) for c in rule.get("clauses") or []):
                return self._serve(flag, config, rule.get("serve"), ctx, "TARGETING_MATCH")

        return self._serve(flag, config, config.get("defaultRule"), ctx, "STATIC")

    def _checked(self, flag: dict, variant: str) -> str:
        if not self._has_variant(flag, variant):
            raise EvalError("GENERAL", f"variant {variant!r} does not exist")
        return variant

    def _prerequisite_met(self, prereq: dict, ctx: dict, depth: int) -> bool:
        if depth > MAX_PREREQUISITE_DEPTH:
            return False
        pflag = self.flags.get(prereq.get("flagKey", ""))
        if pflag is None or pflag.get("archived", False):
            return False
        try:
            variant, reason, _, _ = self._resolve(pflag, ctx, depth)
            self._variant_value(pflag, variant)
        except EvalError:
            return False  # reason ERROR
        return reason != "DISABLED" and variant == prereq.get("variant", "")

    def _serve(self, flag: dict, config: dict, serve, ctx: dict, fixed_reason: str):
        if not serve:
            raise EvalError("GENERAL", "nothing to serve")
        if "variant" in serve:
            return self._checked(flag, serve["variant"]), fixed_reason, "", ""
        if "split" in serve:
            split = serve["split"]
            entries = split.get("entries") or []
            bucket_by = split.get("bucketBy", "")
            if bucket_by:
                unit = ctx["attributes"].get(bucket_by)
                if not isinstance(unit, str) or unit == "":
                    raise EvalError("TARGETING_KEY_MISSING", f"bucketBy {bucket_by!r}")
            else:
                unit = ctx["targetingKey"]
                if unit == "":
                    raise EvalError("TARGETING_KEY_MISSING", "no targeting key")
            salt = split.get("salt", "") or config.get("salt", "") or flag["key"]
            total = sum(int(e.get("weight", 0)) for e in entries)
            if total < 1 or total > MAX_TOTAL_WEIGHT:
                raise EvalError("GENERAL", f"split total weight {total}")
            _, b = bucket(salt, unit, total)
            cumulative = 0
            for e in entries:
                cumulative += int(e.get("weight", 0))
                if cumulative > b:
                    # The rollout owns the whole split, so every entry served carries its id,
                    # the unlabelled "rest" included (unlike the cohort, which is per entry).
                    variant = self._checked(flag, e.get("variant", ""))
                    return variant, "SPLIT", e.get("label", ""), split.get("rolloutId", "")
            raise AssertionError("unreachable: bucket < total weight")
        raise EvalError("GENERAL", "serve has neither variant nor split")

    # -- clauses and segments ------------------------------------------------------------

    def _clause(self, clause: dict, ctx: dict, seg_stack: tuple) -> bool:
        op = clause.get("operator", "OPERATOR_UNSPECIFIED")
        values = clause.get("values") or []
        negate = bool(clause.get("negate", False))
        if op in SEGMENT_OPERATORS:
            if seg_stack:
                # Inside a segment's rule: segments cannot refer to segments; such a clause never
                # matches, negated or not (no recursion between segments).
                return False
            in_any = any(
                self._in_segment(v, ctx, seg_stack) for v in values if isinstance(v, str)
            )
            held = in_any if op == "OPERATOR_IN_SEGMENT" else not in_any
            return held != negate
        attr = self._attribute(clause.get("attribute", ""), ctx)
        if attr is MISSING:
            return False  # a missing attribute never matches, negated or not
        return _op_holds(op, attr, values) != negate

    @staticmethod
    def _attribute(name: str, ctx: dict):
        if name == "targetingKey":
            return ctx["targetingKey"] if ctx["targetingKey"] != "" else MISSING
        value = ctx["attributes"].get(name, None)
        return MISSING if value is None else value

    def _in_segment(self, key: str, ctx: dict, seg_stack: tuple) -> bool:
        seg = self.segments.get(key)
        if seg is None:
            return False  # a segment that does not exist contains nobody
        tk = ctx["targetingKey"]
        if tk != "" and tk in (seg.get("excluded") or []):
            return False
        if tk != "" and tk in (seg.get("included") or []):
            return True
        stack = seg_stack + (key,)
        return any(
            all(self._clause(c, ctx, stack) for c in rule.get("clauses") or [])
            for rule in seg.get("rules") or []
        )
