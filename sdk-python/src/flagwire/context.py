"""Evaluation contexts: who or what a flag is evaluated for."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flagwire._proto.flagwire.v1 import evaluation_pb2

AttributeValue = str | bool | int | float | Sequence[str] | None
"""What an attribute may hold: a string, a number, a boolean, a list of strings, or `None`
(treated as absent)."""

# A present attribute after normalisation: numbers become floats (the spec compares numbers as
# IEEE doubles) and lists become tuples of strings.
Normalized = str | bool | float | tuple[str, ...]


def _normalize(value: object) -> Normalized | None:
    """The normal form of an attribute, or raises ValueError for a value the spec forbids."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        number = float(value)  # an int too large for a double raises OverflowError
        if not math.isfinite(number):
            raise ValueError("an attribute holds a non-finite number")
        return number
    if isinstance(value, (list, tuple)):
        items = tuple(value)
        for item in items:
            if not isinstance(item, str):
                raise ValueError("a list attribute holds something other than strings")
        return items
    raise ValueError(f"an attribute holds a {type(value).__name__}")


class Context:
    """Who a flag is evaluated for: a targeting key and attributes.

    Build one per request (or user) and evaluate many flags with it. It is read-only: the
    attributes are copied, checked and normalised once, here, so evaluation does not repeat that
    work. A context holding a value the spec does not allow (an object, a list of non-strings, a
    non-finite number) is still created, but every evaluation with it returns the default with
    `INVALID_CONTEXT`, since evaluation never raises.

        Context("user-42", {"country": "NL", "plan": "pro", "age": 31})
    """

    __slots__ = ("_attributes", "_attrs", "_invalid", "_targeting_key")

    _targeting_key: str
    _attributes: dict[str, Any]
    _attrs: dict[str, Normalized]
    _invalid: str | None

    def __init__(
        self, targeting_key: str = "", attributes: Mapping[str, AttributeValue] | None = None
    ) -> None:
        invalid: str | None = None
        if type(targeting_key) is not str:
            if isinstance(targeting_key, str):
                targeting_key = str(targeting_key)
            else:
                invalid = "the targeting key is not a string"
                targeting_key = ""
        raw = dict(attributes) if attributes else {}
        attrs: dict[str, Normalized] = {}
        for name, value in raw.items():
            kind = type(value)
            if kind is str or kind is bool or (kind is float and math.isfinite(value)):  # type: ignore[arg-type]
                attrs[name] = value  # type: ignore[assignment]
            elif kind is int and -(2**53) <= value <= 2**53:  # type: ignore[operator]
                attrs[name] = float(value)  # type: ignore[arg-type]
            elif value is not None:
                try:
                    attrs[name] = _normalize(value)  # type: ignore[assignment]
                except (ValueError, OverflowError) as error:
                    invalid = invalid or str(error)
        self._targeting_key = targeting_key
        self._attributes = raw
        self._attrs = attrs
        self._invalid = invalid

    @property
    def targeting_key(self) -> str:
        """The unit bucketed and individually targeted (user id, tenant id, ...); "" = absent."""
        return self._targeting_key

    @property
    def attributes(self) -> Mapping[str, Any]:
        """The attributes as given."""
        return dict(self._attributes)

    @property
    def invalid_reason(self) -> str | None:
        """Why evaluations with this context fail with `INVALID_CONTEXT`, or `None`."""
        return self._invalid

    def with_attributes(self, **attributes: AttributeValue) -> Context:
        """A copy with these attributes added or replaced."""
        return Context(self._targeting_key, {**self._attributes, **attributes})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        """From the JSON form `{"targetingKey": "...", "attributes": {...}}`."""
        return cls(data.get("targetingKey") or "", data.get("attributes") or {})

    def to_proto(self) -> evaluation_pb2.EvaluationContext:
        """The wire form (`flagwire.v1.EvaluationContext`), for remote evaluation."""
        message = evaluation_pb2.EvaluationContext(targeting_key=self._targeting_key)
        for name, value in self._attrs.items():
            target = message.attributes[name]
            if isinstance(value, bool):
                target.bool_value = value
            elif isinstance(value, str):
                target.string_value = value
            elif isinstance(value, float):
                target.number_value = value
            else:
                for item in value:
                    target.list_value.values.add().string_value = item
        return message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return (self._targeting_key, self._attributes) == (
            other._targeting_key,
            other._attributes,
        )

    def __hash__(self) -> int:
        return hash(self._targeting_key)

    def __repr__(self) -> str:
        return f"Context({self._targeting_key!r}, {self._attributes!r})"


EMPTY = Context()
