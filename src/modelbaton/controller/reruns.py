"""Starting documents again, the mechanics every rollback shares: which runs a query finds
unfinished or completed, the input each was first started with, and starting each again on the
plan in force (terminating an unfinished run first; one waiting for review is kept)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.errors import RolloutError
from modelbaton.pipeline.starter import assignment_attributes
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.spec import ReviewMarker

#: The status of an unfinished document that waits for a person (the pipeline's review marker).
WAITING = "waiting-for-review"


@dataclass(frozen=True)
class Affected:
    """An unfinished candidate-arm workflow: what a scenario B rollback acts on."""

    workflow_id: str
    run_id: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "status": self.status}


async def unfinished(
    client: Client, query: str, review: ReviewMarker | None
) -> tuple[int, int, list[Affected]]:
    """(all runs, completed runs, unfinished latest runs) of the workflows ``query`` finds; a
    run waiting for a person (by the pipeline's ``review`` marker) has the status WAITING."""
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
        waiting = review is not None and review.is_waiting(latest.search_attributes)
        status = latest.status.name.lower() if latest.status else "unknown"
        affected.append(Affected(wf.id, wf.run_id, WAITING if waiting else status))
    return total, completed, sorted(affected, key=lambda a: a.workflow_id)


async def first_input(
    client: Client, workflow_id: str, run_id: str, input_type: type[BaseModel]
) -> BaseModel:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = client.data_converter.payload_converter.from_payloads(
                list(payloads), [input_type]
            )
            inp: BaseModel = decoded[0]
            return inp
    raise RolloutError(f"{workflow_id}: its history has no start event")


async def start_again(rollouts: Rollouts, a: Affected, *, rerun: bool) -> bool:
    """Document ``a`` started again as the plan in force assigns it (same
    workflow type and id, its first run's input reassigned); False when it is running (or, for a
    rerun, was run again) since, so nothing was started."""
    spec = rollouts.spec
    assert spec.input_type is not None
    client = rollouts.client
    old = await first_input(client, a.workflow_id, a.run_id, spec.input_type)
    inp, assignment = spec.reassigned(
        old, await rollouts.plan(), rollouts.task_queue, fallback_key=a.workflow_id
    )
    latest = await client.get_workflow_handle(a.workflow_id).describe()
    if rerun:
        if latest.run_id != a.run_id or latest.status is not WorkflowExecutionStatus.COMPLETED:
            return False
    elif latest.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        # Running again since, or completed before it could be terminated: a completed run
        # keeps its result (a rerun of completed runs, when asked, picks it up).
        return False
    await client.start_workflow(
        spec.workflow_type,
        inp,
        id=a.workflow_id,
        task_queue=rollouts.task_queue,
        # Started again only here, on purpose: a completed document too, for a rerun.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=assignment_attributes(assignment),
    )
    return True


async def waiting_for_review(client: Client, a: Affected, review: ReviewMarker | None) -> bool:
    """Whether ``a``'s run waits for a person now (it may have got there since it was listed)."""
    if review is None:
        return False
    latest = await client.get_workflow_handle(a.workflow_id, run_id=a.run_id).describe()
    running = latest.status is WorkflowExecutionStatus.RUNNING
    return running and review.is_waiting(latest.search_attributes)


async def restart(
    rollouts: Rollouts,
    affected: list[Affected],
    *,
    reason: str,
    by: ChangeBy,
    kept: set[str] | None = None,
) -> list[str]:
    """Terminate each unfinished workflow (with ``reason``) and start its document again, as
    the plan in force assigns it; return the workflow ids started again.

    A document waiting for review is kept, never terminated: the reviewer's work and deadline
    would be lost, and the reviewer's label, not the candidate's, becomes its record. Their
    workflow ids go into ``kept``."""
    client, review = rollouts.client, rollouts.spec.review
    why = f"{reason} by {by.actor}: {by.reason or 'restart on baseline'}"
    restarted: list[str] = []
    for a in affected:
        if a.status == WAITING or (
            a.status == "running" and await waiting_for_review(client, a, review)
        ):
            if kept is not None:
                kept.add(a.workflow_id)
            continue
        if a.status == "running":
            try:
                await client.get_workflow_handle(a.workflow_id, run_id=a.run_id).terminate(why)
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # it completed meanwhile: see start_again
        if await start_again(rollouts, a, rerun=False):
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
    kept: set[str] = set()
    for _ in range(STRAGGLER_ROUNDS):
        await asyncio.sleep(STRAGGLER_PAUSE_SECONDS)
        _, _, affected = await unfinished(rollouts.client, query, rollouts.spec.review)
        late = [
            a
            for a in affected
            if a.workflow_id not in done and a.workflow_id not in kept and a.status != WAITING
        ]
        if not late:
            break
        again = await restart(rollouts, late, reason=reason, by=by, kept=kept)
        done.update(again)
        restarted += again
    return restarted


async def completed_latest(client: Client, query: str) -> list[Affected]:
    """The workflows ``query`` finds whose latest run completed on it (not run again since)."""
    found: list[Affected] = []
    seen: set[str] = set()
    async for wf in client.list_workflows(f"{query} AND ExecutionStatus = 'Completed'"):
        if wf.id in seen:
            continue
        seen.add(wf.id)
        latest = await client.get_workflow_handle(wf.id).describe()
        if latest.run_id == wf.run_id:
            found.append(Affected(wf.id, wf.run_id, "completed"))
    return sorted(found, key=lambda a: a.workflow_id)


async def rerun_completed_runs(rollouts: Rollouts, completed: list[Affected]) -> list[str]:
    """Start each completed document again as the plan in force assigns it (its earlier record
    becomes superseded when the new run writes); return the workflow ids started again."""
    started: list[str] = []
    for a in completed:
        if await start_again(rollouts, a, rerun=True):
            started.append(a.workflow_id)
    return started
