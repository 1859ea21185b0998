"""Act 7: reviewers complete every pending review, each giving the document's true class."""

from __future__ import annotations

from collections.abc import Sequence

from modelbaton.demo.documents import Batch, Demo
from modelbaton.pipeline import DocumentClassificationWorkflow, ReviewDecision, WorkflowState

REVIEWER = "demo-reviewer"


async def review(batch: Batch, workflow_id: str) -> None:
    """Give the document's true class as a reviewer would, through the workflow's update."""
    await batch.handles[workflow_id].execute_update(
        DocumentClassificationWorkflow.submit_review,
        ReviewDecision(label=batch.truth[workflow_id], reviewer=REVIEWER),
    )


async def complete_reviews(demo: Demo, batches: Sequence[Batch]) -> int:
    demo.console.rule("[bold]7. reviewers complete every pending review")
    reviewed = 0
    for batch in batches:
        for wid, handle in batch.handles.items():
            view = await handle.query(DocumentClassificationWorkflow.status)
            if view.state is WorkflowState.AWAITING_REVIEW:
                await review(batch, wid)
                reviewed += 1
    demo.console.print(f"{reviewed} reviews submitted")
    return reviewed
