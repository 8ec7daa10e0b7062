"""`flagwire.openfeature.FlagwireProvider` through the official OpenFeature client
(`openfeature-sdk`) against the real server: every vector case (each case file restored into
its own server), provider events from the sync states, mapped error codes, tracking reaching
the server's usage rows, hooks, and the example."""

from __future__ import annotations

import json
import os
import pathlib
import queue
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagValueType, Reason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails
from support import ADMIN, ROOT, WAIT, Setup, bool_flag, eventually, eventually_async
from test_vectors import case_files, json_equal
from vector_server import SDK, vector_server

from flagwire import AsyncClient, Context
from flagwire._proto.flagwire.v1 import admin_pb2
from flagwire.openfeature import FlagwireProvider

pytestmark = pytest.mark.integration

_TYPES = {
    "VALUE_TYPE_BOOLEAN": "boolean",
    "VALUE_TYPE_STRING": "string",
    "VALUE_TYPE_INTEGER": "integer",
    "VALUE_TYPE_FLOAT": "float",
    "VALUE_TYPE_OBJECT": "object",
}


@pytest.fixture(autouse=True)
def _clean_api() -> Iterator[None]:
    yield
    api.clear_providers()
    api.clear_hooks()


def _of_type(data: dict[str, Any], case: dict[str, Any]) -> str:
    """The OpenFeature call of a case. OpenFeature has no untyped evaluation, so a case of type
    `any` uses its flag's own type (the value it expects is that type's), or for a missing flag
    the type of its default."""
    if case["type"] != "any":
        return str(case["type"])
    for flag in data["flags"]:
        if flag["key"] == case["flag"]:
            return _TYPES[flag["type"]]
    default = case["default"]
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "float"
    return "object" if isinstance(default, dict) else "string"


def _evaluate(client: Any, kind: str, case: dict[str, Any]) -> FlagEvaluationDetails[Any]:
    raw = case.get("context") or {}
    ctx = EvaluationContext(raw.get("targetingKey"), raw.get("attributes") or {})
    key, default = case["flag"], case["default"]
    call = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }[kind]
    return call(key, default, ctx)  # type: ignore[no-any-return]


def _mismatch(case: dict[str, Any], got: FlagEvaluationDetails[Any]) -> str | None:
    e = case["expected"]
    meta = got.flag_metadata
    checks = [
        ("value", json_equal(got.value, e["value"])),
        ("variant", (got.variant or "") == e["variant"]),
        ("reason", str(got.reason) == e["reason"]),
        ("errorCode", (got.error_code.value if got.error_code else None) == e.get("errorCode")),
        ("cohort", meta.get("cohort", "") == e.get("cohort", "")),
        ("rolloutId", meta.get("rolloutId", "") == e.get("rolloutId", "")),
    ]
    if "flagVersion" in e:
        checks.append(("flagVersion", meta.get("flagVersion") == int(e["flagVersion"])))
    wrong = [name for name, ok in checks if not ok]
    if not wrong:
        return None
    return (
        f"{case['description']}: {', '.join(wrong)} differ: got value={got.value!r} "
        f"variant={got.variant!r} reason={got.reason} error={got.error_code} meta={dict(meta)}"
    )


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name)
def test_every_vector_case_through_openfeature(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = json.loads(path.read_text())
    server = vector_server(tmp_path, path)
    try:
        provider = FlagwireProvider.create(server.url, SDK, metrics=False)
        api.set_provider_and_wait(provider, domain=path.name)
        client = api.get_client(path.name)
        failures = []
        for case in data["cases"]:
            got = _evaluate(client, _of_type(data, case), case)
            failure = _mismatch(case, got)
            if failure is not None:
                failures.append(failure)
        assert not failures, "\n".join(failures)
        assert len(data["cases"]) > 0
    finally:
        api.clear_providers()
        server.stop()


class Events:
    """Every provider event a client's handlers see, in order (handlers run on the Flagwire
    client's thread)."""

    def __init__(self, client: Any) -> None:
        self.queue: queue.Queue[tuple[ProviderEvent, EventDetails]] = queue.Queue()
        for event in ProviderEvent:
            client.add_handler(event, lambda d, e=event: self.queue.put((e, d)))

    def next(self, wanted: ProviderEvent) -> EventDetails:
        """The next `wanted` event of our provider (others before it, and the default no-op
        provider's, are skipped)."""
        while True:
            event, details = self.queue.get(timeout=WAIT)
            if event is wanted and details.provider_name == "flagwire":
                return details


def _provider(setup: Setup, *, ready_timeout: float = 5.0, **options: Any) -> FlagwireProvider:
    return FlagwireProvider.create(
        setup.server.url,
        setup.token,
        ready_timeout=ready_timeout,
        min_backoff=0.05,
        max_backoff=0.2,
        **options,
    )


def test_events_follow_changes_and_sync_states(setup: Setup) -> None:
    provider = _provider(setup)
    api.set_provider_and_wait(provider, domain="events")
    client = api.get_client("events")
    events = Events(client)  # a handler added in the provider's state runs at once
    assert events.next(ProviderEvent.PROVIDER_READY).provider_name == "flagwire"
    ctx = EvaluationContext("user-1")
    assert client.get_boolean_value("new-checkout", True, ctx) is False

    setup.admin.set("new-checkout", "production", True)
    changed = events.next(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert changed.flags_changed == ["new-checkout"]
    assert changed.metadata["revision"] == setup.admin.revision("production")
    assert client.get_boolean_value("new-checkout", False, ctx) is True

    setup.server.stop()
    events.next(ProviderEvent.PROVIDER_STALE)
    assert client.get_provider_status() is ProviderStatus.STALE
    details = client.get_boolean_details("new-checkout", False, ctx)
    assert (details.value, details.error_code) == (True, None), "serves the last copy"

    setup.server.start()
    events.next(ProviderEvent.PROVIDER_READY)
    assert client.get_provider_status() is ProviderStatus.READY

    # A refused token: revoke it, restart the server so the stream reconnects, and the
    # provider reports ERROR (and keeps serving its copy).
    tokens = setup.admin.admin.ListApiTokens(
        admin_pb2.ListApiTokensRequest(), metadata=(("authorization", f"Bearer {ADMIN}"),)
    )
    (svc,) = [t for t in tokens.tokens if t.name == "svc"]
    setup.admin.admin.RevokeApiToken(
        admin_pb2.RevokeApiTokenRequest(id=svc.id, reason="test"),
        metadata=(("authorization", f"Bearer {ADMIN}"),),
    )
    setup.server.restart()
    error = events.next(ProviderEvent.PROVIDER_ERROR)
    assert error.error_code is ErrorCode.GENERAL
    assert client.get_provider_status() is ProviderStatus.ERROR
    assert client.get_boolean_value("new-checkout", False, ctx) is True


def test_a_refused_token_fails_initialization(setup: Setup) -> None:
    provider = FlagwireProvider.create(setup.server.url, "fw_not_a_token", max_backoff=0.2)
    client = api.get_client("refused")
    events = Events(client)
    with pytest.raises(Exception, match="refused the token"):
        api.set_provider_and_wait(provider, domain="refused")
    assert events.next(ProviderEvent.PROVIDER_ERROR).error_code is ErrorCode.GENERAL
    details = client.get_boolean_details("new-checkout", True)
    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.PROVIDER_NOT_READY,
    )


def test_flags_arriving_after_the_ready_timeout_make_the_provider_ready(setup: Setup) -> None:
    setup.server.stop()
    provider = _provider(setup, ready_timeout=0.2)
    client = api.get_client("late")
    events = Events(client)
    with pytest.raises(ProviderNotReadyError):
        api.set_provider_and_wait(provider, domain="late")
    assert events.next(ProviderEvent.PROVIDER_ERROR).error_code is ErrorCode.PROVIDER_NOT_READY
    assert client.get_provider_status() is ProviderStatus.ERROR
    details = client.get_boolean_details("new-checkout", True)
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    setup.server.start()
    events.next(ProviderEvent.PROVIDER_READY)
    assert client.get_provider_status() is ProviderStatus.READY
    assert client.get_boolean_value("new-checkout", True, EvaluationContext("user-1")) is False


async def test_an_async_client_the_app_owns(setup: Setup) -> None:
    """With an `AsyncClient` started by the app: async evaluation, change events on the app's
    loop, and shutting the provider down leaves the client running."""
    async with AsyncClient(setup.server.url, setup.token) as flagwire:
        await flagwire.wait_ready(WAIT)
        api.set_provider_and_wait(FlagwireProvider(flagwire), domain="async")
        client = api.get_client("async")
        changed: list[list[str] | None] = []
        client.add_handler(
            ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
            lambda d: changed.append(d.flags_changed),
        )
        ctx = EvaluationContext("user-1")
        assert await client.get_boolean_value_async("new-checkout", True, ctx) is False
        setup.admin.set("new-checkout", "production", True)
        await eventually_async(lambda: changed, "CONFIGURATION_CHANGED")
        assert changed == [["new-checkout"]]
        assert await client.get_boolean_value_async("new-checkout", False, ctx) is True
        api.clear_providers()
        # The app's client stays open: it still follows changes.
        setup.admin.set("new-checkout", "production", False)
        await eventually_async(
            lambda: not flagwire.get_bool("new-checkout", Context("user-1"), True),
            "the change after the provider's shutdown",
        )


def test_errors_map_to_openfeature_codes(setup: Setup) -> None:
    api.set_provider_and_wait(_provider(setup), domain="errors")
    client = api.get_client("errors")
    ctx = EvaluationContext("user-1")
    mismatch = client.get_string_details("new-checkout", "dflt", ctx)
    assert (mismatch.value, mismatch.reason, mismatch.error_code) == (
        "dflt",
        Reason.ERROR,
        ErrorCode.TYPE_MISMATCH,
    )
    missing = client.get_integer_details("no-such-flag", 7, ctx)
    assert (missing.value, missing.error_code) == (7, ErrorCode.FLAG_NOT_FOUND)
    invalid = client.get_boolean_details(
        "new-checkout", True, EvaluationContext("user-1", {"nested": {"a": 1}})
    )
    assert (invalid.value, invalid.error_code) == (True, ErrorCode.INVALID_CONTEXT)
    ok = client.get_boolean_details("new-checkout", True, ctx)
    assert (ok.value, ok.variant, ok.reason, ok.error_code) == (False, "off", "DISABLED", None)
    assert ok.flag_metadata == {"flagVersion": 1}


def test_track_reaches_the_servers_usage_rows(setup: Setup) -> None:
    provider = _provider(setup, metrics_flush_interval=3600)
    api.set_provider_and_wait(provider, domain="track")
    client = api.get_client("track")
    ctx = EvaluationContext("user-1")
    # Inside a request scope: the events go to what the scope was served.
    with provider.client.scope(Context("user-1")):
        assert client.get_boolean_value("new-checkout", True, ctx) is False
        client.track("hits", ctx, TrackingEventDetails(value=3))
        client.track(
            "mem0_write", ctx, TrackingEventDetails(attributes={"kind": "outcome", "ok": False})
        )
        client.track(
            "fast_path_ms", ctx, TrackingEventDetails(value=2.0, attributes={"kind": "observe"})
        )
    # Outside any scope: the `flags` attribute names the flags.
    client.track("signup", ctx, TrackingEventDetails(attributes={"flags": ["new-checkout"]}))
    client.track("dropped", ctx)  # nothing to belong to
    assert provider.client.flush(), "the report carrying metrics was accepted"
    (row,) = setup.admin.usage("production", "new-checkout")
    stats = {m.name: (m.n, m.value) for m in row.metrics}
    assert row.variant == "off"
    assert stats["hits"] == (1, 3.0)
    assert stats["mem0_write"] == (1, 0.0)
    assert stats["signup"] == (1, 1.0)
    assert stats["fast_path_ms"][0] == 1
    assert set(stats) == {"hits", "mem0_write", "signup", "fast_path_ms"}


class Recording(Hook):
    """Adds an attribute before evaluation and records what it saw after."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, str | None]] = []
        self.errors: list[str] = []

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext:
        return EvaluationContext(attributes={"plan": "pro"})

    def after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.seen.append((details.flag_key, details.value, details.variant))

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.errors.append(hook_context.flag_key)


def test_hooks_run_and_their_context_reaches_the_provider(setup: Setup) -> None:
    # A rule on `plan` that only the hook's attribute can match.
    flag = bool_flag("pro-only", "production", enabled=True)
    config = flag.environments["production"]
    config.default_rule.variant = "off"
    rule = config.rules.add()
    clause = rule.clauses.add(attribute="plan", operator=1)  # OPERATOR_IN
    clause.values.add().string_value = "pro"
    rule.serve.variant = "on"
    setup.admin.create_flag(flag)
    api.set_provider_and_wait(_provider(setup), domain="hooks")
    client = api.get_client("hooks")
    assert client.get_boolean_value("pro-only", True, EvaluationContext("user-1")) is False
    hook = Recording()
    client.add_hooks([hook])
    assert client.get_boolean_value("pro-only", False, EvaluationContext("user-1")) is True
    assert client.get_boolean_value("missing", False, EvaluationContext("user-1")) is False
    assert hook.seen == [("pro-only", True, "on")]
    assert hook.errors == ["missing"]


def test_the_example_runs(setup: Setup) -> None:
    example = ROOT / "sdk-python" / "examples" / "openfeature_app.py"
    setup.admin.set("new-checkout", "production", True)
    env = {**os.environ, "FLAGWIRE_URL": setup.server.url, "FLAGWIRE_TOKEN": setup.token}
    done = subprocess.run(
        [sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=WAIT * 3
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "new-checkout for user-42: True (reason STATIC, variant on)",
    ]
    eventually(
        lambda: any(
            m.name == "checkout"
            for r in setup.admin.usage("production", "new-checkout")
            for m in r.metrics
        ),
        "the example's tracked event in the usage rows",
    )
