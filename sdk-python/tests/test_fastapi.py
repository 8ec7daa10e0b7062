"""flagwire.fastapi against the real server: request latency and 5xx errors attributed to the
variants served, through httpx.ASGITransport and through the example app in a real uvicorn
process."""

import asyncio
import collections
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from support import WAIT, Admin, Server, split_flag

from flagwire import AsyncClient, Context, State
from flagwire.fastapi import (
    FlagwireMiddleware,
    RequestFlags,
    flags_dependency,
    flagwire_lifespan,
)

pytestmark = pytest.mark.integration

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _setup(admin: Admin) -> str:
    admin.env("production")
    admin.create_flag(split_flag("new-checkout", "production"))
    return admin.sdk_token("svc", "production")


def _usage(admin: Admin) -> dict[str, tuple[int, int, int]]:
    rows = admin.usage("production", "new-checkout")
    return {r.variant: (r.evaluations, r.successes, r.errors) for r in rows}


def build_app(client: AsyncClient) -> FastAPI:
    async def context_of(request: Request) -> Context:  # an async builder
        return Context(request.query_params.get("user", ""))

    Flags = Annotated[RequestFlags, Depends(flags_dependency(client, context_of))]
    app = FastAPI(lifespan=flagwire_lifespan(client, wait_ready=WAIT))
    app.add_middleware(FlagwireMiddleware)

    @app.get("/checkout")
    async def checkout(flags: Flags, fail: str = "") -> dict[str, str]:
        on = flags.get_bool("new-checkout", False)
        if fail == "raise":
            raise RuntimeError("boom")
        if fail == "503":
            raise HTTPException(503, "unavailable")
        if fail == "404":
            raise HTTPException(404, "not found")  # a client error: a success for the server
        return {"checkout": "new" if on else "classic"}

    @app.get("/sync")
    def sync_handler(flags: Flags) -> dict[str, bool]:
        return {"on": flags.get_bool("new-checkout", False)}

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"flags": False}

    return app


async def test_middleware_attributes_latency_and_errors_to_the_variant_served(
    server: Server, admin: Admin
) -> None:
    token = _setup(admin)
    client = AsyncClient(server.url, token, metrics_flush_interval=3600)
    app = build_app(client)
    expected: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        assert client.state is State.READY, "the lifespan waited until ready"
        for i in range(60):
            user = f"user-{i}"
            variant = "on" if client.get_bool("new-checkout", Context(user), False) else "off"
            expected[variant][0] += 1  # the test's own read
            fail = ""
            if variant == "on" and i % 3 == 0:
                fail = "raise" if i % 2 == 0 else "503"
            elif i % 5 == 0:
                fail = "404"
            response = await http.get("/checkout", params={"user": user, "fail": fail})
            assert (response.status_code >= 500) == (fail in ("raise", "503")), fail
            expected[variant][0] += 1
            expected[variant][1 if fail in ("", "404") else 2] += 1
        response = await http.get("/sync", params={"user": "user-1"})
        variant = "on" if response.json()["on"] else "off"
        expected[variant][0] += 1
        expected[variant][1] += 1
        await http.get("/plain")  # no flag read: nothing recorded
    # Leaving the lifespan closed the client, which flushed.
    assert _usage(admin) == {k: tuple(v) for k, v in expected.items()}
    assert expected["on"][2] > 0
    assert expected["off"][2] == 0
    assert set(expected) == {"on", "off"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_example_app_under_uvicorn(server: Server, admin: Admin) -> None:
    token = _setup(admin)
    port = _free_port()
    env = {**os.environ, "FLAGWIRE_URL": server.url, "FLAGWIRE_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT
        # uvicorn drops a connection after an unhandled exception: one connection per request.
        with httpx.Client(base_url=base, timeout=5, headers={"connection": "close"}) as http:
            while True:
                try:
                    http.get("/banner")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "uvicorn did not start"
                    assert process.poll() is None, "uvicorn exited"
                    time.sleep(0.05)
            expected: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
            for i in range(40):
                headers = {"x-user-id": f"user-{i}"}
                body = http.get("/checkout", headers=headers).json()
                variant = "on" if body["checkout"] == "new" else "off"
                expected[variant][0] += 1
                expected[variant][1] += 1
                if variant == "on" and i % 2 == 0:
                    failed = http.get("/checkout?simulate_error=true", headers=headers)
                    assert failed.status_code == 500
                    expected[variant][0] += 1
                    expected[variant][2] += 1
        process.send_signal(signal.SIGTERM)  # graceful: the lifespan closes the client
        # uvicorn shuts down, then re-raises the signal it caught for its parent to see.
        assert process.wait(WAIT) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert _usage(admin) == {k: tuple(v) for k, v in expected.items()}
    rows = admin.usage("production", "new-checkout")
    assert all(r.p50_us > 0 for r in rows), rows
    assert set(expected) == {"on", "off"}


async def test_lifespan_goes_on_without_flags_when_the_token_is_refused(server: Server) -> None:
    client = AsyncClient(server.url, "fw_wrong", max_backoff=0.5)
    app = FastAPI(lifespan=flagwire_lifespan(client, wait_ready=WAIT))
    app.add_middleware(FlagwireMiddleware)

    @app.get("/")
    async def index(flags: Annotated[RequestFlags, Depends(flags_dependency(client))]) -> bool:
        return flags.get_bool("new-checkout", True)

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        assert client.state is State.ERROR
        assert (await http.get("/")).json() is True, "the default"
    await asyncio.sleep(0)
