"""Starting and steering the controller workflow (what ``baton rollout run|pause|resume|skip``
and ``abort`` call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.controller.messages import (
    ControllerInput,
    ControllerView,
    controller_workflow_id,
)
from modelbaton.controller.plan import RolloutPlanFile
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.errors import RolloutError
from modelbaton.models.catalog import Catalog
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.spec import PipelineSpec, reference_spec


@dataclass(frozen=True)
class Controllers:
    """The controller of one pipeline (its workflow task queue) and its catalog's model."""

    client: Client
    catalog: Catalog
    task_queue: str
    spec: PipelineSpec = field(default_factory=reference_spec)

    @property
    def workflow_id(self) -> str:
        return controller_workflow_id(self.task_queue, self.catalog.primary.model_id)

    def handle(self) -> WorkflowHandle[RolloutControllerWorkflow, Any]:
        return self.client.get_workflow_handle_for(RolloutControllerWorkflow.run, self.workflow_id)

    async def run(self, plan: RolloutPlanFile, by: ChangeBy) -> str:
        """Start the controller on ``plan``; refused while one runs or when the plan cannot
        start (unknown candidate, candidate already the baseline, no pool polling).

        A running controller is asked about first: the rollout it started is in progress too,
        and which of the two refusals a second ``run`` met must not depend on how far the
        first controller got."""
        if await self.running():
            raise self._already_runs()
        rollouts = Rollouts(self.client, self.catalog, self.task_queue, spec=self.spec)
        if plan.strategy == "builds":
            await self._check_builds(plan)
        else:
            await self._check_pools(plan, rollouts)
        try:
            await self.client.start_workflow(
                RolloutControllerWorkflow.run,
                ControllerInput(
                    plan=plan,
                    task_queue=self.task_queue,
                    model_id=rollouts.model_id,
                    started_by=by,
                    started_at=datetime.now(UTC),
                ),
                id=self.workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            raise self._already_runs() from None
        return self.workflow_id

    def _already_runs(self) -> RolloutError:
        return RolloutError(
            f"a controller already runs ({self.workflow_id}); abort it or wait for it"
        )

    async def _check_builds(self, plan: RolloutPlanFile) -> None:
        """A build rollout needs a current build to start from and the candidate polling."""
        from modelbaton.versioning.builds import deployment_name_for
        from modelbaton.versioning.control import DeploymentControl

        control = DeploymentControl(
            self.client, plan.deployment or deployment_name_for(self.task_queue)
        )
        view = await control.describe()
        if view.current is None:
            raise RolloutError(
                f"deployment {control.deployment} has no current build; make the baseline "
                "current first ('baton deploy promote BUILD')"
            )
        if view.current == plan.candidate:
            raise RolloutError(f"build {plan.candidate} is already current")
        await control.require_pollers(plan.candidate)

    async def _check_pools(self, plan: RolloutPlanFile, rollouts: Rollouts) -> None:
        """A model rollout needs a known candidate, no rollout in progress, its pool polling."""
        config = self.catalog.get(plan.candidate)
        if config.model_id != rollouts.model_id:
            raise RolloutError(
                f"{plan.candidate} is a version of {config.model_id}, not of {rollouts.model_id}"
            )
        current = await rollouts.plan()
        if current.candidate is not None:
            raise RolloutError(
                f"rollout {current.rollout_id} of {current.candidate.version} is in progress; "
                "promote or abort it first"
            )
        if current.baseline.version == plan.candidate:
            raise RolloutError(f"candidate {plan.candidate} is already the baseline")
        if await rollouts.pool_pollers(plan.candidate) == 0:
            raise RolloutError(
                f"no worker polls the pool of {plan.candidate}; start one with "
                f"'baton worker --pool {plan.candidate}' (or 'baton dev pool {plan.candidate}')"
            )

    async def status(self) -> ControllerView | None:
        """The controller's view, or None when none was ever started."""
        try:
            return await self.handle().query(RolloutControllerWorkflow.status)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise RolloutError(
                f"cannot query controller {self.workflow_id}: {exc.message}"
            ) from None

    async def running(self) -> bool:
        try:
            described = await self.handle().describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status is not None and described.status.name == "RUNNING"

    async def _update(self, fn: Any, by: ChangeBy) -> Any:
        if not await self.running():
            raise RolloutError(
                f"no controller runs for {self.task_queue}; start one with 'baton rollout run PLAN'"
            )
        try:
            return await self.handle().execute_update(fn, by)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise RolloutError(f"refused: {getattr(cause, 'message', cause)}") from None

    async def pause(self, by: ChangeBy) -> Any:
        return await self._update(RolloutControllerWorkflow.pause, by)

    async def resume(self, by: ChangeBy) -> Any:
        return await self._update(RolloutControllerWorkflow.resume, by)

    async def skip(self, by: ChangeBy) -> Any:
        return await self._update(RolloutControllerWorkflow.skip, by)

    async def abort(self, by: ChangeBy) -> Any:
        return await self._update(RolloutControllerWorkflow.abort, by)
