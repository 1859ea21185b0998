"""A workflow that holds until released: the drain bench needs in-flight work, not models."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="DrainProbe")
class DrainProbe:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._released)

    @workflow.signal
    def release(self) -> None:
        self._released = True
