"""Inputs, outputs and state of the controller workflow and its activities: recorded in
history, so tolerant readers that evolve by adding optional fields."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from modelbaton.controller.gates import GateResult, Metrics
from modelbaton.controller.plan import PrometheusGate, RolloutPlanFile
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.messages import controller_workflow_id as controller_workflow_id

CONTROLLER_WORKFLOW_TYPE = "RolloutController"
_TOLERANT = ConfigDict(extra="ignore")


class Phase(StrEnum):
    APPLYING = "applying"
    BAKING = "baking"
    PAUSED = "paused"
    ROLLING_BACK = "rolling-back"
    PROMOTED = "promoted"
    ABORTED = "aborted"
    #: Ended on an error no retry can mend, with the rollout left as the error found it; the
    #: state's ``abort_reason`` says what happened and what to do.
    STOPPED = "stopped"


class ControllerState(BaseModel):
    """Where the controller is; carried across continue-as-new."""

    model_config = _TOLERANT

    step: int = 0
    phase: Phase = Phase.APPLYING
    step_started_at: datetime | None = None
    paused: bool = False
    #: Since when the step's ``max_wait`` counts: its start, or the last resume (None: its start).
    wait_from: datetime | None = None
    last_results: list[GateResult] = Field(default_factory=list)
    last_metrics: Metrics | None = None
    breach_at: datetime | None = None
    fraction_zero_at: datetime | None = None
    abort_reason: str = ""
    rolled_back: list[str] = Field(default_factory=list)
    #: Audit entries that could not be written (the rollout workflow refused or was gone).
    unrecorded: list[str] = Field(default_factory=list)


class ControllerInput(BaseModel):
    """Start (or continue-as-new) input of the controller workflow."""

    model_config = _TOLERANT

    plan: RolloutPlanFile
    task_queue: str
    model_id: str
    started_by: ChangeBy
    state: ControllerState = Field(default_factory=ControllerState)
    #: Continue as new past this many history events (the default suits any plan; tests lower it).
    max_history_events: int = 4_000
    #: The baseline the plan started from (what a drain step waits out); set by the first step.
    old_baseline: str | None = None
    rollout_id: str | None = None
    #: When the controller was started (set by the client; carried across continue-as-new).
    started_at: datetime | None = None


class ControllerView(BaseModel):
    """Answer of the controller's ``status`` query."""

    model_config = _TOLERANT

    plan: RolloutPlanFile
    state: ControllerState
    rollout_id: str | None = None


class ApplyStepRequest(BaseModel):
    """Make the rollout plan match step ``index`` of the controller's plan."""

    model_config = _TOLERANT

    task_queue: str
    plan: RolloutPlanFile
    index: int
    by: ChangeBy


class ApplyStepResult(BaseModel):
    """The rollout after a step: for a build rollout, ``baseline`` is the build current before
    the plan started and ``rollout_id`` names the build rollout."""

    model_config = _TOLERANT

    rollout_id: str | None
    baseline: str
    fraction: float
    detail: str


class MeasureRequest(BaseModel):
    """Measure rollout ``rollout_id`` (per arm, and its shadow when ``shadow_documents``).

    With ``builds`` (a Worker Versioning rollout: ``{"baseline": "dep:A", "candidate": "dep:B"}``)
    the arms are the document workflows pinned to each build instead of a rollout's arms.
    """

    model_config = _TOLERANT

    task_queue: str
    rollout_id: str
    retrying_after_seconds: float = 10.0
    shadow_documents: int | None = None
    builds: dict[str, str] | None = None
    #: The plan's webhook gate (``gates.webhook``): asked after the arms are measured.
    webhook: str | None = None
    webhook_timeout_seconds: float = 5.0
    #: The plan's Prometheus checks (``gates.prometheus``): asked after the arms are measured.
    prometheus: PrometheusGate | None = None
    #: With ``builds``: when the rollout started. A workflow whose first task fails on a broken
    #: build is never recorded as pinned to it, so the candidate's stuck workflows are those of
    #: the pipeline stuck since then.
    since: datetime | None = None


class InFlightRequest(BaseModel):
    """Count the running documents still assigned to ``version`` on the pipeline's queue."""

    model_config = _TOLERANT

    task_queue: str
    version: str
    #: A zero count is believed only when a second count this many seconds later is zero too:
    #: visibility lags, and a document started just before may not be listed yet.
    confirm_seconds: float = 0.0


class TerminateInFlightRequest(BaseModel):
    """Terminate the running documents still assigned to ``version`` (a drain's deadline)."""

    model_config = _TOLERANT

    task_queue: str
    version: str
    reason: str


class NoteRequest(BaseModel):
    """An audit trail entry in the rollout workflow: a controller decision and its values."""

    model_config = _TOLERANT

    task_queue: str
    by: ChangeBy
    action: str
    detail: str


class RollbackRequest(BaseModel):
    """Roll back rollout ``rollout_id`` by scenario (see ``controller.rollback``); with
    ``deployment`` a build rollout: routing back to ``baseline_build``."""

    model_config = _TOLERANT

    task_queue: str
    rollout_id: str
    restart_on_baseline: bool
    by: ChangeBy
    #: Also run the candidate's completed documents again on the baseline (their records stay,
    #: superseded). Absent in older histories: False.
    rerun_completed: bool = False
    deployment: str | None = None
    baseline_build: str | None = None
    candidate_build: str | None = None
    since: datetime | None = None


class RollbackResult(BaseModel):
    model_config = _TOLERANT

    scenario: str
    aborted_at: datetime | None = None
    actions: list[str] = Field(default_factory=list)
    restarted: list[str] = Field(default_factory=list)
