"""PyPI `openfeature-provider-flagd` 0.6.1 in in-process mode, fed by Flagwire's
`flagd.sync.v1.FlagSyncService`: it evaluates the exported flagd JSON with its own JsonLogic
engine, and must agree with `flagwire-core` on every vector case that JSON can express. Flags the
export leaves out must answer FLAG_NOT_FOUND with the caller's default, never another value."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from cases import Tally, check, partial_version, targeting_key_attribute
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from test_rpc import CHECKOUT, WAIT, credentials

from fixture import Fixture, case_files


def in_process_provider(fixture: Fixture) -> FlagdProvider:
    return FlagdProvider(
        host="127.0.0.1",
        port=fixture.port,
        resolver_type=ResolverType.IN_PROCESS,
        channel_credentials=credentials(fixture.token),
        deadline_ms=30_000,  # generous: scripts/test runs this beside other suites on 2 cores
    )


def document(fixture: Fixture) -> dict[str, Any]:
    """The flagd JSON the server exports, through FetchAllFlags."""
    with grpc.secure_channel(f"127.0.0.1:{fixture.port}", credentials(fixture.token)) as channel:
        stub = sync_pb2_grpc.FlagSyncServiceStub(channel)
        response = stub.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=WAIT)
    parsed: dict[str, Any] = json.loads(response.flag_configuration)
    return parsed


def flagd_reason(reason: str, targeting: bool) -> str:
    """Our reason as flagd's engine names the same outcome (CASES.md): it knows STATIC (no
    targeting), DEFAULT (targeting returned null) and TARGETING_MATCH."""
    if reason in ("STATIC", "DISABLED"):
        return "DEFAULT" if targeting else "STATIC"
    if reason == "PREREQUISITE_FAILED":
        return "TARGETING_MATCH"
    return reason


def expect_in_process(fixture: Fixture, doc: Mapping[str, Any]) -> Any:
    flags: Mapping[str, Any] = doc["flags"]
    omitted = set(filter(None, doc["metadata"].get("flagwireOmitted", "").split(",")))

    def expect(case: Mapping[str, Any]) -> dict[str, Any] | str:
        flag = case["flag"]
        expected = dict(case["expected"])
        if case["type"] == "any":
            return "no expected type (OpenFeature calls are typed)"
        if targeting_key_attribute(case):
            return "an attribute named targetingKey (a flat context has one such field)"
        if flag in omitted:
            # Not expressible in flagd JSON: the provider must not answer with a value.
            return {
                "value": case["default"],
                "variant": "",
                "reason": "ERROR",
                "errorCode": "FLAG_NOT_FOUND",
            }
        if partial_version(case, fixture.file["flags"]):
            return "a partial version in a SEMVER clause (flagd pads 1.9 to 1.9.0)"
        if expected.get("errorCode") == "INVALID_CONTEXT":
            return "invalid context (flagd providers do not check attribute types)"
        if expected.get("errorCode") == "TYPE_MISMATCH" and case["type"] == "float":
            return "an integer flag read as float (flagd numbers have one type)"
        if expected["reason"] != "ERROR":
            expected["reason"] = flagd_reason(expected["reason"], "targeting" in flags[flag])
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


def test_in_process_mode_agrees_with_core_on_every_vector_flagd_json_expresses(
    fixture: Fixture,
) -> None:
    doc = document(fixture)
    domain = f"in-process-{fixture.port}"
    api.set_provider_and_wait(in_process_provider(fixture), domain)
    try:
        client = api.get_client(domain)
        assert client.get_provider_status() == ProviderStatus.READY
        tally = Tally()
        check(client, fixture.file["cases"], expect_in_process(fixture, doc), tally)
        print(tally.summary())
        assert not tally.failures, "\n".join(tally.failures)
        assert tally.passed > 0
    finally:
        api.shutdown()


def test_a_change_through_the_admin_api_reaches_the_in_process_provider(
    tmp_path: pathlib.Path,
) -> None:
    cases = tmp_path / "one.json"
    cases.write_text(json.dumps({"environment": "prod", "flags": [CHECKOUT], "cases": []}))
    fixture = Fixture(cases)
    try:
        changed: list[list[str]] = []
        arrived = threading.Event()

        def on_change(details: EventDetails) -> None:
            changed.append(list(details.flags_changed or []))
            arrived.set()

        api.set_provider_and_wait(in_process_provider(fixture), "in-process-events")
        client = api.get_client("in-process-events")
        client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_change)
        assert client.get_boolean_value("checkout", True) is False
        fixture.cli("enable", "checkout", "--env", "prod")
        assert arrived.wait(WAIT), "no PROVIDER_CONFIGURATION_CHANGED within the deadline"
        assert "checkout" in changed[-1]
        deadline = time.monotonic() + WAIT
        while client.get_boolean_value("checkout", False) is not True:
            assert time.monotonic() < deadline, "the change never showed in evaluations"
    finally:
        api.shutdown()
        fixture.stop()
