"""The evaluation engine of docs/evaluation.md, over a compiled, immutable snapshot.

A `Snapshot` is built from the wire form (`flagwire.v1.Snapshot`) once per applied revision:
every flag is compiled into plain Python objects and one generated function
(`flagwire._codegen`: the context check, switch, targets, rules with the everyday clauses
inlined, and the split's hash and choice, in one call), and every fixed outcome, e.g. "rule 2
serves `on` with TARGETING_MATCH", becomes one pre-built `Result`, so evaluating does no
protobuf access and, outside errors, allocates nothing. Snapshots are never mutated: applying a
change builds a new one (sharing the untouched flags), which the client swaps in with one
reference assignment, so readers in any thread or task never wait for the stream applier.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import mmh3

from flagwire import _rfc3339, _semver
from flagwire._codegen import MAX_INLINE_ENTRIES, Condition, Header, generate
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2
from flagwire._result import Result as Result
from flagwire._types import ErrorCode, Reason
from flagwire.context import Context, Normalized

MAX_PREREQUISITE_DEPTH: Final = 16
"""Prerequisite chains deeper than this are not met (writes reject cycles; this guards damaged
data). Depth counts hops from the evaluated flag: 16 can be met, 17 cannot."""
MAX_TOTAL_WEIGHT: Final = 2**31 - 1
TARGETING_KEY: Final = "targetingKey"

BOOLEAN: Final = flag_pb2.VALUE_TYPE_BOOLEAN
STRING: Final = flag_pb2.VALUE_TYPE_STRING
INTEGER: Final = flag_pb2.VALUE_TYPE_INTEGER
FLOAT: Final = flag_pb2.VALUE_TYPE_FLOAT
OBJECT: Final = flag_pb2.VALUE_TYPE_OBJECT

_VALUE_MEMBER: Final[dict[int, str]] = {
    BOOLEAN: "bool_value",
    STRING: "string_value",
    INTEGER: "int_value",
    FLOAT: "float_value",
    OBJECT: "object_value",
}

Attrs = Mapping[str, Normalized]
Clause = Callable[[Attrs, str, "Snapshot"], bool]


# --------------------------------------------------------------------------------------------
# Protobuf values to Python


def json_value(value: Any) -> Any:
    """A `google.protobuf.Value` as plain JSON (None, float, str, bool, dict or list)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_json(value.struct_value)
    if kind == "list_value":
        return [json_value(item) for item in value.list_value.values]
    return None


def struct_json(struct: Any) -> dict[str, Any]:
    """A `google.protobuf.Struct` as a dict."""
    return {key: json_value(item) for key, item in struct.fields.items()}


def copy_json(value: Any) -> Any:
    """A deep copy of plain JSON, so callers may mutate what they are given."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


_NO_VALUE: Final = object()


def _variant_value(variant: flag_pb2.Variant, value_type: int) -> Any:
    """The Python value of a variant, or `_NO_VALUE` when it does not hold the flag's type
    (damaged data: serving it is a GENERAL error)."""
    member = _VALUE_MEMBER.get(value_type)
    if member is None or not variant.HasField("value"):
        return _NO_VALUE
    kind: str | None = variant.value.WhichOneof("kind")
    if kind != member:
        return _NO_VALUE
    if value_type == OBJECT:
        return struct_json(variant.value.object_value)
    return getattr(variant.value, member)


# --------------------------------------------------------------------------------------------
# Clauses


def _never(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
    return False


Holds = Callable[[Normalized], bool]


def _holds(op: int, values: list[Any]) -> Holds:
    """Whether `op` holds for a present attribute and at least one of `values` (before
    `negate`). Values of the wrong type for the operator are skipped."""
    strings = [v for v in values if isinstance(v, str)]
    string_set = frozenset(strings)
    numbers = [v for v in values if isinstance(v, float) and not math.isnan(v)]

    if op in (flag_pb2.OPERATOR_IN, flag_pb2.OPERATOR_NOT_IN):
        number_set = frozenset(numbers)
        bool_set = frozenset(v for v in values if isinstance(v, bool))

        def holds_in(a: Normalized) -> bool:
            kind = type(a)
            if kind is str:
                return a in string_set
            if kind is float:
                return a in number_set
            if kind is bool:
                return a in bool_set
            return not string_set.isdisjoint(a)  # type: ignore[arg-type]

        if op == flag_pb2.OPERATOR_IN:
            return holds_in
        return lambda a: not holds_in(a)

    if op == flag_pb2.OPERATOR_STARTS_WITH:
        prefixes = tuple(strings)
        return lambda a: type(a) is str and a.startswith(prefixes)
    if op == flag_pb2.OPERATOR_ENDS_WITH:
        suffixes = tuple(strings)
        return lambda a: type(a) is str and a.endswith(suffixes)
    if op == flag_pb2.OPERATOR_CONTAINS:

        def contains(a: Normalized) -> bool:
            kind = type(a)
            if kind is str:
                for s in strings:
                    if s in a:  # type: ignore[operator]
                        return True
                return False
            if kind is tuple:
                return not string_set.isdisjoint(a)  # type: ignore[arg-type]
            return False

        return contains

    if op in (flag_pb2.OPERATOR_LT, flag_pb2.OPERATOR_LTE):
        if not numbers:
            return lambda a: False
        # "less than at least one value" = less than the largest.
        top = max(numbers)
        if op == flag_pb2.OPERATOR_LT:
            return lambda a: type(a) is float and a < top
        return lambda a: type(a) is float and a <= top
    if op in (flag_pb2.OPERATOR_GT, flag_pb2.OPERATOR_GTE):
        if not numbers:
            return lambda a: False
        bottom = min(numbers)
        if op == flag_pb2.OPERATOR_GT:
            return lambda a: type(a) is float and a > bottom
        return lambda a: type(a) is float and a >= bottom

    if op in (
        flag_pb2.OPERATOR_SEMVER_EQ,
        flag_pb2.OPERATOR_SEMVER_LT,
        flag_pb2.OPERATOR_SEMVER_GT,
    ):
        versions = [v for v in map(_semver.parse, strings) if v is not None]
        want = (
            0
            if op == flag_pb2.OPERATOR_SEMVER_EQ
            else -1
            if op == flag_pb2.OPERATOR_SEMVER_LT
            else 1
        )

        def semver(a: Normalized) -> bool:
            if type(a) is not str:
                return False
            version = _semver.parse(a)
            if version is None:
                return False
            return any(_semver.compare(version, b) == want for b in versions)

        return semver

    if op in (flag_pb2.OPERATOR_BEFORE, flag_pb2.OPERATOR_AFTER):
        instants = [m for m in map(_rfc3339.parse_millis, strings) if m is not None]
        if not instants:
            return lambda a: False
        if op == flag_pb2.OPERATOR_BEFORE:
            latest = max(instants)
            return lambda a: (i := _instant(a)) is not None and i < latest
        earliest = min(instants)
        return lambda a: (i := _instant(a)) is not None and i > earliest

    # OPERATOR_UNSPECIFIED or an operator this SDK does not know: damaged data, never holds.
    return lambda a: False


def _instant(a: Normalized) -> float | int | None:
    """A BEFORE/AFTER attribute as epoch milliseconds: an RFC 3339 string, or seconds since the
    epoch floored to milliseconds."""
    if type(a) is str:
        return _rfc3339.parse_millis(a)
    if type(a) is float:
        millis = a * 1000.0
        return math.floor(millis) if math.isfinite(millis) else millis
    return None


def _inline(clause: flag_pb2.Clause) -> tuple[str, str, Any] | None:
    """The everyday clauses (not negated, on an attribute, IN of strings, STARTS_WITH,
    ENDS_WITH, CONTAINS of one string, LT/LTE/GT/GTE) as a Python expression template over
    `attrs`, with the constant it compares against: `{N}` stands for the attribute name and
    `{K}` for the constant (both become global names of the generated function, never text of
    the expression). Same semantics as `_holds`, a missing attribute included (None matches no
    type test). None for every other clause, which is called as a closure instead."""
    if clause.negate or clause.attribute == TARGETING_KEY:
        return None
    op = clause.operator
    values = [json_value(v) for v in clause.values]
    strings = tuple(v for v in values if isinstance(v, str))
    numbers = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    if op == flag_pb2.OPERATOR_IN and len(strings) == len(values):
        # Membership first: only a string equal to a value is in the set (floats, booleans and
        # tuples never equal a string), and a list of strings shares one.
        return (
            "(a := attrs.get({N})) in {K} or (type(a) is tuple and not {K}.isdisjoint(a))",
            clause.attribute,
            frozenset(strings),
        )
    if op == flag_pb2.OPERATOR_STARTS_WITH:
        return "type(a := attrs.get({N})) is str and a.startswith({K})", clause.attribute, strings
    if op == flag_pb2.OPERATOR_ENDS_WITH:
        return "type(a := attrs.get({N})) is str and a.endswith({K})", clause.attribute, strings
    if op == flag_pb2.OPERATOR_CONTAINS and len(strings) == 1:
        # A substring of a string, or an element of a list of strings: `in` says both.
        return (
            "((t := type(a := attrs.get({N}))) is str or t is tuple) and {K} in a",
            clause.attribute,
            strings[0],
        )
    comparisons = {
        flag_pb2.OPERATOR_LT: ("<", max),
        flag_pb2.OPERATOR_LTE: ("<=", max),
        flag_pb2.OPERATOR_GT: (">", min),
        flag_pb2.OPERATOR_GTE: (">=", min),
    }
    if op in comparisons and numbers:
        # "Compares so with at least one value" = with the largest (LT/LTE) or the smallest.
        symbol, pick = comparisons[op]
        template = f"type(a := attrs.get({{N}})) is float and a {symbol} {{K}}"
        return template, clause.attribute, pick(numbers)
    return None


MAX_GENERATED_RULES: Final = 1000
"""Flags with more rules than this are evaluated by a loop over closures instead."""


def _condition(clause: flag_pb2.Clause) -> Condition:
    """A clause for the generated function: inline when it can be, else its closure."""
    inline = _inline(clause)
    return inline if inline is not None else _compile_clause(clause, in_segment=False)


def _loop(
    rules: list[tuple[list[flag_pb2.Clause], Serve]], default: Serve
) -> Callable[[Attrs, str, Snapshot], Result]:
    """The rules and default rule as a loop over clause closures (for very long rule lists)."""
    compiled = tuple(
        (_all_of(tuple(_compile_clause(c, in_segment=False) for c in clauses)), serve)
        for clauses, serve in rules
    )

    def rules_loop(attrs: Attrs, tk: str, snap: Snapshot) -> Result:
        for matches, serve in compiled:
            if matches(attrs, tk, snap):
                return serve.choose(attrs, tk) if type(serve) is _Split else serve  # type: ignore[return-value]
        return default.choose(attrs, tk) if type(default) is _Split else default  # type: ignore[return-value]

    return rules_loop


def _always(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
    return True


def _all_of(clauses: tuple[Clause, ...]) -> Clause:
    """A rule's matcher: all its clauses match (an empty list matches every context)."""
    if not clauses:
        return _always
    if len(clauses) == 1:
        return clauses[0]

    def all_match(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
        for clause in clauses:
            if not clause(attrs, tk, snap):
                return False
        return True

    return all_match


def _compile_clause(clause: flag_pb2.Clause, in_segment: bool) -> Clause:
    op = clause.operator
    negate = clause.negate
    values = [json_value(v) for v in clause.values]
    if op in (flag_pb2.OPERATOR_IN_SEGMENT, flag_pb2.OPERATOR_NOT_IN_SEGMENT):
        if in_segment:
            # Segments cannot refer to segments: such a clause never matches, negated or not.
            return _never
        keys = tuple(v for v in values if isinstance(v, str))
        want = op == flag_pb2.OPERATOR_IN_SEGMENT

        def segment_clause(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
            found = any(snap.in_segment(key, attrs, tk) for key in keys)
            return (found == want) != negate

        return segment_clause

    name = clause.attribute
    holds = _holds(op, values)
    # A missing attribute never matches, negated or not.
    if name == TARGETING_KEY:
        return lambda attrs, tk, snap: tk != "" and holds(tk) != negate
    if negate:

        def negated(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
            a = attrs.get(name)
            return a is not None and not holds(a)

        return negated

    def clause_matches(attrs: Attrs, tk: str, snap: Snapshot) -> bool:
        a = attrs.get(name)
        return a is not None and holds(a)

    return clause_matches


# --------------------------------------------------------------------------------------------
# Flags and segments


class _Split:
    """A compiled weighted split: bucket = (murmur3(salt + unit) * total) >> 32, served by the
    first entry whose cumulative weight exceeds it. `choose(attrs, tk)` is a closure specialised
    for the split (by targeting key or by an attribute)."""

    __slots__ = ("choose", "inline")

    choose: Callable[[Attrs, str], Result]
    # See flagwire._codegen.SplitParts: the parts the generated function chooses with.
    inline: tuple[str, int, list[int], list[Result], Result, Result] | None

    def __init__(self, flag: _Flag, split: flag_pb2.Split, config_salt: str) -> None:
        bucket_by = None if split.bucket_by in ("", TARGETING_KEY) else split.bucket_by
        salt = split.salt or config_salt or flag.key
        cumulative: list[int] = []
        results: list[Result] = []
        total = 0
        for entry in split.entries:
            total += entry.weight
            cumulative.append(total)
            results.append(
                flag.serve_variant(entry.variant, Reason.SPLIT, entry.label, split.rollout_id)
            )
        missing = flag.error(ErrorCode.TARGETING_KEY_MISSING, "the split needs a bucketing key")
        general = flag.error(ErrorCode.GENERAL, "the bucketing key cannot be encoded")
        failure = None
        if total < 1 or total > MAX_TOTAL_WEIGHT:
            failure = flag.error(ErrorCode.GENERAL, "split weights are all zero")
        hash32 = mmh3.hash
        self.inline = None
        if bucket_by is None and failure is None and 0 < len(results) <= MAX_INLINE_ENTRIES:
            self.inline = (salt, total, cumulative, results, missing, general)

        def by_unit(unit: str) -> Result:
            if not unit:
                return missing
            if failure is not None:
                return failure
            try:
                h = hash32(_utf8(salt + unit), 0, False)
            except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form, hence no bucket
                return general
            return results[bisect_right(cumulative, (h * total) >> 32)]

        if bucket_by is None:
            self.choose = lambda attrs, tk: by_unit(tk)
            if failure is None:
                # The everyday case, in one call.
                def by_key(attrs: Attrs, tk: str) -> Result:
                    if not tk:
                        return missing
                    try:
                        h = hash32(_utf8(salt + tk), 0, False)
                    except UnicodeEncodeError:
                        return general
                    return results[bisect_right(cumulative, (h * total) >> 32)]

                self.choose = by_key
        else:
            name = bucket_by

            def by_attribute(attrs: Attrs, tk: str) -> Result:
                value = attrs.get(name)
                return by_unit(value if type(value) is str else "")

            self.choose = by_attribute


Serve = Result | _Split


class _Flag:
    """One flag, compiled for one environment."""

    __slots__ = (
        "archived",
        "enabled",
        "evaluate",
        "key",
        "off",
        "prerequisite_failed",
        "prerequisites",
        "proto",
        "rules",
        "targets",
        "type_mismatch",
        "value_type",
        "values",
        "version",
    )

    evaluate: Callable[[Context, Snapshot], Result]
    rules: Callable[[Attrs, str, Snapshot], Result]

    def __init__(self, proto: flag_pb2.Flag, environment: str) -> None:
        self.proto = proto
        self.key = proto.key
        self.version = proto.version
        self.archived = proto.archived
        self.value_type = proto.type
        self.values: dict[str, Any] = {}
        for variant in proto.variants:
            self.values.setdefault(variant.key, _variant_value(variant, proto.type))
        self.type_mismatch = self.error(ErrorCode.TYPE_MISMATCH, "flag holds another type")

        if environment in proto.environments:
            config = proto.environments[environment]
        else:
            # No config in this environment: disabled, serving the first variant.
            first = proto.variants[0].key if proto.variants else ""
            config = flag_pb2.FlagConfig(off_variant=first)
        self.enabled = config.enabled
        self.off = self.serve_variant(config.off_variant, Reason.DISABLED)
        self.prerequisite_failed = self.serve_variant(
            config.off_variant, Reason.PREREQUISITE_FAILED
        )
        self.prerequisites = tuple((p.flag_key, p.variant) for p in config.prerequisites)
        self.targets: dict[str, Result] = {}
        for target in config.targets:
            served = self.serve_variant(target.variant, Reason.TARGETING_MATCH)
            for key in target.values:
                self.targets.setdefault(key, served)  # the first target listing a key wins
        rules = [
            (
                list(rule.clauses),
                self._serve(
                    rule.serve if rule.HasField("serve") else None, config, Reason.TARGETING_MATCH
                ),
            )
            for rule in config.rules
        ]
        default = self._serve(
            config.default_rule if config.HasField("default_rule") else None,
            config,
            Reason.STATIC,
        )
        # evaluate(ctx, snapshot) -> Result: the whole evaluation once the snapshot found the
        # flag with the expected type; rules(attrs, targeting key, snapshot) -> Result: the
        # rules, then the default rule (what prerequisites and `evaluate` end with).
        if len(rules) <= MAX_GENERATED_RULES:
            header = Header(
                self,
                self.invalid_context,
                self.enabled,
                self.off,
                bool(self.prerequisites),
                self.targets,
            )
            conditions = [([_condition(c) for c in clauses], serve) for clauses, serve in rules]
            self.evaluate, self.rules = generate(header, conditions, default, mmh3.hash)
        else:
            self.rules = _loop(rules, default)
            self.evaluate = self._evaluate_loop

    def _evaluate_loop(self, ctx: Context, snap: Snapshot) -> Result:
        """`evaluate` for flags whose rules are a loop (see `MAX_GENERATED_RULES`)."""
        if ctx._invalid is not None:
            return self.invalid_context(ctx._invalid)
        return snap._resolve(self, ctx._attrs, ctx._targeting_key, 0)

    def invalid_context(self, message: str) -> Result:
        """The outcome of evaluating with a context that holds what the spec forbids."""
        return self.error(ErrorCode.INVALID_CONTEXT, message)

    def error(self, code: ErrorCode, message: str) -> Result:
        return Result.error(self.key, code, message, self.version)

    def serve_variant(
        self, variant: str, reason: Reason, cohort: str = "", rollout_id: str = ""
    ) -> Result:
        """The pre-built outcome of serving `variant`, or GENERAL when the flag has no such
        variant (or its value is not of the flag's type)."""
        value = self.values.get(variant, _NO_VALUE)
        if value is _NO_VALUE:
            return self.error(ErrorCode.GENERAL, "serves an unknown variant")
        return Result(self.key, variant, value, reason, self.version, cohort, rollout_id)

    def _serve(
        self, serve: flag_pb2.Serve | None, config: flag_pb2.FlagConfig, fixed: Reason
    ) -> Serve:
        kind = serve.WhichOneof("kind") if serve is not None else None
        if serve is None or kind is None:
            return self.error(ErrorCode.GENERAL, "nothing to serve")
        if kind == "variant":
            return self.serve_variant(serve.variant, fixed)
        return _Split(self, serve.split, config.salt)


class _Segment:
    __slots__ = ("excluded", "included", "key", "proto", "rules")

    def __init__(self, proto: flag_pb2.Segment) -> None:
        self.proto = proto
        self.key = proto.key
        self.excluded = frozenset(proto.excluded)
        self.included = frozenset(proto.included)
        self.rules = tuple(
            _all_of(tuple(_compile_clause(c, in_segment=True) for c in rule.clauses))
            for rule in proto.rules
        )


# --------------------------------------------------------------------------------------------
# The snapshot


class ApplyError(Exception):
    """A change that does not follow the snapshot's revision (the client resynchronises)."""


def _not_found(key: str) -> Result:
    return Result.error(key, ErrorCode.FLAG_NOT_FOUND, "flag not found", 0)


class Snapshot:
    """One environment at one revision, compiled for evaluation. Immutable."""

    __slots__ = ("environment", "flags", "revision", "segments")

    def __init__(
        self,
        environment: str,
        revision: int,
        flags: dict[str, _Flag],
        segments: dict[str, _Segment],
    ) -> None:
        self.environment = environment
        self.revision = revision
        self.flags = flags
        self.segments = segments

    @classmethod
    def build(
        cls,
        environment: str,
        revision: int,
        flags: Iterable[flag_pb2.Flag],
        segments: Iterable[flag_pb2.Segment] = (),
    ) -> Snapshot:
        compiled = {f.key: _Flag(f, environment) for f in flags}
        segs = {s.key: _Segment(s) for s in segments if s.environment in ("", environment)}
        return cls(environment, revision, compiled, segs)

    @classmethod
    def from_proto(cls, snapshot: flag_service_pb2.Snapshot) -> Snapshot:
        return cls.build(snapshot.environment, snapshot.revision, snapshot.flags, snapshot.segments)

    def to_proto(self) -> flag_service_pb2.Snapshot:
        """The wire form, e.g. for a bootstrap file (flags and segments sorted by key)."""
        return flag_service_pb2.Snapshot(
            environment=self.environment,
            revision=self.revision,
            flags=[self.flags[k].proto for k in sorted(self.flags)],
            segments=[self.segments[k].proto for k in sorted(self.segments)],
        )

    def apply(self, change: flag_service_pb2.Change) -> tuple[Snapshot, tuple[str, ...]]:
        """The snapshot after `change` (which must follow this revision) and the keys of the
        flags it may have changed. Raises ApplyError on a gap or an old change."""
        if change.revision != self.revision + 1:
            raise ApplyError(f"change {change.revision} does not follow revision {self.revision}")
        flags, segments = self.flags, self.segments
        kind = change.WhichOneof("kind")
        changed: tuple[str, ...] = ()
        if kind == "flag_upserted":
            flags = dict(flags)
            flags[change.flag_upserted.key] = _Flag(change.flag_upserted, self.environment)
            changed = (change.flag_upserted.key,)
        elif kind == "flags_upserted":
            # Several flags in one revision (the kill switch): all land in the one new snapshot,
            # which replaces the old one at once, so no evaluation sees half of the batch.
            flags = dict(flags)
            for f in change.flags_upserted.flags:
                flags[f.key] = _Flag(f, self.environment)
            changed = tuple(dict.fromkeys(f.key for f in change.flags_upserted.flags))
        elif kind == "flag_deleted":
            flags = dict(flags)
            flags.pop(change.flag_deleted, None)
            changed = (change.flag_deleted,)
        elif kind == "segment_upserted":
            segment = change.segment_upserted
            if segment.environment in ("", self.environment):
                segments = dict(segments)
                segments[segment.key] = _Segment(segment)
            # Any flag may use the segment: listeners re-read what they need.
            changed = self.flag_keys()
        elif kind == "segment_deleted":
            segments = dict(segments)
            segments.pop(change.segment_deleted, None)
            changed = self.flag_keys()
        return Snapshot(self.environment, change.revision, flags, segments), changed

    def changed_flags(self, newer: Snapshot) -> tuple[str, ...]:
        """Keys of flags that differ between this snapshot and `newer` (added, removed, or at
        another version), sorted."""
        keys = {
            k
            for k, f in newer.flags.items()
            if (old := self.flags.get(k)) is None or old.version != f.version
        }
        keys.update(k for k in self.flags if k not in newer.flags)
        return tuple(sorted(keys))

    def flag_keys(self) -> tuple[str, ...]:
        """Keys of every flag that is not archived, sorted."""
        return tuple(sorted(k for k, f in self.flags.items() if not f.archived))

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, key: str, ctx: Context, expected: int | None) -> Result:
        """Evaluates flag `key` for `ctx`; `expected` is the value type the caller wants (a
        `flagwire.v1.ValueType` number), or None for any. Never raises."""
        flag = self.flags.get(key)
        if flag is None or flag.archived:
            return _not_found(key)
        if expected is not None and expected != flag.value_type:
            return flag.type_mismatch
        return flag.evaluate(ctx, self)

    def _resolve(self, flag: _Flag, attrs: Attrs, tk: str, depth: int) -> Result:
        if not flag.enabled:
            return flag.off
        for prerequisite, variant in flag.prerequisites:
            if not self._prerequisite_met(prerequisite, variant, attrs, tk, depth + 1):
                return flag.prerequisite_failed
        if tk and flag.targets:
            target = flag.targets.get(tk)
            if target is not None:
                return target
        return flag.rules(attrs, tk, self)

    def _prerequisite_met(self, key: str, want: str, attrs: Attrs, tk: str, depth: int) -> bool:
        if depth > MAX_PREREQUISITE_DEPTH:
            return False
        flag = self.flags.get(key)
        if flag is None or flag.archived:
            return False
        result = self._resolve(flag, attrs, tk, depth)
        return (
            result.error_code is None
            and result.reason is not Reason.DISABLED
            and result.variant == want
        )

    def in_segment(self, key: str, attrs: Attrs, tk: str) -> bool:
        """Whether the context is in segment `key` (of this environment)."""
        segment = self.segments.get(key)
        if segment is None:
            return False
        if tk:
            if tk in segment.excluded:
                return False
            if tk in segment.included:
                return True
        for matches in segment.rules:
            if matches(attrs, tk, self):
                return True
        return False


def _utf8(text: str) -> str | bytes:
    """What to give mmh3 for `text`: itself when ASCII, else its UTF-8 bytes (raising
    UnicodeEncodeError for a lone surrogate). mmh3 5.3.1 crashes the process (SIGSEGV) on a
    str without a UTF-8 form instead of raising, and evaluation never takes the process down."""
    return text if text.isascii() else text.encode()


def bucket(salt: str, key: str, total_weight: int) -> tuple[int, int]:
    """(murmur3_x86_32(utf8(salt + key), 0), (hash * total_weight) >> 32): the split math."""
    h = mmh3.hash(_utf8(salt + key), 0, False)
    return h, (h * total_weight) >> 32


def murmur3(data: str | bytes, seed: int = 0) -> int:
    """murmur3_x86_32 of the UTF-8 bytes of `data` as an unsigned 32-bit integer."""
    return mmh3.hash(_utf8(data) if isinstance(data, str) else data, seed, False)
