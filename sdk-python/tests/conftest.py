"""Fixtures: a real server per test (fresh data directory, free port), its admin client, and a
production environment with one boolean flag and an sdk token."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest
from support import Admin, Server, Setup, bool_flag, require_binary


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With FLAGWIRE_BIN set (scripts/test-python sets it) a skipped test fails the run: the
    integration tests must all have run against that binary."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if os.environ.get("FLAGWIRE_BIN") and skipped and exitstatus == 0:
        reporter.write_line(f"FLAGWIRE_BIN is set, so {len(skipped)} skipped tests fail the run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[Server]:
    require_binary()
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
