"""The rollout controller on the real dev server with the real model server: a good candidate
promoted through every step, a bad one stopped and rolled back, and a worker killed mid-bake."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowExecutionStatus

from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import Phase
from modelbaton.controller.plan import parse_plan
from modelbaton.pipeline.starter import submit_documents
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="controller test")


def lenient(pipeline: Pipeline) -> None:
    """A shadow gate a short test can meet (the thresholds are the team's choice)."""
    gate = pipeline.catalog.shadow_gate.model_copy(
        update={"min_agreement": 0.3, "max_p95_latency_ratio": 10.0}
    )
    pipeline.catalog = dataclasses.replace(pipeline.catalog, shadow_gate=gate)
    pipeline.source = type(pipeline.source).fixed(pipeline.catalog)


@contextlib.asynccontextmanager
async def traffic(pipeline: Pipeline, every: float = 0.15) -> AsyncIterator[list[str]]:
    """Submit a document every ``every`` seconds, assigned by the plan in force, as `submit`
    does; yields the workflow ids started so far."""
    started: list[str] = []
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)

    async def loop() -> None:
        for i in itertools.count():
            plan = await rollouts.plan()
            doc = pipeline.doc(f"INVOICE {i} amount due $12.00 payment terms net 30")
            report = await submit_documents(
                pipeline.client, [doc], plan, pipeline.catalog.pipeline, pipeline.task_queue
            )
            started.extend(report.launched)
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def all_closed(pipeline: Pipeline, ids: list[str]) -> None:
    async def closed() -> bool:
        for wid in ids:
            d = await pipeline.client.get_workflow_handle(wid).describe()
            if d.status is WorkflowExecutionStatus.RUNNING:
                return False
        return True

    await eventually(closed, within=120, every=0.5, what="every document closed")


GOOD_PLAN = {
    "candidate": "v3",
    "poll": 1,
    "steps": [
        {"kind": "shadow", "sample": 1.0, "documents": 8, "noise_sample": 0.0, "budget": 20},
        {"kind": "canary", "fraction": 0.25, "bake": 3, "min_documents": 4},
        {"kind": "canary", "fraction": 0.5, "bake": 3, "min_documents": 4},
        {"kind": "promote"},
    ],
}


async def test_good_candidate_is_promoted_through_every_step(pipeline: Pipeline) -> None:
    lenient(pipeline)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        async with traffic(pipeline) as started:
            await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
            await controllers.run(parse_plan(GOOD_PLAN), BY)
            result = await controllers.handle().result()
        await all_closed(pipeline, list(started))
        audit = await rollouts.audit()
    assert result.phase is Phase.PROMOTED
    plan = await rollouts.plan()
    assert (plan.baseline.version, plan.candidate, plan.ended) == ("v3", None, "promoted")
    actions = [a.action for a in audit]
    assert actions.count("controller-gate-pass") == 3
    assert actions[-1] == "controller-done"
    fractions = [a.detail for a in audit if a.action == "set-fraction"]
    assert fractions == ["shadow -> canary at 25.00%", "fraction 25.00% -> 50.00%"]
    shadow_pass = next(a for a in audit if a.action == "controller-gate-pass")
    assert "shadow verdict READY" in shadow_pass.detail
    versions = {r.model_version for r in pipeline.store.records()}
    assert versions == {"v2", "v3"}
