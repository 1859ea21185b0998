"""The dashboard's view model: typed records of everything the page shows. Templates only lay them
out; :mod:`modelbaton.dashboard.view` fills them in (with the pure derivations of
:mod:`modelbaton.dashboard.derive`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelbaton.contracts.rollout import AuditEntry, RolloutPlan

#: How many of a rollout's document workflows the page lists (most recent first).


@dataclass(frozen=True)
class StepView:
    """One step of a rollout on its timeline: done, the current one, or planned (a controller's
    steps still to come)."""

    label: str
    state: str  # "done" | "current" | "planned"
    at: datetime | None = None
    actor: str = ""
    detail: str = ""


@dataclass(frozen=True)
class FractionPoint:
    """The share of new documents the candidate serves from ``at`` on."""

    at: datetime
    fraction: float


@dataclass(frozen=True)
class BuildCounts:
    """One worker build's share of an arm (filled once Worker Versioning lands)."""

    build_id: str
    running: int = 0
    completed: int = 0
    failed: int = 0
    waiting_for_review: int = 0


@dataclass(frozen=True)
class ArmView:
    """One arm of a rollout: its model version and its workflows as visibility counts them."""

    arm: str
    version: str
    running: int
    waiting_for_review: int
    completed: int
    failed: int
    builds: list[BuildCounts] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.running + self.completed + self.failed


@dataclass(frozen=True)
class AgreementPoint:
    """Agreement of the arms over the comparisons recorded up to ``at``, with its Wilson 95 %
    interval."""

    at: datetime
    n: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class LatencyView:
    arm: str
    version: str
    n: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class FieldAgreementView:
    """Agreement of the arms on one field (a comparator that records fields), with its Wilson
    95 % interval."""

    name: str
    n: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class ShadowView:
    """The shadow report of one rollout, laid out for the page."""

    baseline_version: str
    candidate_version: str
    shadowed: int
    compared: int
    agreement: AgreementPoint | None
    over_time: list[AgreementPoint]
    #: Labels of the confusion matrix: rows are the baseline's, columns the candidate's.
    baseline_labels: list[str]
    candidate_labels: list[str]
    confusion: list[list[int]]
    latency: list[LatencyView]
    candidate_errors: dict[str, int]
    noise_agreement: float | None
    verdict: str
    reasons: list[str]
    min_agreement: float
    target_width: float
    #: Per field, where the pipeline's comparator records fields (an extraction's).
    by_field: list[FieldAgreementView] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowRow:
    """A listed document workflow, with its link into the Temporal Web UI."""

    workflow_id: str
    run_id: str
    arm: str
    version: str
    status: str
    started_at: datetime | None
    review: str
    url: str | None


@dataclass(frozen=True)
class Panel:
    """A section another feature adds to a rollout's page: ``template`` is the name of a Jinja
    template under ``templates/`` that draws ``data``; it sees ``panel``, ``r`` (the
    :class:`RolloutView`) and ``view`` (the :class:`DashboardView`). ``panels/facts.html`` draws
    any ``data`` given as a list of (label, value) pairs, values already with their units."""

    key: str
    title: str
    template: str
    data: Any


@dataclass
class RolloutView:
    """Everything the page shows of one rollout."""

    rollout_id: str
    model_id: str
    baseline_version: str
    candidate_version: str
    #: "shadow", "canary" (in progress), "promoted" or "aborted".
    state: str
    in_progress: bool
    fraction: float
    sample: float
    revision: int
    steps: list[StepView]
    fraction_over_time: list[FractionPoint]
    arms: list[ArmView]
    shadow: ShadowView | None
    audit: list[AuditEntry]
    workflows: list[WorkflowRow]
    workflows_url: str | None
    rollout_workflow_url: str | None
    panels: list[Panel] = field(default_factory=list)

    @property
    def current_step(self) -> StepView | None:
        return next((s for s in self.steps if s.state == "current"), None)


@dataclass(frozen=True)
class RolloutSummary:
    """A line of the rollout history."""

    rollout_id: str
    candidate_version: str
    baseline_version: str
    state: str
    started_at: datetime | None


@dataclass
class DashboardView:
    """The whole page: the pipeline, its rollouts, and the one shown in full."""

    generated_at: datetime
    namespace: str
    task_queue: str
    model_id: str
    plan: RolloutPlan
    plan_text: str
    rollouts: list[RolloutSummary]
    selected: RolloutView | None
    temporal_ui_url: str | None
    #: Things that could not be read this time (shown on the page, never raised).
    problems: list[str] = field(default_factory=list)
