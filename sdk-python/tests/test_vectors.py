"""Every case of tests/vectors/ (the files index.json lists, plus any in $FLAGWIRE_VECTORS,
separated by os.pathsep) through the public API: each case file becomes a bootstrap file (a
serialized flagwire.v1.Snapshot) read by an offline `Client`, and each case is evaluated with
the typed `*_details` getter its `type` names (`get_value_details` for `any`)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import tempfile
from typing import Any

import pytest
from google.protobuf import json_format
from support import ROOT

from flagwire import Client, Context, EvaluationDetails
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2

VECTORS = ROOT / "tests" / "vectors"


def case_files() -> list[pathlib.Path]:
    index = json.loads((VECTORS / "index.json").read_text())
    files = [VECTORS / name for name in index["files"]]
    extra = os.environ.get("FLAGWIRE_VECTORS", "")
    files += [pathlib.Path(p) for p in extra.split(os.pathsep) if p]
    return files


def cases() -> list[Any]:
    params = []
    for path in case_files():
        data = json.loads(path.read_text())
        for i, case in enumerate(data["cases"]):
            params.append(pytest.param(path, i, id=f"{path.name}: {case['description']}"))
    return params


@functools.cache
def client_for(path: pathlib.Path) -> tuple[Client, dict[str, Any]]:
    """An offline client whose bootstrap file holds the case file's flags and segments."""
    data = json.loads(path.read_text())
    snapshot = flag_service_pb2.Snapshot(
        environment=data["environment"],
        revision=1,
        flags=[json_format.ParseDict(f, flag_pb2.Flag()) for f in data["flags"]],
        segments=[json_format.ParseDict(s, flag_pb2.Segment()) for s in data.get("segments", [])],
    )
    directory = tempfile.mkdtemp(prefix="flagwire-vectors-")
    bootstrap = os.path.join(directory, "snapshot.bin")
    with open(bootstrap, "wb") as f:
        f.write(snapshot.SerializeToString())
    return Client("http://unused.invalid", "-", bootstrap_file=bootstrap, offline=True), data


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers numerically, booleans are not numbers, objects by keys."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def evaluate(client: Client, case: dict[str, Any]) -> EvaluationDetails[Any]:
    ctx = Context.from_dict(case.get("context") or {})
    key, default, kind = case["flag"], case["default"], case["type"]
    if kind == "boolean":
        return client.get_bool_details(key, ctx, default)
    if kind == "string":
        return client.get_str_details(key, ctx, default)
    if kind == "integer":
        return client.get_int_details(key, ctx, default)
    if kind == "float":
        return client.get_float_details(key, ctx, default)
    if kind == "object":
        return client.get_json_details(key, ctx, default)
    assert kind == "any", kind
    return client.get_value_details(key, ctx, default)


@pytest.mark.parametrize(("path", "index"), cases())
def test_vector(path: pathlib.Path, index: int) -> None:
    client, data = client_for(path)
    case = data["cases"][index]
    expected = case["expected"]
    got = evaluate(client, case)
    summary = (
        f"got value={got.value!r} variant={got.variant!r} reason={got.reason.value} "
        f"error={got.error_code} cohort={got.cohort!r} rollout_id={got.rollout_id!r} "
        f"version={got.flag_version}"
    )
    assert json_equal(got.value, expected["value"]), summary
    assert (got.variant or "") == expected["variant"], summary
    assert got.reason.value == expected["reason"], summary
    code = got.error_code.value if got.error_code is not None else None
    assert code == expected.get("errorCode"), summary
    assert (got.cohort or "") == expected.get("cohort", ""), summary
    assert (got.rollout_id or "") == expected.get("rolloutId", ""), summary
    if "flagVersion" in expected:
        assert got.flag_version == int(expected["flagVersion"]), summary
    if kind_is_typed(case) and got.error_code is None:
        assert type(got.value) is python_type(case["type"]), summary
    # The scalar getters take their own inlined path (issue 18): same value, bit for bit.
    plain = evaluate_plain(client, case)
    assert json_equal(plain, expected["value"]), f"plain getter gave {plain!r}; {summary}"


def evaluate_plain(client: Client, case: dict[str, Any]) -> Any:
    """The case through the value getter its `type` names (`get_value_details` for `any`)."""
    ctx = Context.from_dict(case.get("context") or {})
    key, default, kind = case["flag"], case["default"], case["type"]
    if kind == "boolean":
        return client.get_bool(key, ctx, default)
    if kind == "string":
        return client.get_str(key, ctx, default)
    if kind == "integer":
        return client.get_int(key, ctx, default)
    if kind == "float":
        return client.get_float(key, ctx, default)
    if kind == "object":
        return client.get_json(key, ctx, default)
    return client.get_value_details(key, ctx, default).value


def kind_is_typed(case: dict[str, Any]) -> bool:
    return bool(case["type"] != "any")


def python_type(kind: str) -> type:
    return {"boolean": bool, "string": str, "integer": int, "float": float, "object": dict}[kind]


def test_every_listed_file_exists_and_has_cases() -> None:
    files = case_files()
    assert len(files) >= 8
    for path in files:
        assert json.loads(path.read_text())["cases"], path


def test_the_loop_engine_agrees_on_every_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags with very many rules are evaluated by a loop over closures instead of generated
    code: both must give the same answer on every case."""
    from flagwire import _flags, _snapshot

    def build(data: dict[str, Any]) -> _snapshot.Snapshot:
        return _snapshot.Snapshot.build(
            data["environment"],
            1,
            [json_format.ParseDict(f, flag_pb2.Flag()) for f in data["flags"]],
            [json_format.ParseDict(s, flag_pb2.Segment()) for s in data.get("segments", [])],
        )

    types = {"boolean": 1, "string": 2, "integer": 3, "float": 4, "object": 5, "any": None}
    checked = 0
    for path in case_files():
        data = json.loads(path.read_text())
        generated = build(data)
        with monkeypatch.context() as m:
            m.setattr(_flags, "MAX_GENERATED_RULES", -1)
            looped = build(data)
        for case in data["cases"]:
            ctx = Context.from_dict(case.get("context") or {})
            a = generated.evaluate(case["flag"], ctx, types[case["type"]])
            b = looped.evaluate(case["flag"], ctx, types[case["type"]])
            assert (a.variant, a.reason, a.error_code, a.cohort, a.rollout_id, a.flag_version) == (
                b.variant, b.reason, b.error_code, b.cohort, b.rollout_id, b.flag_version,
            ), case["description"]  # fmt: skip
            checked += 1
    assert checked >= 800
