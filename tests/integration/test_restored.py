"""Rollback scenario C for real: the old path is gone (``complete``) and comes back as a new patch.

On ``complete`` the v2 path is the only code, so a schema-1 model (``v1``) has no path: its
documents fail. ``restored`` reintroduces the schema-1 path behind ``PATCH_RESTORE_V1``: a
workflow left waiting at review by ``complete`` finishes on ``restored`` through the branch
without the marker, and new workflows on ``restored`` run model ``v1`` through
``classify_document_v1``. A schema dispatch shipped without the patch would break the histories
``complete`` recorded for a v1 model (the failed rollback attempts), which the patched code
replays through complete's branch.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from modelbaton.pipeline.messages import CLASSIFY_V1, ReviewDecision, WorkflowState
from modelbaton.pipeline.patches import PATCH_RESTORE_V1, patch_markers
from modelbaton.pipeline.releases import RELEASES, serves_schema
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration

#: Releases whose new workflows carry a model assignment (``baton submit``); the others take the
#: input of releases before the assignment patch.
ASSIGNED = {"assigned", "shadow"}


async def at_review(handle: WorkflowHandle[Any, Any]) -> None:
    async def waiting() -> bool:
        view = await handle.query(Current.status)
        return view.state is WorkflowState.AWAITING_REVIEW

    await eventually(waiting, what=f"{handle.id} at the review checkpoint")


async def activities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_a_complete_workflow_finishes_on_restored_and_new_ones_run_model_v1(
    pipeline: Pipeline,
) -> None:
    async with pipeline.worker("complete", pools=()):
        old = await pipeline.start_legacy(pipeline.doc(), "v2", threshold=1.0)
        await at_review(old)
    async with pipeline.worker("restored", pools=()):
        await old.execute_update(
            Current.submit_review, ReviewDecision(label="invoice", reviewer="t")
        )
        old_out = await old.result()
        v1 = await pipeline.start_legacy(pipeline.doc(), "v1")
        v1_out = await v1.result()
        v2 = await pipeline.start_legacy(pipeline.doc(), "v2")
        v2_out = await v2.result()
    # The workflow complete started keeps complete's path: no marker, classify_document_v2.
    assert old_out.branch == "v2"
    assert old_out.final_label == "invoice"
    assert patch_markers(await old.fetch_history()) == {}
    # New workflows take the restored branch, and model v1 runs again.
    assert v1_out.branch == "v1"
    assert v1_out.result.model_version == "v1"
    assert v1_out.result.schema_version == 1
    assert await activities(v1) == [CLASSIFY_V1, "process_classification_result"]
    assert patch_markers(await v1.fetch_history()) == {PATCH_RESTORE_V1: False}
    assert v2_out.branch == "v2"
    assert v2_out.result.model_version == "v2"
    assert patch_markers(await v2.fetch_history()) == {PATCH_RESTORE_V1: False}


async def test_complete_has_no_path_for_model_v1_and_only_the_patch_replays_that(
    pipeline: Pipeline,
) -> None:
    """Scenario C itself, and why the schema dispatch comes back behind a patch."""
    async with pipeline.worker("complete", pools=()):
        refused = await pipeline.start_legacy(pipeline.doc(), "v1")
        with pytest.raises(WorkflowFailureError) as caught:
            await refused.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ConfigError"
    assert "classify_document_v2 reads output schema v2" in cause.message
    history = await refused.fetch_history()
    # The patched release replays it through complete's branch (the marker is absent) ...
    await Replayer(
        workflows=[RELEASES["restored"]], data_converter=pydantic_data_converter
    ).replay_workflow(history)
    # ... while the same dispatch without the patch would schedule classify_document_v1.
    from workflow_variants.unpatched_restore import UnpatchedRestoreWorkflow

    with pytest.raises(NondeterminismError):
        await Replayer(
            workflows=[UnpatchedRestoreWorkflow], data_converter=pydantic_data_converter
        ).replay_workflow(history)


@pytest.mark.parametrize("release", list(RELEASES))
async def test_serves_schema_matches_what_a_new_workflow_can_run(
    pipeline: Pipeline, release: str
) -> None:
    """A new workflow per schema (models v1 and v2) on ``release``: it completes exactly when
    ``serves_schema`` says the release serves that schema."""
    served: dict[int, bool] = {}
    async with pipeline.worker(release, pools=("v1", "v2")):
        for version, schema in (("v1", 1), ("v2", 2)):
            doc = pipeline.doc()
            if release in ASSIGNED:
                handle = await pipeline.start(doc, version)
            else:
                handle = await pipeline.start_legacy(doc, version)
            try:
                out = await handle.result()
            except WorkflowFailureError:
                served[schema] = False
            else:
                assert out.result.schema_version == schema
                served[schema] = True
    assert served == {s: serves_schema(release, s) for s in (1, 2)}
