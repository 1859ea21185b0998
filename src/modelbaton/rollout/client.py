"""Rollout operations over Temporal: read the plan, change it, and count each arm from visibility.

These are what ``baton rollout`` and the starter call. Checks that need I/O (the version is in
the catalog, the candidate's pool is polling) happen here, before the update is sent; the
workflow's validators refuse what the plan itself does not allow.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.contracts.rollout import (
    DEFAULT_SHADOW_BUDGET_SECONDS,
    Arm,
    AuditEntry,
    ModelRef,
    RolloutPlan,
    RolloutRefused,
    pool_task_queue,
)
from modelbaton.contracts.rollout import set_fraction as check_fraction
from modelbaton.errors import RolloutError
from modelbaton.models.catalog import Catalog
from modelbaton.rollout.messages import (
    ChangeBy,
    NoteRequest,
    RestoreRequest,
    RolloutInput,
    RolloutView,
    SetFractionRequest,
    StartCanaryRequest,
    controller_workflow_id,
    rollout_workflow_id,
)
from modelbaton.rollout.spec import PipelineSpec, ReviewMarker, reference_spec
from modelbaton.rollout.workflow import PLAN_MEMO, RolloutWorkflow, planned_start
from modelbaton.settings import Settings

#: A pool counts as live when it polled within this many seconds. The embedded dev server ends
#: idle long polls after 2 s (``modelbaton.stack.devserver``), so a live pool's last poll is
#: younger than that, and a pool that died is reported dead this long after (a pool killed 5 s
#: ago is dead). Against a server with the default long poll (about a minute), raise it with
#: MODELBATON_POOL_LIVENESS_SECONDS (``Settings.pool_liveness_seconds``).
POOL_LIVENESS_SECONDS = Settings.from_env().pool_liveness_seconds


def model_ref(catalog: Catalog, version: str) -> ModelRef:
    """The identity of a catalog version, refused when the catalog does not know it."""
    config = catalog.get(version)
    return ModelRef(version=config.version, output_schema_version=config.output_schema_version)


def steady_plan(catalog: Catalog) -> RolloutPlan:
    """The plan when no rollout was ever started: the catalog's primary serves everything."""
    primary = catalog.primary
    return RolloutPlan(model_id=primary.model_id, baseline=model_ref(catalog, primary.version))


@dataclass(frozen=True)
class Rollouts:
    """Rollout operations for one pipeline (its workflow task queue) and its catalog."""

    client: Client
    catalog: Catalog
    task_queue: str
    #: True for the controller's own operations. Anyone else's plan change is refused while a
    #: controller runs: it would change the plan under the controller's feet, and its next step
    #: would be refused (or would undo the change).
    controller: bool = False
    #: The pipeline's workflow type and input (the reference pipeline unless told otherwise).
    spec: PipelineSpec = field(default_factory=reference_spec)

    @property
    def model_id(self) -> str:
        return self.catalog.primary.model_id

    @property
    def workflow_id(self) -> str:
        return rollout_workflow_id(self.task_queue, self.model_id)

    def handle(self) -> WorkflowHandle[RolloutWorkflow, None]:
        return self.client.get_workflow_handle_for(RolloutWorkflow.run, self.workflow_id)

    async def plan(self) -> RolloutPlan:
        """The plan in force, read from the rollout workflow's memo (no worker needed)."""
        try:
            described = await self.handle().describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return steady_plan(self.catalog)
            raise RolloutError(f"cannot read rollout {self.workflow_id}: {exc.message}") from None
        if described.status is not WorkflowExecutionStatus.RUNNING:
            # Continue-as-new leaves the latest run running; anything else was stopped by hand.
            raise RolloutError(
                f"rollout workflow {self.workflow_id} is {described.status.name.lower()}"
                if described.status
                else f"rollout workflow {self.workflow_id} has no status"
            )
        memo = await described.memo()
        if PLAN_MEMO not in memo:
            raise RolloutError(f"rollout workflow {self.workflow_id} has no plan in its memo")
        return RolloutPlan.model_validate(memo[PLAN_MEMO])

    @property
    def controller_id(self) -> str:
        """The workflow id of this pipeline's rollout controller (see ``controller.messages``)."""
        return controller_workflow_id(self.task_queue, self.model_id)

    async def _refuse_under_controller(self) -> None:
        """Refuse a change by hand while a controller drives the rollout (the controller's own
        operations pass)."""
        if self.controller:
            return
        try:
            described = await self.client.get_workflow_handle(self.controller_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return
            raise RolloutError(
                f"cannot read controller {self.controller_id}: {exc.message}"
            ) from None
        if described.status is WorkflowExecutionStatus.RUNNING:
            raise RolloutError(
                f"controller {self.controller_id} drives this rollout; steer it with "
                "'baton rollout pause|resume|skip|abort' instead of changing the plan by hand"
            )

    async def pool_pollers(self, version: str) -> int:
        """Workers polling the activity queue of ``version``'s pool now: those whose last poll
        reached the server within :data:`POOL_LIVENESS_SECONDS` (the server lists a dead
        worker's last poll for minutes)."""
        response = await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=pool_task_queue(self.task_queue, version)),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        now = time.time()
        return sum(
            1
            for poller in response.pollers
            if poller.HasField("last_access_time")
            and now - poller.last_access_time.ToMicroseconds() / 1e6 <= POOL_LIVENESS_SECONDS
        )

    async def _require_pool(self, version: str) -> None:
        if await self.pool_pollers(version) == 0:
            queue = pool_task_queue(self.task_queue, version)
            raise RolloutError(
                f"no worker polls {queue}, the pool of {version}; start one with "
                f"'baton worker --pool {version}' (or 'baton dev pool {version}')"
            )

    async def _update(self, fn: Any, request: Any) -> RolloutPlan:
        try:
            plan: RolloutPlan = await self.handle().execute_update(
                fn, request, id=update_id(fn, request)
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise RolloutError(f"refused: {getattr(cause, 'message', cause)}") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise RolloutError(f"no rollout for {self.model_id} yet; start one first") from None
            raise RolloutError(f"rollout {self.workflow_id}: {exc.message}") from None
        return plan

    async def start(
        self,
        candidate: str,
        fraction: float,
        by: ChangeBy,
        *,
        salt: str | None = None,
        require_pool: bool = True,
        sample: float | None = None,
        noise_sample: float = 0.0,
        shadow_budget_seconds: float = DEFAULT_SHADOW_BUDGET_SECONDS,
        check_sample: float = 0.0,
    ) -> RolloutPlan:
        """Start a rollout of ``candidate`` (creating the rollout workflow): a canary at
        ``fraction`` (with ``check_sample`` of each arm also answered by the baseline), or with
        ``sample`` a shadow of that share of documents."""
        ref = model_ref(self.catalog, candidate)
        if self.catalog.get(candidate).model_id != self.model_id:
            raise RolloutError(
                f"{candidate} is a version of {self.catalog.get(candidate).model_id}, "
                f"not of {self.model_id}"
            )
        request = StartCanaryRequest(
            candidate=ref,
            fraction=fraction,
            salt=salt,
            sample=sample,
            noise_sample=noise_sample,
            shadow_budget_seconds=shadow_budget_seconds,
            check_sample=check_sample,
            actor=by.actor,
            reason=by.reason,
            evidence=by.evidence,
        )
        await self._refuse_under_controller()
        current = await self.plan()
        try:
            planned_start(current, request, salt or "check")
        except RolloutRefused as exc:
            raise RolloutError(f"refused: {exc}") from None
        if require_pool:
            await self._require_pool(candidate)
        try:
            plan: RolloutPlan = await self.client.execute_update_with_start_workflow(
                RolloutWorkflow.start_canary,
                request,
                start_workflow_operation=self._start_operation(current),
                id=update_id(RolloutWorkflow.start_canary, request),
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise RolloutError(f"refused: {getattr(cause, 'message', cause)}") from None
        return plan

    async def set_fraction(
        self, fraction: float, by: ChangeBy, check_sample: float = 0.0
    ) -> RolloutPlan:
        """Move the candidate fraction of the rollout in progress (``check_sample``: see
        :attr:`RolloutPlan.check_sample`)."""
        await self._refuse_under_controller()
        try:
            check_fraction(await self.plan(), fraction)
        except RolloutRefused as exc:
            raise RolloutError(f"refused: {exc}") from None
        request = SetFractionRequest(
            fraction=fraction,
            check_sample=check_sample,
            actor=by.actor,
            reason=by.reason,
            evidence=by.evidence,
        )
        return await self._update(RolloutWorkflow.set_fraction, request)

    async def promote(self, by: ChangeBy) -> RolloutPlan:
        """Make the candidate the baseline."""
        await self._refuse_under_controller()
        return await self._update(RolloutWorkflow.promote, by)

    async def abort(self, by: ChangeBy) -> RolloutPlan:
        """Send every new document to the baseline again."""
        await self._refuse_under_controller()
        return await self._update(RolloutWorkflow.abort, by)

    async def restore(self, previous: ModelRef, by: ChangeBy) -> RolloutPlan:
        """Roll the last promotion back: ``previous``, the baseline it replaced, serves again."""
        await self._refuse_under_controller()
        request = RestoreRequest(
            previous=previous, actor=by.actor, reason=by.reason, evidence=by.evidence
        )
        return await self._update(RolloutWorkflow.restore_baseline, request)

    async def view(self) -> RolloutView | None:
        """Plan, audit trail and last promotion (a query: needs a workflow worker); None when
        no rollout exists."""
        try:
            return await self.handle().query(RolloutWorkflow.view)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise RolloutError(f"cannot query rollout {self.workflow_id}: {exc.message}") from None

    async def note(self, req: NoteRequest) -> RolloutPlan:
        """Add an entry to the audit trail, creating the rollout workflow (with the plan in
        force) if no model rollout ever did (a Worker Versioning rollout's first decision)."""
        current = await self.plan()
        try:
            plan: RolloutPlan = await self.client.execute_update_with_start_workflow(
                RolloutWorkflow.note,
                req,
                start_workflow_operation=self._start_operation(current),
                id=update_id(RolloutWorkflow.note, req),
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise RolloutError(f"refused: {getattr(cause, 'message', cause)}") from None
        return plan

    def _start_operation(self, current: RolloutPlan) -> WithStartWorkflowOperation[Any, Any]:
        """Start the rollout workflow with ``current`` unless it runs already."""
        initial = current if current.revision else steady_plan(self.catalog)
        return WithStartWorkflowOperation(
            RolloutWorkflow.run,
            RolloutInput(plan=initial),
            id=self.workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            memo={PLAN_MEMO: initial.model_dump(mode="json")},
        )

    async def audit(self) -> list[AuditEntry]:
        """The audit trail (a query: needs a workflow worker); empty when no rollout exists."""
        try:
            view = await self.handle().query(RolloutWorkflow.view)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise RolloutError(f"cannot query rollout {self.workflow_id}: {exc.message}") from None
        return view.audit

    async def arm_counts(self, rollout_id: str) -> dict[str, ArmCounts]:
        """Per arm of ``rollout_id``: running, completed, failed, waiting for review."""
        result: dict[str, ArmCounts] = {}
        for arm in Arm:
            # Rollout ids count per pipeline, so the pipeline's queue is part of the question.
            where = (
                f'WorkflowType = "{self.spec.workflow_type}" AND TaskQueue = "{self.task_queue}" '
                f'AND RolloutId = "{rollout_id}" AND RolloutArm = "{arm.value}"'
            )
            result[arm.value] = await count_workflows_where(self.client, where, self.spec.review)
        return result


def update_id(fn: Any, request: BaseModel) -> str | None:
    """The id of an update sent from inside an activity (the controller's): the same for every
    attempt of that activity with the same request, so that the server applies it once when an
    attempt that already sent it is retried (a worker killed before the activity reported back
    wrote one audit entry twice). Elsewhere (a person's command): None, a fresh id per call."""
    if not activity.in_activity():
        return None
    info = activity.info()
    name = getattr(fn, "__name__", str(fn))
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16]
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{name}/{digest}"


async def count_workflows_where(
    client: Client, where: str, review: ReviewMarker | None
) -> ArmCounts:
    """Running, completed, failed and (where the pipeline marks them) waiting-for-a-person
    workflows of a visibility condition."""
    counted = await client.count_workflows(f"{where} GROUP BY ExecutionStatus")
    by_status: dict[str, int] = {}
    for group in counted.groups:
        by_status[str(group.group_values[0])] = group.count
    waiting = 0
    if review is not None:
        waiting = (
            await client.count_workflows(
                f'{where} AND ExecutionStatus = "Running" AND {review.waiting_now()}'
            )
        ).count
    return ArmCounts(
        running=by_status.get("Running", 0),
        completed=by_status.get("Completed", 0),
        failed=sum(by_status.get(s, 0) for s in ("Failed", "Terminated", "TimedOut", "Canceled")),
        waiting_for_review=waiting,
    )


@dataclass(frozen=True)
class ArmCounts:
    """One arm's workflows as visibility counts them."""

    running: int = 0
    completed: int = 0
    failed: int = 0
    waiting_for_review: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "waiting_for_review": self.waiting_for_review,
        }


@dataclass
class RolloutStatus:
    """What ``baton rollout status`` shows."""

    plan: RolloutPlan
    audit: list[AuditEntry] = field(default_factory=list)
    arms: dict[str, ArmCounts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.model_dump(mode="json"),
            "audit": [a.model_dump(mode="json") for a in self.audit],
            "arms": {k: v.as_dict() for k, v in self.arms.items()},
        }


async def rollout_status(rollouts: Rollouts, rollout_id: str | None = None) -> RolloutStatus:
    """Plan, audit trail and per-arm counts of ``rollout_id`` (default: the current or last)."""
    plan = await rollouts.plan()
    audit = await rollouts.audit() if plan.revision else []
    rid = rollout_id or plan.rollout_id
    arms = await rollouts.arm_counts(rid) if rid else {}
    return RolloutStatus(plan=plan, audit=audit, arms=arms)
