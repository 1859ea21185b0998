"""One way for tests to wait for a state: poll a predicate until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    *,
    within: float = 30.0,
    every: float = 0.2,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; return that, or fail after ``within``."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value  # type: ignore[return-value]
            last = value
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within:.0f} s (last: {last!r})")
        await asyncio.sleep(every)
