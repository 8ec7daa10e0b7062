"""Strict Semantic Versioning 2.0.0: parsing and precedence (docs/evaluation.md, SEMVER_*)."""

from __future__ import annotations

import re
from functools import lru_cache

_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"({_NUMBER})\.({_NUMBER})\.({_NUMBER})"
    rf"(?:-({_PRE}(?:\.{_PRE})*))?"
    rf"(?:\+{_BUILD}(?:\.{_BUILD})*)?"
)

# (major, minor, patch, pre-release identifiers); build metadata is dropped: it has no precedence.
Version = tuple[int, int, int, tuple[str, ...]]


@lru_cache(maxsize=4096)
def parse(text: str) -> Version | None:
    """The version `text` names, or None when it is not strict SemVer 2.0.0 (no leading `v`, no
    leading zeros, ASCII only)."""
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else ()


def _identifier_order(a: str, b: str) -> int:
    a_numeric, b_numeric = a.isdigit(), b.isdigit()
    if a_numeric and b_numeric:
        x, y = int(a), int(b)
        return (x > y) - (x < y)
    if a_numeric != b_numeric:
        # Numeric identifiers have lower precedence than alphanumeric ones.
        return -1 if a_numeric else 1
    return (a > b) - (a < b)  # ASCII order


def compare(a: Version, b: Version) -> int:
    """SemVer precedence: -1, 0 or 1."""
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pa, pb = a[3], b[3]
    if not pa or not pb:
        # A release has higher precedence than any of its pre-releases.
        return (not pa) - (not pb)
    for x, y in zip(pa, pb, strict=False):
        order = _identifier_order(x, y)
        if order:
            return order
    return (len(pa) > len(pb)) - (len(pa) < len(pb))
