"""Clauses compiled for evaluation: each `flagwire.v1.Clause` becomes a closure
`(attrs, targeting key, snapshot) -> bool`, and the everyday ones also an inline expression
template for the generated function of `flagwire._codegen` (`condition`). A rule's clauses are
joined by `all_of`. The semantics of every operator are docs/evaluation.md's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from flagwire import _rfc3339, _semver
from flagwire._codegen import Condition
from flagwire._proto.flagwire.v1 import flag_pb2
from flagwire._values import json_value
from flagwire.context import Normalized

TARGETING_KEY: Final = "targetingKey"

Attrs = Mapping[str, Normalized]


class Segments(Protocol):
    """What a segment clause asks of the snapshot it is evaluated in
    (`flagwire._snapshot.Snapshot`): whether the context is in a segment."""

    def in_segment(self, key: str, attrs: Attrs, tk: str) -> bool:
        """Whether the context is in segment `key` (of this environment)."""
        ...


Clause = Callable[[Attrs, str, Segments], bool]


def _never(attrs: Attrs, tk: str, snap: Segments) -> bool:
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


def condition(clause: flag_pb2.Clause) -> Condition:
    """A clause for the generated function: inline when it can be, else its closure."""
    inline = _inline(clause)
    return inline if inline is not None else compile_clause(clause, in_segment=False)


def _always(attrs: Attrs, tk: str, snap: Segments) -> bool:
    return True


def all_of(clauses: tuple[Clause, ...]) -> Clause:
    """A rule's matcher: all its clauses match (an empty list matches every context)."""
    if not clauses:
        return _always
    if len(clauses) == 1:
        return clauses[0]

    def all_match(attrs: Attrs, tk: str, snap: Segments) -> bool:
        for clause in clauses:
            if not clause(attrs, tk, snap):
                return False
        return True

    return all_match


def compile_clause(clause: flag_pb2.Clause, in_segment: bool) -> Clause:
    """A clause as a closure; `in_segment` for a segment's own rules, where a segment clause
    never matches."""
    op = clause.operator
    negate = clause.negate
    values = [json_value(v) for v in clause.values]
    if op in (flag_pb2.OPERATOR_IN_SEGMENT, flag_pb2.OPERATOR_NOT_IN_SEGMENT):
        if in_segment:
            # Segments cannot refer to segments: such a clause never matches, negated or not.
            return _never
        keys = tuple(v for v in values if isinstance(v, str))
        want = op == flag_pb2.OPERATOR_IN_SEGMENT

        def segment_clause(attrs: Attrs, tk: str, snap: Segments) -> bool:
            found = any(snap.in_segment(key, attrs, tk) for key in keys)
            return (found == want) != negate

        return segment_clause

    name = clause.attribute
    holds = _holds(op, values)
    # A missing attribute never matches, negated or not.
    if name == TARGETING_KEY:
        return lambda attrs, tk, snap: tk != "" and holds(tk) != negate
    if negate:

        def negated(attrs: Attrs, tk: str, snap: Segments) -> bool:
            a = attrs.get(name)
            return a is not None and not holds(a)

        return negated

    def clause_matches(attrs: Attrs, tk: str, snap: Segments) -> bool:
        a = attrs.get(name)
        return a is not None and holds(a)

    return clause_matches
