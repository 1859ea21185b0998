"""The demo's blue-green cutover on Worker Versioning (``baton demo``, step 7).

On a queue of its own, two builds of the pipeline run side by side as versioned workers (pinned
workflows): documents started on ``blue`` wait at review, ``green`` becomes current and takes new
documents, and the real ``baton drain --from blue`` follows blue's in-flight workflows from
visibility with a progress bar while the reviewers finish them, then says blue's workers can go.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import Client

from modelbaton.app.worker import (
    WorkerOptions,
    build_pool_worker,
    build_worker,
    pipeline_activities,
)
from modelbaton.models.catalog import Catalog, PipelineSection
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.messages import ClassificationOutcome, ReviewDecision, WorkflowState
from modelbaton.pipeline.starter import submit_documents
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
from modelbaton.rollout.client import steady_plan
from modelbaton.stack.embedded import StackState, stack_variables
from modelbaton.versioning.builds import Build, deployment_name_for
from modelbaton.versioning.control import DeploymentControl, workflow_build

BLUE_GREEN_QUEUE = "modelbaton-demo-bluegreen"


async def _polling(control: DeploymentControl, build_id: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            if await control.pollers(build_id):
                return
        except Exception:  # the build is unknown until its first poll
            if loop.time() > deadline:
                raise
        if loop.time() > deadline:
            raise TimeoutError(f"build {build_id} did not poll within {within:.0f} s")
        await asyncio.sleep(0.3)


async def blue_green(
    console: Console,
    client: Client,
    state: StackState,
    catalog: Catalog,
    pipeline: PipelineSection,
    batch: Any,
    truth_of: dict[str, str],
) -> tuple[int, dict[str, str]]:
    """Run the cutover; return the drain's exit code and each document's build."""
    deployment = deployment_name_for(BLUE_GREEN_QUEUE)
    control = DeploymentControl(client, deployment)
    source = CatalogSource.fixed(catalog)
    blue, green = Build(deployment, "blue"), Build(deployment, "green")
    plan = steady_plan(catalog)
    half = len(batch.docs) // 2
    reviewing = pipeline.model_copy(update={"review_threshold": 1.0})  # blue's docs all wait
    automatic = pipeline.model_copy(update={"review_threshold": 0.0})  # green's finish at once
    builds: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(make_http_client())
        store = ResultsStore(f"sqlite:///{state.home / 'bluegreen.db'}")
        stack.callback(store.close)
        acts = pipeline_activities(store, source, http).all()
        await stack.enter_async_context(
            build_pool_worker(client, BLUE_GREEN_QUEUE, plan.baseline.version, source, http)
        )
        async with build_worker(client, WorkerOptions(BLUE_GREEN_QUEUE, build=blue), acts):
            await _polling(control, "blue")
            await control.set_current("blue")
            console.print(f"build {blue.version} is current; workflows are pinned to their build")
            await submit_documents(client, batch.docs[:half], plan, reviewing, BLUE_GREEN_QUEUE)
            async with build_worker(client, WorkerOptions(BLUE_GREEN_QUEUE, build=green), acts):
                await _polling(control, "green")
                change = await control.set_current("green")
                console.print(
                    f"promoted {green.version} (routing propagated in "
                    f"{change.seconds_to_propagate:.1f} s); {half} documents stay pinned to blue"
                )
                await submit_documents(client, batch.docs[half:], plan, automatic, BLUE_GREEN_QUEUE)
                handles = {
                    d.workflow_id: client.get_workflow_handle(
                        d.workflow_id, result_type=ClassificationOutcome
                    )
                    for d in batch.docs
                }
                batch.handles.update(handles)
                await _at_review(handles, [d.workflow_id for d in batch.docs[:half]])
                env = (
                    os.environ
                    | stack_variables(state)
                    | {"MODELBATON_TASK_QUEUE": BLUE_GREEN_QUEUE}
                )
                baton = str(Path(sys.executable).parent / "baton")
                console.print(
                    f"$ baton drain --from blue --deadline 5m  (queue {BLUE_GREEN_QUEUE})"
                )
                drain = await asyncio.create_subprocess_exec(
                    baton, "drain", "--from", "blue", "--deadline", "5m", env=env
                )
                await asyncio.sleep(4.0)  # let the drain start and take its first count
                for d in batch.docs[:half]:
                    handle = handles[d.workflow_id]
                    await handle.execute_update(
                        DocumentClassificationWorkflow.submit_review,
                        ReviewDecision(label=truth_of[d.workflow_id], reviewer="demo-reviewer"),
                    )
                    await handle.result()
                    await asyncio.sleep(0.7)  # reviewers take their time: the bar moves
                code = await drain.wait()
                for wid, handle in handles.items():
                    await handle.result()
                    builds[wid] = workflow_build(await handle.describe())[0] or "?"
        # Blue's workers stopped here: nothing is pinned to blue any more.
    return code, builds


async def _at_review(handles: dict[str, Any], ids: list[str], within: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for wid in ids:
        while True:
            view = await handles[wid].query(DocumentClassificationWorkflow.status)
            if view.state is WorkflowState.AWAITING_REVIEW:
                break
            if loop.time() > deadline:
                raise TimeoutError(f"{wid} did not reach review within {within:.0f} s")
            await asyncio.sleep(0.3)
