"""Flagwire through OpenFeature: the provider evaluates locally from the client's live copy.

    FLAGWIRE_TOKEN=... python examples/openfeature_app.py

(`pip install './sdk-python[openfeature]'`; FLAGWIRE_URL defaults to http://127.0.0.1:7070.)
tests/test_openfeature.py runs it against the real server.
"""

from __future__ import annotations

import os

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.track import TrackingEventDetails

from flagwire.openfeature import FlagwireProvider


def main() -> None:
    url = os.environ.get("FLAGWIRE_URL", "http://127.0.0.1:7070")
    provider = FlagwireProvider.create(url, os.environ["FLAGWIRE_TOKEN"])
    api.set_provider_and_wait(provider)  # waits for the first copy of the flags
    flags = api.get_client()

    def changed(details: EventDetails) -> None:
        print("changed:", details.flags_changed)

    flags.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed)

    ctx = EvaluationContext("user-42", {"country": "NL", "plan": "pro"})
    details = flags.get_boolean_details("new-checkout", False, ctx)
    print(
        f"new-checkout for user-42: {details.value} "
        f"(reason {details.reason}, variant {details.variant})"
    )
    # One of the team's metrics, attributed to what new-checkout serves this user.
    flags.track(
        "checkout", ctx, TrackingEventDetails(value=1, attributes={"flags": "new-checkout"})
    )
    api.shutdown()  # closes the client, which flushes its metrics


if __name__ == "__main__":
    main()
