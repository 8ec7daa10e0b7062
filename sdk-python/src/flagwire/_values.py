"""Flag values: the value types a flag can have, and protobuf values as plain Python (what the
compiled flags serve and what the clauses compare against)."""

from __future__ import annotations

from typing import Any, Final

from flagwire._proto.flagwire.v1 import flag_pb2

BOOLEAN: Final = flag_pb2.VALUE_TYPE_BOOLEAN
STRING: Final = flag_pb2.VALUE_TYPE_STRING
INTEGER: Final = flag_pb2.VALUE_TYPE_INTEGER
FLOAT: Final = flag_pb2.VALUE_TYPE_FLOAT
OBJECT: Final = flag_pb2.VALUE_TYPE_OBJECT

_VALUE_MEMBER: Final[dict[int, str]] = {
    BOOLEAN: "bool_value",
    STRING: "string_value",
    INTEGER: "int_value",
    FLOAT: "float_value",
    OBJECT: "object_value",
}


def json_value(value: Any) -> Any:
    """A `google.protobuf.Value` as plain JSON (None, float, str, bool, dict or list)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_json(value.struct_value)
    if kind == "list_value":
        return [json_value(item) for item in value.list_value.values]
    return None


def struct_json(struct: Any) -> dict[str, Any]:
    """A `google.protobuf.Struct` as a dict."""
    return {key: json_value(item) for key, item in struct.fields.items()}


def copy_json(value: Any) -> Any:
    """A deep copy of plain JSON, so callers may mutate what they are given."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


NO_VALUE: Final = object()


def variant_value(variant: flag_pb2.Variant, value_type: int) -> Any:
    """The Python value of a variant, or `NO_VALUE` when it does not hold the flag's type
    (damaged data: serving it is a GENERAL error)."""
    member = _VALUE_MEMBER.get(value_type)
    if member is None or not variant.HasField("value"):
        return NO_VALUE
    kind: str | None = variant.value.WhichOneof("kind")
    if kind != member:
        return NO_VALUE
    if value_type == OBJECT:
        return struct_json(variant.value.object_value)
    return getattr(variant.value, member)
