"""Fixtures: a real server per test (fresh data directory, free port), its admin client, and a
production environment with one boolean flag and an sdk token."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
from support import Admin, Server, Setup, binary, bool_flag


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[Server]:
    if not os.access(binary(), os.X_OK):
        pytest.fail(f"no server binary at {binary()}: build it or set FLAGWIRE_BIN")
    server = Server(tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[Admin]:
    admin = Admin(server)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def setup(server: Server, admin: Admin) -> Setup:
    """Environment `production`, flag `new-checkout` (disabled: serves `off`) and an sdk token."""
    admin.env("production")
    admin.create_flag(bool_flag("new-checkout", "production"))
    return Setup(server, admin, admin.sdk_token("svc", "production"))
