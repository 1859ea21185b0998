"""The controller's activities: all its I/O (rollout updates, visibility, the results store).

They run on the pipeline's workflow worker, beside the rollout workflow they steer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.client import Client

from modelbaton.contracts.rollout import Arm, RolloutStage
from modelbaton.controller import rollback
from modelbaton.controller.gates import ArmMetrics, Metrics
from modelbaton.controller.messages import (
    ApplyStepRequest,
    ApplyStepResult,
    InFlightRequest,
    MeasureRequest,
    NoteRequest,
    RollbackRequest,
    RollbackResult,
)
from modelbaton.errors import RolloutError
from modelbaton.models.resolver import CatalogSource
from modelbaton.ops.problems import retrying_activities, stuck_workflows
from modelbaton.pipeline.messages import WORKFLOW_TYPE
from modelbaton.pipeline.store import ClassificationRecord, ResultsStore
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import NoteRequest as RolloutNote
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowStore

APPLY_STEP = "controller_apply_step"
MEASURE = "controller_measure"
NOTE = "controller_note"
ROLLBACK = "controller_rollback"
IN_FLIGHT = "controller_in_flight"


class ControllerActivities:
    """Activities of the rollout controller for one worker (its client, catalog and store)."""

    def __init__(self, client: Client, catalog: CatalogSource, store: ResultsStore) -> None:
        self._client = client
        self._catalog = catalog
        self._store = store
        self._shadows = ShadowStore(store.engine)

    def _rollouts(self, task_queue: str) -> Rollouts:
        return Rollouts(self._client, self._catalog.current(), task_queue)

    @activity.defn(name=APPLY_STEP)
    async def apply_step(self, req: ApplyStepRequest) -> ApplyStepResult:
        """Make the rollout plan match the step; a step already in force is left alone, so a
        retried or replayed call changes nothing twice."""
        rollouts = self._rollouts(req.task_queue)
        step = req.plan.steps[req.index]
        candidate = req.plan.candidate
        plan = await rollouts.plan()
        running = plan.stage is not RolloutStage.STEADY and plan.candidate is not None
        if running and plan.candidate is not None and plan.candidate.version != candidate:
            raise RolloutError(
                f"rollout {plan.rollout_id} of {plan.candidate.version} is in progress, not of "
                f"{candidate}"
            )
        detail = "already in force"
        if step.kind == "shadow":
            if not (running and plan.stage is RolloutStage.SHADOW):
                plan = await rollouts.start(
                    candidate,
                    0.0,
                    req.by,
                    sample=step.sample,
                    noise_sample=step.noise_sample,
                    shadow_budget_seconds=step.budget,
                )
                detail = f"shadow of {step.sample:.0%} started"
        elif step.kind == "canary":
            if not running:
                plan = await rollouts.start(candidate, step.fraction, req.by)
                detail = f"canary started at {step.fraction:.0%}"
            elif plan.stage is not RolloutStage.CANARY or plan.fraction != step.fraction:
                before = plan.fraction if plan.stage is RolloutStage.CANARY else None
                plan = await rollouts.set_fraction(step.fraction, req.by)
                detail = (
                    f"fraction {before:.0%} -> {step.fraction:.0%}"
                    if before is not None
                    else f"shadow -> canary at {step.fraction:.0%}"
                )
        elif step.kind == "promote" and running:
            plan = await rollouts.promote(req.by)
            detail = f"{candidate} promoted"
        return ApplyStepResult(
            rollout_id=plan.rollout_id,
            baseline=plan.baseline.version,
            fraction=plan.fraction if plan.stage is RolloutStage.CANARY else 0.0,
            detail=detail,
        )

    @activity.defn(name=MEASURE)
    async def measure(self, req: MeasureRequest) -> Metrics:
        """Both arms of the rollout from visibility and the results store."""
        rollouts = self._rollouts(req.task_queue)
        counts = await rollouts.arm_counts(req.rollout_id)
        metrics = Metrics(measured_at=datetime.now(UTC))
        accuracy = await asyncio.to_thread(self._reviewed, req.rollout_id)
        for arm in Arm:
            where = (
                f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{req.task_queue}" '
                f'AND RolloutId = "{req.rollout_id}" AND RolloutArm = "{arm.value}"'
            )
            c = counts.get(arm.value)
            retrying = await retrying_activities(
                self._client, timedelta(seconds=req.retrying_after_seconds), where=where
            )
            stuck = await stuck_workflows(self._client, where=where)
            to_review = await self._client.count_workflows(f"{where} AND ReviewState IS NOT NULL")
            reviewed, correct = accuracy.get(arm.value, (0, 0))
            measured = ArmMetrics(
                completed=c.completed if c else 0,
                failed=c.failed if c else 0,
                running=c.running if c else 0,
                retrying=len({r.workflow_id for r in retrying}),
                stuck=len(stuck),
                reviewed_or_waiting=to_review.count,
                p95_latency_ms=await self._p95(where),
                reviewed=reviewed,
                reviewed_correct=correct,
            )
            if arm is Arm.CANDIDATE:
                metrics.candidate = measured
            else:
                metrics.baseline = measured
        if req.shadow_documents is not None:
            rows = await asyncio.to_thread(self._shadows.rows, req.rollout_id)
            gate = self._catalog.current().shadow_gate
            gate = gate.model_copy(update={"min_documents": req.shadow_documents})
            report = build_report(req.rollout_id, rows, gate)
            metrics.shadow_compared = report.agreement.n if report.agreement else 0
            metrics.shadow_ready = report.ready
            metrics.shadow_summary = report.summary()
        return metrics

    async def _p95(self, where: str, limit: int = 2000) -> float | None:
        """p95 start-to-close of the arm's completed documents that no human held up."""
        query = f'{where} AND ExecutionStatus = "Completed" AND ReviewState IS NULL'
        spans = [
            (wf.close_time - wf.start_time).total_seconds() * 1000
            async for wf in self._client.list_workflows(query, limit=limit)
            if wf.close_time and wf.start_time
        ]
        return float(np.percentile(spans, 95)) if spans else None

    def _reviewed(self, rollout_id: str) -> dict[str, tuple[int, int]]:
        """Per arm: (documents a human reviewed, of which the model had right)."""
        with Session(self._store.engine) as session:
            rows = session.execute(
                select(
                    ClassificationRecord.arm,
                    ClassificationRecord.model_label,
                    ClassificationRecord.final_label,
                ).where(
                    ClassificationRecord.rollout_id == rollout_id,
                    ClassificationRecord.outcome == "reviewed",
                )
            ).all()
        total: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for arm, model_label, final_label in rows:
            total[arm or "none"] += 1
            right[arm or "none"] += model_label == final_label
        return {arm: (total[arm], right[arm]) for arm in total}

    @activity.defn(name=NOTE)
    async def note(self, req: NoteRequest) -> None:
        """A decision into the rollout's audit trail."""
        await self._rollouts(req.task_queue).note(
            RolloutNote(
                actor=req.by.actor, reason=req.by.reason, action=req.action, detail=req.detail
            )
        )

    @activity.defn(name=ROLLBACK)
    async def rollback(self, req: RollbackRequest) -> RollbackResult:
        """Abort the rollout and roll back by scenario (B restarts unfinished candidate
        documents on the baseline when asked)."""
        rollouts = self._rollouts(req.task_queue)
        assessed = await rollback.assess(rollouts, restart_on_baseline=req.restart_on_baseline)
        outcome = await rollback.execute(
            rollouts, assessed, restart_on_baseline=req.restart_on_baseline, by=req.by
        )
        return RollbackResult(
            scenario=assessed.scenario,
            aborted_at=outcome.aborted_at,
            actions=assessed.actions,
            restarted=outcome.restarted,
        )

    @activity.defn(name=IN_FLIGHT)
    async def in_flight(self, req: InFlightRequest) -> int:
        """Running documents still assigned to model version ``req.version`` (a drain's count)."""
        query = (
            f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{req.task_queue}" '
            f'AND ModelVersion = "{req.version}" AND ExecutionStatus = "Running"'
        )
        return (await self._client.count_workflows(query)).count

    def all(self) -> list[object]:
        return [self.apply_step, self.measure, self.note, self.rollback, self.in_flight]
