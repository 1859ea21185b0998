"""Scenario B keeps a candidate document that waits for review: terminating it would lose the
reviewer's work and deadline. The rollback restarts the other unfinished documents, leaves this
one running, and the reviewer's decision becomes its one record. Real dev server, real model
server, in-process workers, a real results database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline.messages import ReviewDecision
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="scenario B with a review")


async def cli(env: dict[str, str], *args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)


@pytest.mark.timeout(240)
async def test_scenario_b_keeps_a_document_waiting_for_review(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": reference_catalog.base_url,
        "MODELBATON_DATABASE_URL": pipeline.store.url,
    }
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        await rollouts.start("v3", 1.0, BY)
        held = await pipeline.start(pipeline.doc(), threshold=1.0, plan=await rollouts.plan())

        async def at_review() -> bool:
            d = await held.describe()
            return (d.search_attributes.get("ReviewState") or [None])[0] == "pending"

        await eventually(at_review, within=60, what="the candidate document waiting for review")
        run_before = (await held.describe()).run_id

        dry = await cli(env, "rollback", "--dry-run", "--restart-on-baseline", "--json")
        assert dry.exit_code == 0, dry.output
        planned = json.loads(dry.stdout)
        assert planned["scenario"] == "B"
        assert f"keep {held.id} (waiting for review)" in " ".join(planned["actions"])

        done = await cli(env, "rollback", "--restart-on-baseline", "--json")
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["restarted"] == []
        still = await held.describe()
        assert (still.run_id, still.status) == (run_before, WorkflowExecutionStatus.RUNNING)

        receipt = await held.execute_update(
            Current.submit_review, ReviewDecision(label="receipt", reviewer="ana")
        )
        assert receipt.accepted_label == "receipt"
        out = await held.result()
    assert (out.outcome, out.final_label, out.result.model_version) == ("reviewed", "receipt", "v3")
    records = [r for r in pipeline.store.records() if r.workflow_id == held.id]
    assert [(r.reviewer, r.final_label) for r in records] == [("ana", "receipt")]
    assert records[0].run_started_at is not None  # what the store orders runs by
    assert pipeline.store.superseded() == []
