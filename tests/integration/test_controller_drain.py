"""The controller's drain step never waits unseen: at its deadline ``terminate`` ends the
documents still on the old baseline, and ``wait`` pauses for a person. Real dev server, real
model server, in-process workers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import Phase
from modelbaton.controller.plan import RolloutPlanFile, parse_plan
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="drain test")


def drain_plan(on_deadline: str) -> RolloutPlanFile:
    return parse_plan(
        {
            "candidate": "v3",
            "poll": 0.5,
            "steps": [
                {"kind": "canary", "fraction": 0.25, "bake": 600, "min_documents": 1},
                {"kind": "promote"},
                {"kind": "drain", "deadline": 3, "on_deadline": on_deadline},
            ],
        }
    )


async def to_the_drain(pipeline: Pipeline, plan: RolloutPlanFile) -> tuple[Controllers, Any]:
    """Start the controller with a v2 document waiting for review (it holds the drain open),
    pass the canary by hand, and return once the promote step is applied."""
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    held = await pipeline.start(pipeline.doc(), "v2", threshold=1.0)
    await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
    await controllers.run(plan, BY)

    async def canary() -> bool:
        return (await rollouts.plan()).fraction == 0.25

    await eventually(canary, within=60, what="the canary at 25 %")
    await controllers.skip(BY)  # the canary's gates are not what this test is about
    return controllers, held


@pytest.mark.timeout(240)
async def test_drain_terminates_what_remains_at_its_deadline(pipeline: Pipeline) -> None:
    async with pipeline.worker(pools=["v2", "v3"]):
        controllers, held = await to_the_drain(pipeline, drain_plan("terminate"))
        state = await asyncio.wait_for(controllers.handle().result(), 90)
        described = await held.describe()
        audit = await Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue).audit()
    assert state.phase is Phase.PROMOTED
    assert described.status is WorkflowExecutionStatus.TERMINATED
    drained = [a.detail for a in audit if a.action == "controller-gate-pass"][-1]
    assert "1 documents on v2 terminated at the 3 s deadline; 0 still on it" in drained


@pytest.mark.timeout(240)
async def test_drain_that_waits_past_its_deadline_pauses_for_a_person(pipeline: Pipeline) -> None:
    async with pipeline.worker(pools=["v2", "v3"]):
        controllers, held = await to_the_drain(pipeline, drain_plan("wait"))

        async def paused() -> bool:
            view = await controllers.status()
            return bool(view and view.state.phase is Phase.PAUSED)

        await eventually(paused, within=60, what="the drain paused at its deadline")
        view = await controllers.status()
        assert view is not None
        assert view.state.step == 2
        assert (await held.describe()).status is WorkflowExecutionStatus.RUNNING
        await held.terminate("the person decided")
        await controllers.resume(BY)
        state = await asyncio.wait_for(controllers.handle().result(), 60)
        audit = await Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue).audit()
    assert state.phase is Phase.PROMOTED
    pause = next(a for a in audit if a.action == "controller-pause")
    assert "step 3 still inconclusive after 3 s" in pause.detail
    assert "1 documents still on v2" in pause.detail
