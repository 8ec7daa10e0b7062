"""Flags and segments compiled for one environment: a `Flag` holds every fixed outcome as a
pre-built `Result` and its evaluation as one generated function (`flagwire._codegen`), or, past
`MAX_GENERATED_RULES` rules, as a loop over clause closures; `_Split` is a compiled weighted
split, and `bucket` and `murmur3` are its math as tests/vectors/bucketing.json states it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Final, Protocol

import mmh3

from flagwire._clauses import TARGETING_KEY, Attrs, Segments, all_of, compile_clause, condition
from flagwire._codegen import MAX_INLINE_ENTRIES, Header, generate
from flagwire._proto.flagwire.v1 import flag_pb2
from flagwire._result import Result
from flagwire._types import ErrorCode, Reason
from flagwire._values import NO_VALUE, variant_value
from flagwire.context import Context

MAX_TOTAL_WEIGHT: Final = 2**31 - 1

MAX_GENERATED_RULES: Final = 1000
"""Flags with more rules than this are evaluated by a loop over closures instead."""


class Resolver(Segments, Protocol):
    """What a flag's evaluation asks of the snapshot it is evaluated in
    (`flagwire._snapshot.Snapshot`): its segments, and the evaluation of a flag below the type
    and context checks (for prerequisites)."""

    def _resolve(self, flag: Flag, attrs: Attrs, tk: str, depth: int) -> Result:
        """The switch, prerequisites, targets and rules of `flag` for the context."""
        ...


def _loop(
    rules: list[tuple[list[flag_pb2.Clause], Serve]], default: Serve
) -> Callable[[Attrs, str, Resolver], Result]:
    """The rules and default rule as a loop over clause closures (for very long rule lists)."""
    compiled = tuple(
        (all_of(tuple(compile_clause(c, in_segment=False) for c in clauses)), serve)
        for clauses, serve in rules
    )

    def rules_loop(attrs: Attrs, tk: str, snap: Resolver) -> Result:
        for matches, serve in compiled:
            if matches(attrs, tk, snap):
                return serve.choose(attrs, tk) if type(serve) is _Split else serve  # type: ignore[return-value]
        return default.choose(attrs, tk) if type(default) is _Split else default  # type: ignore[return-value]

    return rules_loop


class _Split:
    """A compiled weighted split: bucket = (murmur3(salt + unit) * total) >> 32, served by the
    first entry whose cumulative weight exceeds it. `choose(attrs, tk)` is a closure specialised
    for the split (by targeting key or by an attribute)."""

    __slots__ = ("choose", "inline")

    choose: Callable[[Attrs, str], Result]
    # See flagwire._codegen.SplitParts: the parts the generated function chooses with.
    inline: tuple[str, int, list[int], list[Result], Result, Result] | None

    def __init__(self, flag: Flag, split: flag_pb2.Split, config_salt: str) -> None:
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


class Flag:
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

    evaluate: Callable[[Context, Resolver], Result]
    rules: Callable[[Attrs, str, Resolver], Result]

    def __init__(self, proto: flag_pb2.Flag, environment: str) -> None:
        self.proto = proto
        self.key = proto.key
        self.version = proto.version
        self.archived = proto.archived
        self.value_type = proto.type
        self.values: dict[str, Any] = {}
        for variant in proto.variants:
            self.values.setdefault(variant.key, variant_value(variant, proto.type))
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
            conditions = [([condition(c) for c in clauses], serve) for clauses, serve in rules]
            self.evaluate, self.rules = generate(header, conditions, default, mmh3.hash)
        else:
            self.rules = _loop(rules, default)
            self.evaluate = self._evaluate_loop

    def _evaluate_loop(self, ctx: Context, snap: Resolver) -> Result:
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
        value = self.values.get(variant, NO_VALUE)
        if value is NO_VALUE:
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


class Segment:
    """One segment of this environment, its rules compiled to clause closures."""

    __slots__ = ("excluded", "included", "key", "proto", "rules")

    def __init__(self, proto: flag_pb2.Segment) -> None:
        self.proto = proto
        self.key = proto.key
        self.excluded = frozenset(proto.excluded)
        self.included = frozenset(proto.included)
        self.rules = tuple(
            all_of(tuple(compile_clause(c, in_segment=True) for c in rule.clauses))
            for rule in proto.rules
        )


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
