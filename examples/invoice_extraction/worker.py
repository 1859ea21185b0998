"""The example's workers: the workflow worker (one release) and one pool per model version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from invoice_extraction.activities import InvoiceActivities
from modelbaton import RolloutControl, pool_worker


def workflow_worker(
    client: Client,
    task_queue: str,
    release: type,
    acts: InvoiceActivities,
    control: RolloutControl | None = None,
    *,
    eager_activities: bool = True,
) -> Worker:
    """The invoice workflow of ``release``; with ``control``, the rollout workflow and the
    controller beside it on the same queue (one worker knows every workflow type there).

    ``eager_activities=False`` turns off Temporal's eager dispatch of activities scheduled on
    this worker's own queue (on by default; ``bench/overhead.py --no-eager`` measures it)."""
    workflows: list[type] = [release]
    activities = acts.for_workflow_worker()
    if control is not None:
        workflows += control.workflows
        activities += control.activities()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,  # type: ignore[arg-type]
        disable_eager_activity_execution=not eager_activities,
    )


@asynccontextmanager
async def pools(
    client: Client, task_queue: str, acts: InvoiceActivities, versions: tuple[str, ...]
) -> AsyncIterator[None]:
    """Run a pool for each of ``versions`` (activity-only workers on ``<queue>-model-<v>``)."""
    async with AsyncExitStack() as stack:
        for version in versions:
            await stack.enter_async_context(
                pool_worker(client, task_queue, version, acts.for_pool(version))  # type: ignore[arg-type]
            )
        yield
