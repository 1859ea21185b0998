"""The one polling helper: returns the first truthy value, stops on a raise, gives up on time."""

from __future__ import annotations

import pytest

from modelbaton.polling import await_until, wait_until


class Counter:
    def __init__(self, truthy_at: int) -> None:
        self.calls = 0
        self.truthy_at = truthy_at

    def __call__(self) -> str | None:
        self.calls += 1
        return "ready" if self.calls >= self.truthy_at else None

    async def poll(self) -> str | None:
        return self()


def test_wait_returns_the_first_truthy_value() -> None:
    check = Counter(3)
    assert wait_until(check, within=5, every=0.001, give_up=AssertionError) == "ready"
    assert check.calls == 3


async def test_await_returns_the_first_truthy_value() -> None:
    check = Counter(4)
    assert await await_until(check.poll, within=5, every=0.001, give_up=AssertionError) == "ready"
    assert check.calls == 4


def test_wait_gives_up_with_the_exception_built_at_the_deadline() -> None:
    check = Counter(10**9)
    with pytest.raises(TimeoutError, match=r"seen \d+"):
        wait_until(
            check, within=0.05, every=0.001, give_up=lambda: TimeoutError(f"seen {check.calls}")
        )
    assert check.calls >= 2


async def test_await_gives_up_and_a_raising_check_stops_at_once() -> None:
    with pytest.raises(LookupError, match="late"):
        await await_until(
            Counter(10**9).poll, within=0.02, every=0.001, give_up=lambda: LookupError("late")
        )

    calls = 0

    async def gone() -> bool:
        nonlocal calls
        calls += 1
        raise ProcessLookupError("exited")

    with pytest.raises(ProcessLookupError, match="exited"):
        await await_until(gone, within=5, every=0.001, give_up=AssertionError)
    assert calls == 1
