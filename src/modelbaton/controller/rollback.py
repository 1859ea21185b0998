"""Rollback by scenario (the article's A, B and C), decided from live state, each with a dry run.

- **A**: no workflow of the rollout ran the candidate. Revert the plan (every new document goes to
  the baseline); nothing else to do.
- **B**: candidate-arm workflows exist. They are listed from visibility. Completed ones keep their
  record (the candidate answered). Unfinished ones (running, waiting for review, failed) either
  finish on the candidate (``let_finish``) or are terminated with a reason and started again on
  the baseline with the same document (``restart_on_baseline``). The results store then keeps one
  current record per document and the candidate's record, if it wrote one, as superseded.
- **C**: the code the workers run has no path for the baseline's output schema any more (the old
  path was removed): no plan change can help. The old path must come back as a new patch over the
  current code; ``releases/r7_restored.py`` and its histories are the worked example.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from modelbaton.contracts.rollout import Arm, RolloutStage
from modelbaton.errors import RolloutError
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassifyDocumentInput
from modelbaton.pipeline.releases import CURRENT_RELEASE, serves_schema
from modelbaton.pipeline.starter import start_document, workflow_input
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy

#: Where the worked example of scenario C lives.
SCENARIO_C_EXAMPLE = "src/modelbaton/pipeline/releases/r7_restored.py"


@dataclass(frozen=True)
class Affected:
    """An unfinished candidate-arm workflow: what a scenario B rollback acts on."""

    workflow_id: str
    run_id: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "status": self.status}


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


def _arm_query(rollouts: Rollouts, rollout_id: str, arm: Arm) -> str:
    return (
        f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{rollouts.task_queue}" '
        f'AND RolloutId = "{rollout_id}" AND RolloutArm = "{arm.value}"'
    )


async def unfinished(client: Client, query: str) -> tuple[int, int, list[Affected]]:
    """(all runs, completed runs, unfinished latest runs) of the workflows ``query`` finds."""
    total = completed = 0
    affected: list[Affected] = []
    seen: set[str] = set()
    async for wf in client.list_workflows(query):
        total += 1
        if wf.status is WorkflowExecutionStatus.COMPLETED:
            completed += 1
            continue
        if wf.id in seen:
            continue
        seen.add(wf.id)
        latest = await client.get_workflow_handle(wf.id).describe()
        if latest.run_id != wf.run_id:
            continue  # run again since (e.g. restarted on the baseline by an earlier rollback)
        waiting = (latest.search_attributes.get("ReviewState") or [None])[0] == "pending"
        status = latest.status.name.lower() if latest.status else "unknown"
        affected.append(Affected(wf.id, wf.run_id, "waiting-for-review" if waiting else status))
    return total, completed, sorted(affected, key=lambda a: a.workflow_id)


async def assess(
    rollouts: Rollouts,
    *,
    restart_on_baseline: bool,
    release: str = CURRENT_RELEASE,
) -> RollbackPlan:
    """Which scenario applies to the current (or last) rollout, and what a rollback would do."""
    plan = await rollouts.plan()
    if plan.rollout_id is None:
        raise RolloutError(f"no rollout of {plan.model_id} to roll back; nothing ever started")
    in_progress = plan.stage is not RolloutStage.STEADY and plan.candidate is not None
    if plan.ended == "promoted":
        raise RolloutError(
            f"rollout {plan.rollout_id} was promoted: {plan.baseline.version} is the baseline; "
            "to go back, start a rollout of the old version"
        )
    candidate = plan.candidate.version if plan.candidate else plan.last_candidate
    result = RollbackPlan(
        scenario="A",
        rollout_id=plan.rollout_id,
        baseline=plan.baseline.version,
        candidate=candidate,
        in_progress=in_progress,
    )
    if not serves_schema(release, plan.baseline.output_schema_version):
        result.scenario = "C"
        result.explanation = (
            f"the workers' code (release {release}) has no classify path for output schema "
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
    total, completed, affected = await unfinished(rollouts.client, query)
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
            if a.status in ("running", "waiting-for-review"):
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


async def _original_input(client: Client, workflow_id: str, run_id: str) -> ClassifyDocumentInput:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = client.data_converter.payload_converter.from_payloads(
                list(payloads), [ClassifyDocumentInput]
            )
            inp: ClassifyDocumentInput = decoded[0]
            return inp
    raise RolloutError(f"{workflow_id}: its history has no start event")


async def execute(
    rollouts: Rollouts,
    rollback: RollbackPlan,
    *,
    restart_on_baseline: bool,
    by: ChangeBy,
) -> RollbackOutcome:
    """Carry out ``rollback`` (from :func:`assess`)."""
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
    else:
        outcome.left_to_finish = [
            a.workflow_id
            for a in rollback.affected
            if a.status in ("running", "waiting-for-review")
        ]
    return outcome


async def restart(
    rollouts: Rollouts, affected: list[Affected], *, reason: str, by: ChangeBy
) -> list[str]:
    """Terminate each unfinished workflow (with ``reason``) and start its document again, as
    the plan in force assigns it; return the workflow ids started again."""
    plan = await rollouts.plan()
    client = rollouts.client
    why = f"{reason} by {by.actor}: {by.reason or 'restart on baseline'}"
    restarted: list[str] = []
    for a in affected:
        old = await _original_input(client, a.workflow_id, a.run_id)
        if a.status in ("running", "waiting-for-review"):
            await client.get_workflow_handle(a.workflow_id, run_id=a.run_id).terminate(why)
        key = old.assignment.key if old.assignment and old.assignment.key else old.document_id
        assignment = plan.assign(key, rollouts.task_queue)
        doc = Document(document_id=old.document_id, text=old.text, source=old.source or "rollback")
        inp = workflow_input(doc, assignment, rollouts.catalog.pipeline).model_copy(
            update={"review_threshold": old.review_threshold, "review_timeout": old.review_timeout}
        )
        if await start_document(client, doc, inp, rollouts.task_queue) is not None:
            restarted.append(a.workflow_id)
    return restarted


#: Rounds (and the pause between them) in which a rollback looks again for candidate documents:
#: a start sent just before the plan changed reaches visibility a moment later.
STRAGGLER_ROUNDS = 5
STRAGGLER_PAUSE_SECONDS = 2.0


async def restart_stragglers(
    rollouts: Rollouts, query: str, done: set[str], *, reason: str, by: ChangeBy
) -> list[str]:
    """Restart the unfinished workflows ``query`` finds that are not in ``done``, looking again
    until a round finds none (visibility is eventually consistent: a document started just
    before the abort may be listed only after the first pass)."""
    restarted: list[str] = []
    for _ in range(STRAGGLER_ROUNDS):
        await asyncio.sleep(STRAGGLER_PAUSE_SECONDS)
        _, _, affected = await unfinished(rollouts.client, query)
        late = [a for a in affected if a.workflow_id not in done]
        if not late:
            break
        again = await restart(rollouts, late, reason=reason, by=by)
        done.update(again)
        restarted += again
    return restarted
