"""Inputs and outputs of the rollout workflow, recorded in its history: tolerant readers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from modelbaton.contracts.rollout import (
    DEFAULT_SHADOW_BUDGET_SECONDS,
    AuditEntry,
    ModelRef,
    RolloutPlan,
)

ROLLOUT_WORKFLOW_TYPE = "ModelRollout"
_TOLERANT = ConfigDict(extra="ignore")


def rollout_workflow_id(task_queue: str, model_id: str) -> str:
    """One rollout workflow per pipeline (its task queue) and model id."""
    return f"rollout-{task_queue}-{model_id}"


def controller_workflow_id(task_queue: str, model_id: str) -> str:
    """One controller at a time per pipeline (its task queue) and model id."""
    return f"rollout-controller-{task_queue}-{model_id}"


class RolloutInput(BaseModel):
    """Start (or continue-as-new) state of the rollout workflow."""

    model_config = _TOLERANT

    plan: RolloutPlan
    audit: list[AuditEntry] = Field(default_factory=list)
    #: The last promotion: the baseline it replaced and when (what ``baton rollback`` restores).
    promotion: Promotion | None = None


class ChangeBy(BaseModel):
    """Who asks for a change, and why; every update carries it into the audit trail."""

    model_config = _TOLERANT

    actor: str = Field(min_length=1)
    reason: str = ""
    #: What the change was based on (e.g. the shadow report's verdict), kept in the audit trail.
    evidence: str = ""


class StartCanaryRequest(ChangeBy):
    """Start a rollout: a canary at ``fraction``, or, when ``sample`` is set, a shadow of that
    share of documents (the candidate answers for comparison only)."""

    candidate: ModelRef
    fraction: float
    salt: str | None = None
    sample: float | None = None
    noise_sample: float = 0.0
    shadow_budget_seconds: float = DEFAULT_SHADOW_BUDGET_SECONDS
    #: Canary: share of each arm's documents the baseline also answers (see RolloutPlan).
    check_sample: float = 0.0


class SetFractionRequest(ChangeBy):
    fraction: float
    #: Share of each arm's documents the baseline also answers; absent in older histories.
    check_sample: float = 0.0


class Promotion(BaseModel):
    """A promotion as the rollout workflow remembers it, until it is rolled back."""

    model_config = _TOLERANT

    rollout_id: str | None = None
    promoted: ModelRef
    previous: ModelRef
    at: datetime
    revision: int


class RestoreRequest(ChangeBy):
    """Roll a promotion back: ``previous`` (the baseline the promotion replaced) serves again."""

    previous: ModelRef


class RolloutView(BaseModel):
    """Answer of the ``view`` query: the plan and its audit trail."""

    model_config = _TOLERANT

    plan: RolloutPlan
    audit: list[AuditEntry]
    promotion: Promotion | None = None


class NoteRequest(ChangeBy):
    """An audit trail entry that changes nothing (a controller's decision and its values)."""

    action: str = Field(min_length=1)
    detail: str = ""


RolloutInput.model_rebuild()
