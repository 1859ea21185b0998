"""The document pipeline against the real dev server and the real model server.

Each test has its own task queue, workflow ids and results database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.app.worker import pipeline_activities
from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.models.catalog import Catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.server import serve_in_thread
from modelbaton.pipeline.messages import (
    PROCESS_RESULT,
    ClassificationOutcome,
    Outcome,
    ProcessInput,
    ProcessOutput,
    ReviewDecision,
    WorkflowState,
)
from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2, PATCH_MODEL_ASSIGNMENT, patch_markers
from modelbaton.pipeline.starter import SubmitReport, start_document, workflow_input
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration


async def has_patch_marker(handle: WorkflowHandle[object, object]) -> bool:
    return PATCH_CLASSIFY_V2 in patch_markers(await handle.fetch_history())


async def wait_for_state(
    handle: WorkflowHandle[Any, Any], state: WorkflowState, within: float = 30
) -> None:
    async def reached() -> bool:
        return (await handle.query(Current.status)).state is state

    await eventually(reached, within=within, what=f"state {state}")


def check_canonical(out: ClassificationOutcome, n_classes: int) -> None:
    assert isinstance(out.result, NormalizedClassificationResult)
    assert len(out.result.scores_by_class) == n_classes
    assert out.result.label in out.result.scores_by_class
    assert abs(out.result.scores_by_class[out.result.label] - out.result.confidence) < 1e-4


async def test_v1_path_on_prepatch_release(pipeline: Pipeline) -> None:
    async with pipeline.worker("initial"):
        handle = await pipeline.start_legacy(pipeline.doc(), "v1")
        out = await handle.result()
    assert out.branch == "v1"
    assert out.result.model_version == "v1"
    assert out.result.schema_version == 1
    assert out.result.label == "invoice"
    check_canonical(out, 8)
    assert not await has_patch_marker(handle)
    assert pipeline.store.count_for(out.document_id) == 1


async def test_v2_path_on_patched_release(pipeline: Pipeline) -> None:
    async with pipeline.worker("patched"):
        handle = await pipeline.start_legacy(pipeline.doc(), "v2")
        out = await handle.result()
    assert out.branch == "v2"
    assert out.result.model_version == "v2"
    assert out.result.schema_version == 2
    check_canonical(out, 8)
    assert await has_patch_marker(handle)
    desc = await handle.describe()
    assert desc.typed_search_attributes  # ModelVersion and OutputSchemaVersion are set


async def test_v3_is_a_catalog_change_only(pipeline: Pipeline) -> None:
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), "v3")
        out = await handle.result()
    assert out.result.model_version == "v3"
    check_canonical(out, 9)
    assert out.assignment is not None
    assert await scheduled_classify(handle) == [("classify_document_v2", out.assignment.task_queue)]


async def scheduled_classify(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(activity type, task queue) of every classify activity the workflow scheduled."""
    history = await handle.fetch_history()
    return [
        (a.activity_type.name, a.task_queue.name)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        for a in [e.activity_task_scheduled_event_attributes]
        if a.activity_type.name.startswith("classify_document")
    ]


async def test_rollback_to_schema_1_model_is_a_plan_change(pipeline: Pipeline) -> None:
    """Today's release classifies new documents with model v1 (schema 1) through
    classify_document_v1 on v1's pool: no code change, no ConfigError."""
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), "v1")
        out = await handle.result()
    assert (out.branch, out.result.model_version, out.result.schema_version) == ("v1", "v1", 1)
    check_canonical(out, 8)
    queue = f"{pipeline.task_queue}-model-v1"
    assert await scheduled_classify(handle) == [("classify_document_v1", queue)]
    markers = patch_markers(await handle.fetch_history())
    assert PATCH_MODEL_ASSIGNMENT in markers
    assert PATCH_CLASSIFY_V2 not in markers


async def test_review_accepted(pipeline: Pipeline) -> None:
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), threshold=1.0)
        await wait_for_state(handle, WorkflowState.AWAITING_REVIEW)
        receipt = await handle.execute_update(
            Current.submit_review, ReviewDecision(label="receipt", reviewer="ana")
        )
        assert receipt.accepted_label == "receipt"
        out = await handle.result()
    assert out.outcome is Outcome.REVIEWED
    assert out.final_label == "receipt"
    rec = pipeline.store.records()[0]
    assert (rec.final_label, rec.reviewer, rec.model_label) == ("receipt", "ana", out.result.label)
    assert rec.destination == pipeline.catalog.pipeline.route_for("receipt")


async def test_review_rejects_unknown_label_then_accepts(pipeline: Pipeline) -> None:
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), threshold=1.0)
        await wait_for_state(handle, WorkflowState.AWAITING_REVIEW)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                Current.submit_review, ReviewDecision(label="spaceship", reviewer="ana")
            )
        assert "unknown label 'spaceship'" in str(err.value.cause)
        view = await handle.query(Current.status)
        assert view.state is WorkflowState.AWAITING_REVIEW
        await handle.execute_update(
            Current.submit_review, ReviewDecision(label="invoice", reviewer="b")
        )
        out = await handle.result()
    assert out.outcome is Outcome.REVIEWED
    # The rejected update left no trace in history: validators run before anything is recorded.
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1


async def test_review_times_out_and_escalates(pipeline: Pipeline) -> None:
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), threshold=1.0, review_timeout=2)
        out = await handle.result()
    assert out.outcome is Outcome.ESCALATED
    assert out.destination == "review_escalations"
    assert out.final_label == out.result.label


async def test_downstream_idempotent_under_activity_retry(pipeline: Pipeline) -> None:
    """The write succeeds but the activity fails before reporting: the retry must not duplicate."""
    async with make_http_client() as http:
        real = pipeline_activities(pipeline.store, pipeline.source, http)
        calls: list[ProcessOutput] = []

        @activity.defn(name=PROCESS_RESULT)
        async def lossy_process(inp: ProcessInput) -> ProcessOutput:
            out = await real.process_classification_result(inp)
            calls.append(out)
            if activity.info().attempt == 1:
                raise RuntimeError("connection lost after commit")
            return out

        acts = [*real.classify.all(), lossy_process]
        async with pipeline.worker(activities=acts):
            out = await (await pipeline.start(pipeline.doc())).result()
    assert [c.created for c in calls] == [True, False]
    assert calls[0].record_id == calls[1].record_id == out.record_id
    assert pipeline.store.count_for(out.document_id) == 1


async def test_resubmission_reports_running_and_completed(pipeline: Pipeline) -> None:
    doc = pipeline.doc()
    inp = workflow_input(
        doc, pipeline.plan().assign(doc.document_id, pipeline.task_queue), pipeline.catalog.pipeline
    )
    async with pipeline.worker():
        report = SubmitReport()
        handle = await start_document(pipeline.client, doc, inp, pipeline.task_queue, report)
        assert handle is not None
        # While it runs, the same content maps to the same workflow id: nothing new starts.
        assert await start_document(pipeline.client, doc, inp, pipeline.task_queue, report) is None
        out = await handle.result()
        # A completed document is never classified twice.
        assert await start_document(pipeline.client, doc, inp, pipeline.task_queue, report) is None
    assert report.started == [doc.workflow_id]
    assert report.already_running == [doc.workflow_id]
    assert report.already_completed == [doc.workflow_id]
    assert pipeline.store.count_for(out.document_id) == 1


async def test_terminated_document_runs_again_with_one_current_record(pipeline: Pipeline) -> None:
    """A run that wrote downstream and then got stuck is terminated and run again: the document
    keeps one current record (the re-run's) and the first run's record is kept as superseded."""
    doc = pipeline.doc()
    async with make_http_client() as http:
        real = pipeline_activities(pipeline.store, pipeline.source, http)

        @activity.defn(name=PROCESS_RESULT)
        async def write_then_hang(inp: ProcessInput) -> ProcessOutput:
            await real.process_classification_result(inp)
            raise RuntimeError("acknowledgement lost; retrying forever")

        async with pipeline.worker(activities=[*real.classify.all(), write_then_hang]):
            first = await pipeline.start(doc)
            await eventually(lambda: pipeline.store.count_for(doc.document_id) == 1)
            await first.terminate("stuck after its write; re-run it")
    first_run = (await first.describe()).run_id
    report = SubmitReport()
    inp = workflow_input(
        doc, pipeline.plan().assign(doc.document_id, pipeline.task_queue), pipeline.catalog.pipeline
    )
    async with pipeline.worker():
        again = await start_document(pipeline.client, doc, inp, pipeline.task_queue, report)
        assert again is not None
        out = await again.result()
    assert report.restarted == [doc.workflow_id]
    assert report.started == []
    current = [r for r in pipeline.store.records() if r.document_id == doc.document_id]
    assert len(current) == 1
    assert current[0].run_id != first_run
    assert current[0].id == out.record_id
    old = pipeline.store.superseded(doc.document_id)
    assert [(o.run_id, o.superseded_by_run_id) for o in old] == [(first_run, current[0].run_id)]


def control_app(responses: list[tuple[int, dict[str, object]]]) -> FastAPI:
    """A real HTTP model endpoint that plays back scripted responses, then repeats the last."""
    app = FastAPI()
    served: list[int] = []

    @app.post("/classify")
    async def classify() -> JSONResponse:
        status, body = responses[min(len(served), len(responses) - 1)]
        served.append(status)
        return JSONResponse(body, status_code=status)

    app.state.served = served
    return app


GOOD_V2 = {"label": "a", "confidence": 0.9, "raw_scores": [0.9, 0.1], "class_order": ["a", "b"]}


async def test_malformed_model_output_fails_document_without_retry(pipeline: Pipeline) -> None:
    bad = {"label": "a", "confidence": 0.9, "raw_scores": [0.9, 0.1], "class_order": ["a"]}
    app = control_app([(200, bad)])
    with serve_in_thread(app) as url:
        pipeline.add_endpoint("bad", url)
        async with pipeline.worker(pools=["bad"]):
            handle = await pipeline.start(pipeline.doc(), "bad")
            with pytest.raises(WorkflowFailureError) as err:
                await handle.result()
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ModelOutputError"
    assert "raw_scores" in cause.message
    assert "2 scores for 1 classes" in cause.message
    assert app.state.served == [200]  # permanent: called once, never retried
    assert pipeline.store.records() == []


async def test_server_errors_are_retried_then_succeed(pipeline: Pipeline) -> None:
    app = control_app([(503, {"detail": "warming up"}), (500, {"detail": "oops"}), (200, GOOD_V2)])
    with serve_in_thread(app) as url:
        pipeline.add_endpoint("flaky", url)
        async with pipeline.worker(pools=["flaky"]):
            out = await (await pipeline.start(pipeline.doc(), "flaky")).result()
    assert app.state.served == [503, 500, 200]
    assert out.result.scores_by_class == {"a": 0.9, "b": 0.1}


def test_refused_documents_start_nothing(
    tmp_path: Path, client: Client, reference_catalog: Catalog, task_queue: str
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    big = tmp_path / "big.txt"
    big.write_text("invoice " * 40_000)
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": task_queue,
        "MODELBATON_MODEL_BASE_URL": reference_catalog.base_url,
    }
    result = CliRunner().invoke(baton, ["submit", str(empty), str(big), "--json"], env=env)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["started"] == 0
    assert "document is empty" in report["rejected"][str(empty)]
    assert "above the 131072-byte limit" in report["rejected"][str(big)]


async def test_refused_documents_leave_no_workflow(client: Client, task_queue: str) -> None:
    count = await client.count_workflows(f"TaskQueue = '{task_queue}'")
    assert count.count == 0
