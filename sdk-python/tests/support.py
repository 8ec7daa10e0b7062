"""A real Flagwire server (the release binary, $FLAGWIRE_BIN) on loopback, which a test can stop
and start again on the same port and data directory, and an admin client for it (blocking grpcio
stubs; a call takes milliseconds, so async tests may call it directly)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from certs import ServerCerts
from google.protobuf import duration_pb2, timestamp_pb2

from flagwire._proto.flagwire.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    flag_pb2,
    metrics_pb2,
    metrics_pb2_grpc,
    release_pb2,
    release_pb2_grpc,
    rollout_pb2,
)

ADMIN = "fw_python_sdk_tests_admin"
ROOT = pathlib.Path(__file__).resolve().parents[2]
WAIT = 10.0

T = TypeVar("T")


def binary() -> str:
    return os.environ.get("FLAGWIRE_BIN") or str(ROOT / "target" / "release" / "flagwire")


def require_binary() -> None:
    """Fails the test when there is no server binary to run, or skips it, saying why, when
    FLAGWIRE_BIN is unset as well (a clean checkout, where nothing has built one). With
    FLAGWIRE_BIN set, as scripts/test-python always sets it, nothing is skipped."""
    if os.access(binary(), os.X_OK):
        return
    hint = "build it (cargo build --release --bin flagwire) or set FLAGWIRE_BIN"
    if os.environ.get("FLAGWIRE_BIN"):
        pytest.fail(f"no server binary at {binary()}: {hint}")
    pytest.skip(f"integration test: no server binary at {binary()}: {hint}")


class Server:
    """`flagwire serve` on 127.0.0.1 (or another loopback `host`) with a 1 s heartbeat; over TLS
    when given `tls` (the certificate and key files, and the CA clients must trust). `port` is
    0 (any) until it started, or set before `start()`."""

    def __init__(
        self, data_dir: pathlib.Path, tls: ServerCerts | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.data_dir = data_dir
        self.tls = tls
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = data_dir.parent / f"{data_dir.name}.log"

    def start(self) -> None:
        assert self.process is None
        command = [
            binary(), "serve",
            "--listen", f"{self.host}:{self.port}",
            "--http-listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--heartbeat-secs", "1",
            "--shutdown-grace-secs", "1",
        ]  # fmt: skip
        if self.tls is not None:
            command += ["--tls-cert", str(self.tls.cert_path), "--tls-key", str(self.tls.key_path)]
        env = {**os.environ, "FLAGWIRE_ADMIN_TOKEN": ADMIN, "RUST_LOG": "warn"}
        with open(self._log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.stop()
                    raise RuntimeError(f"the server did not start; see {self._log}")
                line = self.process.stdout.readline().decode()
                if not line:
                    raise RuntimeError(f"the server exited; see {self._log}")
                found = re.search(rf"flagwire listening grpc={re.escape(self.host)}:(\d+) ", line)
                if found:
                    self.port = int(found.group(1))
                    return

    def stop(self, kill: bool = False) -> None:
        """Stops the server (SIGTERM: streams end and the store is flushed; or SIGKILL)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}"
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def backup(self, path: pathlib.Path) -> None:
        """`flagwire backup` of the running server into `path`."""
        env = {**os.environ, "FLAGWIRE_TOKEN": ADMIN, "FLAGWIRE_ENDPOINT": self.url}
        subprocess.run([binary(), "backup", "--out", str(path)], env=env, check=True)

    def restore(self, path: pathlib.Path) -> None:
        """`flagwire restore` of `path` into this (stopped) server's empty data directory."""
        env = {**os.environ, "FLAGWIRE_TOKEN": ADMIN}
        command = [binary(), "restore", "--in", str(path), "--data-dir", str(self.data_dir)]
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)


def _auth() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {ADMIN}"),)


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def bool_flag(key: str, env: str, *, enabled: bool = False) -> flag_pb2.Flag:
    """A boolean flag on/off: off serves `off`, the default rule `on`."""
    return flag_pb2.Flag(
        key=key,
        type=flag_pb2.VALUE_TYPE_BOOLEAN,
        variants=[
            flag_pb2.Variant(key="on", value=flag_pb2.FlagValue(bool_value=True)),
            flag_pb2.Variant(key="off", value=flag_pb2.FlagValue(bool_value=False)),
        ],
        environments={
            env: flag_pb2.FlagConfig(
                enabled=enabled, off_variant="off", default_rule=flag_pb2.Serve(variant="on")
            )
        },
    )


def split_flag(key: str, env: str) -> flag_pb2.Flag:
    """A boolean flag, enabled, with a 50/50 split of on/off by targeting key."""
    flag = bool_flag(key, env, enabled=True)
    config = flag.environments[env]
    config.default_rule.split.entries.add(variant="on", weight=50, label="canary")
    config.default_rule.split.entries.add(variant="off", weight=50)
    return flag


def held_release(env: str, flags: Sequence[str], basis_points: int = 5000) -> release_pb2.Release:
    """A one-stage release of boolean flags made by `bool_flag(..., enabled=True)`: baseline
    `off`, the stage serves `on` to a share of units (and `off` to an equal control cohort),
    windows of 1 s. The stage lasts at least an hour, so the judge holds it at stage 0 while a
    test runs."""
    return release_pb2.Release(
        name="python sdk test",
        environment=env,
        flags=[release_pb2.ReleaseFlag(flag_key=k, baseline_variant="off") for k in flags],
        stages=[
            release_pb2.Stage(
                name="share",
                audience=release_pb2.Audience(basis_points=basis_points),
                variants=dict.fromkeys(flags, "on"),
                min_duration=duration_pb2.Duration(seconds=3600),
            )
        ],
        policy=rollout_pb2.RolloutPolicy(window=duration_pb2.Duration(seconds=1)),
    )


def window_totals(release: release_pb2.Release) -> dict[str, tuple[int, int, int]]:
    """cohort -> (outcomes, errors, evaluations) summed over the release's returned windows."""
    totals: dict[str, tuple[int, int, int]] = {}
    for window in release.windows:
        for c in window.cohorts:
            n, errors, evaluations = totals.get(c.cohort, (0, 0, 0))
            totals[c.cohort] = (n + c.n, errors + c.errors, evaluations + c.evaluations)
    return totals


class Admin:
    """Administers a server through the admin token."""

    def __init__(self, server: Server) -> None:
        if server.tls is None:
            self.channel = grpc.insecure_channel(server.address)
        else:
            credentials = grpc.ssl_channel_credentials(server.tls.ca_pem)
            # The certificate names localhost (and 127.0.0.1), whatever loopback address the
            # server listens on.
            options = [("grpc.ssl_target_name_override", "localhost")]
            self.channel = grpc.secure_channel(server.address, credentials, options)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.metrics = metrics_pb2_grpc.MetricsServiceStub(self.channel)
        self.releases = release_pb2_grpc.ReleaseServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def env(self, key: str) -> None:
        self.admin.CreateEnvironment(
            admin_pb2.CreateEnvironmentRequest(environment=flag_pb2.Environment(key=key)),
            metadata=_auth(),
        )

    def create_flag(self, flag: flag_pb2.Flag) -> None:
        self.admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag), metadata=_auth())

    def set(self, key: str, env: str, enabled: bool) -> int:
        """Toggles a flag; returns its new version."""
        response = self.admin.SetFlagEnabled(
            admin_pb2.SetFlagEnabledRequest(key=key, environment=env, enabled=enabled),
            metadata=_auth(),
        )
        return response.flag.version

    def delete_flag(self, key: str) -> None:
        self.admin.DeleteFlag(admin_pb2.DeleteFlagRequest(key=key), metadata=_auth())

    def sdk_token(self, name: str, env: str) -> str:
        response = self.admin.CreateApiToken(
            admin_pb2.CreateApiTokenRequest(name=name, role=admin_pb2.ROLE_SDK, environment=env),
            metadata=_auth(),
        )
        return response.secret

    def revision(self, env: str) -> int:
        response = self.admin.GetEnvironment(
            admin_pb2.GetEnvironmentRequest(key=env), metadata=_auth()
        )
        return response.environment.revision

    def usage(self, env: str, flag: str) -> list[metrics_pb2.UsageRow]:
        now = time.time()
        response = self.metrics.GetUsage(
            metrics_pb2.GetUsageRequest(
                environment=env,
                flag_key=flag,
                start_time=_timestamp(now - 3600),
                end_time=_timestamp(now + 3600),
            ),
            metadata=_auth(),
        )
        return list(response.rows)

    def applied(self, env: str, revision: int) -> tuple[int, int]:
        """(connected instances of `env`, of which have applied `revision`)."""
        response = self.metrics.CountAppliedInstances(
            metrics_pb2.CountAppliedInstancesRequest(environment=env, revision=revision),
            metadata=_auth(),
        )
        return response.connected, response.applied

    def create_release(self, release: release_pb2.Release) -> release_pb2.Release:
        """CreateRelease: the stored draft (with its id)."""
        response = self.releases.CreateRelease(
            release_pb2.CreateReleaseRequest(release=release), metadata=_auth()
        )
        return response.release

    def start_release(self, release_id: str) -> release_pb2.Release:
        response = self.releases.StartRelease(
            release_pb2.StartReleaseRequest(id=release_id, reason="python sdk test"),
            metadata=_auth(),
        )
        return response.release

    def get_release(self, release_id: str, window_limit: int = 0) -> release_pb2.Release:
        """GetRelease with up to `window_limit` of its most recent closed windows."""
        response = self.releases.GetRelease(
            release_pb2.GetReleaseRequest(id=release_id, window_limit=window_limit),
            metadata=_auth(),
        )
        return response.release

    def instances(self, env: str) -> list[metrics_pb2.Instance]:
        response = self.metrics.ListInstances(
            metrics_pb2.ListInstancesRequest(environment=env), metadata=_auth()
        )
        return list(response.instances)


def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Polls `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def eventually_async(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class CountingProxy:
    """A TCP forwarder on loopback that counts the connections made through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writers = [writer]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            writers.append(up_writer)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(OSError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in writers:
                w.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Setup:
    """A server with environment `production`, flag `new-checkout` and an sdk token."""

    server: Server
    admin: Admin
    token: str
