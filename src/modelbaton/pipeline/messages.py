"""One Pydantic model in and one out for every workflow, activity, update and query.

These are recorded in event histories, so they evolve only by adding optional fields.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from modelbaton.contracts import (
    DeploymentStrategy,
    ModelVersionConfig,
    NormalizedClassificationResult,
)

WORKFLOW_TYPE = "DocumentClassificationWorkflow"

CLASSIFY_V1 = "classify_document_v1"
CLASSIFY_V2 = "classify_document_v2"
PROCESS_RESULT = "process_classification_result"


class ClassifyDocumentInput(BaseModel):
    """Input of :data:`WORKFLOW_TYPE`. The document text travels in history, hence the size cap."""

    model_config = ConfigDict(frozen=True)

    document_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    source: str | None = None
    deployment: DeploymentStrategy
    review_threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    review_timeout: timedelta = timedelta(days=1)


class ClassifyActivityInput(BaseModel):
    """Input of ``classify_document_v*``: the document and the model version to call."""

    document_id: str
    text: str
    config: ModelVersionConfig


class ReviewDecision(BaseModel):
    """A human reviewer's verdict, sent as the ``submit_review`` workflow update."""

    label: str = Field(min_length=1)
    reviewer: str = Field(min_length=1)
    note: str | None = None


class ReviewReceipt(BaseModel):
    """What ``submit_review`` returns once accepted."""

    document_id: str
    accepted_label: str
    changed: bool


class Outcome(StrEnum):
    """How a document's final label was decided."""

    AUTO = "auto"  # model confident enough
    REVIEWED = "reviewed"  # a human confirmed or corrected it
    ESCALATED = "escalated"  # review timed out; routed to the escalation destination


class ProcessInput(BaseModel):
    """Input of ``process_classification_result``: only the canonical contract, never raw output."""

    document_id: str
    workflow_id: str
    run_id: str
    branch: str
    result: NormalizedClassificationResult
    final_label: str
    outcome: Outcome
    reviewer: str | None = None


class ProcessOutput(BaseModel):
    """Where the result went, and whether this call created the record (False on a repeat)."""

    record_id: int
    destination: str
    created: bool


class ClassificationOutcome(BaseModel):
    """Result of :data:`WORKFLOW_TYPE`."""

    document_id: str
    branch: str = Field(description="'v1' for the pre-patch path, 'v2' for the patched path")
    result: NormalizedClassificationResult
    final_label: str
    outcome: Outcome
    destination: str
    record_id: int


class WorkflowState(StrEnum):
    CLASSIFYING = "classifying"
    AWAITING_REVIEW = "awaiting_review"
    PROCESSING = "processing"
    DONE = "done"


class WorkflowStatusView(BaseModel):
    """Answer of the ``status`` query."""

    document_id: str
    state: WorkflowState
    branch: str | None = None
    result: NormalizedClassificationResult | None = None
    review: ReviewDecision | None = None
    escalated: bool = False
