"""The document pipeline against the real dev server and the real model server.

Each test has its own task queue, workflow ids and results database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

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

from modelbaton.cli.main import app as baton
from modelbaton.contracts import (
    DeploymentStrategy,
    ModelVersionConfig,
    NormalizedClassificationResult,
)
from modelbaton.models.catalog import Catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.server import serve_in_thread
from modelbaton.pipeline.activities import PipelineActivities
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.messages import (
    PROCESS_RESULT,
    WORKFLOW_TYPE,
    ClassificationOutcome,
    Outcome,
    ProcessInput,
    ProcessOutput,
    ReviewDecision,
    WorkflowState,
)
from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2, patch_markers
from modelbaton.pipeline.starter import start_document, workflow_input
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.worker import WorkerOptions, build_worker

pytestmark = pytest.mark.integration

INVOICE = (
    "INVOICE No. 4471\nBill to: Northwind Traders\nAmount due: $1,250.00\n"
    "Payment terms: net 30. Please remit payment by the due date. Invoice date 2026-03-02."
)


@dataclass
class Pipeline:
    client: Client
    catalog: Catalog
    store: ResultsStore
    task_queue: str

    def doc(self, text: str = INVOICE) -> Document:
        # A unique suffix keeps content-derived ids unique per test.
        return validate_text(f"{text}\nref {uuid.uuid4().hex}", "test")

    def deployment(self, version: str) -> DeploymentStrategy:
        return DeploymentStrategy(primary_version=self.catalog.get(version))

    async def start(
        self,
        doc: Document,
        version: str = "v2",
        *,
        threshold: float = 0.0,
        review_timeout: float = 3600,
        config: ModelVersionConfig | None = None,
    ) -> WorkflowHandle[object, ClassificationOutcome]:
        pipeline = self.catalog.pipeline.model_copy(
            update={"review_threshold": threshold, "review_timeout_seconds": review_timeout}
        )
        deployment = (
            DeploymentStrategy(primary_version=config) if config else self.deployment(version)
        )
        handle = await start_document(self.client, doc, deployment, pipeline, self.task_queue)
        assert handle is not None
        return handle

    @asynccontextmanager
    async def worker(
        self, release: str = "patched", activities: list[object] | None = None
    ) -> AsyncIterator[None]:
        async with make_http_client() as http:
            acts = activities or PipelineActivities(self.store, self.catalog.pipeline, http).all()
            async with build_worker(
                self.client, WorkerOptions(task_queue=self.task_queue, release=release), acts
            ):
                yield


@pytest.fixture
def pipeline(
    client: Client, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> Iterator[Pipeline]:
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    yield Pipeline(client, reference_catalog, store, task_queue)
    store.close()


async def has_patch_marker(handle: WorkflowHandle[object, object]) -> bool:
    return PATCH_CLASSIFY_V2 in patch_markers(await handle.fetch_history())


async def wait_for_state(
    handle: WorkflowHandle[object, object], state: WorkflowState, within: float = 30
) -> None:
    async def poll() -> None:
        while True:
            view = await handle.query("status")
            if view["state"] == state.value:
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), within)


def check_canonical(out: ClassificationOutcome, n_classes: int) -> None:
    assert isinstance(out.result, NormalizedClassificationResult)
    assert len(out.result.scores_by_class) == n_classes
    assert out.result.label in out.result.scores_by_class
    assert abs(out.result.scores_by_class[out.result.label] - out.result.confidence) < 1e-4


async def test_v1_path_on_prepatch_release(pipeline: Pipeline) -> None:
    async with pipeline.worker("initial"):
        handle = await pipeline.start(pipeline.doc(), "v1")
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
        handle = await pipeline.start(pipeline.doc(), "v2")
        out = await handle.result()
    assert out.branch == "v2"
    assert out.result.model_version == "v2"
    assert out.result.schema_version == 2
    check_canonical(out, 8)
    assert await has_patch_marker(handle)
    desc = await handle.describe()
    assert desc.typed_search_attributes  # ModelVersion and OutputSchemaVersion are set


async def test_v3_is_a_catalog_change_only(pipeline: Pipeline) -> None:
    async with pipeline.worker("patched"):
        out = await (await pipeline.start(pipeline.doc(), "v3")).result()
    assert out.result.model_version == "v3"
    check_canonical(out, 9)


async def test_review_accepted(pipeline: Pipeline) -> None:
    async with pipeline.worker():
        handle = await pipeline.start(pipeline.doc(), threshold=1.0)
        await wait_for_state(handle, WorkflowState.AWAITING_REVIEW)
        receipt = await handle.execute_update(
            "submit_review", ReviewDecision(label="receipt", reviewer="ana"), result_type=dict
        )
        assert receipt["accepted_label"] == "receipt"
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
                "submit_review", ReviewDecision(label="spaceship", reviewer="ana")
            )
        assert "unknown label 'spaceship'" in str(err.value.cause)
        view = await handle.query("status")
        assert view["state"] == WorkflowState.AWAITING_REVIEW.value
        await handle.execute_update("submit_review", ReviewDecision(label="invoice", reviewer="b"))
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
        real = PipelineActivities(pipeline.store, pipeline.catalog.pipeline, http)
        calls: list[ProcessOutput] = []

        @activity.defn(name=PROCESS_RESULT)
        async def lossy_process(inp: ProcessInput) -> ProcessOutput:
            out = await real.process_classification_result(inp)
            calls.append(out)
            if activity.info().attempt == 1:
                raise RuntimeError("connection lost after commit")
            return out

        acts = [real.classify_document_v1, real.classify_document_v2, lossy_process]
        async with pipeline.worker(activities=acts):
            out = await (await pipeline.start(pipeline.doc())).result()
    assert [c.created for c in calls] == [True, False]
    assert calls[0].record_id == calls[1].record_id == out.record_id
    assert pipeline.store.count_for(out.document_id) == 1


async def test_resubmission_starts_nothing_and_writes_nothing(pipeline: Pipeline) -> None:
    doc = pipeline.doc()
    deployment = pipeline.deployment("v2")
    async with pipeline.worker():
        handle = await pipeline.start(doc)
        # While running: the same content maps to the same workflow id, so nothing new starts.
        again = await start_document(
            pipeline.client, doc, deployment, pipeline.catalog.pipeline, pipeline.task_queue
        )
        assert again is None
        out = await handle.result()
        # After completion too (REJECT_DUPLICATE).
        assert (
            await start_document(
                pipeline.client, doc, deployment, pipeline.catalog.pipeline, pipeline.task_queue
            )
            is None
        )
        # Even a second workflow for the same document (another id) adds no second record.
        forced = await pipeline.client.start_workflow(
            WORKFLOW_TYPE,
            workflow_input(doc, deployment, pipeline.catalog.pipeline),
            id=f"forced-{uuid.uuid4().hex[:8]}",
            task_queue=pipeline.task_queue,
            result_type=ClassificationOutcome,
        )
        forced_out = await forced.result()
    assert forced_out.record_id == out.record_id
    assert pipeline.store.count_for(out.document_id) == 1


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
        config = ModelVersionConfig(
            model_id="ctl", version="bad", endpoint=f"{url}/classify", output_schema_version=2
        )
        async with pipeline.worker():
            handle = await pipeline.start(pipeline.doc(), config=config)
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
        config = ModelVersionConfig(
            model_id="ctl", version="flaky", endpoint=f"{url}/classify", output_schema_version=2
        )
        async with pipeline.worker():
            out = await (await pipeline.start(pipeline.doc(), config=config)).result()
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
