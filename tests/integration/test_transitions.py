"""Version transitions for real: a workflow starts on one release, waits at the review checkpoint,
its worker is replaced by the next release on the same task queue, and it resumes there.

What each stage can resume (verified here and in test_replay_histories.py):

- patched resumes pre-patch workflows (v1 branch, no marker) and starts new ones on v2;
- deprecated resumes workflows that carry the marker, but not pre-patch ones;
- complete resumes workflows whose marker was written by the deprecated release, but neither
  pre-patch ones nor ones whose marker was written by ``patched()`` (such markers must be
  matched): removing the patch too early fails with a non-determinism error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.app.worker import WorkerOptions, build_worker, pipeline_activities
from modelbaton.contracts import DeploymentStrategy
from modelbaton.models.catalog import Catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.intake import validate_text
from modelbaton.pipeline.messages import ClassificationOutcome, ReviewDecision, WorkflowState
from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2, patch_markers
from modelbaton.pipeline.releases import RELEASES
from modelbaton.pipeline.starter import legacy_workflow_input, start_document
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from waiting import eventually

pytestmark = pytest.mark.integration

TEXT = "INVOICE number 7 bill to Initech amount due $88.00 payment terms net 30"


@dataclass
class Transition:
    client: Client
    catalog: Catalog
    store: ResultsStore
    http: httpx.AsyncClient
    queue: str

    @asynccontextmanager
    async def worker(self, release: str) -> AsyncIterator[None]:
        acts = pipeline_activities(self.store, CatalogSource.fixed(self.catalog), self.http).all()
        async with build_worker(self.client, WorkerOptions(self.queue, release), acts):
            yield

    async def start(self, model: str) -> WorkflowHandle[object, ClassificationOutcome]:
        doc = validate_text(f"{TEXT} {uuid.uuid4().hex}", "transition-test")
        pipeline = self.catalog.pipeline.model_copy(update={"review_threshold": 1.0})
        deployment = DeploymentStrategy(primary_version=self.catalog.get(model))
        inp = legacy_workflow_input(doc, deployment, pipeline)
        handle = await start_document(self.client, doc, inp, self.queue)
        assert handle is not None

        async def at_review() -> bool:
            view = await handle.query(Current.status)
            return view.state is WorkflowState.AWAITING_REVIEW

        await eventually(at_review, what=f"{handle.id} at the review checkpoint")
        return handle

    async def left_in_flight(
        self, release: str, model: str
    ) -> WorkflowHandle[object, ClassificationOutcome]:
        """Start on ``release``, wait at review, then shut that worker down."""
        async with self.worker(release):
            return await self.start(model)

    async def review(
        self, handle: WorkflowHandle[object, ClassificationOutcome]
    ) -> ClassificationOutcome:
        await handle.execute_update(
            Current.submit_review, ReviewDecision(label="invoice", reviewer="t")
        )
        return await handle.result()


@pytest.fixture
async def transition(
    client: Client, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> AsyncIterator[Transition]:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    async with make_http_client() as http:
        yield Transition(client, reference_catalog, store, http, task_queue)
    store.close()


async def markers(handle: WorkflowHandle[object, object]) -> dict[str, bool]:
    return patch_markers(await handle.fetch_history())


async def wait_nondeterminism(handle: WorkflowHandle[object, object]) -> str:
    """Wait for the live worker to fail a workflow task on non-determinism; return the message."""

    async def failure() -> str | None:
        for e in (await handle.fetch_history()).events:
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                attrs = e.workflow_task_failed_event_attributes
                cause = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
                assert attrs.cause == cause, attrs
                return attrs.failure.message
        return None

    message = await eventually(failure, within=60, what=f"{handle.id}: non-determinism failure")
    assert message is not None
    return message


@asynccontextmanager
async def pending_review(handle: WorkflowHandle[object, object]) -> AsyncIterator[None]:
    """Keep a review update outstanding: it makes the worker replay the workflow, and on a
    release that cannot, the update never completes, so it is cancelled on exit."""
    update = asyncio.create_task(
        handle.execute_update("submit_review", ReviewDecision(label="invoice", reviewer="t"))
    )
    try:
        yield
    finally:
        update.cancel()
        await asyncio.gather(update, return_exceptions=True)


async def expect_stuck(t: Transition, handle: WorkflowHandle[object, object], release: str) -> str:
    """Under ``release``, an update makes the worker replay the history and fail."""
    async with t.worker(release), pending_review(handle):
        message = await wait_nondeterminism(handle)
    history = await handle.fetch_history()
    with pytest.raises(NondeterminismError):
        await Replayer(
            workflows=[RELEASES[release]], data_converter=pydantic_data_converter
        ).replay_workflow(history)
    return message


async def test_prepatch_workflow_resumes_on_patched_code_on_the_v1_branch(
    transition: Transition,
) -> None:
    old = await transition.left_in_flight("initial", "v1")
    async with transition.worker("patched"):
        new = await transition.start("v2")
        old_out = await transition.review(old)
        new_out = await transition.review(new)
    assert old_out.branch == "v1"
    assert old_out.result.model_version == "v1"
    assert await markers(old) == {}
    assert new_out.branch == "v2"
    assert new_out.result.model_version == "v2"
    assert await markers(new) == {PATCH_CLASSIFY_V2: False}
    # Same canonical structure whichever branch and raw format produced it.
    a, b = old_out.result.model_dump(), new_out.result.model_dump()
    assert a.keys() == b.keys()
    assert {k: type(v) for k, v in a.items()} == {k: type(v) for k, v in b.items()}
    assert a["scores_by_class"].keys() == b["scores_by_class"].keys()


async def test_deprecated_resumes_marked_workflows_but_not_prepatch_ones(
    transition: Transition,
) -> None:
    prepatch = await transition.left_in_flight("initial", "v1")
    marked = await transition.left_in_flight("patched", "v2")
    async with transition.worker("deprecated"):
        out = await transition.review(marked)
        fresh = await transition.start("v2")
        await transition.review(fresh)
    assert out.branch == "v2"
    assert await markers(fresh) == {PATCH_CLASSIFY_V2: True}  # deprecated marker
    message = await expect_stuck(transition, prepatch, "deprecated")
    assert "classify_document_v1" in message
    await prepatch.terminate("test cleanup: stuck on purpose")


async def test_complete_resumes_deprecated_markers_but_not_patched_ones(
    transition: Transition,
) -> None:
    deprecated = await transition.left_in_flight("deprecated", "v2")
    patched = await transition.left_in_flight("patched", "v2")
    async with transition.worker("complete"):
        out = await transition.review(deprecated)
        fresh = await transition.start("v2")
        await transition.review(fresh)
    assert out.branch == "v2"
    assert await markers(fresh) == {}
    # A marker written by patched() must be matched on replay: removal must wait for these.
    await expect_stuck(transition, patched, "complete")
    await patched.terminate("test cleanup: stuck on purpose")


async def test_removing_the_patch_under_running_prepatch_workflows_is_caught(
    isolated_client: Client, reference_catalog: Catalog, tmp_path: Path
) -> None:
    """The unsafe case: it fails with a non-determinism error, the workflow stays Running, and
    ``baton status`` (TemporalReportedProblems) raises the alarm."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    async with make_http_client() as http:
        t = Transition(isolated_client, reference_catalog, store, http, "unsafe-removal")
        prepatch = await t.left_in_flight("initial", "v1")
        message = await expect_stuck(t, prepatch, "complete")
        assert "Nondeterminism" in message
        assert "classify_document_v1" in message
        env = {
            "TEMPORAL_ADDRESS": isolated_client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": isolated_client.namespace,
            "MODELBATON_HOME": str(tmp_path / "home"),
        }
        # The server flags the workflow after two consecutive task failures; keep a worker on
        # the bad release running so the task keeps failing, as it would in production.
        async with t.worker("complete"), pending_review(prepatch):

            async def flagged() -> Any:
                result = await asyncio.to_thread(
                    CliRunner().invoke, baton, ["status", "--json"], env=env
                )
                return result if result.exit_code == 1 else None

            result = await eventually(flagged, within=60, every=0.5, what="the problem alarm")
        assert result is not None
        assert result.exit_code == 1, result.output
        assert prepatch.id in result.stdout
        assert '"nondeterminism": 1' in result.stdout
        desc = await prepatch.describe()
        assert desc.status is not None
        assert desc.status.name == "RUNNING"
        await prepatch.terminate("test cleanup: stuck on purpose")
        ok = await asyncio.to_thread(CliRunner().invoke, baton, ["status"], env=env)
        assert ok.exit_code == 0, ok.output
    store.close()
