"""Runs the official OpenFeature OFREP providers against the real Flagwire binary.

Each provider is driven through a small adapter program (python/, node/, rust/) that speaks
JSON lines on stdin/stdout:

    -> {"op": "eval", "flag": "k", "type": "boolean", "default": false, "context": {...}}
    <- {"value": ..., "variant": ..., "reason": ..., "errorCode": ..., "metadata": {...}}
    -> {"op": "events"}    <- {"changed": N}   (PROVIDER_CONFIGURATION_CHANGED events seen)

For every vector case file the harness writes the file's flags into a fresh data directory
(the `vector_store` example of the server crate), serves it with $FLAGWIRE_BIN, starts the
adapter, evaluates every case and compares the answer with the case's expectation as the
provider can carry it (`profiles.py`, mirrored by CASES.md). Then it changes a flag through
AdminService (the `flagwire` CLI) and waits, with a deadline, until the provider sees it.

    harness.py ADAPTER-NAME -- COMMAND...
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

from profiles import PROFILES, Profile, call_type, flag_types, json_equal

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
VECTORS = ROOT / "tests" / "vectors"
ADMIN = "fw_ofrep_harness_admin_0123456789"
SDK = "fw_ofrep_harness_sdk_0123456789"
DEADLINE = 30.0


def flagwire_bin() -> str:
    return os.environ.get("FLAGWIRE_BIN") or str(ROOT / "target" / "debug" / "flagwire")


def vector_store_bin() -> str:
    explicit = os.environ.get("FLAGWIRE_VECTOR_STORE")
    if explicit:
        return explicit
    return str(pathlib.Path(flagwire_bin()).parent / "examples" / "vector_store")


class Server:
    """`flagwire serve` on loopback over a data directory."""

    def __init__(self, data_dir: str) -> None:
        self.proc = subprocess.Popen(
            [
                flagwire_bin(),
                "serve",
                "--data-dir",
                data_dir,
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--ofrep-rate-limit",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            match = re.match(r"flagwire listening grpc=(\S+) http=(\S+)", line)
            if match:
                self.grpc, self.http = match.group(1), match.group(2)
                return
        raise RuntimeError("flagwire exited before listening")

    def admin(self, *args: str) -> None:
        """Runs the CLI (an AdminService client) as admin."""
        env = {**os.environ, "FLAGWIRE_ENDPOINT": self.grpc, "FLAGWIRE_TOKEN": ADMIN}
        env.pop("FLAGWIRE_DATA_DIR", None)
        subprocess.run([flagwire_bin(), *args], check=True, env=env, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Adapter:
    """One adapter process."""

    def __init__(self, command: list[str], server: Server) -> None:
        env = {**os.environ, "OFREP_URL": f"http://{server.http}", "OFREP_TOKEN": SDK}
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE,
        )
        hello = self.read()
        if hello.get("ready") is not True:
            raise RuntimeError(f"adapter did not start: {hello}")

    def read(self) -> dict[str, Any]:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise RuntimeError(f"adapter exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def flat_context(context: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if context.get("targetingKey"):
        flat["targetingKey"] = context["targetingKey"]
    flat.update(context.get("attributes") or {})
    return flat


def case_files() -> list[pathlib.Path]:
    index = json.loads((VECTORS / "index.json").read_text())
    return [VECTORS / name for name in index["files"]]


def serve(case_file: pathlib.Path, scratch: str) -> Server:
    data = tempfile.mkdtemp(dir=scratch)
    subprocess.run([vector_store_bin(), str(case_file), data, ADMIN, SDK], check=True)
    return Server(data)


def run_vectors(profile: Profile, command: list[str], scratch: str) -> tuple[int, int, list[str]]:
    passed, left_out, failures = 0, 0, []
    for path in case_files():
        data = json.loads(path.read_text())
        types = flag_types(data)
        server = serve(path, scratch)
        adapter = Adapter(command, server)
        try:
            for case in data["cases"]:
                expected = profile.expect(case, types)
                if expected is None:
                    left_out += 1
                    continue
                got = adapter.ask(
                    {
                        "op": "eval",
                        "flag": case["flag"],
                        "type": call_type(case, types),
                        "default": case["default"],
                        "context": flat_context(case.get("context") or {}),
                    }
                )
                got = {**got, **(got.get("metadata") or {})}
                problems = [
                    f"{field} {got.get(field)!r} != {want!r}"
                    for field, want in expected.items()
                    if not json_equal(got.get(field), want)
                ]
                if problems:
                    failures.append(f"{path.name}: {case['description']}: {'; '.join(problems)}")
                else:
                    passed += 1
        finally:
            adapter.stop()
            server.stop()
    return passed, left_out, failures


def run_change(profile: Profile, command: list[str], scratch: str) -> None:
    """A flag change through AdminService reaches the provider (events or the next call)."""
    server = serve(VECTORS / "basics.json", scratch)
    adapter = Adapter(command, server)
    try:
        ask = {
            "op": "eval",
            "flag": "static-on",
            "type": "boolean",
            "default": False,
            "context": {"targetingKey": "user-1"},
        }
        before = adapter.ask(ask)
        if before.get("value") is not True:
            raise AssertionError(f"static-on before the change: {before}")
        events = adapter.ask({"op": "events"})["changed"]
        server.admin("disable", "static-on", "--env", "test")
        until = time.monotonic() + DEADLINE
        while True:
            after = adapter.ask(ask)
            seen = adapter.ask({"op": "events"})["changed"]
            if after.get("value") is False and (not profile.events or seen > events):
                break
            if time.monotonic() > until:
                raise AssertionError(
                    f"the change never reached the provider: {after}, events {seen}"
                )
            time.sleep(0.05)
    finally:
        adapter.stop()
        server.stop()


def main() -> int:
    name, sep, *command = sys.argv[1:]
    assert sep == "--", __doc__
    profile = PROFILES[name]
    with tempfile.TemporaryDirectory(prefix="flagwire-ofrep-") as scratch:
        start = time.monotonic()
        passed, left_out, failures = run_vectors(profile, command, scratch)
        for failure in failures:
            print(f"FAIL {name}: {failure}")
        change_ok = True
        try:
            run_change(profile, command, scratch)
        except AssertionError as e:
            change_ok = False
            print(f"FAIL {name}: change through AdminService: {e}")
        took = time.monotonic() - start
    print(
        f"{name}: {passed} vector cases agree, {left_out} left out (CASES.md), "
        f"change {'seen' if change_ok else 'NOT seen'}, {took:.1f} s"
    )
    print(f"{name}: {passed + int(change_ok)} passed, {len(failures) + int(not change_ok)} failed")
    return 1 if failures or not change_ok or passed < 400 else 0


if __name__ == "__main__":
    sys.exit(main())
