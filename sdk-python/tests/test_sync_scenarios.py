"""Every scenario of tests/sync/ (docs/reference/sync.md in executable form) against the real
runtime, over an in-memory `Transport` (fake_sync.py), on an event loop whose clock is virtual
(virtual_loop.py): while the runner waits for a request, time jumps from timer to timer, so the
virtual time of each request is exact and a 45 s timeout costs nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
from typing import Any

import pytest
from fake_sync import FakeAck, FakeTransport, FakeWatch, error, message, snapshot
from virtual_loop import VirtualClockLoop

from flagwire import Context
from flagwire._core import Core, Options
from flagwire._reader import _Reader
from flagwire._runtime import Runtime
from flagwire._version import SDK_NAME

SCENARIOS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "sync"
FILES: list[str] = json.loads((SCENARIOS / "index.json").read_text())["files"]
PATIENCE = 600.0
"""Gives up waiting for a request after this much virtual time (seconds)."""
SLACK_MS = 1.0
"""Timer granularity allowed on each side of a `delay_ms` bound."""


class Failed(Exception):
    """A step's expectation did not hold."""


class _View(_Reader):
    """The clients' typed getters over a core."""

    def __init__(self, core: Core) -> None:
        self._core = core


class Runner:
    def __init__(self, runtime: Runtime, transport: FakeTransport) -> None:
        self.runtime = runtime
        self.core = runtime.core
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        assert isinstance(self.loop, VirtualClockLoop)
        self.start = self.previous = self.loop.time()
        self.current: FakeWatch | None = None
        self.held: FakeAck | None = None
        self.watches: list[FakeWatch] = []
        self.acks: list[FakeAck] = []

    def within(self, at: float, delay_ms: list[int], what: str) -> None:
        delay = (at - self.previous) * 1000
        lo, hi = delay_ms
        if not lo - SLACK_MS <= delay <= hi + SLACK_MS:
            raise Failed(f"{what} came {delay:.1f} ms after the previous step, not in [{lo}, {hi}]")

    async def next(self, queue: asyncio.Queue[Any], what: str) -> Any:
        try:
            return await asyncio.wait_for(queue.get(), PATIENCE)
        except asyncio.TimeoutError:
            raise Failed(f"{what}: none within {PATIENCE} virtual s") from None

    async def step(self, op: str, args: dict[str, Any]) -> None:
        if op == "expect_watch":
            call: FakeWatch = await self.next(self.transport.watches, "Watch call")
            self.watches.append(call)
            self.within(call.at, args["delay_ms"], "the Watch call")
            if call.request.since_revision != args["since_revision"]:
                raise Failed(f"since_revision {call.request.since_revision}")
            self.current, self.previous = call, call.at
        elif op == "expect_ack":
            ack: FakeAck = await self.next(self.transport.acks, "acknowledgement")
            self.acks.append(ack)
            self.within(ack.at, args["delay_ms"], "the acknowledgement")
            if ack.request.applied_revision != args["revision"]:
                raise Failed(f"applied_revision {ack.request.applied_revision}")
            reply = args.get("reply", "OK")
            if reply == "HOLD":
                self.held = ack
            elif reply == "OK":
                ack.reply.set_result(None)
            else:
                ack.reply.set_exception(error(reply))
            self.previous = ack.at
        elif op == "send":
            if self.current is None:
                raise Failed("no Watch call to send on")
            self.current.send(message(args))
            self.previous = self.loop.time()
        elif op == "end":
            if self.current is None:
                raise Failed("no Watch call to end")
            code = args["code"]
            self.current.end(None if code == "OK" else error(code, args.get("message", "")))
            self.previous = self.loop.time()
        elif op == "release_ack":
            if self.held is None:
                raise Failed("no acknowledgement is held")
            self.held.reply.set_result(None)
            self.held = None
            self.previous = self.loop.time()
        elif op == "advance":
            await asyncio.sleep(args["ms"] / 1000)
            self.previous = self.loop.time()
        elif op == "expect_state":
            self.previous = self.loop.time()
            assert isinstance(self.loop, VirtualClockLoop)
            await self.loop.idle()
            snap = self.core.snapshot
            got = (self.core.state.value, snap.revision if snap is not None else 0)
            if got != (args["state"], args["revision"]):
                raise Failed(f"state {got}, not {(args['state'], args['revision'])}")
            for key, want in args.get("values", {}).items():
                if _View(self.core).get_bool(key, Context("user-1"), not want) is not want:
                    raise Failed(f"flag {key} is not {want}")
        else:
            raise Failed(f"unknown step {op}")

    def finish(self) -> None:
        left = [f"Watch(since {w.request.since_revision})" for w in _drain(self.transport.watches)]
        left += [f"ack {a.request.applied_revision}" for a in _drain(self.transport.acks)]
        if left:
            raise Failed(f"requests no step expected: {left}")
        identity = (self.core.instance_id, SDK_NAME)
        for w in self.watches:
            assert (w.request.instance_id, w.request.sdk_name) == identity, w.request
        sequences = [a.request.sequence for a in self.acks]
        assert sequences == sorted(set(sequences)), f"Report sequences {sequences}"
        for a in self.acks:
            assert (a.request.instance_id, a.request.sdk_name) == identity, a.request
            assert not a.request.series


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def run(scenario: dict[str, Any], tmp: pathlib.Path) -> None:
    o = scenario["options"]
    options = Options(
        url="http://in-memory.invalid",
        token="fw_scenario",
        min_backoff=o["min_backoff_ms"] / 1000,
        max_backoff=o["max_backoff_ms"] / 1000,
        heartbeat_timeout=o["heartbeat_timeout_ms"] / 1000,
        metrics=False,
    )
    if "bootstrap" in scenario:
        path = tmp / "bootstrap.pb"
        copy = scenario["bootstrap"]
        path.write_bytes(snapshot(copy["revision"], copy["flags"]).SerializeToString())
        options = dataclasses.replace(options, bootstrap_file=str(path))
    core = Core(options)
    # The copy is loaded like any client's; persisting it back is off, for it runs in a worker
    # thread, which the virtual clock would not wait for.
    core.options = dataclasses.replace(options, bootstrap_file=None)
    transport = FakeTransport()
    runtime = Runtime(core, transport)
    runner = Runner(runtime, transport)
    runtime.start()
    try:
        for i, step in enumerate(scenario["steps"], 1):
            [(op, args)] = step.items()
            try:
                await runner.step(op, args)
            except Failed as failure:
                at = (runner.loop.time() - runner.start) * 1000
                raise Failed(
                    f"step {i} {json.dumps(step)} at {at:.0f} virtual ms: {failure}"
                ) from None
        assert isinstance(runner.loop, VirtualClockLoop)
        await runner.loop.idle()
        runner.finish()
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("file", FILES)
def test_scenario(file: str, tmp_path: pathlib.Path) -> None:
    scenario = json.loads((SCENARIOS / file).read_text())
    loop = VirtualClockLoop()
    try:
        loop.run_until_complete(run(scenario, tmp_path))
    except Failed as failure:
        pytest.fail(f"{file}: {scenario['description']}\n{failure}", pytrace=False)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
