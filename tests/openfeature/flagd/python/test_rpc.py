"""PyPI `openfeature-provider-flagd` 0.6.1 in RPC mode (it calls `flagd.evaluation.v2`)
against the server binary: every vector case the protocol carries, then a change made through
the admin API arriving as PROVIDER_CONFIGURATION_CHANGED."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from cases import RPC_GENERAL, Tally, check, targeting_key_attribute
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import CacheType, ResolverType
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from fixture import Fixture, case_files

WAIT = 30.0

CHECKOUT = {
    "key": "checkout",
    "type": "VALUE_TYPE_BOOLEAN",
    "variants": [
        {"key": "on", "value": {"boolValue": True}},
        {"key": "off", "value": {"boolValue": False}},
    ],
    "environments": {
        "prod": {"enabled": False, "offVariant": "off", "defaultRule": {"variant": "on"}}
    },
}
"""A boolean flag, off in `prod`: the event tests turn it on."""


def credentials(token: str) -> grpc.ChannelCredentials:
    """The sdk token as `authorization: Bearer` on a plaintext loopback channel: gRPC only
    sends call credentials over a channel it deems secure, and local credentials are that."""
    return grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.access_token_call_credentials(token),
    )


def rpc_provider(fixture: Fixture) -> FlagdProvider:
    # The provider's cache keys results by flag only and serves a cached STATIC result to any
    # later call of another type, which would hide TYPE_MISMATCH: the cases run without it.
    return FlagdProvider(
        host="127.0.0.1",
        port=fixture.port,
        resolver_type=ResolverType.RPC,
        channel_credentials=credentials(fixture.token),
        cache=CacheType.DISABLED,
        deadline_ms=30_000,  # generous: scripts/test runs this beside other suites on 2 cores
    )


def expect_rpc(fixture: Fixture) -> Any:
    def expect(case: Mapping[str, Any]) -> dict[str, Any] | str:
        if case["type"] == "any":
            return "no expected type (OpenFeature calls are typed)"
        if targeting_key_attribute(case):
            return "an attribute named targetingKey (a flat context has one such field)"
        expected = dict(case["expected"])
        if expected.get("errorCode") in RPC_GENERAL:
            expected["errorCode"] = "GENERAL"
        # This provider drops the response metadata (flagVersion, cohort, rolloutId): nothing
        # to compare; the server's own tests check what it sends.
        return expected

    return expect


@pytest.fixture(params=case_files(), ids=lambda p: p.name)
def fixture(request: pytest.FixtureRequest) -> Iterator[Fixture]:
    path: pathlib.Path = request.param
    f = Fixture(path)
    try:
        yield f
    finally:
        f.stop()


def test_rpc_mode_agrees_with_core_on_every_vector_it_carries(fixture: Fixture) -> None:
    domain = f"rpc-{fixture.port}"
    api.set_provider_and_wait(rpc_provider(fixture), domain)
    try:
        client = api.get_client(domain)
        assert client.get_provider_status() == ProviderStatus.READY
        tally = Tally()
        check(client, fixture.file["cases"], expect_rpc(fixture), tally)
        print(tally.summary())
        assert not tally.failures, "\n".join(tally.failures)
        assert tally.passed > 0
    finally:
        api.shutdown()


def test_a_change_through_the_admin_api_reaches_the_rpc_provider(tmp_path: pathlib.Path) -> None:
    cases = tmp_path / "one.json"
    cases.write_text(json.dumps({"environment": "prod", "flags": [CHECKOUT], "cases": []}))
    fixture = Fixture(cases)
    try:
        changed: list[list[str]] = []
        arrived = threading.Event()

        def on_change(details: EventDetails) -> None:
            changed.append(list(details.flags_changed or []))
            arrived.set()

        api.set_provider_and_wait(rpc_provider(fixture), "rpc-events")
        client = api.get_client("rpc-events")
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
        before = client.get_boolean_details("checkout", True)
        fixture.cli("enable", "checkout", "--env", "prod")
        assert arrived.wait(WAIT), "no PROVIDER_CONFIGURATION_CHANGED within the deadline"
        assert changed[0] == ["checkout"]
        deadline = time.monotonic() + WAIT
        while client.get_boolean_details("checkout", True).reason == before.reason:
            assert time.monotonic() < deadline, "the change never showed in evaluations"
        assert before.reason == "DISABLED"
    finally:
        api.shutdown()
        fixture.stop()
