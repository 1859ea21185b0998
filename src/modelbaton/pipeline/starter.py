"""Starting workflows: one per document, with a model assignment decided once, at start.

The workflow id is derived from the document's content, so a document has one workflow id for
life. The id reuse policy lets a failed, terminated, cancelled or timed-out document run again, and
never a completed one; the report tells started, restarted, already running and already completed
documents apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.contracts import DeploymentStrategy
from modelbaton.contracts.rollout import ModelAssignment, RolloutPlan, ShadowAssignment
from modelbaton.models.catalog import PipelineSection
from modelbaton.pipeline import search_attributes as sa
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassificationOutcome, ClassifyDocumentInput


@dataclass
class SubmitReport:
    """What ``submit_documents`` did with each document (workflow ids)."""

    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    already_completed: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    assignments: dict[str, ModelAssignment] = field(default_factory=dict)

    @property
    def launched(self) -> list[str]:
        """Workflow ids this call started, first runs and re-runs alike."""
        return self.started + self.restarted

    def by_arm(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.assignments.values():
            label = f"{a.arm.value} ({a.model_version})"
            counts[label] = counts.get(label, 0) + 1
        return counts

    def as_dict(self) -> dict[str, object]:
        return {
            "started": len(self.started),
            "restarted": len(self.restarted),
            "already_running": len(self.already_running),
            "already_completed": len(self.already_completed),
            "rejected": self.rejected,
            "workflow_ids": self.launched,
            "by_arm": self.by_arm(),
        }


def workflow_input(
    doc: Document,
    assignment: ModelAssignment,
    pipeline: PipelineSection,
    shadow: ShadowAssignment | None = None,
) -> ClassifyDocumentInput:
    """The workflow input of ``doc``: identity of the model it runs on (and of the model that
    shadows it, if sampled), never an endpoint."""
    return ClassifyDocumentInput(
        document_id=doc.document_id,
        text=doc.text,
        source=doc.source,
        assignment=assignment,
        shadow=shadow,
        review_threshold=pipeline.review_threshold,
        review_timeout=timedelta(seconds=pipeline.review_timeout_seconds),
        upgrade_at_review=pipeline.upgrade_at_review,
        upgrade_check=timedelta(seconds=pipeline.upgrade_check_seconds),
    )


def legacy_workflow_input(
    doc: Document, deployment: DeploymentStrategy, pipeline: PipelineSection
) -> ClassifyDocumentInput:
    """An input as releases before the assignment patch recorded it (transition tests, the demo's
    pre-patch batch, recorded histories)."""
    return ClassifyDocumentInput(
        document_id=doc.document_id,
        text=doc.text,
        source=doc.source,
        deployment=deployment,
        review_threshold=pipeline.review_threshold,
        review_timeout=timedelta(seconds=pipeline.review_timeout_seconds),
    )


def assignment_attributes(assignment: ModelAssignment) -> TypedSearchAttributes:
    """Search attributes set at start, so visibility can split by model version and arm."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.MODEL_VERSION, assignment.model_version),
        SearchAttributePair(sa.OUTPUT_SCHEMA_VERSION, assignment.output_schema_version),
        SearchAttributePair(sa.ROLLOUT_ARM, assignment.arm.value),
    ]
    if assignment.rollout_id:
        pairs.append(SearchAttributePair(sa.ROLLOUT_ID, assignment.rollout_id))
    return TypedSearchAttributes(pairs)


async def start_workflow(
    client: Client, workflow_id: str, inp: ClassifyDocumentInput, task_queue: str
) -> WorkflowHandle[Any, ClassificationOutcome]:
    """Start :data:`WORKFLOW_TYPE`; a failed or terminated earlier run may be run again."""
    if inp.assignment is not None:
        attributes = assignment_attributes(inp.assignment)
    else:
        config = inp.deployment.primary_version if inp.deployment else None
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.MODEL_VERSION, config.version),
                SearchAttributePair(sa.OUTPUT_SCHEMA_VERSION, config.output_schema_version),
            ]
            if config
            else []
        )
    return await client.start_workflow(
        WORKFLOW_TYPE,
        inp,
        id=workflow_id,
        task_queue=task_queue,
        result_type=ClassificationOutcome,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=attributes,
    )


async def _status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def start_document(
    client: Client,
    doc: Document,
    inp: ClassifyDocumentInput,
    task_queue: str,
    report: SubmitReport | None = None,
) -> WorkflowHandle[Any, ClassificationOutcome] | None:
    """Start the workflow of ``doc`` unless it is running or completed; say which in ``report``.

    Returns None when nothing was started.
    """
    report = report if report is not None else SubmitReport()
    wid = doc.workflow_id
    before = await _status(client, wid)
    if before is WorkflowExecutionStatus.RUNNING:
        report.already_running.append(wid)
        return None
    if before is WorkflowExecutionStatus.COMPLETED:
        report.already_completed.append(wid)
        return None
    try:
        handle = await start_workflow(client, wid, inp, task_queue)
    except WorkflowAlreadyStartedError:
        # Someone else started it between our look and our start: say what it is now.
        now = await _status(client, wid)
        (
            report.already_completed
            if now is WorkflowExecutionStatus.COMPLETED
            else report.already_running
        ).append(wid)
        return None
    (report.started if before is None else report.restarted).append(wid)
    if inp.assignment is not None:
        report.assignments[wid] = inp.assignment
    return handle


async def submit_documents(
    client: Client,
    docs: Sequence[Document],
    plan: RolloutPlan,
    pipeline: PipelineSection,
    task_queue: str,
    *,
    key: str | None = None,
    concurrency: int = 32,
    on_progress: Callable[[int], None] | None = None,
    current_plan: Callable[[], Awaitable[RolloutPlan]] | None = None,
) -> SubmitReport:
    """Start one workflow per document, assigned by ``plan`` on its business key.

    The key is ``key`` when given (a customer or source id shared by the batch), else the
    document id. ``concurrency`` start calls are in flight at once. With ``current_plan`` the
    plan in force is read again just before each start, so a long batch follows a rollout
    that changes under it (an abort stops candidate starts at once, not at the batch's end).
    """
    report = SubmitReport()
    gate = asyncio.Semaphore(concurrency)

    async def one(doc: Document) -> None:
        business_key = key or doc.document_id
        async with gate:
            now = await current_plan() if current_plan is not None else plan
            assignment = now.assign(business_key, task_queue)
            shadow = now.shadow_for(business_key, task_queue)
            await start_document(
                client, doc, workflow_input(doc, assignment, pipeline, shadow), task_queue, report
            )
        if on_progress:
            on_progress(1)

    await asyncio.gather(*(one(d) for d in docs))
    return report
