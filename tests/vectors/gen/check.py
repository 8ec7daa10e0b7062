#!/usr/bin/env python3
"""Checks the evaluation vectors against the Python reference implementation.

    .venv/bin/python tests/vectors/gen/check.py

1. VERSION, index.json and schema.json are well-formed; every *.json case file in
   tests/vectors/ is listed in index.json (no orphans) and exists.
2. Every case file of index.json, plus any listed in $FLAGWIRE_VECTORS (os.pathsep-separated
   paths), and bucketing.json validate against schema.json (PyPI `jsonschema`).
3. Lints the cases: descriptions unique, flag keys unique per file, variant values of the flag's
   type, an ERROR case expects the default, an empty variant and no cohort or rolloutId.
4. Evaluates every case with gen/reference.py and compares value, variant, reason, errorCode,
   cohort and rolloutId (each absent in `expected` = must be empty) and flagVersion (checked
   when present).
5. bucketing.json is byte-identical to what gen/bucketing.py generates, and every entry agrees
   with the reference's murmur3 / bucket functions.
6. histogram.json (index.json's "histogram") validates, is byte-identical to what
   gen/histogram.py generates, its boundary constants are exact (r^8 <= 2^(504+k) < (r+1)^8),
   every index agrees with both the definition ((v^8 - 1).bit_length() - 1) and the spec's
   fast algorithm, and every merge is recomputed (counts exactly; quantile indexes exactly,
   upper bounds to a relative 1e-9). It must cover 0, 1, 2^64 - 1 and every power of two.

Ends with `vectors: N passed, M failed` (N counts cases that passed; M counts failed cases plus
every other problem found) and exits non-zero on any failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

GEN = Path(__file__).resolve().parent
VECTORS = GEN.parent
sys.path.insert(0, str(GEN))

import bucketing  # noqa: E402
import histogram  # noqa: E402
import reference  # noqa: E402

try:
    import jsonschema
except ImportError:  # pragma: no cover
    sys.exit("check.py: PyPI `jsonschema` is missing (scripts/lib/tools.sh ensure_venv installs it)")

SPEC_VERSION = 1
NOT_CASE_FILES = {"index.json", "schema.json", "bucketing.json", "histogram.json"}
MEMBER = {
    "VALUE_TYPE_BOOLEAN": "boolValue",
    "VALUE_TYPE_STRING": "stringValue",
    "VALUE_TYPE_INTEGER": "intValue",
    "VALUE_TYPE_FLOAT": "floatValue",
    "VALUE_TYPE_OBJECT": "objectValue",
}


class Problems:
    def __init__(self):
        self.items: list[str] = []

    def add(self, msg: str) -> None:
        self.items.append(msg)
        print(f"FAIL: {msg}", file=sys.stderr)


def json_same(a, b) -> bool:
    """JSON equality: numbers compare numerically (1 == 1.0), booleans are not numbers, objects
    by keys, arrays by position."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_same(a[k], b[k]) for k in a)
    return False


def load_json(path: Path, problems: Problems):
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        problems.add(f"{path}: cannot read JSON: {e}")
        return None


def validate(doc, path: Path, validator, problems: Problems) -> bool:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors[:10]:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        problems.add(f"{path.name}: schema: at {where}: {e.message[:300]}")
    return not errors


def lint_file(doc: dict, path: Path, problems: Problems, seen_desc: dict) -> None:
    keys = set()
    for f in doc["flags"]:
        if f["key"] in keys:
            problems.add(f"{path.name}: duplicate flag key {f['key']!r}")
        keys.add(f["key"])
        member = MEMBER[f["type"]]
        vkeys = set()
        for v in f["variants"]:
            if v["key"] in vkeys:
                problems.add(f"{path.name}: flag {f['key']!r}: duplicate variant {v['key']!r}")
            vkeys.add(v["key"])
            if list(v["value"].keys()) != [member]:
                problems.add(f"{path.name}: flag {f['key']!r} variant {v['key']!r}: value is not "
                             f"a {member} (damaged flags are not part of spec version 1)")
    seg_keys = set()
    for s in doc["segments"]:
        k = (s.get("environment", ""), s["key"])
        if k in seg_keys:
            problems.add(f"{path.name}: duplicate segment {k}")
        seg_keys.add(k)
    for c in doc["cases"]:
        d = c["description"]
        if d in seen_desc:
            problems.add(f"{path.name}: duplicate case description {d!r} (also in {seen_desc[d]})")
        seen_desc[d] = path.name
        exp = c["expected"]
        if exp["reason"] == "ERROR":
            if exp["errorCode"] is None:
                problems.add(f"{path.name}: {d}: reason ERROR needs an errorCode")
            if exp["variant"] != "" or not json_same(exp["value"], c["default"]):
                problems.add(f"{path.name}: {d}: on ERROR the value is the default and the "
                             "variant is empty")
            for field in ("cohort", "rolloutId"):
                if exp.get(field):
                    problems.add(f"{path.name}: {d}: no {field} on ERROR")
        elif exp["errorCode"] is not None:
            problems.add(f"{path.name}: {d}: errorCode without reason ERROR")


def compare(case: dict, got: dict) -> list[str]:
    exp = case["expected"]
    diffs = []
    if not json_same(exp["value"], got["value"]):
        diffs.append(f"value: expected {exp['value']!r}, got {got['value']!r}")
    for field in ("variant", "reason", "errorCode"):
        if exp[field] != got[field]:
            diffs.append(f"{field}: expected {exp[field]!r}, got {got[field]!r}")
    for field in ("cohort", "rolloutId"):
        want = exp.get(field, "")
        if want != got[field]:
            diffs.append(f"{field}: expected {want!r}, got {got[field]!r}")
    if "flagVersion" in exp and int(exp["flagVersion"]) != got["flagVersion"]:
        diffs.append(f"flagVersion: expected {exp['flagVersion']!r}, got {got['flagVersion']!r}")
    return diffs


def check_bucketing(path: Path, doc, problems: Problems) -> None:
    text = path.read_text(encoding="utf-8")
    if text != bucketing.generate():
        problems.add(f"{path.name}: differs from what gen/bucketing.py generates (re-run it, and "
                     "treat any change as a contract change)")
    for e in doc.get("murmur3", []):
        got = reference.murmur3(e["input"], e["seed"])
        if got != e["hash"]:
            problems.add(f"{path.name}: murmur3({e['input']!r}, {e['seed']}) = {got}, "
                         f"file says {e['hash']}")
    n = 0
    for e in doc.get("buckets", []):
        h, b = reference.bucket(e["salt"], e["key"], e["totalWeight"])
        if (h, b) != (e["hash"], e["bucket"]):
            problems.add(f"{path.name}: bucket({e['salt']!r}, {e['key']!r}, "
                         f"{e['totalWeight']}) = ({h}, {b}), file says "
                         f"({e['hash']}, {e['bucket']})")
        n += 1
    totals = {}
    for e in doc.get("buckets", []):
        totals[e["totalWeight"]] = totals.get(e["totalWeight"], 0) + 1
    for t in (100, 10000, 2147483647):
        if totals.get(t, 0) < 1000:
            problems.add(f"{path.name}: fewer than 1000 buckets for totalWeight {t}")
    print(f"{path.name}: {len(doc.get('murmur3', []))} murmur3 answers and {n} buckets reproduced")


def check_histogram(path: Path, doc, problems: Problems) -> None:
    text = path.read_text(encoding="utf-8")
    if text != histogram.generate():
        problems.add(f"{path.name}: differs from what gen/histogram.py generates (re-run it, and "
                     "treat any change as a contract change)")
    for k, t in enumerate(doc["boundaries"]):
        r = int(t)
        if not (r**8 <= 1 << (504 + k) < (r + 1) ** 8):
            problems.add(f"{path.name}: boundaries[{k}] = {t} is not floor(2^(63 + {k}/8))")
    seen = set()
    for e in doc["indices"]:
        v = int(e["value"])
        if v in seen:
            problems.add(f"{path.name}: value {v} listed twice")
        seen.add(v)
        want = e["index"]
        for name, fn in (("definition", histogram.index), ("fast algorithm", histogram.index_fast)):
            got = fn(v)
            if got != want:
                problems.add(f"{path.name}: index({v}) by the {name} = {got}, file says {want}")
    required = {0, 1, (1 << 64) - 1} | {1 << e for e in range(64)}
    if missing := sorted(required - seen):
        problems.add(f"{path.name}: indices lack the values {missing[:5]}...")
    descriptions = set()
    for m in doc["merges"]:
        d = m["description"]
        if d in descriptions:
            problems.add(f"{path.name}: duplicate merge description {d!r}")
        descriptions.add(d)
        got = histogram.merged([[int(v) for v in h] for h in m["histograms"]])
        exp = m["expected"]
        for field in ("count", "sum", "zeroCount", "offset", "bucketCounts"):
            if got[field] != exp[field]:
                problems.add(f"{path.name}: {d}: {field}: expected {exp[field]!r}, "
                             f"got {got[field]!r}")
        for q in ("p50", "p95", "p99"):
            g, x = got[q], exp[q]
            if (g is None) != (x is None) or (
                g is not None
                and (g["index"] != x["index"]
                     or abs(g["upperBoundUs"] - x["upperBoundUs"])
                     > 1e-9 * max(abs(x["upperBoundUs"]), 1e-300))
            ):
                problems.add(f"{path.name}: {d}: {q}: expected {x!r}, got {g!r}")
    print(f"{path.name}: {len(doc['indices'])} indices and {len(doc['merges'])} merges reproduced")


def main() -> int:
    problems = Problems()

    try:
        version = (VECTORS / "VERSION").read_text(encoding="utf-8").strip()
    except OSError as e:
        version = f"<unreadable: {e}>"
    if version != str(SPEC_VERSION):
        problems.add(f"VERSION says {version!r}; this checker implements spec {SPEC_VERSION}")

    schema = load_json(VECTORS / "schema.json", problems)
    index = load_json(VECTORS / "index.json", problems)
    if schema is None or index is None:
        print("vectors: 0 passed, 1 failed")
        return 1
    jsonschema.Draft202012Validator.check_schema(schema)
    root_validator = jsonschema.Draft202012Validator(schema)

    def kind_validator(kind: str):
        # The root is a oneOf of the two kinds; validating against one kind gives useful errors.
        sub = {k: v for k, v in schema.items() if k != "oneOf"}
        sub["$ref"] = f"#/$defs/{kind}"
        return jsonschema.Draft202012Validator(sub)

    case_validator = kind_validator("caseFile")
    bucketing_validator = kind_validator("bucketingFile")
    histogram_validator = kind_validator("histogramFile")

    if index.get("version") != SPEC_VERSION:
        problems.add(f"index.json: version {index.get('version')!r} != {SPEC_VERSION}")
    listed = list(index.get("files", []))
    if len(set(listed)) != len(listed):
        problems.add("index.json: a file is listed twice")
    on_disk = sorted(p.name for p in VECTORS.glob("*.json") if p.name not in NOT_CASE_FILES)
    for name in on_disk:
        if name not in listed:
            problems.add(f"{name} is not listed in index.json")

    paths = [VECTORS / name for name in listed]
    extra = os.environ.get("FLAGWIRE_VECTORS", "")
    paths += [Path(p) for p in extra.split(os.pathsep) if p]

    passed = case_failures = 0
    seen_desc: dict[str, str] = {}
    for path in paths:
        if not path.is_file():
            problems.add(f"{path}: no such case file")
            continue
        doc = load_json(path, problems)
        if doc is None:
            continue
        if not validate(doc, path, case_validator, problems) or not validate(
            doc, path, root_validator, problems
        ):
            problems.add(f"{path.name}: not a valid case file; its cases were not run")
            continue
        lint_file(doc, path, problems, seen_desc)
        try:
            ev = reference.Evaluator(doc["flags"], doc["segments"], doc["environment"])
        except ValueError as e:
            problems.add(f"{path.name}: {e}; its cases were not run")
            continue
        file_failed = 0
        for case in doc["cases"]:
            try:
                got = ev.evaluate(case["flag"], case["type"], case["context"], case["default"])
                diffs = compare(case, got)
            except Exception as e:  # a reference bug must not hide the other cases
                diffs = [f"reference raised {type(e).__name__}: {e}"]
            if diffs:
                file_failed += 1
                case_failures += 1
                problems.add(f"{path.name}: {case['description']}: " + "; ".join(diffs))
            else:
                passed += 1
        print(f"{path.name}: {len(doc['cases']) - file_failed}/{len(doc['cases'])} cases pass")

    bpath = VECTORS / index.get("bucketing", "bucketing.json")
    bdoc = load_json(bpath, problems)
    if bdoc is not None and validate(bdoc, bpath, bucketing_validator, problems) and validate(
        bdoc, bpath, root_validator, problems
    ):
        check_bucketing(bpath, bdoc, problems)

    if "histogram" not in index:
        problems.add('index.json: no "histogram" entry (histogram.json)')
    hpath = VECTORS / index.get("histogram", "histogram.json")
    hdoc = load_json(hpath, problems)
    if hdoc is not None and validate(hdoc, hpath, histogram_validator, problems) and validate(
        hdoc, hpath, root_validator, problems
    ):
        check_histogram(hpath, hdoc, problems)

    # Problems outside case results (schema, index, lints, bucketing, histogram) count as
    # failures too.
    other = len(problems.items) - case_failures
    if other:
        print(f"{other} problem(s) besides case results; see the FAIL lines above", file=sys.stderr)
    print(f"vectors: {passed} passed, {case_failures + other} failed")
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main())
