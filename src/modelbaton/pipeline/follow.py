"""Following submitted documents: until each is done, failed or waiting for a person.

``baton submit --wait`` uses :func:`settle`: a document waiting at the review checkpoint stops
being waited for (its review may take a day), a failed one is reported with its reason, and the
whole wait is bounded. ``baton pending`` uses :func:`pending_reviews`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassificationOutcome, WorkflowState

PENDING_QUERY = (
    f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND ReviewState = 'pending'"
)


class Where(StrEnum):
    RUNNING = "running"
    AWAITING_REVIEW = "awaiting_review"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class DocumentState:
    """Where one submitted document is."""

    workflow_id: str
    where: Where
    label: str | None = None
    confidence: float | None = None
    model_version: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "workflow_id": self.workflow_id,
            "state": self.where.value,
            "label": self.label,
            "confidence": self.confidence,
            "model_version": self.model_version,
            "detail": self.detail,
        }


async def look(client: Client, workflow_id: str) -> DocumentState:
    """One look at a document's workflow (describe, then the result or the status query)."""
    from modelbaton.pipeline.workflow import DocumentClassificationWorkflow

    handle = client.get_workflow_handle(workflow_id, result_type=ClassificationOutcome)
    described = await handle.describe()
    status = described.status
    if status is WorkflowExecutionStatus.COMPLETED:
        out = await handle.result()
        return DocumentState(
            workflow_id,
            Where.COMPLETED,
            out.final_label,
            out.result.confidence,
            out.result.model_version,
            f"{out.outcome.value} -> {out.destination}",
        )
    if status is not WorkflowExecutionStatus.RUNNING:
        reason = status.name.lower() if status else "closed"
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as exc:
            reason = " ".join(str(getattr(exc.cause, "message", exc.cause)).split())
        return DocumentState(workflow_id, Where.FAILED, detail=reason[:300])
    try:
        view = await handle.query(DocumentClassificationWorkflow.status)
    except RPCError:
        return DocumentState(workflow_id, Where.RUNNING, detail="no worker answered the query")
    if view.state is WorkflowState.AWAITING_REVIEW and view.result is not None:
        return DocumentState(
            workflow_id,
            Where.AWAITING_REVIEW,
            view.result.label,
            view.result.confidence,
            view.result.model_version,
        )
    return DocumentState(workflow_id, Where.RUNNING, detail=view.state.value)


async def settle(
    client: Client,
    workflow_ids: Sequence[str],
    *,
    within: float,
    every: float = 0.5,
    on_change: Callable[[DocumentState], None] | None = None,
) -> dict[str, DocumentState]:
    """Look at every document until none is merely running, or ``within`` seconds pass."""
    states: dict[str, DocumentState] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    open_ids = list(workflow_ids)
    while open_ids:
        looks = await asyncio.gather(*(look(client, wid) for wid in open_ids))
        for state in looks:
            if (
                on_change
                and states.get(state.workflow_id) != state
                and state.where != Where.RUNNING
            ):
                on_change(state)
            states[state.workflow_id] = state
        open_ids = [s.workflow_id for s in looks if s.where is Where.RUNNING]
        if not open_ids or loop.time() > deadline:
            break
        await asyncio.sleep(every)
    return states


@dataclass(frozen=True)
class PendingReview:
    """A document waiting for a person."""

    workflow_id: str
    label: str | None
    confidence: float | None
    model_version: str | None
    age_seconds: float

    def as_dict(self) -> dict[str, object]:
        return vars(self).copy()


async def pending_reviews(
    client: Client, limit: int = 200, task_queue: str | None = None
) -> list[PendingReview]:
    """Documents waiting at the review checkpoint, oldest first (a query each, for the label);
    of one pipeline's queue when ``task_queue`` is given (another pipeline's workers may be down,
    and a query to a workflow nobody serves waits for the server's deadline)."""
    now = datetime.now(UTC)
    found: list[PendingReview] = []
    query = PENDING_QUERY + (f" AND TaskQueue = '{task_queue}'" if task_queue else "")
    async for wf in client.list_workflows(query, limit=limit):
        state = await look(client, wf.id)
        found.append(
            PendingReview(
                wf.id,
                state.label,
                state.confidence,
                state.model_version,
                (now - wf.start_time).total_seconds(),
            )
        )
    return sorted(found, key=lambda p: -p.age_seconds)
