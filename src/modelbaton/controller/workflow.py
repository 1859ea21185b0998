"""The rollout controller: one durable workflow that drives a rollout through a plan's steps.

For each step it makes the rollout plan match (an activity sending the rollout workflow's
updates), then measures the gates every ``poll`` seconds: a failing gate stops the step at once
and rolls back (``on_failure``: scenario B, restarting unfinished candidate documents on the
baseline, by default); the step passes when every gate passes and its bake time (canary) or
duration (shadow) is over; when the data stays inconclusive past ``max_wait`` the controller
pauses for a person. Pause, resume, skip and abort are updates. Every decision, with the values
it was made on, goes into the rollout's audit trail.

Timers are durable: a worker or server restart loses no place. The workflow continues as new
when its history grows, carrying its state, so a plan of any length fits.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from modelbaton.controller import activities as acts
    from modelbaton.controller import gates_v1
    from modelbaton.controller.gates import (
        GateResult,
        Metrics,
        Verdict,
        canary_gates,
        overall,
        shadow_gates,
    )
    from modelbaton.controller.messages import (
        CONTROLLER_WORKFLOW_TYPE,
        ApplyStepRequest,
        ApplyStepResult,
        ControllerInput,
        ControllerState,
        ControllerView,
        InFlightRequest,
        MeasureRequest,
        NoteRequest,
        Phase,
        RollbackRequest,
        RollbackResult,
        TerminateInFlightRequest,
    )
    from modelbaton.controller.plan import (
        CanaryStep,
        DrainStep,
        ShadowStep,
        describe_step,
        max_wait_of,
    )
    from modelbaton.rollout.messages import ChangeBy
    from modelbaton.versioning.builds import deployment_name_for

_TIMEOUT = timedelta(minutes=2)
_HEARTBEAT = timedelta(seconds=30)
#: Gates as confidence sequences, and max_wait only for an inconclusive step and from a resume.
#: A run started before replays on ``gates_v1`` and the old step logic.
GATES_PATCH = "anytime-valid-gates"
#: A drain believes a zero count when a second count this many seconds later is zero too.
DRAIN_CONFIRM_SECONDS = 2.0
#: Audit entries the controller could not write, kept in its state (the newest this many).
_MAX_UNRECORDED = 20
#: Errors that no retry can mend: a refused rollout change, an invalid configuration. The
#: activities raise them as non-retryable too; naming them here keeps the workflow's side explicit.
PERMANENT_ERRORS = ["RolloutError", "ConfigError", "CatalogError"]
#: A transient failure (Temporal or the store briefly unreachable) is retried, but not forever:
#: about five minutes, after which the controller stops in a clear state instead of wedging.
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=15,
    non_retryable_error_types=PERMANENT_ERRORS,
)


def failure_message(err: BaseException) -> str:
    """The one line an activity failure comes down to: its root cause's message."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) if cause is not None else str(err)


@workflow.defn(name=CONTROLLER_WORKFLOW_TYPE)
class RolloutControllerWorkflow:
    """Drives one rollout through its plan; see the module docstring."""

    @workflow.init
    def __init__(self, inp: ControllerInput) -> None:
        self._inp = inp
        self._state = inp.state.model_copy(deep=True)
        self._rollout_id: str | None = inp.rollout_id
        self._old_baseline: str | None = inp.old_baseline
        self._skip: ChangeBy | None = None
        self._abort: ChangeBy | None = None

    @workflow.run
    async def run(self, inp: ControllerInput) -> ControllerState:
        plan = inp.plan
        stopped = False
        try:
            await self._steps()
        except ActivityError as err:
            # A permanent error (a refused change, a bad configuration) or retries exhausted: stop
            # the step and roll back, as a failing gate does, saying why.
            stopped = True
            at = min(self._state.step, len(plan.steps) - 1) + 1
            self._state.abort_reason = f"step {at} stopped: {failure_message(err)}"
            await self._note("error", f"{self._state.abort_reason}; rolling back")
        if not stopped and self._state.step >= len(plan.steps) and self._abort is None:
            self._state.phase = Phase.PROMOTED
            await self._note("done", f"plan complete: {plan.candidate} serves every document")
        else:
            try:
                await self._roll_back()
            except ActivityError as err:
                self._state.phase = Phase.STOPPED
                self._state.abort_reason = (
                    f"{self._state.abort_reason}; rollback refused: {failure_message(err)}"
                )
                await self._note("stopped", self._state.abort_reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _steps(self) -> None:
        """Apply and bake each step in turn, until the plan is done, a gate fails or an abort."""
        plan = self._inp.plan
        while self._state.step < len(plan.steps) and self._abort is None:
            step = plan.steps[self._state.step]
            if self._state.step_started_at is None:
                applied = await self._apply(self._state.step)
                self._state.step_started_at = workflow.now()
                self._state.phase = Phase.BAKING
                await self._note(
                    "step",
                    f"step {self._state.step + 1}/{len(plan.steps)}: {describe_step(step)}: "
                    f"{applied.detail}",
                )
            verdict = await self._bake(step)
            if verdict is Verdict.FAIL or self._abort is not None:
                break
            if self._skip is not None:
                await self._note("skip", f"step {self._state.step + 1} passed by hand", self._skip)
            elif self._state.last_results:
                summary = "; ".join(r.line() for r in self._state.last_results)
                await self._note("gate-pass", f"step {self._state.step + 1} passed: {summary}")
            self._skip = None
            self._state.step += 1
            self._state.step_started_at = None
            self._state.wait_from = None
            self._state.last_results = []
            self._continue_as_new_if_long()

    async def _apply(self, index: int) -> ApplyStepResult:
        self._state.phase = Phase.APPLYING
        result: ApplyStepResult = await workflow.execute_activity_method(
            acts.ControllerActivities.apply_step,
            ApplyStepRequest(
                task_queue=self._inp.task_queue,
                plan=self._inp.plan,
                index=index,
                by=self._by(f"controller step {index + 1}"),
            ),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        if self._old_baseline is None:
            self._old_baseline = result.baseline
        self._rollout_id = result.rollout_id
        return result

    async def _bake(self, step: object) -> Verdict:
        """Measure until the step passes or fails (or the controller is aborted)."""
        plan = self._inp.plan
        if not isinstance(step, ShadowStep | CanaryStep | DrainStep):
            return Verdict.PASS  # promote: nothing to measure
        while True:
            await workflow.wait_condition(
                lambda: not self._state.paused or self._abort is not None or self._skip is not None
            )
            if self._abort is not None:
                return Verdict.FAIL
            self._state.phase = Phase.BAKING
            started = self._state.step_started_at or workflow.now()
            elapsed = (workflow.now() - started).total_seconds()
            results, hold = await self._measure(step, elapsed)
            self._state.last_results = results
            verdict = overall(results)
            if verdict is Verdict.FAIL:
                failing = "; ".join(r.line() for r in results if r.verdict is Verdict.FAIL)
                self._state.abort_reason = failing
                await self._note("gate-fail", f"step {self._state.step + 1} failed: {failing}")
                return Verdict.FAIL
            if self._skip is not None:
                return Verdict.PASS
            if verdict is Verdict.PASS and elapsed >= hold:
                return Verdict.PASS
            # Only an inconclusive step waits for a person: a passing one bakes on, and a
            # resumed one gets max_wait again from its resume.
            max_wait = max_wait_of(step)
            new = workflow.patched(GATES_PATCH)
            wait_from = (self._state.wait_from if new else None) or started
            waited = (workflow.now() - wait_from).total_seconds()
            if (
                (verdict is Verdict.INCONCLUSIVE or not new)
                and max_wait is not None
                and waited >= max_wait
                and not self._state.paused
            ):
                self._state.paused = True
                self._state.phase = Phase.PAUSED
                detail = "; ".join(r.line() for r in results)
                await self._note(
                    "pause",
                    f"step {self._state.step + 1} still inconclusive after {max_wait:g} s: "
                    f"{detail}; resume, skip or abort",
                )
                continue
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._abort is not None or self._skip is not None,
                    timeout=timedelta(seconds=plan.poll),
                )
            self._continue_as_new_if_long()

    async def _measure(
        self, step: ShadowStep | CanaryStep | DrainStep, elapsed: float
    ) -> tuple[list[GateResult], float]:
        """(gate results, seconds the step must last) of one measurement."""
        plan = self._inp.plan
        if isinstance(step, DrainStep):
            return await self._measure_drain(step, elapsed), 0.0
        assert self._rollout_id is not None
        metrics: Metrics = await workflow.execute_activity_method(
            acts.ControllerActivities.measure,
            MeasureRequest(
                task_queue=self._inp.task_queue,
                rollout_id=self._rollout_id,
                retrying_after_seconds=plan.gates.retrying_after,
                shadow_documents=step.documents if isinstance(step, ShadowStep) else None,
                builds=self._builds(),
                since=self._inp.started_at,
                webhook=plan.gates.webhook,
                webhook_timeout_seconds=plan.gates.webhook_timeout,
                prometheus=plan.gates.prometheus,
            ),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        self._state.last_metrics = metrics
        gates = (shadow_gates, canary_gates)
        if not workflow.patched(GATES_PATCH):
            gates = (gates_v1.shadow_gates, gates_v1.canary_gates)
        if isinstance(step, ShadowStep):
            results = gates[0](metrics, plan.gates, step.documents)
            return results, step.duration
        results = gates[1](metrics, plan.gates, step.min_documents)
        if metrics.candidate.stuck or (results and overall(results) is Verdict.FAIL):
            self._state.breach_at = metrics.measured_at
        return results, step.bake

    async def _measure_drain(self, step: DrainStep, elapsed: float) -> list[GateResult]:
        """The drain gate: passes once no document runs on the old baseline (a zero confirmed
        by a second count); at the deadline ``report`` passes with what is left, ``terminate``
        ends what is left first, and ``wait`` pauses for a person (see :func:`max_wait_of`)."""
        builds = self._builds()
        old = builds["baseline"] if builds else (self._old_baseline or "")
        left = await self._in_flight(old)
        measured = f"{left} documents still on {old}"
        if left and elapsed >= step.deadline and step.on_deadline == "terminate":
            ended: list[str] = await workflow.execute_activity_method(
                acts.ControllerActivities.terminate_in_flight,
                TerminateInFlightRequest(
                    task_queue=self._inp.task_queue,
                    version=old,
                    reason=f"{self._by().actor}: drain deadline of {step.deadline:g} s passed",
                ),
                start_to_close_timeout=_TIMEOUT,
                heartbeat_timeout=_HEARTBEAT,
                retry_policy=_RETRY,
            )
            left = await self._in_flight(old)
            measured = (
                f"{len(ended)} documents on {old} terminated at the {step.deadline:g} s "
                f"deadline; {left} still on it"
            )
        if left == 0 or (elapsed >= step.deadline and step.on_deadline == "report"):
            verdict = Verdict.PASS
        else:
            verdict = Verdict.INCONCLUSIVE
        return [GateResult(gate="drain", verdict=verdict, measured=measured)]

    async def _in_flight(self, version: str) -> int:
        left: int = await workflow.execute_activity_method(
            acts.ControllerActivities.in_flight,
            InFlightRequest(
                task_queue=self._inp.task_queue,
                version=version,
                confirm_seconds=DRAIN_CONFIRM_SECONDS,
            ),
            start_to_close_timeout=_TIMEOUT,
            heartbeat_timeout=_HEARTBEAT,
            retry_policy=_RETRY,
        )
        return left

    async def _roll_back(self) -> None:
        plan = self._inp.plan
        self._state.phase = Phase.ROLLING_BACK
        by = self._abort or self._by(f"controller: {self._state.abort_reason}")
        if self._abort is not None:
            self._state.abort_reason = f"aborted by {self._abort.actor}: {self._abort.reason}"
        if self._rollout_id is None:
            self._state.phase = Phase.ABORTED
            await self._note("abort", f"{self._state.abort_reason}; nothing was applied")
            return
        result: RollbackResult = await workflow.execute_activity_method(
            acts.ControllerActivities.rollback,
            RollbackRequest(
                task_queue=self._inp.task_queue,
                rollout_id=self._rollout_id,
                restart_on_baseline=plan.on_failure != "let-finish",
                rerun_completed=plan.on_failure == "rerun-on-baseline",
                by=by,
                deployment=self._deployment() if plan.strategy == "builds" else None,
                baseline_build=self._old_baseline if plan.strategy == "builds" else None,
                candidate_build=plan.candidate if plan.strategy == "builds" else None,
                since=self._inp.started_at,
            ),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
        self._state.fraction_zero_at = result.aborted_at
        self._state.rolled_back = result.restarted
        lag = ""
        if self._state.breach_at and result.aborted_at:
            seconds = (result.aborted_at - self._state.breach_at).total_seconds()
            lag = f"; {seconds:.1f} s from the gate breach to the candidate's fraction at 0"
        await self._note(
            "rollback",
            f"scenario {result.scenario} ({plan.on_failure}): {len(result.restarted)} "
            f"documents restarted on the baseline{lag}",
        )
        self._state.phase = Phase.ABORTED

    def _deployment(self) -> str:
        return self._inp.plan.deployment or deployment_name_for(self._inp.task_queue)

    def _builds(self) -> dict[str, str] | None:
        """For a build rollout: each arm's ``<deployment>:<build>``, as visibility spells it."""
        plan = self._inp.plan
        if plan.strategy != "builds" or not self._old_baseline:
            return None
        dep = self._deployment()
        return {"baseline": f"{dep}:{self._old_baseline}", "candidate": f"{dep}:{plan.candidate}"}

    async def _note(self, action: str, detail: str, by: ChangeBy | None = None) -> None:
        """An entry in the audit trail. A note that cannot be written (the rollout workflow
        gone) is kept in the controller's state instead: it never stops a rollback."""
        try:
            await self._write_note(action, detail, by)
        except ActivityError as err:
            self._state.unrecorded.append(f"controller-{action}: {detail} ({failure_message(err)})")
            del self._state.unrecorded[:-_MAX_UNRECORDED]

    async def _write_note(self, action: str, detail: str, by: ChangeBy | None) -> None:
        await workflow.execute_activity_method(
            acts.ControllerActivities.note,
            NoteRequest(
                task_queue=self._inp.task_queue,
                by=by or self._by(),
                action=f"controller-{action}",
                detail=detail,
            ),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )

    def _by(self, reason: str = "") -> ChangeBy:
        started = self._inp.started_by
        return ChangeBy(
            actor=f"controller (started by {started.actor})",
            reason=reason or started.reason,
        )

    def _continue_as_new_if_long(self) -> None:
        """Continue as new when history grows, at a quiet moment: no update being handled, no
        skip or abort waiting to be acted on (they would be lost with this run)."""
        if self._skip is not None or self._abort is not None:
            return
        if not workflow.all_handlers_finished():
            return
        info = workflow.info()
        if (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._inp.max_history_events
        ):
            carried = {
                "state": self._state,
                "old_baseline": self._old_baseline,
                "rollout_id": self._rollout_id,
            }
            workflow.continue_as_new(self._inp.model_copy(update=carried))

    def _finished(self) -> bool:
        return self._state.phase in (
            Phase.PROMOTED,
            Phase.ABORTED,
            Phase.ROLLING_BACK,
            Phase.STOPPED,
        )

    def _promotion_reached(self) -> int | None:
        """The (1-based) promote step once the controller has reached it: from then on the
        candidate is, or is being made, the baseline, and an abort has nothing to withdraw."""
        for i, step in enumerate(self._inp.plan.steps[: self._state.step + 1]):
            if step.kind == "promote":
                return i + 1
        return None

    @workflow.update
    async def pause(self, by: ChangeBy) -> ControllerState:
        """Hold the plan at the current step (its fraction stays) until resumed."""
        self._state.paused = True
        self._state.phase = Phase.PAUSED
        await self._note("pause", f"paused at step {self._state.step + 1}", by)
        return self._state

    @pause.validator
    def _check_pause(self, by: ChangeBy) -> None:
        if self._finished() or self._state.paused:
            raise ValueError(f"the controller is {self._state.phase.value}; nothing to pause")

    @workflow.update
    async def resume(self, by: ChangeBy) -> ControllerState:
        """Go on measuring the current step."""
        self._state.paused = False
        self._state.wait_from = workflow.now()
        await self._note("resume", f"resumed at step {self._state.step + 1}", by)
        return self._state

    @resume.validator
    def _check_resume(self, by: ChangeBy) -> None:
        if not self._state.paused or self._finished():
            raise ValueError(f"the controller is {self._state.phase.value}, not paused")

    @workflow.update
    async def skip(self, by: ChangeBy) -> ControllerState:
        """Pass the current step's gates by hand (recorded as such) and go to the next step."""
        self._skip = by
        self._state.paused = False
        return self._state

    @skip.validator
    def _check_skip(self, by: ChangeBy) -> None:
        if self._finished():
            raise ValueError(f"the controller is {self._state.phase.value}; nothing to skip")

    @workflow.update
    async def abort(self, by: ChangeBy) -> ControllerState:
        """Stop the plan and roll back as the plan's ``on_failure`` says."""
        self._abort = by
        return self._state

    @abort.validator
    def _check_abort(self, by: ChangeBy) -> None:
        if self._finished() or self._abort is not None:
            raise ValueError(f"the controller is {self._state.phase.value}; nothing to abort")
        promoted = self._promotion_reached()
        if promoted is not None:
            undo = (
                "'baton deploy rollback'"
                if self._inp.plan.strategy == "builds"
                else "'baton rollback'"
            )
            raise ValueError(
                f"step {promoted} promoted {self._inp.plan.candidate}: an abort cannot undo a "
                f"promotion; skip the rest ('baton rollout skip') or wait for the controller to "
                f"finish, then {undo}"
            )

    @workflow.query
    def status(self) -> ControllerView:
        """The plan, where the controller is and the last measurement."""
        return ControllerView(plan=self._inp.plan, state=self._state, rollout_id=self._rollout_id)
