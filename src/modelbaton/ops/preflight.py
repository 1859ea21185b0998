"""``baton preflight``: the article's pre-upgrade checklist as one command.

Each check ends as pass, fail or n/a, with its reason; any fail makes the command exit 1.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog
from modelbaton.models.schemas import catalog_ref, compare
from modelbaton.ops.patches import patch_report
from modelbaton.ops.problems import stuck_workflows
from modelbaton.ops.replay import fetch_histories, replay_histories
from modelbaton.pipeline.store import ResultsStore
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.spec import PipelineSpec, reference_spec
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowStore


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NA = "n/a"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "reason": self.reason}


@dataclass
class Preflight:
    candidate: str
    baseline: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "ok": self.ok,
            "checks": [c.as_dict() for c in self.checks],
        }


def _schema_check(catalog: Catalog, versions: list[str], spec: PipelineSpec) -> Check:
    """The pipeline's schemas: declared in its registry (so normalized), read by its workflow
    code."""
    problems: list[str] = []
    for version in versions:
        schema = catalog.get(version).output_schema_version
        if schema not in spec.contracts:
            problems.append(f"{version}: output schema v{schema} is not in {spec.contracts!r}")
        if spec.schema_versions is not None and schema not in spec.schema_versions:
            problems.append(f"{version}: {spec.workflow_type} has no model call for v{schema}")
    if problems:
        return Check("output schemas and normalizers", Status.FAIL, "; ".join(problems))
    schemas = sorted({catalog.get(v).output_schema_version for v in versions})
    return Check(
        "output schemas and normalizers",
        Status.PASS,
        f"output schema(s) {', '.join(f'v{s}' for s in schemas)} declared with a normalizer "
        f"and called by {spec.workflow_type}",
    )


def _compatibility(catalog: Catalog, baseline: str, candidate: str, spec: PipelineSpec) -> Check:
    try:
        pair = compare(
            catalog_ref(baseline, catalog, spec.contracts),
            catalog_ref(candidate, catalog, spec.contracts),
            catalog,
            spec.contracts.canonical.__name__,
        )
    except ModelBatonError as exc:  # a schema its registry lacks (the schema check says so too)
        return Check("compatibility", Status.FAIL, str(exc))
    if pair.backward_ok and pair.forward_ok:
        return Check("compatibility", Status.PASS, f"{baseline} <-> {candidate}: nothing breaks")
    broken = [
        c.as_dict().get("what", str(c))
        for c in pair.changes
        if c.breaks_forward or c.breaks_backward
    ]
    directions = ", ".join(
        d for d, ok in (("backward", pair.backward_ok), ("forward", pair.forward_ok)) if not ok
    )
    if pair.covered_by_normalizers:
        return Check(
            "compatibility",
            Status.PASS,
            f"{baseline} -> {candidate} breaks {directions} ({len(broken)} changes), all absorbed "
            f"by the normalizers: {pair.coverage}",
        )
    return Check(
        "compatibility",
        Status.FAIL,
        f"{baseline} -> {candidate} breaks {directions} and the normalizers do not absorb it: "
        f"{'; '.join(str(b) for b in broken[:3])}",
    )


async def run_preflight(
    client: Client,
    catalog: Catalog,
    store: ResultsStore | None,
    task_queue: str,
    candidate: str,
    *,
    replay_limit: int = 500,
    spec: PipelineSpec | None = None,
    engine: Engine | None = None,
) -> Preflight:
    """Every check of the pre-upgrade checklist for ``candidate`` against the baseline in force.

    ``spec`` is the pipeline's (its workflow type and classes, its contracts, the schemas its
    code calls, its patches; default: the reference pipeline's), ``engine`` the
    database its comparisons are recorded on (default: ``store``'s).
    """
    spec = spec or reference_spec()
    rollouts = Rollouts(client, catalog, task_queue, spec=spec)
    plan = await rollouts.plan()
    baseline = plan.baseline.version
    catalog.get(candidate)  # an unknown candidate is a usage error, raised here
    result = Preflight(candidate=candidate, baseline=baseline)
    add = result.checks.append
    add(_schema_check(catalog, [baseline, candidate], spec))
    if candidate == baseline:
        add(Check("compatibility", Status.FAIL, f"{candidate} is already the baseline"))
    else:
        add(_compatibility(catalog, baseline, candidate, spec))

    # Replay of the pipeline's running workflows against the code about to run.
    query = (
        f'WorkflowType = "{spec.workflow_type}" AND TaskQueue = "{task_queue}" '
        'AND ExecutionStatus = "Running"'
    )
    items = await fetch_histories(client, query, limit=replay_limit)
    if not items:
        add(Check("replay of live histories", Status.NA, "no running workflows to replay"))
    else:
        outcomes = await asyncio.to_thread(
            replay_histories, list(spec.workflows), items, processes=1
        )
        failed = [o for o in outcomes if not o.ok]
        if failed:
            first = failed[0]
            add(
                Check(
                    "replay of live histories",
                    Status.FAIL,
                    f"{len(failed)} of {len(outcomes)} running workflows do not replay on "
                    f"today's code; first: {first.workflow_id}: {first.error_type}",
                )
            )
        else:
            add(
                Check(
                    "replay of live histories",
                    Status.PASS,
                    f"{len(outcomes)} running workflows replay on today's code",
                )
            )

    # The candidate's latest shadow, if it had one.
    shadow_engine = engine if engine is not None else (store.engine if store else None)
    if shadow_engine is None:
        raise ValueError("preflight needs a results store or the engine of the comparisons")
    shadows = ShadowStore(shadow_engine)
    rows_by_rollout = [
        (rid, rows)
        for rid in reversed(await asyncio.to_thread(shadows.rollouts))
        if (rows := await asyncio.to_thread(shadows.rows, rid))
        and rows[0].candidate_version == candidate
    ]
    if not rows_by_rollout:
        add(Check("shadow verdict", Status.NA, f"{candidate} was never shadowed"))
    else:
        rid, rows = rows_by_rollout[0]
        report = build_report(rid, rows, catalog.shadow_gate)
        add(
            Check(
                "shadow verdict",
                Status.PASS if report.ready else Status.FAIL,
                f"rollout {rid}: {report.summary()}",
            )
        )

    # Patches: advice only (a patch that can go is never a reason to hold an upgrade).
    if not spec.patches:
        add(Check("patches", Status.NA, "the pipeline's spec names no patches"))
    else:
        patches = await patch_report(client, spec.patches)
        removable = [p["patch_id"] for p in patches if p["advice"] != "keep"]
        add(
            Check(
                "patches",
                Status.PASS,
                f"{len(patches)} patches; may be deprecated or removed: {', '.join(removable)}"
                if removable
                else f"{len(patches)} patches, all still needed",
            )
        )

    stuck = await stuck_workflows(client, where=f'TaskQueue = "{task_queue}"')
    add(
        Check(
            "stuck workflows",
            Status.FAIL if stuck else Status.PASS,
            f"{len(stuck)} stuck, e.g. {stuck[0].workflow_id}: {'; '.join(stuck[0].problems)[:200]}"
            if stuck
            else "none stuck on workflow-task problems",
        )
    )

    workers = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    builds = sorted(
        {p.deployment_options.build_id for p in workers.pollers if p.deployment_options.build_id}
    )
    add(
        Check(
            "workflow workers polling",
            Status.PASS if workers.pollers else Status.FAIL,
            f"{len(workers.pollers)} polling {task_queue}"
            + (f" (builds {', '.join(builds)})" if builds else "")
            if workers.pollers
            else f"no workflow worker polls {task_queue}",
        )
    )
    idle = [v for v in dict.fromkeys([baseline, candidate]) if await rollouts.pool_pollers(v) == 0]
    add(
        Check(
            "model pools polling",
            Status.FAIL if idle else Status.PASS,
            f"no worker polls the pool of {', '.join(idle)}"
            if idle
            else f"pools of {baseline} and {candidate} are polling",
        )
    )
    return result
