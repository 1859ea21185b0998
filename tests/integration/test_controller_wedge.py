"""The controller never wedges: an abort it cannot act on is refused, a plan change by hand is
refused while it runs, and a permanent error (a plan changed behind its back) ends it in a clear
state instead of retrying forever. Real dev server, real model server, in-process workers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard import dashboard
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import Phase
from modelbaton.controller.plan import parse_plan
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.errors import RolloutError
from modelbaton.models.catalog import Catalog
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.workflow import RolloutWorkflow
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="wedge test")


def parts(pipeline: Pipeline) -> tuple[Controllers, Rollouts]:
    return (
        Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue),
        Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue),
    )


async def phase(controllers: Controllers) -> Phase | None:
    view = await controllers.status()
    return view.state.phase if view else None


def cli_env(pipeline: Pipeline, catalog: Catalog, tmp_path: Path) -> dict[str, str]:
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


@pytest.mark.timeout(240)
async def test_abort_during_drain_is_refused_and_the_controller_finishes(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    """Before: the abort was accepted, the rollback's assessment raised "was promoted" for good,
    and the controller sat in rolling-back forever."""
    controllers, rollouts = parts(pipeline)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 0.5,
            "steps": [
                {"kind": "canary", "fraction": 0.25, "bake": 600, "min_documents": 1},
                {"kind": "promote"},
                {"kind": "drain", "deadline": 600},
            ],
        }
    )
    async with pipeline.worker(pools=["v2", "v3"]):
        # A v2 document waiting for a review holds the drain open.
        held = await pipeline.start(pipeline.doc(), "v2", threshold=1.0)
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        await controllers.run(plan, BY)

        async def canary() -> bool:
            return (await rollouts.plan()).fraction == 0.25

        await eventually(canary, within=60, what="the canary at 25 %")
        await controllers.skip(BY)  # the canary's gates are not what this test is about

        async def draining() -> bool:
            view = await controllers.status()
            return bool(view and view.state.step == 2 and view.state.last_results)

        await eventually(draining, within=60, what="the controller in its drain step")
        with pytest.raises(RolloutError) as refused:
            await controllers.abort(BY)
        assert "cannot undo a promotion" in str(refused.value)
        assert "baton rollback" in str(refused.value)
        by_hand = await cli(cli_env(pipeline, reference_catalog, tmp_path), "rollout", "abort")
        assert by_hand.exit_code == 2, by_hand.output
        assert len(by_hand.output.strip().splitlines()) == 1, by_hand.output
        assert "cannot undo a promotion" in by_hand.output
        assert await phase(controllers) is Phase.BAKING
        await controllers.skip(BY)
        state = await asyncio.wait_for(controllers.handle().result(), 60)
        await held.terminate("test over")
    assert state.phase is Phase.PROMOTED
    assert (await rollouts.plan()).baseline.version == "v3"


@pytest.mark.timeout(240)
async def test_manual_plan_changes_are_refused_while_a_controller_runs(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    """Before: a manual promote went through, and the controller's next step was refused for
    good (it retried forever)."""
    controllers, rollouts = parts(pipeline)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 0.5,
            "steps": [
                {"kind": "canary", "fraction": 0.25, "bake": 600, "min_documents": 1},
                {"kind": "promote"},
            ],
        }
    )
    env = cli_env(pipeline, reference_catalog, tmp_path)
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        await controllers.run(plan, BY)
        await eventually(lambda: phase(controllers), what="the controller's first step")

        async def canary() -> bool:
            return (await rollouts.plan()).fraction == 0.25

        await eventually(canary, within=60, what="the canary at 25 %")
        for args in (("promote",), ("set", "--fraction", "0.5")):
            result = await cli(env, "rollout", *args)
            assert result.exit_code == 2, result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
            assert f"controller {controllers.workflow_id} drives this rollout" in result.output
        with pytest.raises(RolloutError, match="drives this rollout"):
            await rollouts.promote(BY)
        with dashboard(pipeline, token="s3cret-token") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                promoted = await http.post(
                    "/actions/promote",
                    headers={"Authorization": "Bearer s3cret-token", "Accept": "application/json"},
                )
        assert promoted.status_code == 409, promoted.text
        assert "drives this rollout" in promoted.text
        after = await rollouts.plan()
        assert (after.fraction, after.candidate and after.candidate.version) == (0.25, "v3")
        # The controller's own steering still works: the abort goes through it.
        aborted = await cli(env, "rollout", "abort", "--json")
        assert aborted.exit_code == 0, aborted.output
        assert json.loads(aborted.stdout) == {"controller": "aborting"}
        state = await asyncio.wait_for(controllers.handle().result(), 90)
    assert state.phase is Phase.ABORTED
    assert (await rollouts.plan()).ended == "aborted"


@pytest.mark.timeout(240)
async def test_a_plan_changed_behind_the_controller_stops_it_in_a_clear_state(
    pipeline: Pipeline,
) -> None:
    """A change that bypasses the client's refusal (an update sent to the rollout workflow
    directly) makes the controller's next step refused: that error is permanent, so the
    controller stops, says why, and ends; it does not retry forever."""
    controllers, rollouts = parts(pipeline)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 0.5,
            "steps": [
                {"kind": "canary", "fraction": 0.25, "bake": 600, "min_documents": 1},
                {"kind": "canary", "fraction": 0.5, "bake": 600, "min_documents": 1},
                {"kind": "promote"},
            ],
        }
    )
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        await controllers.run(plan, BY)

        async def canary() -> bool:
            return (await rollouts.plan()).fraction == 0.25

        await eventually(canary, within=60, what="the canary at 25 %")
        await rollouts.handle().execute_update(RolloutWorkflow.promote, BY)
        await controllers.handle().execute_update(RolloutControllerWorkflow.skip, BY)
        state = await asyncio.wait_for(controllers.handle().result(), 90)
        audit = await rollouts.audit()
    assert state.phase is Phase.STOPPED
    assert "step 2 stopped" in state.abort_reason
    assert "refused: candidate v3 is already the baseline" in state.abort_reason
    assert "was promoted" in state.abort_reason
    actions = [a.action for a in audit]
    assert actions[-2:] == ["controller-error", "controller-stopped"]
