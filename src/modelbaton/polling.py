"""Wait for a state by polling it: the one loop every "until ready, or give up" in the package uses.

A check returns something truthy once the state holds (that value is returned), or something
falsy to be asked again ``every`` seconds; it may raise to stop at once (a process that exited is
not going to become ready). When ``within`` seconds pass first, the exception that ``give_up``
builds is raised, so the message can name what was awaited and what was last seen.

A library (tenacity, stamina) would wrap the same few lines in retry vocabulary; these waits are
not retries of a failed call but polls of a state, and each needs its own deadline message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    *,
    within: float,
    every: float,
    give_up: Callable[[], Exception],
) -> T:
    """Call ``check`` until it returns a truthy value (returned), or raise ``give_up()``."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise give_up()
        time.sleep(every)


async def await_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    every: float,
    give_up: Callable[[], Exception],
) -> T:
    """Await ``check()`` until it returns a truthy value (returned), or raise ``give_up()``."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise give_up()
        await asyncio.sleep(every)
