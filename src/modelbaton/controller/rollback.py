"""Rollback by scenario (the article's A, B and C), decided from live state, each with a dry run.

- **A**: no workflow of the rollout ran the candidate. Revert the plan (every new document goes to
  the baseline); nothing else to do.
- **B**: candidate-arm workflows exist. They are listed from visibility. Completed ones keep their
  record (the candidate answered). Unfinished ones (running, failed) either finish on the
  candidate (``let_finish``) or are terminated with a reason and started again on the baseline
  with the same document (``restart_on_baseline``). One waiting for review is kept either way:
  terminating it would lose the reviewer's work and deadline, and its record will carry the
  reviewer's label. The results store then keeps one
  current record per document and the candidate's record, if it wrote one, as superseded.
- **C**: the code the workers run has no path for the baseline's output schema any more (the old
  path was removed): no plan change can help. The old path must come back as a new patch over the
  current code; ``releases/r7_restored.py`` and its histories are the worked example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from modelbaton.contracts.rollout import Arm, RolloutStage
from modelbaton.controller.reruns import (
    WAITING,
    Affected,
    completed_latest,
    rerun_completed_runs,
    restart,
    restart_stragglers,
    unfinished,
)
from modelbaton.errors import RolloutError
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy, NoteRequest, Promotion
from modelbaton.rollout.spec import PipelineSpec, ReviewMarker

#: Where the worked example of scenario C lives.
SCENARIO_C_EXAMPLE = "src/modelbaton/pipeline/releases/r7_restored.py"


@dataclass
class RollbackPlan:
    """What a rollback would do, decided from live state."""

    scenario: str
    rollout_id: str | None
    baseline: str
    candidate: str | None
    in_progress: bool
    candidate_workflows: int = 0
    completed_on_candidate: int = 0
    affected: list[Affected] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    explanation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rollout_id": self.rollout_id,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "in_progress": self.in_progress,
            "candidate_workflows": self.candidate_workflows,
            "completed_on_candidate": self.completed_on_candidate,
            "affected": [a.as_dict() for a in self.affected],
            "actions": self.actions,
            "explanation": self.explanation,
        }


@dataclass
class RollbackOutcome:
    """What a rollback did."""

    plan: RollbackPlan
    aborted_at: datetime | None = None
    restarted: list[str] = field(default_factory=list)
    left_to_finish: list[str] = field(default_factory=list)


def _serves(spec: PipelineSpec, schema_version: int) -> bool:
    """Whether the workers' code has a model call for ``schema_version`` (scenario C if not);
    a spec that does not say which schemas its code serves serves all."""
    return spec.schema_versions is None or schema_version in spec.schema_versions


def _code(spec: PipelineSpec) -> str:
    served = ", ".join(f"v{v}" for v in sorted(spec.schema_versions or ()))
    return f"the workers' code ({spec.workflow_type}, serving output schemas {served})"


def _arm_query(rollouts: Rollouts, rollout_id: str, arm: Arm) -> str:
    return (
        f'WorkflowType = "{rollouts.spec.workflow_type}" AND TaskQueue = "{rollouts.task_queue}" '
        f'AND RolloutId = "{rollout_id}" AND RolloutArm = "{arm.value}"'
    )


async def assess(
    rollouts: Rollouts,
    *,
    restart_on_baseline: bool,
) -> RollbackPlan:
    """Which scenario applies to the current (or last) rollout, and what a rollback would do."""
    plan = await rollouts.plan()
    if plan.rollout_id is None:
        raise RolloutError(f"no rollout of {plan.model_id} to roll back; nothing ever started")
    in_progress = plan.stage is not RolloutStage.STEADY and plan.candidate is not None
    if plan.ended == "promoted":
        raise RolloutError(
            f"rollout {plan.rollout_id} was promoted: {plan.baseline.version} is the baseline; "
            "'baton rollback' (without a controller running) restores the previous one"
        )
    candidate = plan.candidate.version if plan.candidate else plan.last_candidate
    result = RollbackPlan(
        scenario="A",
        rollout_id=plan.rollout_id,
        baseline=plan.baseline.version,
        candidate=candidate,
        in_progress=in_progress,
    )
    if not _serves(rollouts.spec, plan.baseline.output_schema_version):
        result.scenario = "C"
        result.explanation = (
            f"{_code(rollouts.spec)} has no model call for output schema "
            f"v{plan.baseline.output_schema_version}, which baseline {plan.baseline.version} "
            "needs: the old path was removed, so no plan change can bring the baseline back. "
            "Reintroduce the old path as a new patch over the current code (the patch API works "
            "in both directions: today's code becomes the old branch), record its histories, "
            f"pass 'baton replay-check', deploy it, then roll back. Worked example: "
            f"{SCENARIO_C_EXAMPLE} and tests/lifecycle_histories/restored/."
        )
        result.actions = ["none: ship the restored path first (see explanation)"]
        return result
    query = _arm_query(rollouts, plan.rollout_id, Arm.CANDIDATE)
    total, completed, affected = await unfinished(rollouts.client, query, rollouts.spec.review)
    result.candidate_workflows, result.completed_on_candidate = total, completed
    result.affected = affected
    if in_progress:
        result.actions.append(
            f"abort rollout {plan.rollout_id}: every new document goes to baseline "
            f"{plan.baseline.version}"
        )
    if total == 0:
        result.explanation = (
            f"no workflow of rollout {plan.rollout_id} ran candidate {candidate}: reverting the "
            "plan is all there is to do"
        )
        return result
    result.scenario = "B"
    result.explanation = (
        f"{total} workflows of rollout {plan.rollout_id} ran on the candidate: {completed} "
        f"completed (their records stay), {len(affected)} unfinished"
    )
    for a in affected:
        if restart_on_baseline:
            if a.status == WAITING:
                result.actions.append(
                    f"keep {a.workflow_id} (waiting for review): the candidate's answer is with "
                    "a reviewer, whose decision and deadline stand"
                )
            elif a.status == "running":
                result.actions.append(
                    f"terminate {a.workflow_id} ({a.status}) and start it again on baseline "
                    f"{plan.baseline.version}"
                )
            else:
                result.actions.append(
                    f"start {a.workflow_id} ({a.status}) again on baseline {plan.baseline.version}"
                )
        elif a.status in ("running", "waiting-for-review"):
            result.actions.append(f"let {a.workflow_id} ({a.status}) finish on the candidate")
    return result


async def execute(
    rollouts: Rollouts,
    rollback: RollbackPlan,
    *,
    restart_on_baseline: bool,
    by: ChangeBy,
    rerun_completed: bool = False,
) -> RollbackOutcome:
    """Carry out ``rollback`` (from :func:`assess`); with ``rerun_completed`` the candidate's
    completed documents also run again on the baseline (a candidate that answered wrongly)."""
    outcome = RollbackOutcome(plan=rollback)
    if rollback.scenario == "C":
        raise RolloutError(f"scenario C: {rollback.explanation}")
    if rollback.in_progress:
        await rollouts.abort(by)
        outcome.aborted_at = datetime.now(UTC)
    if rollback.scenario == "A":
        return outcome
    reason = f"rollback of {rollback.rollout_id}"
    if restart_on_baseline:
        outcome.restarted = await restart(rollouts, rollback.affected, reason=reason, by=by)
        if rollback.rollout_id:
            query = _arm_query(rollouts, rollback.rollout_id, Arm.CANDIDATE)
            outcome.restarted += await restart_stragglers(
                rollouts, query, set(outcome.restarted), reason=reason, by=by
            )
            if rerun_completed:
                done = await completed_latest(rollouts.client, query)
                outcome.restarted += await rerun_completed_runs(rollouts, done)
    else:
        outcome.left_to_finish = [
            a.workflow_id
            for a in rollback.affected
            if a.status in ("running", "waiting-for-review")
        ]
    return outcome


@dataclass
class PromotionRollback:
    """What rolling back a promotion would do, decided from live state: the previous baseline
    serves again; the documents the promoted model served since the promotion keep their
    records unless ``rerun_since`` starts each again on the restored model."""

    promotion: Promotion
    rerun_since: bool
    completed_since: list[Affected] = field(default_factory=list)
    unfinished_since: list[Affected] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        p = self.promotion
        return (
            f"rollout {p.rollout_id} promoted {p.promoted.version} over {p.previous.version} at "
            f"{p.at:%Y-%m-%d %H:%M:%S} UTC; since then {p.promoted.version} completed "
            f"{len(self.completed_since)} documents and {len(self.unfinished_since)} are "
            "unfinished on it"
        )

    def as_dict(self) -> dict[str, Any]:
        p = self.promotion
        return {
            "scenario": "promoted",
            "rollout_id": p.rollout_id,
            "promoted": p.promoted.version,
            "restores": p.previous.version,
            "promoted_at": p.at.isoformat(),
            "completed_since_promotion": len(self.completed_since),
            "unfinished_since_promotion": len(self.unfinished_since),
            "rerun_since": self.rerun_since,
            "rerun": [a.workflow_id for a in self.completed_since + self.unfinished_since]
            if self.rerun_since
            else [],
            "actions": self.actions,
            "explanation": self.explanation,
        }


def _since_query(rollouts: Rollouts, promotion: Promotion) -> str:
    at = promotion.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f'WorkflowType = "{rollouts.spec.workflow_type}" AND TaskQueue = "{rollouts.task_queue}" '
        f'AND ModelVersion = "{promotion.promoted.version}" AND StartTime >= "{at}"'
    )


async def _served_since(
    client: Client, query: str, review: ReviewMarker | None
) -> tuple[list[Affected], list[Affected]]:
    """(completed, unfinished) latest runs of the documents ``query`` finds."""
    completed: list[Affected] = []
    _, _, unfinished_runs = await unfinished(client, query, review)
    seen: set[str] = set()
    async for wf in client.list_workflows(f"{query} AND ExecutionStatus = 'Completed'"):
        if wf.id in seen:
            continue
        seen.add(wf.id)
        completed.append(Affected(wf.id, wf.run_id, "completed"))
    return sorted(completed, key=lambda a: a.workflow_id), unfinished_runs


async def assess_promoted(rollouts: Rollouts, *, rerun_since: bool) -> PromotionRollback | None:
    """The rollback of the last promotion, or None when the last rollout was not promoted."""
    plan = await rollouts.plan()
    if plan.ended != "promoted":
        return None
    view = await rollouts.view()
    promotion = view.promotion if view else None
    if promotion is None:
        raise RolloutError(
            f"rollout {plan.rollout_id} was promoted before promotions were recorded: the "
            "baseline it replaced is unknown; start a rollout of the old version instead"
        )
    restore = promotion.previous.version
    if not _serves(rollouts.spec, promotion.previous.output_schema_version):
        raise RolloutError(
            f"{restore} answers output schema v{promotion.previous.output_schema_version}, which "
            f"{_code(rollouts.spec)} no longer serves; see "
            f"{SCENARIO_C_EXAMPLE}"
        )
    completed, unfinished_runs = await _served_since(
        rollouts.client, _since_query(rollouts, promotion), rollouts.spec.review
    )
    result = PromotionRollback(
        promotion=promotion,
        rerun_since=rerun_since,
        completed_since=completed,
        unfinished_since=unfinished_runs,
    )
    promoted = promotion.promoted.version
    result.actions.append(
        f"restore {restore} as the baseline of every new document, replacing promoted {promoted}"
    )
    if rerun_since:
        for a in completed:
            result.actions.append(
                f"start {a.workflow_id} (completed on {promoted}) again on {restore}; its "
                f"{promoted} record is kept as superseded"
            )
        for a in unfinished_runs:
            verb = "terminate" if a.status in ("running", "waiting-for-review") else "take"
            result.actions.append(
                f"{verb} {a.workflow_id} ({a.status}) and start it again on {restore}"
            )
    else:
        result.actions.append(
            f"keep the {len(completed)} records {promoted} completed since the promotion "
            f"(--rerun-since starts them again on {restore})"
        )
        if unfinished_runs:
            result.actions.append(
                f"let the {len(unfinished_runs)} unfinished documents finish on {promoted}"
            )
    return result


@dataclass
class PromotionOutcome:
    """What rolling back a promotion did."""

    plan: PromotionRollback
    restarted: list[str] = field(default_factory=list)


async def execute_promoted(
    rollouts: Rollouts, rollback: PromotionRollback, *, by: ChangeBy
) -> PromotionOutcome:
    """Carry out ``rollback`` (from :func:`assess_promoted`): restore the previous baseline
    (recorded in the audit trail with the counts), then with ``rerun_since`` start every
    document the promoted model served since the promotion again on the restored model."""
    p = rollback.promotion
    evidence = (
        f"{len(rollback.completed_since)} documents completed on {p.promoted.version} since the "
        f"promotion at {p.at:%Y-%m-%d %H:%M:%S} UTC"
    )
    change = by.model_copy(update={"evidence": "; ".join(x for x in (by.evidence, evidence) if x)})
    await rollouts.restore(p.previous, change)
    outcome = PromotionOutcome(plan=rollback)
    if not rollback.rerun_since:
        return outcome
    reason = f"rollback of the promotion of {p.promoted.version} ({p.rollout_id})"
    outcome.restarted = await rerun_completed_runs(rollouts, rollback.completed_since)
    outcome.restarted += await restart(rollouts, rollback.unfinished_since, reason=reason, by=by)
    await rollouts.note(
        NoteRequest(
            actor=by.actor,
            reason=by.reason,
            action="rerun-since",
            detail=f"{len(outcome.restarted)} documents {p.promoted.version} served since the "
            f"promotion started again on {p.previous.version}",
        )
    )
    return outcome
