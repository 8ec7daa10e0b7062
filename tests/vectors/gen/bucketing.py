#!/usr/bin/env python3
"""Generates tests/vectors/bucketing.json: murmur3 known answers and bucketing pairs.

    .venv/bin/python tests/vectors/gen/bucketing.py          # (re)writes bucketing.json
    .venv/bin/python tests/vectors/gen/bucketing.py --check  # exit 1 if the file differs

The output is a pure function of this file (a fixed splitmix64 stream, no `random`, no clock),
so re-running it produces identical bytes; gen/check.py regenerates it in memory and compares.

Hashes come from PyPI `mmh3` (an implementation independent of core/). The published murmur3
answers below are asserted against mmh3 before anything is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import vectorfile

import mmh3

OUT = Path(__file__).resolve().parent.parent / "bucketing.json"

# Published murmur3_x86_32 known answers (inputs as text, hashed as UTF-8). Sources: the
# reference vectors used across murmur3 ports (SMHasher's verification set, the widely quoted
# "Hello, world!" / "ππππππππ" / 256 x "a" set with seed 0x9747b28c, and Wikipedia's examples).
PUBLISHED = [
    ("", 0, 0x00000000),
    ("", 1, 0x514E28B7),
    ("", 0xFFFFFFFF, 0x81F16F39),
    ("\0\0\0\0", 0, 0x2362F9DE),
    ("\0\0\0", 0, 0x85F0B427),
    ("\0\0", 0, 0x30F4C306),
    ("\0", 0, 0x514E28B7),
    ("!Ce", 0, 0x7E4A8634),
    ("!C", 0, 0xA0F7B07A),
    ("!", 0, 0x72661CF4),
    ("hello", 0, 613153351),
    ("Hello, world!", 0x9747B28C, 0x24884CBA),
    ("ππππππππ", 0x9747B28C, 0xD58063C1),
    ("a" * 256, 0x9747B28C, 0x37405BDC),
    ("abc", 0, 0xB3DD93FA),
    ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0, 0xEE925B90),
    ("The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    ("The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
]

# Further inputs (seed 0, the one bucketing uses), computed with mmh3: every tail length 0-3,
# multi-byte UTF-8 (2, 3 and 4 bytes per code point, so UTF-16 languages must encode first),
# combining marks, NUL, and typical salt+key concatenations.
COMPUTED = [
    "a",
    "ab",
    "abcd",
    "abcde",
    "Hello, world!",
    "user-42",
    "new-checkoutuser-42",
    "é",
    "e\u0301",
    "ß",
    "naïve café",
    "Ωμέγα",
    "中文",
    "日本語のテキスト",
    "😀",
    "🚀🚀",
    "a😀b",
    "𝄞 music",
    "\u00a0",
    "\ufeffbom",
    "tab\tnewline\n",
    "nul\u0000inside",
    "ключ",
    "مرحبا",
    "x" * 1000,
]

# splitmix64: a tiny PRNG whose output is fixed forever (unlike `random`'s helpers).
_MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n  # bias is irrelevant here; determinism is what matters


ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@/ "
UNICODE = [
    "é", "ß", "ñ", "ü", "Ω", "π", "ж", "中", "文", "日", "€", "™", "\u0301", "😀", "🚀", "𝄞",
    "ـ", "א", "\u00a0",
]
PREFIXES = ["user-", "tenant-", "device:", "org/", "", "acct_", "session."]
SALTS = ["", "", "", "new-checkout", "exp-2024", "canary-salt", "pricing.v2", "é-salt", "中文盐"]

TOTALS = [100, 10000, 2147483647]
PER_TOTAL = 1000
# A few more totals, 50 pairs each: tiny splits, odd sizes, powers of two.
EXTRA_TOTALS = [1, 2, 3, 7, 1000, 65536, 1 << 30]
PER_EXTRA = 50


def _random_text(rng: SplitMix64, max_len: int, unicode_share: int) -> str:
    n = rng.below(max_len + 1)
    out = []
    for _ in range(n):
        if rng.below(100) < unicode_share:
            out.append(UNICODE[rng.below(len(UNICODE))])
        else:
            out.append(ASCII[rng.below(len(ASCII))])
    return "".join(out)


def _pair(rng: SplitMix64) -> tuple[str, str]:
    kind = rng.below(10)
    if kind < 3:
        salt = SALTS[rng.below(len(SALTS))]
    elif kind < 5:
        salt = ""
    else:
        salt = _random_text(rng, 16, 15)
    if rng.below(2) == 0:
        key = PREFIXES[rng.below(len(PREFIXES))] + str(rng.below(1_000_000))
    else:
        key = _random_text(rng, 24, 25)
        if key == "":
            key = "k"
    return salt, key


def _bucket_entry(salt: str, key: str, total: int) -> dict:
    h = mmh3.hash((salt + key).encode("utf-8"), 0, signed=False)
    b = (h * total) >> 32
    assert 0 <= b < total
    return {"salt": salt, "key": key, "totalWeight": total, "hash": h, "bucket": b}


def build() -> dict:
    for text, seed, want in PUBLISHED:
        got = mmh3.hash(text.encode("utf-8"), seed, signed=False)
        if got != want:
            raise SystemExit(f"mmh3 disagrees with the published murmur3 of {text!r}: {got} != {want}")

    murmur = [{"input": t, "seed": s, "hash": h} for t, s, h in PUBLISHED]
    for text in COMPUTED:
        murmur.append(
            {"input": text, "seed": 0, "hash": mmh3.hash(text.encode("utf-8"), 0, signed=False)}
        )

    rng = SplitMix64(0xF1A6_1E5E_B0C4_E700)
    buckets = []
    # Fixed edge pairs first, for each main total.
    edges = [("", "a"), ("", "user-1"), ("salt", ""), ("new-checkout", "user-42"),
             ("ab", "c"), ("a", "bc"), ("é", "ü"), ("", "😀"), ("中文", "键")]
    for total in TOTALS:
        for salt, key in edges:
            buckets.append(_bucket_entry(salt, key, total))
        for _ in range(PER_TOTAL):
            salt, key = _pair(rng)
            buckets.append(_bucket_entry(salt, key, total))
    for total in EXTRA_TOTALS:
        for _ in range(PER_EXTRA):
            salt, key = _pair(rng)
            buckets.append(_bucket_entry(salt, key, total))

    return {
        "description": (
            "Generated by tests/vectors/gen/bucketing.py; do not edit. murmur3: "
            "murmur3_x86_32(utf8(input), seed) as an unsigned 32-bit integer. buckets: "
            "hash = murmur3_x86_32(utf8(salt + key), 0), bucket = (hash * totalWeight) >> 32 "
            "in 64-bit unsigned arithmetic."
        ),
        "murmur3": murmur,
        "buckets": buckets,
    }


def render(doc: dict) -> str:
    """Stable text: one murmur3 / bucket entry per line, UTF-8, trailing newline."""
    return vectorfile.render(doc, ['description'], ['murmur3', 'buckets'])


def generate() -> str:
    return render(build())


def main(argv: list[str]) -> int:
    return vectorfile.main(argv, OUT, "gen/bucketing.py", __doc__, generate,
                           lambda d: f"{len(d['murmur3'])} murmur3 answers, {len(d['buckets'])} buckets")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
