"""Post-deploy alarm: workflows stuck on non-determinism or other workflow-task problems.

A workflow whose task fails (a non-determinism error after a bad deploy, a bug in workflow code)
stays Running while its task retries. With the dynamic config
``system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`` (set by ``baton dev up``
and the test fixtures; ask your operator for a cluster) the server fills
``TemporalReportedProblems``, which makes them findable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributeKey

REPORTED_PROBLEMS = SearchAttributeKey.for_keyword_list("TemporalReportedProblems")
PROBLEM_QUERY = "TemporalReportedProblems IS NOT NULL AND ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class StuckWorkflow:
    workflow_id: str
    workflow_type: str
    problems: list[str]

    @property
    def nondeterminism(self) -> bool:
        return any("NonDeterministic" in p or "Nondeterminism" in p for p in self.problems)


def _within(query: str, where: str) -> str:
    return f"{query} AND {where}" if where else query


async def stuck_workflows(
    client: Client, limit: int = 1000, *, where: str = ""
) -> list[StuckWorkflow]:
    """Running workflows the server reports as failing their workflow tasks (of those ``where``
    selects, a visibility condition, when given)."""
    found: list[StuckWorkflow] = []
    async for wf in client.list_workflows(_within(PROBLEM_QUERY, where), limit=limit):
        problems = list(wf.typed_search_attributes.get(REPORTED_PROBLEMS) or [])
        found.append(StuckWorkflow(wf.id, wf.workflow_type, problems))
    return sorted(found, key=lambda s: s.workflow_id)


FAILED_QUERY = "ExecutionStatus IN ('Failed', 'TimedOut') AND CloseTime > '{since}'"
RUNNING_QUERY = "ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class FailedWorkflow:
    """A workflow whose latest run failed or timed out (and was not run again)."""

    workflow_id: str
    workflow_type: str
    status: str
    closed_at: str
    reason: str


@dataclass(frozen=True)
class RetryingActivity:
    """An activity of a running workflow that has kept failing for a while."""

    workflow_id: str
    activity_type: str
    attempt: int
    retrying_seconds: float
    last_failure: str


async def failed_workflows(
    client: Client, since: timedelta, limit: int = 1000, *, where: str = ""
) -> list[FailedWorkflow]:
    """Workflows that failed or timed out within ``since`` and whose id was not run again since
    (of those ``where`` selects, a visibility condition, when given)."""
    start = (datetime.now(UTC) - since).strftime("%Y-%m-%dT%H:%M:%SZ")
    found: dict[str, FailedWorkflow] = {}
    query = _within(FAILED_QUERY.format(since=start), where)
    async for wf in client.list_workflows(query, limit=limit):
        if wf.id in found:
            continue
        latest = await client.get_workflow_handle(wf.id).describe()
        if latest.run_id != wf.run_id:
            continue  # run again since: the re-run's own status counts, not this one
        reason = await _failure_reason(client, wf.id, wf.run_id)
        found[wf.id] = FailedWorkflow(
            wf.id,
            wf.workflow_type,
            wf.status.name if wf.status else "UNKNOWN",
            wf.close_time.isoformat() if wf.close_time else "",
            reason,
        )
    return sorted(found.values(), key=lambda f: f.workflow_id)


async def _failure_reason(client: Client, workflow_id: str, run_id: str) -> str:
    try:
        await client.get_workflow_handle(workflow_id, run_id=run_id).result(follow_runs=False)
    except WorkflowFailureError as exc:
        return " ".join(str(getattr(exc.cause, "message", exc.cause)).split())[:300]
    except Exception as exc:  # a reason is best effort; the status already says it failed
        return type(exc).__name__
    return ""


async def retrying_activities(
    client: Client, longer_than: timedelta, limit: int = 500, *, where: str = ""
) -> list[RetryingActivity]:
    """Pending activities of running workflows that have failed for longer than ``longer_than``.

    Looks at up to ``limit`` running workflows (one describe each), of those ``where`` selects
    when given.
    """
    now = datetime.now(UTC)
    found: list[RetryingActivity] = []
    async for wf in client.list_workflows(_within(RUNNING_QUERY, where), limit=limit):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        described = await handle.describe()
        failing = [p for p in described.raw_description.pending_activities if p.attempt >= 2]
        if not failing:
            continue
        # A pending activity's times are its current attempt's; when it was first scheduled is
        # in history (retries add no events until the activity closes).
        first: dict[str, datetime] = {}
        for event in (await handle.fetch_history()).events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                first[attrs.activity_id] = event.event_time.ToDatetime(tzinfo=UTC)
        for pending in failing:
            since = first.get(pending.activity_id)
            if since is None:
                continue
            waited = (now - since).total_seconds()
            if waited < longer_than.total_seconds():
                continue
            found.append(
                RetryingActivity(
                    wf.id,
                    pending.activity_type.name,
                    pending.attempt,
                    waited,
                    " ".join(pending.last_failure.message.split())[:300],
                )
            )
    return sorted(found, key=lambda r: r.workflow_id)
