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
    )
    from modelbaton.controller.plan import CanaryStep, DrainStep, ShadowStep
    from modelbaton.rollout.messages import ChangeBy
    from modelbaton.versioning.builds import deployment_name_for

_TIMEOUT = timedelta(minutes=2)
#: Gates as confidence sequences, and max_wait only for an inconclusive step and from a resume.
#: A run started before replays on ``gates_v1`` and the old step logic.
GATES_PATCH = "anytime-valid-gates"
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


def describe_step(step: object) -> str:
    if isinstance(step, ShadowStep):
        return f"shadow {step.sample:.0%} for {step.documents} comparisons"
    if isinstance(step, CanaryStep):
        return f"canary {step.fraction:.0%} (bake {step.bake:g} s, {step.min_documents} documents)"
    if isinstance(step, DrainStep):
        return f"drain (deadline {step.deadline:g} s, then {step.on_deadline})"
    return "promote"


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
        if self._state.step >= len(plan.steps) and self._abort is None:
            self._state.phase = Phase.PROMOTED
            await self._note("done", f"plan complete: {plan.candidate} serves every document")
        else:
            await self._roll_back()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

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
            max_wait = getattr(step, "max_wait", None)
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
            builds = self._builds()
            old = builds["baseline"] if builds else (self._old_baseline or "")
            left: int = await workflow.execute_activity_method(
                acts.ControllerActivities.in_flight,
                InFlightRequest(task_queue=self._inp.task_queue, version=old),
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            if left == 0 or (elapsed >= step.deadline and step.on_deadline == "report"):
                verdict = Verdict.PASS
            else:
                verdict = Verdict.INCONCLUSIVE
            measured = f"{left} documents still on {old}"
            return [GateResult(gate="drain", verdict=verdict, measured=measured)], 0.0
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
                restart_on_baseline=plan.on_failure == "restart-on-baseline",
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
        return self._state.phase in (Phase.PROMOTED, Phase.ABORTED, Phase.ROLLING_BACK)

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

    @workflow.query
    def status(self) -> ControllerView:
        """The plan, where the controller is and the last measurement."""
        return ControllerView(plan=self._inp.plan, state=self._state, rollout_id=self._rollout_id)
