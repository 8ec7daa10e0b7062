"""Adapter for PyPI `openfeature-sdk` 0.10 + `openfeature-provider-ofrep` 0.3 (see
../harness.py for the protocol): each request is evaluated with the typed `*_details` call
its `type` names, through the official SDK client."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.flag_evaluation import FlagEvaluationDetails

changed = 0


def on_change(_details: EventDetails) -> None:
    global changed
    changed += 1


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    client = api.get_client()
    ctx = dict(request["context"])
    key = ctx.pop("targetingKey", None)
    context = EvaluationContext(targeting_key=key, attributes=ctx)
    flag, kind, default = request["flag"], request["type"], request["default"]
    details: FlagEvaluationDetails[Any]
    if kind == "boolean":
        details = client.get_boolean_details(flag, default, context)
    elif kind == "string":
        details = client.get_string_details(flag, default, context)
    elif kind == "integer":
        details = client.get_integer_details(flag, default, context)
    elif kind == "float":
        details = client.get_float_details(flag, default, context)
    else:
        details = client.get_object_details(flag, default, context)
    return {
        "value": details.value,
        "variant": details.variant or "",
        "reason": str(details.reason) if details.reason else None,
        "errorCode": str(details.error_code) if details.error_code else None,
        "metadata": dict(details.flag_metadata),
    }


def main() -> None:
    token = os.environ["OFREP_TOKEN"]
    provider = OFREPProvider(
        os.environ["OFREP_URL"], headers_factory=lambda: {"Authorization": f"Bearer {token}"}
    )
    api.set_provider_and_wait(provider)
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "events":
            answer: dict[str, Any] = {"changed": changed}
        else:
            answer = evaluate(request)
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
