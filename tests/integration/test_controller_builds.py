"""The rollout controller driving a code rollout on Worker Versioning: ramps instead of canary
fractions, promotion makes the build current, a broken build is rolled back."""

from __future__ import annotations

import pytest

from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import Phase
from modelbaton.controller.plan import WAIVABLE, parse_plan
from modelbaton.pipeline.messages import ClassificationOutcome
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.versioning.control import DeploymentControl
from pipeline_fixtures import Pipeline
from versioning_helpers import await_pollers, ran_on
from workflow_variants.broken_release import BrokenDocumentWorkflow

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="build rollout")


@pytest.mark.timeout(300)
async def test_a_good_build_is_ramped_promoted_and_the_old_one_drained(
    pipeline: Pipeline,
) -> None:
    control = DeploymentControl(pipeline.client, pipeline.deployment)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    plan = parse_plan(
        {
            "candidate": "B",
            "strategy": "builds",
            "poll": 1,
            # Three documents cannot show non-inferiority: the gates only watch for harm.
            "gates": {"waive": list(WAIVABLE)},
            "steps": [
                {"kind": "canary", "fraction": 0.3, "bake": 3, "min_documents": 3},
                {"kind": "promote"},
                {"kind": "drain", "deadline": 60},
            ],
        }
    )
    async with pipeline.worker(build=pipeline.build("A"), pools=("v2",)):
        await await_pollers(control, "A")
        await control.set_current("A")
        async with pipeline.worker(build=pipeline.build("B"), pools=()):
            await await_pollers(control, "B")
            async with pipeline.feed(0.2) as started:
                await controllers.run(plan, BY)
                result = await controllers.handle().result()
            handles = list(started)
            for h in handles:
                await h.result()
            audit = await Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue).audit()
            builds = {await ran_on(pipeline.client, h.id) for h in handles}
    assert result.phase is Phase.PROMOTED
    assert (await control.describe()).current == "B"
    assert builds == {"A", "B"}
    details = [a.detail for a in audit if a.action == "controller-step"]
    assert "ramp of build B at 30 %" in details[0]
    assert "build B current (was A)" in details[1]
    drained = [a.detail for a in audit if a.action == "controller-gate-pass"][-1]
    assert f"drain pass (0 documents still on {pipeline.deployment}:A)" in drained


@pytest.mark.slow(seconds=30)
@pytest.mark.timeout(300)
async def test_a_broken_build_is_stopped_and_its_documents_restarted_on_the_old_one(
    pipeline: Pipeline,
) -> None:
    control = DeploymentControl(pipeline.client, pipeline.deployment)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    plan = parse_plan(
        {
            "candidate": "B",
            "strategy": "builds",
            "poll": 1,
            "steps": [
                {"kind": "canary", "fraction": 0.5, "bake": 120, "min_documents": 10},
                {"kind": "promote"},
            ],
        }
    )
    async with pipeline.worker(build=pipeline.build("A"), pools=("v2",)):
        await await_pollers(control, "A")
        await control.set_current("A")
        broken = pipeline.worker(
            build=pipeline.build("B"), pools=(), workflows=[BrokenDocumentWorkflow]
        )
        async with broken:
            await await_pollers(control, "B")
            async with pipeline.feed(0.2) as started:
                await controllers.run(plan, BY)
                result = await controllers.handle().result()
            handles = list(started)
        # Build B's workers are gone; every document must end on A (its latest run: the ones
        # stuck on B were terminated and started again).
        outcomes = [
            await pipeline.client.get_workflow_handle(
                h.id, result_type=ClassificationOutcome
            ).result()
            for h in handles
        ]
        audit = await Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue).audit()
    assert result.phase is Phase.ABORTED
    assert "stuck workflows fail" in result.abort_reason
    view = await control.describe()
    assert (view.current, view.ramping) == ("A", None)
    # A document whose first task failed on B was never pinned to B (a pin is recorded when a
    # task completes): once A is current again its next task may run on A, and then it needs no
    # restart. Which of the two it took is timing; that every document ends on A with one
    # record is not.
    assert len(outcomes) == len(handles)
    for h in handles:
        assert await ran_on(pipeline.client, h.id) == "A"
    assert len(pipeline.store.records()) == len(handles)
    rollback = next(a for a in audit if a.action == "controller-rollback")
    assert rollback.detail.startswith(
        ("scenario B (restart-on-baseline)", "scenario A (restart-on-baseline)")
    )
