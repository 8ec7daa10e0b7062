"""The flags the benchmarks evaluate, mirroring core/tests/support/fixtures.rs: a boolean flag
with no rules, and a string flag with five rules (none matching the context: IN of 3,
ENDS_WITH, GTE, IN of 2, CONTAINS on a list) and a 3-way split; a context with a targeting key
and five attributes."""

from __future__ import annotations

import pathlib

from flagwire import Context
from flagwire._proto.flagwire.v1 import flag_pb2, flag_service_pb2

ENV = "production"


def bool_flag(key: str) -> flag_pb2.Flag:
    return flag_pb2.Flag(
        key=key,
        type=flag_pb2.VALUE_TYPE_BOOLEAN,
        version=1,
        variants=[
            flag_pb2.Variant(key="on", value=flag_pb2.FlagValue(bool_value=True)),
            flag_pb2.Variant(key="off", value=flag_pb2.FlagValue(bool_value=False)),
        ],
        environments={
            ENV: flag_pb2.FlagConfig(
                enabled=True, off_variant="off", default_rule=flag_pb2.Serve(variant="on")
            )
        },
    )


def split_flag() -> flag_pb2.Flag:
    flag = flag_pb2.Flag(
        key="split-flag",
        type=flag_pb2.VALUE_TYPE_STRING,
        version=1,
        variants=[
            flag_pb2.Variant(key=v, value=flag_pb2.FlagValue(string_value=v))
            for v in ("red", "green", "blue")
        ],
    )
    config = flag.environments[ENV]
    config.enabled = True
    config.off_variant = "red"
    rules: list[tuple[str, str, int, list[object]]] = [
        ("countries", "country", flag_pb2.OPERATOR_IN, ["US", "CA", "GB"]),
        ("staff", "email", flag_pb2.OPERATOR_ENDS_WITH, ["@flagwire.dev"]),
        ("seniors", "age", flag_pb2.OPERATOR_GTE, [65.0]),
        ("free", "plan", flag_pb2.OPERATOR_IN, ["free", "trial"]),
        ("beta", "groups", flag_pb2.OPERATOR_CONTAINS, ["beta"]),
    ]
    for rule_id, attribute, operator, values in rules:
        rule = config.rules.add(id=rule_id)
        rule.serve.variant = "red"
        clause = rule.clauses.add(attribute=attribute, operator=operator)
        for value in values:
            if isinstance(value, str):
                clause.values.add().string_value = value
            else:
                clause.values.add().number_value = float(value)  # type: ignore[arg-type]
    for variant in ("red", "green", "blue"):
        config.default_rule.split.entries.add(variant=variant, weight=3333)
    return flag


def snapshot(extra: int = 1000) -> flag_service_pb2.Snapshot:
    flags = [bool_flag("bool-flag"), split_flag()]
    flags += [bool_flag(f"flag-{i:04}") for i in range(extra)]
    return flag_service_pb2.Snapshot(environment=ENV, revision=1, flags=flags)


def write_bootstrap(path: pathlib.Path) -> pathlib.Path:
    path.write_bytes(snapshot().SerializeToString())
    return path


def context() -> Context:
    return Context(
        "user-1234567",
        {"country": "NL", "email": "ada@example.com", "age": 31, "plan": "pro",
         "groups": ["staff"]},
    )  # fmt: skip
