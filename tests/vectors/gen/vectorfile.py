"""Writing generated vector files the same way for every generator: stable text with one list
entry per line (so diffs of a regenerated file stay readable), and the command line that either
writes the file or, with --check, fails when the committed file differs from what the
generator produces."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path


def line(obj: object) -> str:
    """One JSON value on one line, UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def render(doc: dict, scalars: list[str], lists: list[str]) -> str:
    """`doc` with the `scalars` keys first (one line each), then each of the `lists` keys with
    one entry per line; a trailing newline."""
    parts = ["{"] + [f'  "{key}": {line(doc[key])},' for key in scalars]
    for n, name in enumerate(lists):
        entries = doc[name]
        parts.append(f'  "{name}": [')
        for i, e in enumerate(entries):
            parts.append("    " + line(e) + ("," if i + 1 < len(entries) else ""))
        parts.append("  ]," if n + 1 < len(lists) else "  ]")
    parts.append("}")
    return "\n".join(parts) + "\n"


def main(argv: list[str], out: Path, script: str, usage: str | None,
         generate: Callable[[], str], summary: Callable[[dict], str]) -> int:
    """Writes `out`, or with `--check` verifies it; returns the exit status."""
    text = generate()
    if argv[1:] == ["--check"]:
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if current != text:
            print(f"{out} is not what {script} generates; re-run it", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(usage, file=sys.stderr)
        return 2
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: {summary(json.loads(text))}")
    return 0
