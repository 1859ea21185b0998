"""What the demo's acts share: its documents, the state they share, and waits on state.

Every wait here is for a state the demo can see (a workflow's query, Temporal's visibility), with a
deadline that only bounds a failure; none is a pause that hopes something has happened meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from rich.console import Console
from temporalio.client import Client, WorkflowHandle

from modelbaton import ModelAssignment, RolloutPlan
from modelbaton.contracts import DeploymentStrategy
from modelbaton.controller import Controllers
from modelbaton.models import Catalog, PipelineSection, generate_documents
from modelbaton.pipeline import (
    ClassificationOutcome,
    Document,
    DocumentClassificationWorkflow,
    SubmitReport,
    legacy_workflow_input,
    start_document,
    submit_documents,
    validate_text,
)
from modelbaton.rollout import Rollouts
from modelbaton.stack import StackState

if TYPE_CHECKING:
    import httpx

    from modelbaton.models import CatalogSource
    from modelbaton.pipeline import ResultsStore
    from modelbaton.versioning import Build

DEMO_QUEUE = "modelbaton-demo"
#: Workflow states in which a document is still on its way (not done, not waiting for a person).
IN_PROGRESS = ("classifying", "processing")

T = TypeVar("T")


async def poll_until(
    check: Callable[[], Awaitable[T | None]], waiting_for: str, within: float, every: float = 0.3
) -> T:
    """Call ``check`` until it returns something other than None, and return that.

    ``within`` seconds bound a failure (TimeoutError naming ``waiting_for``); ``every`` is how
    often to ask, not a pause that something is assumed to finish in.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await check()
        if found is not None:
            return found
        if loop.time() > deadline:
            raise TimeoutError(f"no {waiting_for} within {within:.0f} s")
        await asyncio.sleep(every)


@dataclass
class Batch:
    """Documents of one phase with their true labels (known because the corpus generated them)."""

    name: str
    docs: list[Document] = field(default_factory=list)
    truth: dict[str, str] = field(default_factory=dict)
    handles: dict[str, WorkflowHandle[Any, ClassificationOutcome]] = field(default_factory=dict)
    #: The model each started document was assigned, by workflow id (from the starter's report).
    assignments: dict[str, ModelAssignment] = field(default_factory=dict)

    def started(self, client: Client, doc: Document, report: SubmitReport | None = None) -> None:
        """Follow ``doc``'s workflow from now on (and keep its assignment, when it has one)."""
        if doc not in self.docs:
            self.docs.append(doc)
        self.handles[doc.workflow_id] = client.get_workflow_handle(
            doc.workflow_id, result_type=ClassificationOutcome
        )
        if report is not None and doc.workflow_id in report.assignments:
            self.assignments[doc.workflow_id] = report.assignments[doc.workflow_id]


def make_batch(name: str, n: int, seed: int) -> Batch:
    batch = Batch(name)
    for i, gen in enumerate(generate_documents(n, seed)):
        doc = validate_text(gen.text, f"demo:{name}:{i}")
        batch.docs.append(doc)
        batch.truth[doc.workflow_id] = gen.label
    return batch


class Arrivals:
    """Documents that keep arriving for as long as a rollout needs them, with their true labels.

    They come from the corpus in chunks (seeds ``seed``, ``seed + 1000``, ...), so a step that
    needs more documents than expected (a slow machine, a longer shadow) gets them rather than
    running dry; a text generated twice is skipped, since its content-derived id would name the
    same workflow.
    """

    def __init__(self, name: str, seed: int, chunk: int = 400) -> None:
        self.name = name
        self._seed = seed
        self._chunk = chunk

    def __iter__(self) -> Iterator[tuple[Document, str]]:
        seen: set[str] = set()
        index = 0
        for k in itertools.count():
            for gen in generate_documents(self._chunk, self._seed + 1000 * k):
                doc = validate_text(gen.text, f"demo:{self.name}:{index}")
                index += 1
                if doc.document_id not in seen:
                    seen.add(doc.document_id)
                    yield doc, gen.label


class Workers(Protocol):
    """The workers the blue-green act runs in this process, given by the composition root
    (``modelbaton.app``), which alone knows what a worker registers."""

    def pool(
        self,
        client: Client,
        queue: str,
        version: str,
        source: CatalogSource,
        http: httpx.AsyncClient,
    ) -> AbstractAsyncContextManager[Any]:
        """The pool of model ``version`` for the pipeline on ``queue``."""
        ...

    def build(
        self,
        client: Client,
        queue: str,
        build: Build,
        store: ResultsStore,
        source: CatalogSource,
        http: httpx.AsyncClient,
    ) -> AbstractAsyncContextManager[Any]:
        """The pipeline's workflow worker on ``queue``, running as ``build``."""
        ...


@dataclass
class Demo:
    """The running demo: its console, stack, client, catalog and the rollout clients."""

    console: Console
    home: Path
    stack: StackState
    client: Client
    catalog: Catalog
    pipeline: PipelineSection
    per_batch: int
    workers: Workers
    rollouts: Rollouts = field(init=False)
    controllers: Controllers = field(init=False)

    def __post_init__(self) -> None:
        self.rollouts = Rollouts(self.client, self.catalog, DEMO_QUEUE)
        self.controllers = Controllers(self.client, self.catalog, DEMO_QUEUE)


async def submit_legacy(demo: Demo, batch: Batch, deployment: DeploymentStrategy) -> None:
    """Start a batch as the pre-patch release's starter did (the configuration in the input)."""
    for doc in batch.docs:
        inp = legacy_workflow_input(doc, deployment, demo.pipeline)
        await start_document(demo.client, doc, inp, DEMO_QUEUE)
        batch.started(demo.client, doc)


async def submit(demo: Demo, batch: Batch, plan: RolloutPlan) -> None:
    """Start a batch assigned by the rollout plan, as ``baton submit`` does."""
    report = await submit_documents(demo.client, batch.docs, plan, demo.pipeline, DEMO_QUEUE)
    for doc in batch.docs:
        batch.started(demo.client, doc, report)
    arms = ", ".join(f"{arm}: {n}" for arm, n in sorted(report.by_arm().items()))
    demo.console.print(f"assignments: {arms}")


async def settle(batch: Batch, within: float = 120.0) -> dict[str, str]:
    """Wait until every workflow is done or waiting for review; return their states."""

    async def states() -> dict[str, str] | None:
        found: dict[str, str] = {}
        for wid, handle in batch.handles.items():
            desc = await handle.describe()
            if desc.status is not None and desc.status.name != "RUNNING":
                found[wid] = desc.status.name.lower()
                continue
            view = await handle.query(DocumentClassificationWorkflow.status)
            found[wid] = view.state.value
        return None if any(s in IN_PROGRESS for s in found.values()) else found

    return await poll_until(
        states, f"end of the work of {batch.name} (done or at review)", within, every=0.5
    )
