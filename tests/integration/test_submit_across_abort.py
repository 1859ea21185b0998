"""A long batch submitted across an abort: every start reads the plan in force, so documents
started after the abort go to the baseline (before, the batch kept the plan it read at its
start and went on starting candidate documents). Real dev server, in-process workflow worker."""

from __future__ import annotations

import asyncio

import pytest

from modelbaton.contracts.rollout import Arm
from modelbaton.pipeline.messages import WORKFLOW_TYPE
from modelbaton.pipeline.starter import submit_documents
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="batch across an abort")


@pytest.mark.timeout(240)
async def test_a_batch_submitted_across_an_abort_stops_starting_candidate_documents(
    pipeline: Pipeline,
) -> None:
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    docs = [pipeline.doc(f"INVOICE {i} amount due $12.00 net 30") for i in range(40)]
    # Only the workflow worker (the rollout workflow): the documents need not run to show
    # where they were sent.
    async with pipeline.worker(pools=[]):
        started = await rollouts.start("v3", 1.0, BY, require_pool=False)
        progress: list[int] = []
        batch = asyncio.create_task(
            submit_documents(
                pipeline.client,
                docs,
                started,
                pipeline.catalog.pipeline,
                pipeline.task_queue,
                concurrency=2,
                on_progress=progress.append,
                current_plan=rollouts.plan,
            )
        )
        await eventually(lambda: len(progress) >= 6, within=60, what="a few documents started")
        aborted = await rollouts.abort(BY)
        report = await batch
        query = f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{pipeline.task_queue}"'
        async for wf in pipeline.client.list_workflows(query):
            await pipeline.client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("done")
    assert len(report.launched) == len(docs)
    arms = {wid: a.arm for wid, a in report.assignments.items()}
    on_candidate = [wid for wid, arm in arms.items() if arm is Arm.CANDIDATE]
    on_baseline = [wid for wid, arm in arms.items() if arm is Arm.BASELINE]
    assert len(on_candidate) >= 6
    assert len(on_baseline) > 0, "the batch went on starting candidate documents after the abort"
    for wid in on_candidate:
        assert report.assignments[wid].plan_revision == started.revision
    for wid in on_baseline:
        assert report.assignments[wid].plan_revision == aborted.revision
        assert report.assignments[wid].model_version == "v2"
