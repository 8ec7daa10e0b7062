"""An asyncio event loop on a virtual clock, for tests of timers (backoff, heartbeat timeouts,
retries) that must neither sleep on the wall clock nor change the code under test: every
`asyncio.sleep`, `call_later` and `wait_for` reads `loop.time()`, which is the clock here.

Time moves only when nothing is ready to run: instead of waiting for the next timer, the loop
jumps its clock to it, as tokio's paused clock and vitest's fake timers do. Real I/O still works
(the loop polls it without waiting), but a task that waits on another thread would see time
race ahead, so code under test runs without worker threads.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class _Selector(selectors.DefaultSelector):
    """Polls without blocking; when the loop would block, wakes `idle()` waiters or else
    advances the loop's clock by the time it would have blocked for."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        ready: list[tuple[Any, int]] = super().select(0)
        loop = self.loop
        if ready or timeout == 0 or loop is None:
            return ready
        if loop.wake_idle():
            return []
        if timeout is None:
            # No timer at all: only another thread can wake the loop; wait for it for real.
            blocked: list[tuple[Any, int]] = super().select(None)
            return blocked
        loop.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """The event loop; its clock starts at 0."""

    def __init__(self) -> None:
        selector = _Selector()
        super().__init__(selector)
        selector.loop = self
        self._now = 0.0
        self._idle: list[asyncio.Future[None]] = []

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Moves the clock on (the selector does, when the loop would otherwise wait)."""
        self._now += seconds

    def wake_idle(self) -> bool:
        """Resolves the `idle()` waiters, if any; returns whether there were some."""
        waiters, self._idle = self._idle, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return bool(waiters)

    async def idle(self) -> None:
        """Returns once every task has run as far as it can without the clock moving."""
        waiter: asyncio.Future[None] = self.create_future()
        self._idle.append(waiter)
        await waiter
