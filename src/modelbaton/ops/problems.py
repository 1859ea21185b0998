"""Post-deploy alarm: workflows stuck on non-determinism or other workflow-task problems.

A workflow whose task fails (a non-determinism error after a bad deploy, a bug in workflow code)
stays Running while its task retries. With the dynamic config
``system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`` (set by ``baton dev up``
and the test fixtures; ask your operator for a cluster) the server fills
``TemporalReportedProblems``, which makes them findable.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
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


async def stuck_workflows(client: Client, limit: int = 1000) -> list[StuckWorkflow]:
    """Running workflows the server reports as failing their workflow tasks."""
    found: list[StuckWorkflow] = []
    async for wf in client.list_workflows(PROBLEM_QUERY, limit=limit):
        problems = list(wf.typed_search_attributes.get(REPORTED_PROBLEMS) or [])
        found.append(StuckWorkflow(wf.id, wf.workflow_type, problems))
    return sorted(found, key=lambda s: s.workflow_id)
