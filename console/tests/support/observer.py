"""A real SDK client for the console's end-to-end tests: the Python SDK watching one
environment (its SDK token's), printing `<variant> <reason>` for a flag, evaluated for one
user, each time it changes, so a test sees what a service sees when the console toggles it.

    observer.py URL TOKEN FLAG USER
"""

from __future__ import annotations

import asyncio
import sys

from flagwire import AsyncClient, Context, FlagChange


async def main(url: str, token: str, flag: str, user: str) -> None:
    async with AsyncClient(url, token, metrics=False) as client:
        await client.wait_ready(timeout=10.0)
        changed = asyncio.Event()
        loop = asyncio.get_running_loop()

        # Listeners may run off the loop's thread: hand the wake-up to the loop.
        def wake(_change: FlagChange) -> None:
            loop.call_soon_threadsafe(changed.set)

        client.on_change(wake)
        last = ""
        while True:
            details = client.get_bool_details(flag, Context(user), False)
            line = f"{details.variant or '-'} {details.reason}"
            if line != last:
                print(line, flush=True)
                last = line
            await changed.wait()
            changed.clear()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
