"""One generated Python function per flag: what `flagwire._flags` compiles a flag into.

A flag's whole evaluation (the context check, the on/off switch, individual targets, every
rule, and the default rule's split) becomes one `def evaluate(ctx, snap)`, so the everyday
evaluation is one call below the getter instead of five (getter, snapshot, rules, split
chooser, `bisect`): at ~60 ns a Python call, that was a third of a five-rule split flag's cost
(issue 18). The same rules also become `def rules(attrs, tk, snap)`, which prerequisites call.

Only indexes and fixed templates make up the source: every name, value, salt and result is
bound as a global of the generated functions, never written into the text, so no flag data can
change what the code does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, Final, Protocol

from flagwire._result import Result

MAX_INLINE_ENTRIES: Final = 8
"""Splits with at most this many entries choose by a chain of `if`s (cheaper than `bisect` up
to about here); longer ones, and splits by an attribute, call their chooser."""


class SplitParts(Protocol):
    """What the generator needs from a compiled split (`flagwire._flags._Split`)."""

    choose: Callable[..., Result]
    # (salt, total weight, running totals, results, no-key result, unencodable-key result),
    # or None when the split is not inlined (bucketed by an attribute, broken, or long).
    inline: tuple[str, int, list[int], list[Result], Result, Result] | None


Serve = Result | SplitParts
Condition = tuple[str, str, Any] | Callable[..., bool]
"""A clause: an inline expression template (see `flagwire._clauses._inline`) with its attribute
name and constant, or a closure called as `(attrs, tk, snap)`."""


class Header:
    """What comes before the rules in `evaluate`, by the flag's configuration."""

    __slots__ = ("enabled", "flag", "invalid", "off", "prerequisites", "targets")

    def __init__(
        self,
        flag: object,
        invalid: Callable[[str], Result],
        enabled: bool,
        off: Result,
        prerequisites: bool,
        targets: dict[str, Result],
    ) -> None:
        self.flag = flag
        self.invalid = invalid
        self.enabled = enabled
        self.off = off
        self.prerequisites = prerequisites
        self.targets = targets


def hash_threshold(running: int, total: int) -> int:
    """The smallest 32-bit hash whose bucket `(h * total) >> 32` is not below `running`:
    `ceil(running * 2**32 / total)`. A generated split compares the hash with it, so it never
    computes the bucket (a big-integer product and shift in CPython)."""
    return -(-(running << 32) // total)


class _Source:
    """The generated text and the globals its names stand for."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self.lines: list[str] = []
        self._count = 0

    def bind(self, prefix: str, value: Any) -> str:
        """A fresh global name for `value`."""
        self._count += 1
        name = f"{prefix}{self._count}"
        self.names[name] = value
        return name

    def serve(self, serve: Serve, indent: str) -> None:
        """Lines returning what `serve` gives: a fixed result, an inlined split, or a call."""
        if isinstance(serve, Result):
            self.lines.append(f"{indent}return {self.bind('R', serve)}")
            return
        parts = serve.inline
        if parts is None:
            self.lines.append(f"{indent}return {self.bind('S', serve.choose)}(attrs, tk)")
            return
        salt, total, cumulative, results, missing, general = parts
        # mmh3 5.3.1 crashes the process (SIGSEGV) on a str without a UTF-8 form (a lone
        # surrogate, which json.loads and os.fsdecode produce) instead of raising: only an
        # ASCII key goes to it as a str, any other is encoded here first.
        # Same as `bisect_right(cumulative, (h * total) >> 32)`: the first entry whose running
        # total exceeds the bucket. The last always does (the bucket is below the total).
        # The bucket is never computed: `(h * total) >> 32 < c` exactly when
        # `h < hash_threshold(c, total)` (h, total and c are integers).
        self.lines += [
            f"{indent}if not tk:",
            f"{indent}    return {self.bind('R', missing)}",
            f"{indent}if tk.isascii():",
            f"{indent}    h = hash32({self.bind('SALT', salt)} + tk, 0, False)",
            f"{indent}else:",
            f"{indent}    try:",
            f"{indent}        h = hash32(({self.bind('SALT', salt)} + tk).encode(), 0, False)",
            f"{indent}    except UnicodeEncodeError:",
            f"{indent}        return {self.bind('R', general)}",
        ]
        for running, result in zip(cumulative[:-1], results[:-1], strict=True):
            threshold = hash_threshold(running, total)
            self.lines.append(f"{indent}if h < {self.bind('H', threshold)}:")
            self.lines.append(f"{indent}    return {self.bind('R', result)}")
        self.lines.append(f"{indent}return {self.bind('R', results[-1])}")

    def rules(self, rules: Sequence[tuple[list[Condition], Serve]], default: Serve) -> None:
        """Each rule as an `if` over its clauses, then the default rule."""
        for clauses, serve in rules:
            conditions = []
            for clause in clauses:
                if callable(clause):
                    conditions.append(f"{self.bind('F', clause)}(attrs, tk, snap)")
                else:
                    template, attribute, constant = clause
                    expression = template.format(
                        N=self.bind("N", attribute), K=self.bind("K", constant)
                    )
                    conditions.append(f"({expression})")
            self.lines.append(f"    if {' and '.join(conditions) or 'True'}:")
            self.serve(serve, "        ")
        self.serve(default, "    ")


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> CodeType:
    """The code of a generated source. Flags of the same shape (every flag without rules, say)
    have the same text, since names are numbered by position: compiled once, then executed
    with each flag's own globals, which keeps a snapshot of 1,000 flags as quick to build as
    before the functions were generated."""
    return compile(text, "<flagwire flag>", "exec")


def generate(
    header: Header,
    rules: Sequence[tuple[list[Condition], Serve]],
    default: Serve,
    hash32: Callable[[str, int, bool], int],
) -> tuple[Callable[..., Result], Callable[..., Result]]:
    """`(evaluate(ctx, snap), rules(attrs, tk, snap))` for one flag. `evaluate` expects a
    `Context` whose flag was found with the right type (the snapshot checks those first);
    `rules` is what remains once the switch, prerequisites and targets let the rules decide."""
    source = _Source()
    source.names["hash32"] = hash32
    lines = source.lines
    lines += [
        "def evaluate(ctx, snap):",
        "    if ctx._invalid is not None:",
        f"        return {source.bind('INVALID', header.invalid)}(ctx._invalid)",
    ]
    if not header.enabled:
        lines.append(f"    return {source.bind('R', header.off)}")
    elif header.prerequisites:
        flag = source.bind("FLAG", header.flag)
        lines.append(f"    return snap._resolve({flag}, ctx._attrs, ctx._targeting_key, 0)")
    else:
        lines += ["    attrs = ctx._attrs", "    tk = ctx._targeting_key"]
        if header.targets:
            lines += [
                "    if tk:",
                f"        r = {source.bind('TARGETS', header.targets)}.get(tk)",
                "        if r is not None:",
                "            return r",
            ]
        source.rules(rules, default)
    lines.append("def rules(attrs, tk, snap):")
    source.rules(rules, default)
    exec(_compiled("\n".join(lines)), source.names)
    return source.names["evaluate"], source.names["rules"]
