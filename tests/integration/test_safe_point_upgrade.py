"""Safe-point upgrade: a pinned workflow waiting at review moves to the new current build by
continuing as new, carrying its classification; both runs replay on today's code."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from modelbaton.pipeline.messages import ReviewDecision, WorkflowState
from modelbaton.pipeline.starter import start_document, workflow_input
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.versioning.control import DeploymentControl
from pipeline_fixtures import Pipeline
from versioning_helpers import await_pollers, ran_on
from waiting import eventually

pytestmark = pytest.mark.integration


async def start_upgradable(pipeline: Pipeline) -> WorkflowHandle[Any, Any]:
    doc = pipeline.doc()
    section = pipeline.pipeline_section(1.0, 3600).model_copy(
        update={"upgrade_at_review": True, "upgrade_check_seconds": 1.0}
    )
    inp = workflow_input(doc, pipeline.plan().assign(doc.document_id, pipeline.task_queue), section)
    handle = await start_document(pipeline.client, doc, inp, pipeline.task_queue)
    assert handle is not None
    return handle


def activity_types(history: Any) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_waiting_workflow_moves_to_the_new_build_without_classifying_again(
    pipeline: Pipeline,
) -> None:
    client = pipeline.client
    control = DeploymentControl(client, pipeline.deployment)
    async with pipeline.worker(build=pipeline.build("A")):
        await await_pollers(control, "A")
        await control.set_current("A")
        handle = await start_upgradable(pipeline)

        async def waiting() -> Any:
            status = await client.get_workflow_handle(handle.id).query(Current.status)
            return status if status.state is WorkflowState.AWAITING_REVIEW else None

        before = await eventually(waiting, what="waiting at review on A")
        first_run = (await client.get_workflow_handle(handle.id).describe()).run_id
        assert await ran_on(client, handle.id) == "A"
        # Nothing moves while A stays current: the periodic wake-ups find no new target.
        async with pipeline.worker(build=pipeline.build("B"), pools=()):
            await await_pollers(control, "B")
            await control.set_current("B")

            async def moved() -> bool:
                latest = await client.get_workflow_handle(handle.id).describe()
                return latest.run_id != first_run and await ran_on(client, handle.id) == "B"

            await eventually(moved, within=30, what="the waiting workflow continued onto B")
            latest = client.get_workflow_handle_for(Current.run, handle.id)
            after = await eventually(waiting, what="waiting at review on B")
            assert after.result == before.result
            await latest.execute_update(
                Current.submit_review, ReviewDecision(label=before.result.label, reviewer="qa")
            )
            out = await latest.result()
            assert out.final_label == before.result.label
            assert await ran_on(client, handle.id) == "B"

    old = client.get_workflow_handle(handle.id, run_id=first_run)
    assert (await old.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW
    old_history = await old.fetch_history()
    new_history = await latest.fetch_history()
    classify = [t for t in activity_types(old_history) if t.startswith("classify")]
    assert len(classify) == 1
    # The continued run classifies nothing: it only writes the result.
    assert activity_types(new_history) == ["process_classification_result"]
    # Replay consequence: the decision to move is recorded in history (the target-changed flag
    # of the workflow task), so both runs replay deterministically on today's code.
    replayer = Replayer(workflows=[Current], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(old_history)
    await replayer.replay_workflow(new_history)


async def test_with_the_option_off_a_waiting_workflow_stays_on_its_build(
    pipeline: Pipeline,
) -> None:
    """The default: no timers, no move; the review completes on the build that started it."""
    client = pipeline.client
    control = DeploymentControl(client, pipeline.deployment)
    async with pipeline.worker(build=pipeline.build("A")):
        await await_pollers(control, "A")
        await control.set_current("A")
        handle = await pipeline.start(pipeline.doc(), threshold=1.0)

        async def waiting() -> Any:
            status = await handle.query(Current.status)
            return status if status.state is WorkflowState.AWAITING_REVIEW else None

        before = await eventually(waiting, what="waiting at review on A")
        async with pipeline.worker(build=pipeline.build("B"), pools=()):
            await await_pollers(control, "B")
            await control.set_current("B")
            await handle.execute_update(
                Current.submit_review, ReviewDecision(label=before.result.label, reviewer="qa")
            )
            await handle.result()
    history = await handle.fetch_history()
    timers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert len(timers) == 1, "only the review timeout: no wake-ups when the option is off"
    assert await ran_on(client, handle.id) == "A"
    assert (await handle.describe()).run_id == handle.result_run_id
