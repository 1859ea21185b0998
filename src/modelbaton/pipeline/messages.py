"""One Pydantic model in and one out for every workflow, activity, update and query.

These are recorded in event histories, so they are tolerant readers (``extra="ignore"``: a field
added by a newer release never breaks an older worker) and evolve only by adding optional fields.
``tests/unit/test_history_decoding.py`` and ``baton schema check`` decode every committed history's
payloads with today's types.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from modelbaton.contracts import (
    DeploymentStrategy,
    ModelVersionConfig,
    NormalizedClassificationResult,
)
from modelbaton.contracts.rollout import ModelAssignment, ShadowAssignment

_TOLERANT = ConfigDict(extra="ignore")

WORKFLOW_TYPE = "DocumentClassificationWorkflow"

CLASSIFY_V1 = "classify_document_v1"
CLASSIFY_V2 = "classify_document_v2"
#: Which of them reads which output schema: ``modelbaton.pipeline.activities.CLASSIFY_BY_SCHEMA``.
PROCESS_RESULT = "process_classification_result"
#: The shadow call (any output schema) on a model's pool, and the comparison's write.
SHADOW_CLASSIFY = "shadow_classify"
RECORD_SHADOW = "record_shadow_comparison"


class CarriedClassification(BaseModel):
    """What a run hands to the run it continues as, when it moves to a new build at review.

    The classification is carried so the document is not classified again, and the review
    deadline is absolute so the move does not extend the review window.
    """

    model_config = _TOLERANT

    branch: str
    result: NormalizedClassificationResult
    review_deadline: datetime
    from_run_id: str | None = None


class ClassifyDocumentInput(BaseModel):
    """Input of :data:`WORKFLOW_TYPE`. The document text travels in history, hence the size cap.

    New workflows carry ``assignment`` (which model version on which pool queue, which rollout
    arm); histories recorded before the assignment patch carry ``deployment`` instead.

    ``upgrade_at_review`` (off by default) lets a pinned workflow that waits at review move to
    the deployment's current build: it wakes every ``upgrade_check`` and, once its target build
    changed, continues as new onto it, carrying its classification (``carried``). Off, a pinned
    workflow finishes on the build that started it, however long the review takes.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    document_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    source: str | None = None
    deployment: DeploymentStrategy | None = None
    assignment: ModelAssignment | None = None
    shadow: ShadowAssignment | None = None
    review_threshold: float = Field(default=0.55, ge=0.0, le=1.0)
    review_timeout: timedelta = timedelta(days=1)
    upgrade_at_review: bool = False
    upgrade_check: timedelta = timedelta(minutes=5)
    carried: CarriedClassification | None = None


class ClassifyActivityInput(BaseModel):
    """Input of ``classify_document_v*``: the document and the identity of the model to call.

    The activity resolves endpoint, timeouts and token from the catalog by
    ``(model_id, model_version)`` when it runs. Histories recorded before the assignment patch
    hold a whole ``config`` instead; only its identity is used now.
    """

    model_config = _TOLERANT

    document_id: str
    text: str
    model_id: str | None = None
    model_version: str | None = None
    output_schema_version: int | None = None
    config: ModelVersionConfig | None = None

    def identity(self) -> tuple[str, str, int]:
        """``(model_id, model_version, output_schema_version)`` from whichever form was sent."""
        if self.model_id and self.model_version and self.output_schema_version:
            return self.model_id, self.model_version, self.output_schema_version
        if self.config is not None:
            c = self.config
            return c.model_id, c.version, c.output_schema_version
        raise ValueError(f"document {self.document_id}: classify input names no model")


class ArmAnswer(BaseModel):
    """One model's answer to a document in a shadow comparison: a canonical result or an error.

    The shadow call returns it with errors recorded, not raised (a malformed output, a schema or
    normalizer error); the workflow adds ``latency_ms``, measured the same way for every arm: from
    the workflow scheduling the calls to the answer reaching it.
    """

    model_config = _TOLERANT

    model_version: str
    result: NormalizedClassificationResult | None = None
    error_type: str | None = None
    error: str | None = None
    latency_ms: float | None = None


class ShadowRecordInput(BaseModel):
    """Input of ``record_shadow_comparison``: both arms' answers, stored once per document and
    rollout (a later call for the same pair replaces the row, e.g. to add the reviewed label)."""

    model_config = _TOLERANT

    rollout_id: str
    document_id: str
    workflow_id: str
    run_id: str
    baseline: ArmAnswer
    candidate: ArmAnswer
    noise: ArmAnswer | None = None
    reviewed_label: str | None = None


class ReviewDecision(BaseModel):
    """A human reviewer's verdict, sent as the ``submit_review`` workflow update."""

    model_config = _TOLERANT

    label: str = Field(min_length=1)
    reviewer: str = Field(min_length=1)
    note: str | None = None


class ReviewReceipt(BaseModel):
    """What ``submit_review`` returns once accepted."""

    model_config = _TOLERANT

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

    model_config = _TOLERANT

    document_id: str
    workflow_id: str
    run_id: str
    branch: str
    result: NormalizedClassificationResult
    final_label: str
    outcome: Outcome
    reviewer: str | None = None
    arm: str | None = None
    rollout_id: str | None = None


class ProcessOutput(BaseModel):
    """Where the result went, and whether this call created the record (False on a repeat)."""

    model_config = _TOLERANT

    record_id: int
    destination: str
    created: bool


class ClassificationOutcome(BaseModel):
    """Result of :data:`WORKFLOW_TYPE`."""

    model_config = _TOLERANT

    document_id: str
    branch: str = Field(description="'v1' for the pre-patch path, 'v2' for the patched path")
    result: NormalizedClassificationResult
    final_label: str
    outcome: Outcome
    destination: str
    record_id: int
    assignment: ModelAssignment | None = None


class WorkflowState(StrEnum):
    CLASSIFYING = "classifying"
    AWAITING_REVIEW = "awaiting_review"
    PROCESSING = "processing"
    DONE = "done"


class WorkflowStatusView(BaseModel):
    """Answer of the ``status`` query."""

    model_config = _TOLERANT

    document_id: str
    state: WorkflowState
    branch: str | None = None
    result: NormalizedClassificationResult | None = None
    review: ReviewDecision | None = None
    escalated: bool = False
    assignment: ModelAssignment | None = None
