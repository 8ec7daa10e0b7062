"""Local evaluation and middleware overhead, with pytest-benchmark:

    cd sdk-python && .venv/bin/pytest benchmarks --benchmark-only

Flags and context mirror core/tests/support/fixtures.rs (see fixtures.py). The clients read a
bootstrap file and never connect, so nothing but evaluation (and metrics counting, on by
default) is measured. scripts/test-python runs each once, untimed (--benchmark-disable).
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fixtures import context, write_bootstrap

from flagwire import AsyncClient, Client
from flagwire.fastapi import FlagwireMiddleware

Benchmark = Any  # pytest-benchmark's fixture


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return write_bootstrap(tmp_path_factory.mktemp("bench") / "snapshot.bin")


@pytest.fixture(scope="module")
def client(bootstrap: pathlib.Path) -> AsyncClient:
    """Metrics on (the default): every evaluation is counted."""
    return AsyncClient("http://127.0.0.1:1", "-", bootstrap_file=bootstrap)


@pytest.fixture(scope="module")
def bare(bootstrap: pathlib.Path) -> Client:
    """Metrics off: evaluation alone."""
    return Client("http://unused.invalid", "-", bootstrap_file=bootstrap, offline=True)


def test_bool_flag(benchmark: Benchmark, client: AsyncClient) -> None:
    ctx = context()
    assert benchmark(client.get_bool, "bool-flag", ctx, False) is True


def test_split_flag_5_rules(benchmark: Benchmark, client: AsyncClient) -> None:
    ctx = context()
    assert benchmark(client.get_str, "split-flag", ctx, "none") in ("red", "green", "blue")


def test_split_flag_5_rules_details(benchmark: Benchmark, client: AsyncClient) -> None:
    ctx = context()
    details = benchmark(client.get_str_details, "split-flag", ctx, "none")
    assert details.reason.value == "SPLIT"


def test_bool_flag_metrics_off(benchmark: Benchmark, bare: Client) -> None:
    ctx = context()
    assert benchmark(bare.get_bool, "bool-flag", ctx, False) is True


def test_split_flag_5_rules_metrics_off(benchmark: Benchmark, bare: Client) -> None:
    ctx = context()
    assert benchmark(bare.get_str, "split-flag", ctx, "none") in ("red", "green", "blue")


def test_measure(benchmark: Benchmark, client: AsyncClient) -> None:
    ctx = context()

    def measured() -> None:
        with client.measure("split-flag", ctx):
            pass

    benchmark(measured)


def test_scope_two_flags(benchmark: Benchmark, client: AsyncClient) -> None:
    ctx = context()

    def scoped() -> None:
        with client.scope(ctx) as flags:
            flags.get_str("split-flag", "none")
            flags.get_bool("bool-flag", False)

    benchmark(scoped)


def test_context_creation(benchmark: Benchmark) -> None:
    benchmark(context)


# -- middleware ---------------------------------------------------------------------------------

REQUESTS = 1000


def _asgi(client: AsyncClient, middleware: bool) -> Callable[[], None]:
    """Runs REQUESTS requests through a minimal ASGI app that reads the split flag (with or
    without FlagwireMiddleware) on one event loop; returns the runner."""
    ctx = context()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        client.get_str("split-flag", ctx, "none")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    handler = FlagwireMiddleware(app) if middleware else app
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    async def many() -> None:
        for _ in range(REQUESTS):
            await handler(scope, receive, send)

    loop = asyncio.new_event_loop()

    def run() -> None:
        loop.run_until_complete(many())

    run.loop = loop  # type: ignore[attr-defined]
    return run


@pytest.fixture
def asgi_runs(client: AsyncClient) -> Iterator[Callable[[bool], Callable[[], None]]]:
    made: list[Callable[[], None]] = []

    def make(middleware: bool) -> Callable[[], None]:
        run = _asgi(client, middleware)
        made.append(run)
        return run

    yield make
    for run in made:
        run.loop.close()  # type: ignore[attr-defined]


def test_asgi_1000_requests_without_middleware(
    benchmark: Benchmark, asgi_runs: Callable[[bool], Callable[[], None]]
) -> None:
    benchmark(asgi_runs(False))


def test_asgi_1000_requests_with_middleware(
    benchmark: Benchmark, asgi_runs: Callable[[bool], Callable[[], None]]
) -> None:
    benchmark(asgi_runs(True))
