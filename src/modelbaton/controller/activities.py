"""The controller's activities: all its I/O (rollout updates, visibility, the results store).

They run on the pipeline's workflow worker, beside the rollout workflow they steer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.contracts.rollout import RolloutStage
from modelbaton.controller import reruns, rollback
from modelbaton.controller.gates import Metrics
from modelbaton.controller.measure import Meter
from modelbaton.controller.messages import (
    ApplyStepRequest,
    ApplyStepResult,
    InFlightRequest,
    MeasureRequest,
    NoteRequest,
    RollbackRequest,
    RollbackResult,
    TerminateInFlightRequest,
)
from modelbaton.controller.truth import GroundTruth, ReviewedLabels
from modelbaton.errors import ConfigError, RolloutError
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.store import ResultsStore
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import NoteRequest as RolloutNote
from modelbaton.rollout.spec import PipelineSpec, reference_spec
from modelbaton.shadow.store import ShadowStore
from modelbaton.versioning.builds import VERSION_ATTRIBUTE, deployment_name_for
from modelbaton.versioning.control import DeploymentControl
from modelbaton.versioning.drain import DrainTarget

APPLY_STEP = "controller_apply_step"
MEASURE = "controller_measure"
NOTE = "controller_note"
ROLLBACK = "controller_rollback"
IN_FLIGHT = "controller_in_flight"
TERMINATE_IN_FLIGHT = "controller_terminate_in_flight"


@contextmanager
def permanent_errors() -> Iterator[None]:
    """At the activity boundary: a refused rollout change or an invalid configuration is the
    same on every attempt, so it leaves as a non-retryable ``ApplicationError`` named after its
    class (the controller then stops the step and says why); anything else is retried."""
    try:
        yield
    except (RolloutError, ConfigError) as exc:
        raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc


class ControllerActivities:
    """Activities of the rollout controller for one worker (its client, catalog and store).

    A user's pipeline passes its ``spec`` (workflow type and input), the ``engine`` its shadow
    comparisons are recorded on, and its ``ground_truth`` for the accuracy gate (without one,
    reviewed accuracy is never measured: waive it in the plan). The reference pipeline passes
    its results store, whose reviews are the truth (:class:`~modelbaton.controller.truth.
    ReviewedLabels`).
    """

    def __init__(
        self,
        client: Client,
        catalog: CatalogSource,
        store: ResultsStore | None = None,
        *,
        spec: PipelineSpec | None = None,
        engine: Engine | None = None,
        ground_truth: GroundTruth | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._store = store
        self._spec = spec = spec or reference_spec()
        if ground_truth is None and store is not None:
            ground_truth = ReviewedLabels(store)
        self._truth = ground_truth
        shadow_engine = engine if engine is not None else (store.engine if store else None)
        if shadow_engine is None:
            raise ConfigError("the controller's activities need a results store or an engine")
        self._shadows = ShadowStore(shadow_engine)
        self.meter = Meter(client, catalog, spec, self._shadows, self._truth, self._rollouts)

    def _rollouts(self, task_queue: str) -> Rollouts:
        return Rollouts(
            self._client, self._catalog.current(), task_queue, controller=True, spec=self._spec
        )

    @activity.defn(name=APPLY_STEP)
    async def apply_step(self, req: ApplyStepRequest) -> ApplyStepResult:
        """Make the rollout plan match the step; a step already in force is left alone, so a
        retried or replayed call changes nothing twice."""
        with permanent_errors():
            return await self._apply_step(req)

    async def _apply_step(self, req: ApplyStepRequest) -> ApplyStepResult:
        if req.plan.strategy == "builds":
            return await self._apply_build_step(req)
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
            check = step.compare_sample
            if not running:
                plan = await rollouts.start(candidate, step.fraction, req.by, check_sample=check)
                detail = f"canary started at {step.fraction:.0%}"
            elif (
                plan.stage is not RolloutStage.CANARY
                or plan.fraction != step.fraction
                or plan.check_sample != check
            ):
                before = plan.fraction if plan.stage is RolloutStage.CANARY else None
                plan = await rollouts.set_fraction(step.fraction, req.by, check_sample=check)
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

    async def _apply_build_step(self, req: ApplyStepRequest) -> ApplyStepResult:
        """A Worker Versioning step: ramp the candidate build, or make it current."""
        control = self._deployment(req.task_queue, req.plan.deployment)
        step = req.plan.steps[req.index]
        candidate = req.plan.candidate
        view = await control.describe()
        if view.current is None:
            raise RolloutError(
                f"deployment {control.deployment} has no current build: make the baseline "
                "current first ('baton deploy promote BUILD')"
            )
        detail = "already in force"
        if step.kind == "canary":
            percent = step.fraction * 100.0
            if view.current == candidate:
                raise RolloutError(f"build {candidate} is already current; nothing to ramp")
            if view.ramping != candidate or abs(view.ramp_percent - percent) > 1e-6:
                change = await control.set_ramping(candidate, percent)
                detail = f"ramp of build {candidate} at {change.ramp_percent:g} %"
        elif step.kind == "promote":
            # The audit names the build current before the step, as this attempt found it: a
            # retried attempt (the first one's call reached the server, its answer did not)
            # would otherwise read the candidate as its own predecessor.
            if view.current != candidate:
                await control.set_current(candidate)
                detail = f"build {candidate} current (was {view.current})"
            else:
                detail = (
                    f"build {candidate} current (was {view.previous() or '?'}), already in force"
                )
        after = await control.describe()
        baseline = view.current if view.current != candidate else (view.previous() or "")
        return ApplyStepResult(
            rollout_id=f"{control.deployment}:{candidate}",
            baseline=baseline,
            fraction=(after.ramp_percent / 100.0) if after.ramping == candidate else 0.0,
            detail=detail,
        )

    def _deployment(self, task_queue: str, deployment: str | None) -> DeploymentControl:
        return DeploymentControl(self._client, deployment or deployment_name_for(task_queue))

    @activity.defn(name=MEASURE)
    async def measure(self, req: MeasureRequest) -> Metrics:
        """Both arms of the rollout from visibility and the results store."""
        with permanent_errors():
            return await self.meter.measure(req)

    @activity.defn(name=NOTE)
    async def note(self, req: NoteRequest) -> None:
        """A decision into the rollout's audit trail."""
        with permanent_errors():
            return await self._note(req)

    async def _note(self, req: NoteRequest) -> None:
        await self._rollouts(req.task_queue).note(
            RolloutNote(
                actor=req.by.actor, reason=req.by.reason, action=req.action, detail=req.detail
            )
        )

    @activity.defn(name=ROLLBACK)
    async def rollback(self, req: RollbackRequest) -> RollbackResult:
        """Abort the rollout and roll back by scenario (B restarts unfinished candidate
        documents on the baseline when asked)."""
        with permanent_errors():
            return await self._rollback(req)

    async def _rollback(self, req: RollbackRequest) -> RollbackResult:
        rollouts = self._rollouts(req.task_queue)
        if req.baseline_build is not None and req.candidate_build is not None:
            return await self._rollback_build(
                req, rollouts, req.baseline_build, req.candidate_build
            )
        assessed = await rollback.assess(rollouts, restart_on_baseline=req.restart_on_baseline)
        outcome = await rollback.execute(
            rollouts,
            assessed,
            restart_on_baseline=req.restart_on_baseline,
            by=req.by,
            rerun_completed=req.rerun_completed,
        )
        return RollbackResult(
            scenario=assessed.scenario,
            aborted_at=outcome.aborted_at,
            actions=assessed.actions,
            restarted=outcome.restarted,
        )

    async def _rollback_build(
        self, req: RollbackRequest, rollouts: Rollouts, baseline: str, candidate_build: str
    ) -> RollbackResult:
        """Route new workflows back to the baseline build, then scenario A or B on the
        documents pinned to the candidate build."""
        control = self._deployment(req.task_queue, req.deployment)
        view = await control.describe()
        actions: list[str] = []
        if view.ramping == candidate_build:
            await control.clear_ramp()
            actions.append(f"ramp of build {candidate_build} cleared")
        if view.current != baseline:
            await control.set_current(baseline)
            actions.append(f"build {baseline} current again")
        aborted_at = datetime.now(UTC)
        candidate = control.build(candidate_build).version
        on_candidate = f'{VERSION_ATTRIBUTE} = "{candidate}"'
        if req.since is not None:
            # A workflow whose first task failed on the candidate is not recorded as pinned to
            # it: count those stuck since the rollout started as the candidate's too.
            since = req.since.strftime("%Y-%m-%dT%H:%M:%SZ")
            on_candidate = (
                f"({on_candidate} OR (TemporalReportedProblems IS NOT NULL "
                f'AND StartTime >= "{since}"))'
            )
        query = (
            f'WorkflowType = "{self._spec.workflow_type}" AND TaskQueue = "{req.task_queue}" '
            f"AND {on_candidate}"
        )
        total, _, affected = await reruns.unfinished(self._client, query, self._spec.review)
        restarted: list[str] = []
        if req.restart_on_baseline:
            reason = f"rollback of build {candidate_build}"
            restarted = await reruns.restart(rollouts, affected, reason=reason, by=req.by)
            restarted += await reruns.restart_stragglers(
                rollouts, query, set(restarted), reason=reason, by=req.by
            )
        return RollbackResult(
            scenario="B" if total else "A",
            aborted_at=aborted_at,
            actions=actions,
            restarted=restarted,
        )

    @activity.defn(name=IN_FLIGHT)
    async def in_flight(self, req: InFlightRequest) -> int:
        """Running documents still assigned to model version ``req.version`` (a drain's count)."""
        with permanent_errors():
            return await self._in_flight(req)

    async def _in_flight(self, req: InFlightRequest) -> int:
        query = self._in_flight_query(req.task_queue, req.version)
        left = (await self._client.count_workflows(query)).count
        if left == 0 and req.confirm_seconds > 0:
            activity.heartbeat("zero once; confirming")
            await asyncio.sleep(req.confirm_seconds)
            left = (await self._client.count_workflows(query)).count
        return left

    def _in_flight_query(self, task_queue: str, version: str) -> str:
        if ":" in version:  # a build, "<deployment>:<build id>": its pinned workflows
            return f"{DrainTarget.build(version).running}"
        return (
            f'WorkflowType = "{self._spec.workflow_type}" AND TaskQueue = "{task_queue}" '
            f'AND ModelVersion = "{version}" AND ExecutionStatus = "Running"'
        )

    @activity.defn(name=TERMINATE_IN_FLIGHT)
    async def terminate_in_flight(self, req: TerminateInFlightRequest) -> list[str]:
        """Terminate every running document still on ``req.version`` (with ``req.reason``);
        return the workflow ids terminated. One already closed is skipped."""
        with permanent_errors():
            return await self._terminate_in_flight(req)

    async def _terminate_in_flight(self, req: TerminateInFlightRequest) -> list[str]:
        query = self._in_flight_query(req.task_queue, req.version)
        ended: list[str] = []
        async for wf in self._client.list_workflows(query):
            activity.heartbeat(wf.id)
            try:
                await self._client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate(
                    req.reason
                )
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    continue  # closed between the listing and the terminate
                raise
            ended.append(wf.id)
        return ended

    def all(self) -> list[object]:
        return [
            self.apply_step,
            self.measure,
            self.note,
            self.rollback,
            self.in_flight,
            self.terminate_in_flight,
        ]
