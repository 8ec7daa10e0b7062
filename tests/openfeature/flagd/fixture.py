"""A real Flagwire server ($FLAGWIRE_BIN) on loopback holding one vector case file, for the
flagd acceptance tests of every language.

As a module (Python tests): `Fixture(path)` writes the file into a fresh data directory with
the server crate's `vector_store` example (`flagwire_server::vector_case`, the loader every
suite shares), with an admin token `ADMIN` and an sdk token `SDK` of the file's environment,
then starts the server on it.
As a program (the Node and Rust tests): `python fixture.py <case-file> [--anonymous]` does the
same (`--anonymous`: the server also answers flagd calls without a token, for providers that
cannot send one), prints one JSON line (`port`, `token`, `admin`, `environment`, the
exported flagd `document` (and `document_utf8`, with `fractional=utf8`), the file's `cases` and
`flags`), then runs the commands it reads
(`enable <flag>`, answered by a JSON line) and stops the server when its stdin closes.

Some vector flags are invalid on purpose (they pin how evaluation treats damaged data): the admin
API rightly refuses them, so the store is written directly and the providers face them too.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "vectors"
ADMIN = "fw_flagd_acceptance_admin"
SDK = "fw_flagd_acceptance_sdk"
WAIT = 30.0


def binary() -> str:
    """The server binary: $FLAGWIRE_BIN (scripts/test-flagd always sets it)."""
    path = os.environ.get("FLAGWIRE_BIN") or str(ROOT / "target" / "debug" / "flagwire")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no server binary at {path}: build it or set FLAGWIRE_BIN")
    return path


def vector_store() -> str:
    """The server crate's `vector_store` example: $FLAGWIRE_VECTOR_STORE, or
    `examples/vector_store` next to the server binary (scripts/test-flagd always sets it)."""
    path = os.environ.get("FLAGWIRE_VECTOR_STORE") or str(
        pathlib.Path(binary()).parent / "examples" / "vector_store"
    )
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no vector_store at {path}: build it or set FLAGWIRE_VECTOR_STORE")
    return path


def case_files() -> list[pathlib.Path]:
    """Every case file named by tests/vectors/index.json, then those of $FLAGWIRE_VECTORS."""
    index = json.loads((VECTORS / "index.json").read_text())
    files = [VECTORS / name for name in index["files"]]
    extra = os.environ.get("FLAGWIRE_VECTORS", "")
    return files + [pathlib.Path(p) for p in extra.split(os.pathsep) if p]


class Fixture:
    """The server with `path` loaded; `stop()` ends it."""

    def __init__(self, path: pathlib.Path, *, anonymous: bool = False) -> None:
        self.anonymous = anonymous
        self.file: dict[str, Any] = json.loads(path.read_text())
        self.environment: str = self.file["environment"]
        self.token = SDK
        self._dir = tempfile.TemporaryDirectory(prefix="flagwire-flagd-")
        self._log = pathlib.Path(self._dir.name) / "server.log"
        self.port = 0
        data = str(pathlib.Path(self._dir.name) / "data")
        subprocess.run([vector_store(), str(path), data, ADMIN, SDK], check=True)
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        command = [
            binary(), "serve",
            "--listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0",
            "--data-dir", str(pathlib.Path(self._dir.name) / "data"),
            "--shutdown-grace-secs", "1",
        ]  # fmt: skip
        if self.anonymous:
            # For providers that cannot send `authorization`: flagd calls without a token read
            # the file's environment.
            command += ["--flagd-environment", self.environment]
        env = {**os.environ, "FLAGWIRE_ADMIN_TOKEN": ADMIN, "RUST_LOG": "warn"}
        with open(self._log, "ab") as log:
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        assert process.stdout is not None
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    process.kill()
                    raise RuntimeError(f"the server did not start; see {self._log}")
                line = process.stdout.readline().decode()
                if not line:
                    raise RuntimeError(f"the server exited; see {self._log}")
                found = re.search(r"flagwire listening grpc=127\.0\.0\.1:(\d+) ", line)
                if found:
                    self.port = int(found.group(1))
                    return process

    def cli(self, *args: str) -> str:
        """Runs `flagwire <args>` as the admin against this server; its stdout, stripped."""
        env = {
            **os.environ,
            "FLAGWIRE_TOKEN": ADMIN,
            "FLAGWIRE_ENDPOINT": f"http://127.0.0.1:{self.port}",
        }
        done = subprocess.run([binary(), *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CliError(done.stderr.strip())
        out = done.stdout.strip()
        if args[:2] == ("tokens", "create"):
            return str(json.loads(out)["secret"])
        return out

    def stop(self) -> None:
        """SIGTERM, then waits; the data directory goes too."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._dir.cleanup()


class CliError(Exception):
    """`flagwire` exited non-zero; the message is its stderr."""


def document(fixture: Fixture, selector: str = "") -> dict[str, Any]:
    """The flagd JSON the server exports for the fixture's environment (FetchAllFlags), with
    flagd's selector header when given."""
    import grpc
    from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{fixture.port}") as channel:
        stub = sync_pb2_grpc.FlagSyncServiceStub(channel)
        response = stub.FetchAllFlags(
            sync_pb2.FetchAllFlagsRequest(),
            metadata=(("authorization", f"Bearer {fixture.token}"),)
            + ((("flagd-selector", selector),) if selector else ()),
            timeout=WAIT,
        )
    parsed: dict[str, Any] = json.loads(response.flag_configuration)
    return parsed


def main() -> None:
    """`fixture.py <case-file> [--anonymous]`: see the module's documentation."""
    anonymous = "--anonymous" in sys.argv[2:]
    fixture = Fixture(pathlib.Path(sys.argv[1]), anonymous=anonymous)
    try:
        print(json.dumps({
            "port": fixture.port,
            "token": fixture.token,
            "admin": ADMIN,
            "environment": fixture.environment,
            "document": document(fixture),
            "document_utf8": document(fixture, "fractional=utf8"),
            "cases": fixture.file["cases"],
            "flags": fixture.file["flags"],
        }), flush=True)  # fmt: skip
        # Commands from the test, one a line: `enable <flag>` (turns a flag on).
        for line in sys.stdin:
            words = line.split()
            if words[:1] == ["enable"]:
                fixture.cli("enable", words[1], "--env", fixture.environment)
                print(json.dumps({"enabled": words[1]}), flush=True)
    finally:
        fixture.stop()


if __name__ == "__main__":
    main()
