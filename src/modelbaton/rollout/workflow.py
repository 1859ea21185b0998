"""The rollout as a durable object: one long-running workflow per pipeline and model id.

It holds the plan (baseline, candidate, fraction, salt, stage, revision) and an audit trail of
every change. Changes are workflow updates whose validators refuse what the plan does not allow,
so a refused change leaves no trace in history. After every change the plan is written to the
workflow's memo, so starters read it with ``describe`` without needing a worker to answer a query.
The workflow continues as new when its history grows, carrying plan and audit trail.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import rollout as decide
    from modelbaton.contracts.rollout import AuditEntry, ModelRef, RolloutPlan, RolloutStage
    from modelbaton.rollout.messages import (
        ROLLOUT_WORKFLOW_TYPE,
        ChangeBy,
        NoteRequest,
        Promotion,
        RestoreRequest,
        RolloutInput,
        RolloutView,
        SetFractionRequest,
        StartCanaryRequest,
    )

#: Continue as new well before the server's history limits; a rollout changes a few times a day.
MAX_HISTORY_EVENTS = 2_000
#: Audit entries carried across continue-as-new (the oldest are dropped beyond this).
MAX_AUDIT = 1_000
PLAN_MEMO = "plan"


@workflow.defn(name=ROLLOUT_WORKFLOW_TYPE)
class RolloutWorkflow:
    """Plan and audit trail of one model id's rollouts."""

    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        self._plan = inp.plan
        self._audit = list(inp.audit)
        self._promotion = inp.promotion

    @workflow.run
    async def run(self, inp: RolloutInput) -> None:
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() > MAX_HISTORY_EVENTS
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            RolloutInput(plan=self._plan, audit=self._audit[-MAX_AUDIT:], promotion=self._promotion)
        )

    def _apply(self, plan: RolloutPlan, by: ChangeBy, action: str, detail: str) -> RolloutPlan:
        self._plan = plan
        if by.evidence:
            detail = f"{detail}; {by.evidence}"
        self._audit.append(
            AuditEntry(
                at=workflow.now(),
                actor=by.actor,
                action=action,
                reason=by.reason,
                revision=plan.revision,
                detail=detail,
            )
        )
        workflow.upsert_memo({PLAN_MEMO: plan.model_dump(mode="json")})
        return plan

    @workflow.update
    def start_canary(self, req: StartCanaryRequest) -> RolloutPlan:
        """Start a rollout of ``req.candidate``: a canary at ``req.fraction``, or a shadow of
        ``req.sample`` of the documents."""
        plan = planned_start(self._plan, req, req.salt or str(workflow.uuid4()))
        if req.sample is not None:
            detail = (
                f"{plan.rollout_id}: candidate {req.candidate.version} shadows baseline "
                f"{plan.baseline.version} on {req.sample:.2%} of documents "
                f"(noise baseline on {req.noise_sample:.2%} of those)"
            )
            return self._apply(plan, req, "start-shadow", detail)
        detail = (
            f"{plan.rollout_id}: candidate {req.candidate.version} against baseline "
            f"{plan.baseline.version} at {req.fraction:.2%}"
        )
        return self._apply(plan, req, "start", detail)

    @start_canary.validator
    def _check_start(self, req: StartCanaryRequest) -> None:
        planned_start(self._plan, req, req.salt or "check")

    @workflow.update
    def set_fraction(self, req: SetFractionRequest) -> RolloutPlan:
        """Move the candidate fraction; raising it only moves keys to the candidate. From the
        shadow stage this starts the canary."""
        old = self._plan
        plan = decide.set_fraction(old, req.fraction, req.check_sample)
        if old.stage is RolloutStage.SHADOW:
            detail = f"shadow -> canary at {req.fraction:.2%}"
        else:
            detail = f"fraction {old.fraction:.2%} -> {req.fraction:.2%}"
        return self._apply(plan, req, "set-fraction", detail)

    @set_fraction.validator
    def _check_fraction(self, req: SetFractionRequest) -> None:
        decide.set_fraction(self._plan, req.fraction, req.check_sample)

    @workflow.update
    def promote(self, req: ChangeBy) -> RolloutPlan:
        """The candidate becomes the baseline of every new document."""
        old = self._plan
        plan = decide.promote(old)
        detail = f"{old.rollout_id}: {plan.baseline.version} replaces {old.baseline.version}"
        self._promotion = Promotion(
            rollout_id=old.rollout_id,
            promoted=plan.baseline,
            previous=old.baseline,
            at=workflow.now(),
            revision=plan.revision,
        )
        return self._apply(plan, req, "promote", detail)

    @promote.validator
    def _check_promote(self, req: ChangeBy) -> None:
        decide.promote(self._plan)

    @workflow.update
    def abort(self, req: ChangeBy) -> RolloutPlan:
        """Every new document goes to the baseline again."""
        old = self._plan
        plan = decide.abort(old)
        candidate = old.candidate.version if old.candidate else "?"
        detail = f"{old.rollout_id}: {candidate} withdrawn, {plan.baseline.version} serves all"
        return self._apply(plan, req, "abort", detail)

    @abort.validator
    def _check_abort(self, req: ChangeBy) -> None:
        decide.abort(self._plan)

    @workflow.update
    def restore_baseline(self, req: RestoreRequest) -> RolloutPlan:
        """Roll the last promotion back: the baseline it replaced serves every new document."""
        old = self._plan
        plan = restored(old, self._promotion, req.previous)
        detail = (
            f"{old.rollout_id}: {plan.baseline.version} restored as the baseline, replacing "
            f"promoted {old.baseline.version}"
        )
        self._promotion = None
        return self._apply(plan, req, "rollback-promotion", detail)

    @restore_baseline.validator
    def _check_restore(self, req: RestoreRequest) -> None:
        restored(self._plan, self._promotion, req.previous)

    @workflow.update
    def note(self, req: NoteRequest) -> RolloutPlan:
        """Add an audit entry without changing the plan (a controller's gate decision)."""
        self._audit.append(
            AuditEntry(
                at=workflow.now(),
                actor=req.actor,
                action=req.action,
                reason=req.reason,
                revision=self._plan.revision,
                detail=req.detail,
            )
        )
        return self._plan

    @workflow.query
    def view(self) -> RolloutView:
        """The plan and the audit trail."""
        return RolloutView(plan=self._plan, audit=self._audit, promotion=self._promotion)


def restored(plan: RolloutPlan, promotion: Promotion | None, previous: ModelRef) -> RolloutPlan:
    """The plan with ``promotion`` rolled back to ``previous`` (raises RolloutRefused when
    there is no promotion to roll back, or it is not the one asked for)."""
    if plan.stage is not RolloutStage.STEADY or plan.candidate is not None:
        raise decide.RolloutRefused(
            f"rollout {plan.rollout_id} is in progress; abort it instead of rolling back"
        )
    if promotion is None or plan.ended != "promoted":
        raise decide.RolloutRefused(
            f"no promotion of {plan.model_id} to roll back (the last rollout ended "
            f"{plan.ended or 'never'})"
        )
    if promotion.previous != previous or promotion.promoted != plan.baseline:
        raise decide.RolloutRefused(
            f"the last promotion replaced {promotion.previous.version} with "
            f"{promotion.promoted.version}, not {previous.version} with {plan.baseline.version}"
        )
    return plan.model_copy(
        update={
            "baseline": previous,
            "ended": "rolled-back",
            "last_candidate": plan.baseline.version,
            "revision": plan.revision + 1,
        }
    )


def planned_start(plan: RolloutPlan, req: StartCanaryRequest, salt: str) -> RolloutPlan:
    """The plan a start request makes of ``plan`` (raises RolloutRefused when not allowed)."""
    if req.sample is not None:
        return decide.start_shadow(
            plan,
            req.candidate,
            req.sample,
            salt,
            noise_sample=req.noise_sample,
            budget_seconds=req.shadow_budget_seconds,
        )
    return decide.start_canary(plan, req.candidate, req.fraction, salt, req.check_sample)
