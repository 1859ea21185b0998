"""Blue-green drain, counted from visibility, for both strategies.

- A Worker Versioning build: its in-flight workflows are those pinned to it
  (``TemporalWorkerDeploymentVersion = "<dep>:<build>"``). New starts stop once another build is
  current and the ramp no longer points at it.
- A per-model-version pool (the rollouts feature): its in-flight workflows are the documents
  assigned to that model version (``ModelVersion = "<version>"``) on the pipeline's queue. New
  starts stop once the rollout plan no longer assigns that version.

The server also tracks drainage of a build, but only reports DRAINED after a visibility grace
period (180 s by default), so the drain counts for itself: it polls visibility every
``poll_seconds`` and reports drained on the first poll that finds nothing running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from temporalio.client import Client

from modelbaton.pipeline import search_attributes as sa

RUNNING = "ExecutionStatus = 'Running'"


class OnDeadline(StrEnum):
    WAIT = "wait"  # keep waiting; say the deadline passed
    REPORT = "report"  # stop and list what is still running (exit 1)
    TERMINATE = "terminate"  # terminate what is still running, with a reason, then finish


@dataclass(frozen=True)
class DrainTarget:
    """What to drain: a label for people and the visibility query of its workflows."""

    strategy: str  # "build" | "pool"
    label: str  # "dep:B" or "model v1 on <queue>"
    query: str  # every workflow of the target, open or closed
    #: The pipeline's visibility condition for a document waiting for a person (its review
    #: marker's), or None: the pipeline has no such step, and none is counted at review.
    waiting: str | None = None

    @classmethod
    def build(cls, version: str, waiting: str | None = None) -> DrainTarget:
        """The workflows pinned to ``version``: only they need its workers. An auto-upgrade
        workflow (the rollout workflow) moves to the current build at its next task, as the
        server's own drainage assumes."""
        return cls(
            "build",
            version,
            f"TemporalWorkerDeploymentVersion = '{version}' "
            "AND TemporalWorkflowVersioningBehavior = 'Pinned'",
            waiting,
        )

    @classmethod
    def pool(
        cls, model_version: str, task_queue: str, workflow_type: str, waiting: str | None = None
    ) -> DrainTarget:
        """The pipeline's (``workflow_type``'s) documents on ``model_version``'s pool."""
        return cls(
            "pool",
            f"model {model_version} on {task_queue}",
            f"WorkflowType = '{workflow_type}' AND TaskQueue = '{task_queue}' "
            f"AND {sa.MODEL_VERSION.name} = '{model_version}'",
            waiting,
        )

    @property
    def running(self) -> str:
        return f"{self.query} AND {RUNNING}"

    @property
    def at_review(self) -> str | None:
        """In flight and waiting for a person; None where the pipeline marks no such wait."""
        return f"{self.running} AND {self.waiting}" if self.waiting else None


async def count_or_zero(client: Client, query: str | None) -> int:
    """The workflows ``query`` finds; 0 for no query (nothing of the kind to count)."""
    return (await client.count_workflows(query)).count if query else 0


@dataclass(frozen=True)
class Tally:
    """One visibility count of the target's in-flight workflows."""

    running: int  # all in flight, at review included
    at_review: int
    elapsed: float

    @property
    def working(self) -> int:
        return self.running - self.at_review


@dataclass
class DrainResult:
    target: str
    drained: bool
    seconds: float
    initial: int
    deadline_passed: bool = False
    action: str | None = None
    #: Workflow ids still running at the deadline (report) or terminated (terminate).
    remaining: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    drained_at: float | None = None  # time.time() of the poll that found nothing running

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "drained": self.drained,
            "seconds": round(self.seconds, 3),
            "initial": self.initial,
            "deadline_passed": self.deadline_passed,
            "action": self.action,
            "remaining": self.remaining,
            "terminated": self.terminated,
            "drained_at": self.drained_at,
        }


async def tally(client: Client, target: DrainTarget, started: float) -> Tally:
    running, review = await asyncio.gather(
        client.count_workflows(target.running), count_or_zero(client, target.at_review)
    )
    return Tally(running.count, review, time.monotonic() - started)


async def running_ids(client: Client, target: DrainTarget) -> list[tuple[str, str | None]]:
    return [(wf.id, wf.run_id) async for wf in client.list_workflows(target.running)]


async def drain(
    client: Client,
    target: DrainTarget,
    *,
    deadline: float | None = None,
    on_deadline: OnDeadline = OnDeadline.WAIT,
    poll_seconds: float = 1.0,
    on_tally: Callable[[Tally], None] | None = None,
    on_deadline_passed: Callable[[list[str]], None] | None = None,
    reason: str | None = None,
) -> DrainResult:
    """Wait until no workflow of ``target`` runs; at ``deadline`` seconds do ``on_deadline``."""
    started = time.monotonic()
    first = await tally(client, target, started)
    result = DrainResult(target.label, False, 0.0, first.running)
    current = first
    while True:
        if on_tally:
            on_tally(current)
        if current.running == 0:
            result.drained = True
            result.drained_at = time.time()
            break
        if deadline is not None and not result.deadline_passed and current.elapsed >= deadline:
            result.deadline_passed = True
            result.action = on_deadline.value
            ids = await running_ids(client, target)
            if on_deadline is OnDeadline.REPORT:
                result.remaining = [wid for wid, _ in ids]
                if on_deadline_passed:
                    on_deadline_passed(result.remaining)
                break
            if on_deadline is OnDeadline.TERMINATE:
                why = reason or f"baton drain: {target.label} did not drain within {deadline:.0f} s"
                for wid, run_id in ids:
                    await client.get_workflow_handle(wid, run_id=run_id).terminate(reason=why)
                    result.terminated.append(wid)
            if on_deadline_passed:
                on_deadline_passed([wid for wid, _ in ids])
        await asyncio.sleep(poll_seconds)
        current = await tally(client, target, started)
    result.seconds = time.monotonic() - started
    return result
