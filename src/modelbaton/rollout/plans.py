"""Reading the plan in force for a starter: from the rollout workflow's memo (no worker needed),
or ``default`` while no rollout workflow exists for the pipeline and model id."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.contracts.rollout import RolloutPlan
from modelbaton.errors import RolloutError
from modelbaton.rollout.messages import rollout_workflow_id
from modelbaton.rollout.workflow import PLAN_MEMO


async def read_plan(
    client: Client, task_queue: str, model_id: str, *, default: RolloutPlan
) -> RolloutPlan:
    """The rollout plan of ``model_id`` on the pipeline of ``task_queue``."""
    workflow_id = rollout_workflow_id(task_queue, model_id)
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return default
        raise RolloutError(f"cannot read rollout {workflow_id}: {exc.message}") from None
    if described.status is not WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "without a status"
        raise RolloutError(f"rollout workflow {workflow_id} is {state}")
    memo = await described.memo()
    if PLAN_MEMO not in memo:
        raise RolloutError(f"rollout workflow {workflow_id} has no plan in its memo")
    return RolloutPlan.model_validate(memo[PLAN_MEMO])
