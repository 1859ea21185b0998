"""The pipeline as tests drive it: a real dev server, real model server, in-process workers.

Each test gets its own task queue (so its own pool queues), workflow ids and results database.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from modelbaton.app.worker import (
    WorkerOptions,
    build_pool_worker,
    build_worker,
    pipeline_activities,
)
from modelbaton.contracts import DeploymentStrategy, ModelVersionConfig
from modelbaton.contracts.rollout import ModelRef, RolloutPlan
from modelbaton.controller.activities import ControllerActivities
from modelbaton.models.catalog import Catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.messages import ClassificationOutcome
from modelbaton.pipeline.releases import CURRENT_RELEASE
from modelbaton.pipeline.starter import legacy_workflow_input, start_document, workflow_input
from modelbaton.pipeline.store import ResultsStore
from modelbaton.versioning.builds import Behavior, Build, deployment_name_for

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
    source: CatalogSource = field(init=False)

    def __post_init__(self) -> None:
        self.source = CatalogSource.fixed(self.catalog)

    def add_model(self, config: ModelVersionConfig) -> None:
        """Declare another model version (a scripted endpoint) in this test's catalog."""
        self.catalog = self.catalog.extended(config)
        self.source = CatalogSource.fixed(self.catalog)

    def add_endpoint(self, version: str, url: str, **config: Any) -> None:
        """Declare ``version``, a schema-2 model of this test's catalog served at ``url``
        (a scripted endpoint: ``POST {url}/classify``)."""
        self.add_model(
            ModelVersionConfig(
                model_id="doc-classifier",
                version=version,
                endpoint=f"{url}/classify",
                output_schema_version=2,
                **config,
            )
        )

    def doc(self, text: str = INVOICE) -> Document:
        # A unique suffix keeps content-derived ids unique per test.
        return validate_text(f"{text}\nref {uuid.uuid4().hex}", "test")

    def plan(self, version: str = "v2") -> RolloutPlan:
        config = self.catalog.get(version)
        return RolloutPlan(
            model_id=config.model_id,
            baseline=ModelRef(version=version, output_schema_version=config.output_schema_version),
        )

    def pipeline_section(self, threshold: float, review_timeout: float) -> Any:
        return self.catalog.pipeline.model_copy(
            update={"review_threshold": threshold, "review_timeout_seconds": review_timeout}
        )

    async def start(
        self,
        doc: Document,
        version: str = "v2",
        *,
        plan: RolloutPlan | None = None,
        threshold: float = 0.0,
        review_timeout: float = 3600,
    ) -> WorkflowHandle[Any, ClassificationOutcome]:
        """Start ``doc`` as ``baton submit`` does: assigned by ``plan`` (default: ``version``)."""
        chosen = plan or self.plan(version)
        assignment = chosen.assign(doc.document_id, self.task_queue)
        shadow = chosen.shadow_for(doc.document_id, self.task_queue)
        section = self.pipeline_section(threshold, review_timeout)
        inp = workflow_input(doc, assignment, section, shadow)
        handle = await start_document(self.client, doc, inp, self.task_queue)
        assert handle is not None
        return handle

    async def start_legacy(
        self,
        doc: Document,
        version: str = "v2",
        *,
        threshold: float = 0.0,
        review_timeout: float = 3600,
    ) -> WorkflowHandle[Any, ClassificationOutcome]:
        """Start ``doc`` with the input of releases before the assignment patch."""
        deployment = DeploymentStrategy(primary_version=self.catalog.get(version))
        inp = legacy_workflow_input(
            doc, deployment, self.pipeline_section(threshold, review_timeout)
        )
        handle = await start_document(self.client, doc, inp, self.task_queue)
        assert handle is not None
        return handle

    @asynccontextmanager
    async def feed(
        self, every: float = 0.15
    ) -> AsyncIterator[list[WorkflowHandle[Any, ClassificationOutcome]]]:
        """Documents arriving during a rollout: one every ``every`` seconds (a pace, not a wait),
        assigned by the plan in force when it starts; yields the handles started so far.

        It stops between two documents, never in the middle of a start: a start cut short after
        the server took it would leave a workflow the test does not know about.
        """
        from modelbaton.rollout.client import Rollouts

        started: list[WorkflowHandle[Any, ClassificationOutcome]] = []
        rollouts = Rollouts(self.client, self.catalog, self.task_queue)
        stop = asyncio.Event()

        async def loop() -> None:
            for i in itertools.count():
                if stop.is_set():
                    return
                text = f"INVOICE {i} amount due $12.00 payment terms net 30"
                started.append(await self.start(self.doc(text), plan=await rollouts.plan()))
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())
        try:
            yield started
        finally:
            stop.set()
            await task

    @asynccontextmanager
    async def worker(
        self,
        release: str = CURRENT_RELEASE,
        activities: list[object] | None = None,
        pools: Sequence[str] = ("v1", "v2", "v3"),
        build: Build | None = None,
        behavior: Behavior = Behavior.PINNED,
        workflows: Sequence[type] | None = None,
    ) -> AsyncIterator[None]:
        """The workflow worker of ``release`` plus a pool per version in ``pools``; with ``build``
        the workflow worker runs as that Worker Deployment version (pools stay unversioned)."""
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(make_http_client())
            acts = activities or [
                *pipeline_activities(self.store, self.source, http).all(),
                *ControllerActivities(self.client, self.source, self.store).all(),
            ]
            options = WorkerOptions(
                task_queue=self.task_queue, release=release, build=build, behavior=behavior
            )
            await stack.enter_async_context(
                build_worker(self.client, options, acts, workflows=workflows)
            )
            for version in pools:
                await stack.enter_async_context(self.pool(version, http))
            yield

    @property
    def deployment(self) -> str:
        """This test's Worker Deployment (one per task queue, as the CLI derives it)."""
        return deployment_name_for(self.task_queue)

    def build(self, build_id: str) -> Build:
        return Build(self.deployment, build_id)

    def pool(self, version: str, http: Any) -> Any:
        """The pool worker of ``version`` (an async context manager)."""
        return build_pool_worker(self.client, self.task_queue, version, self.source, http)


@pytest.fixture
def pipeline(
    client: Client, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> Iterator[Pipeline]:
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    yield Pipeline(client, reference_catalog, store, task_queue)
    store.close()
