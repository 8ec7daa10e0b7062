"""Validates tests/sync/: every scenario file against schema.json, and index.json lists exactly the
scenario files present. Run with the repository's tool venv: .venv/bin/python tests/sync/check.py
"""

from __future__ import annotations

import json
import pathlib
import sys

import jsonschema

HERE = pathlib.Path(__file__).resolve().parent


def main() -> int:
    schema = json.loads((HERE / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    listed = json.loads((HERE / "index.json").read_text())["files"]
    present = sorted(
        p.name for p in HERE.glob("*.json") if p.name not in ("index.json", "schema.json")
    )
    failures = []
    if sorted(listed) != present:
        failures.append(f"index.json lists {sorted(listed)}, the directory holds {present}")
    for name in listed:
        scenario = json.loads((HERE / name).read_text())
        for error in validator.iter_errors(scenario):
            failures.append(f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"tests/sync: {len(listed)} scenarios, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
