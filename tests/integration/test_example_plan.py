"""read_plan on the real dev server: the default while no rollout workflow exists, the plan in
the rollout workflow's memo once one runs (no worker needed to read it)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from modelbaton import ModelRef, RolloutError, assign, read_plan, start_canary, steady
from modelbaton.rollout.messages import ROLLOUT_WORKFLOW_TYPE, RolloutInput, rollout_workflow_id
from modelbaton.rollout.workflow import PLAN_MEMO

pytestmark = pytest.mark.integration


async def test_read_plan_default_then_the_running_rollout_s(
    client: Client, task_queue: str
) -> None:
    default = steady("invoice", "v1", 1)
    assert await read_plan(client, task_queue, "invoice", default=default) == default
    canary = start_canary(default, ModelRef(version="v2", output_schema_version=2), 1.0, "x")
    handle = await client.start_workflow(
        ROLLOUT_WORKFLOW_TYPE,
        RolloutInput(plan=canary),
        id=rollout_workflow_id(task_queue, "invoice"),
        task_queue=task_queue,
        memo={PLAN_MEMO: canary.model_dump(mode="json")},
    )
    try:
        plan = await read_plan(client, task_queue, "invoice", default=default)
        assert plan == canary
        assert assign("inv-1", plan, task_queue).model.model_version == "v2"
    finally:
        await handle.terminate("test done")
    with pytest.raises(RolloutError, match="is terminated"):
        await read_plan(client, task_queue, "invoice", default=default)
