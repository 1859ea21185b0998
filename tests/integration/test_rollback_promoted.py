"""`baton rollback` after a promotion: the previous baseline serves again (recorded in the audit
trail), the documents the promoted model completed since are counted, and with --rerun-since
started again on the restored model; the dry run changes nothing. Real dev server, real model
server, in-process workers, a real results database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline.messages import ClassificationOutcome
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="rollback after promotion test")


def environment(pipeline: Pipeline, catalog: Catalog, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": catalog.base_url,
        "MODELBATON_DATABASE_URL": pipeline.store.url,
    }


async def cli(env: dict[str, str], *args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)


def one_line_error(result: Any, text: str) -> None:
    assert result.exit_code == 2, result.output
    assert text in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


async def promote_and_serve(
    pipeline: Pipeline, rollouts: Rollouts, after: int
) -> list[WorkflowHandle[Any, ClassificationOutcome]]:
    """v2 -> v3 through a canary and a promotion (one document before it), then ``after``
    documents on v3; every document completed."""
    await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
    await rollouts.start("v3", 0.5, BY)
    before = await pipeline.start(pipeline.doc("INVOICE before amount due $12.00"), "v2")
    await before.result()
    await rollouts.promote(BY)
    served = [
        await pipeline.start(
            pipeline.doc(f"INVOICE {i} amount due $12.00 net 30"), plan=await rollouts.plan()
        )
        for i in range(after)
    ]
    outcomes = [await h.result() for h in served]
    assert {o.result.model_version for o in outcomes} == {"v3"}
    return served


@pytest.mark.timeout(240)
async def test_rollback_after_promotion_dry_run_then_rerun_since(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = environment(pipeline, reference_catalog, tmp_path)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        # Not promoted yet: --rerun-since has nothing to act on.
        one_line_error(await cli(env, "rollback", "--rerun-since"), "applies after a promotion")
        served = await promote_and_serve(pipeline, rollouts, after=4)
        ids = sorted(h.id for h in served)
        plan_before = await rollouts.plan()
        audit_before = await rollouts.audit()
        records_before = len(pipeline.store.records())

        dry = await cli(env, "rollback", "--dry-run", "--rerun-since", "--json")
        assert dry.exit_code == 0, dry.output
        would = json.loads(dry.stdout)
        assert (would["promoted"], would["restores"], would["dry_run"]) == ("v3", "v2", True)
        assert would["completed_since_promotion"] == 4
        assert sorted(would["rerun"]) == ids
        human = await cli(env, "rollback", "--dry-run")
        assert human.exit_code == 0, human.output
        assert "4 documents completed on v3 since the promotion" in human.output
        assert "would: restore v2 as the baseline" in human.output
        # The dry runs changed nothing.
        assert await rollouts.plan() == plan_before
        assert len(await rollouts.audit()) == len(audit_before)
        assert len(pipeline.store.records()) == records_before
        one_line_error(
            await cli(env, "rollback", "--rerun-since", "--let-finish"), "use --rerun-since"
        )

        done = await cli(env, "rollback", "--rerun-since", "--by", "ana", "--json")
        assert done.exit_code == 0, done.output
        assert sorted(json.loads(done.stdout)["restarted"]) == ids

        async def rerun_on_v2() -> bool:
            current = {r.workflow_id: r.model_version for r in pipeline.store.records()}
            return all(current.get(wid) == "v2" for wid in ids)

        await eventually(rerun_on_v2, within=60, what="every rerun document recorded on v2")
        audit = await rollouts.audit()
    plan = await rollouts.plan()
    assert (plan.baseline.version, plan.ended, plan.revision) == (
        "v2",
        "rolled-back",
        plan_before.revision + 1,
    )
    restored = next(a for a in audit if a.action == "rollback-promotion")
    assert restored.actor == "ana"
    assert "v2 restored as the baseline, replacing promoted v3" in restored.detail
    assert "4 documents completed on v3 since the promotion" in restored.detail
    assert audit[-1].action == "rerun-since"
    for h in served:
        doc_id = next(r.document_id for r in pipeline.store.records() if r.workflow_id == h.id)
        assert pipeline.store.count_for(doc_id) == 1
        assert [s.model_version for s in pipeline.store.superseded(doc_id)] == ["v3"]


@pytest.mark.timeout(240)
async def test_rollback_after_promotion_keeps_what_the_promoted_model_completed(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = environment(pipeline, reference_catalog, tmp_path)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        served = await promote_and_serve(pipeline, rollouts, after=2)
        done = await cli(env, "rollback")
        assert done.exit_code == 0, done.output
        assert "2 documents completed on v3 since the promotion" in done.output
        assert "did: restore v2 as the baseline" in done.output
        after = await pipeline.start(
            pipeline.doc("INVOICE after amount due $3.00"), plan=await rollouts.plan()
        )
        assert (await after.result()).result.model_version == "v2"
        again = await cli(env, "rollback", "--rerun-since")
        one_line_error(again, "applies after a promotion")
    assert (await rollouts.plan()).baseline.version == "v2"
    current = {r.workflow_id: r.model_version for r in pipeline.store.records()}
    assert [current[h.id] for h in served] == ["v3", "v3"]
    assert pipeline.store.superseded() == []
