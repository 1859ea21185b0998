"""Starting workflows: one per document, deduplicated by a content-derived workflow id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from modelbaton.contracts import DeploymentStrategy
from modelbaton.models.catalog import PipelineSection
from modelbaton.pipeline import search_attributes as sa
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassificationOutcome, ClassifyDocumentInput


@dataclass
class SubmitReport:
    """What ``submit_documents`` did with each document."""

    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "started": len(self.started),
            "duplicates": len(self.duplicates),
            "rejected": self.rejected,
            "workflow_ids": self.started,
        }


def workflow_input(
    doc: Document, deployment: DeploymentStrategy, pipeline: PipelineSection
) -> ClassifyDocumentInput:
    return ClassifyDocumentInput(
        document_id=doc.document_id,
        text=doc.text,
        source=doc.source,
        deployment=deployment,
        review_threshold=pipeline.review_threshold,
        review_timeout=timedelta(seconds=pipeline.review_timeout_seconds),
    )


async def start_document(
    client: Client,
    doc: Document,
    deployment: DeploymentStrategy,
    pipeline: PipelineSection,
    task_queue: str,
) -> WorkflowHandle[object, ClassificationOutcome] | None:
    """Start the workflow for ``doc``; None when this document was already submitted.

    REJECT_DUPLICATE keeps a completed document from being classified twice, and the running-id
    check keeps a document in flight from getting a second workflow.
    """
    config = deployment.primary_version
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            workflow_input(doc, deployment, pipeline),
            id=doc.workflow_id,
            task_queue=task_queue,
            result_type=ClassificationOutcome,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.MODEL_VERSION, config.version),
                    SearchAttributePair(sa.OUTPUT_SCHEMA_VERSION, config.output_schema_version),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        return None


async def submit_documents(
    client: Client,
    docs: Sequence[Document],
    deployment: DeploymentStrategy,
    pipeline: PipelineSection,
    task_queue: str,
    *,
    concurrency: int = 32,
    on_progress: Callable[[int], None] | None = None,
) -> SubmitReport:
    """Start one workflow per document, ``concurrency`` start calls in flight at once."""
    report = SubmitReport()
    gate = asyncio.Semaphore(concurrency)

    async def one(doc: Document) -> None:
        async with gate:
            handle = await start_document(client, doc, deployment, pipeline, task_queue)
        (report.started if handle else report.duplicates).append(doc.workflow_id)
        if on_progress:
            on_progress(1)

    await asyncio.gather(*(one(d) for d in docs))
    return report
