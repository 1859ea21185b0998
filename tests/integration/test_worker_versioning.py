"""Worker Versioning on the real dev server: pinned builds, ramps and rollbacks."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from modelbaton.pipeline.messages import ReviewDecision, WorkflowState
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.versioning.builds import Build, deployment_name_for
from modelbaton.versioning.control import DeploymentControl
from pipeline_fixtures import Pipeline
from versioning_helpers import await_pollers, probe_worker, ran_on, start_probe
from waiting import eventually
from workflow_variants.version_probe import VersionProbe

pytestmark = pytest.mark.integration


async def test_pinned_workflow_finishes_on_its_build_while_new_ones_run_on_the_next(
    pipeline: Pipeline,
) -> None:
    control = DeploymentControl(pipeline.client, pipeline.deployment)
    a, b = pipeline.build("A"), pipeline.build("B")
    async with pipeline.worker("assigned", build=a):
        await await_pollers(control, "A")
        await control.set_current("A")
        waiting = await pipeline.start(pipeline.doc(), threshold=1.0)

        async def at_review() -> bool:
            return (await waiting.query(Current.status)).state is WorkflowState.AWAITING_REVIEW

        await eventually(at_review, what="first document waiting at review")
        async with pipeline.worker("assigned", build=b, pools=()):
            await await_pollers(control, "B")
            change = await control.set_current("B")
            assert (change.previous_current, change.current) == ("A", "B")
            fresh = await pipeline.start(pipeline.doc(), threshold=0.0)
            await fresh.result()
            assert await ran_on(pipeline.client, fresh.id) == "B"

            label = (await waiting.query(Current.status)).result
            assert label is not None
            await waiting.execute_update(
                Current.submit_review, ReviewDecision(label=label.label, reviewer="qa")
            )
            out = await waiting.result()
            assert out.final_label == label.label
            assert await ran_on(pipeline.client, waiting.id) == "A"
    view = await control.describe()
    assert view.current == "B"
    assert {v.build_id for v in view.versions} == {"A", "B"}


async def test_ramp_is_deterministic_per_workflow_id_and_monotonic(
    client: Client, task_queue: str
) -> None:
    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    ids = [f"ramp-{uuid.uuid4().hex[:10]}" for _ in range(60)]

    async def route_all() -> dict[str, str | None]:
        builds: dict[str, str | None] = {}
        for wid in ids:
            handle = await start_probe(client, task_queue, wid, hold=False)
            await handle.result()
            builds[wid] = await ran_on(client, wid, handle.result_run_id)
        return builds

    async with (
        probe_worker(client, task_queue, Build(deployment, "A")),
        probe_worker(client, task_queue, Build(deployment, "B")),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        await control.set_current("A")
        ramp = await control.set_ramping("B", 30.0)
        assert (ramp.current, ramp.ramping, ramp.ramp_percent) == ("A", "B", 30.0)
        first = await route_all()
        again = await route_all()
        await control.set_ramping("B", 60.0)
        raised = await route_all()
        cleared = await control.clear_ramp()
        assert cleared.ramping is None
        after_clear = await route_all()

    assert set(first.values()) <= {"A", "B"}
    on_b = {w for w, b in first.items() if b == "B"}
    # 30 % of 60 ids is 18; binomial sd 3.5: 6..30 is beyond 3 sd on either side.
    assert 6 <= len(on_b) <= 30, len(on_b)
    assert again == first, "the same workflow id must go to the same build at the same ramp"
    raised_b = {w for w, b in raised.items() if b == "B"}
    assert on_b <= raised_b, "raising the ramp must keep every id already on B"
    assert len(raised_b) > len(on_b)
    assert set(after_clear.values()) == {"A"}


async def test_rollback_sends_new_workflows_back_and_pinned_ones_stay(
    client: Client, task_queue: str
) -> None:
    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    async with (
        probe_worker(client, task_queue, Build(deployment, "A")),
        probe_worker(client, task_queue, Build(deployment, "B")),
    ):
        await await_pollers(control, "A")
        await control.set_current("A")
        await await_pollers(control, "B")
        await control.set_current("B")
        held = await start_probe(client, task_queue, f"held-{uuid.uuid4().hex[:8]}", hold=True)
        assert await eventually(lambda: ran_on(client, held.id), what="held started") == "B"
        assert (await control.describe()).previous() == "A"
        back = await control.set_current("A")
        assert back.previous_current == "B"
        fresh = await start_probe(client, task_queue, f"new-{uuid.uuid4().hex[:8]}", hold=False)
        await fresh.result()
        assert await ran_on(client, fresh.id) == "A"
        await held.signal(VersionProbe.release)
        await held.result()
        assert await ran_on(client, held.id) == "B"


async def test_refusals_unknown_build_and_no_pollers(client: Client, task_queue: str) -> None:
    from modelbaton.errors import RolloutError

    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    with pytest.raises(RolloutError, match="no worker deployment"):
        await control.describe()
    async with probe_worker(client, task_queue, Build(deployment, "A")):
        await await_pollers(control, "A")
        with pytest.raises(RolloutError, match=r"unknown build 'Z'.*known: A"):
            await control.set_current("Z")
        async with probe_worker(client, task_queue, Build(deployment, "B")):
            await await_pollers(control, "B")
        # B's worker is gone: its version exists but nothing polls it. A short poller window
        # (the default is 90 s, longer than an idle long poll) makes that visible at once.
        impatient = DeploymentControl(client, deployment, poller_window=3.0)
        await eventually(lambda: _no_pollers(impatient, "B"), within=30, what="B's poller aged out")
        with pytest.raises(RolloutError, match="has no worker polling"):
            await impatient.set_current("B")
        assert (await control.describe()).current is None


async def _no_pollers(control: DeploymentControl, build_id: str) -> bool:
    return not await control.pollers(build_id)


async def test_per_workflow_override_pins_one_workflow_to_another_build(
    client: Client, task_queue: str
) -> None:
    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    async with (
        probe_worker(client, task_queue, Build(deployment, "A")),
        probe_worker(client, task_queue, Build(deployment, "B")),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        await control.set_current("B")
        moved = await start_probe(client, task_queue, f"moved-{uuid.uuid4().hex[:8]}", hold=True)
        stays = await start_probe(client, task_queue, f"stays-{uuid.uuid4().hex[:8]}", hold=True)
        for handle in (moved, stays):
            assert await eventually(lambda h=handle: ran_on(client, h.id), what="started") == "B"
        await control.pin_workflow(moved.id, "A")
        assert await ran_on(client, moved.id) == "A", "the override names the build at once"
        for handle in (moved, stays):
            await handle.signal(VersionProbe.release)
            await handle.result()
        assert await ran_on(client, moved.id) == "A"
        assert await ran_on(client, stays.id) == "B"
        history = await moved.fetch_history()
        completed_by = [
            e.workflow_task_completed_event_attributes.deployment_version.build_id
            for e in history.events
            if e.HasField("workflow_task_completed_event_attributes")
        ]
        assert completed_by[0] == "B"
        assert completed_by[-1] == "A", completed_by
