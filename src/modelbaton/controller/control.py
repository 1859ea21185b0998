"""The rollout controller for a user's pipeline, in one object: what its workflow worker
registers, and the operations a script or a service calls (run a plan, follow it, read the plan
in force and its audit trail, the shadow report, preflight).

    control = RolloutControl(client, "invoices", catalog_path, engine, spec)
    worker = Worker(client, task_queue="invoices",
                    workflows=[InvoiceWorkflow, *control.workflows],
                    activities=[*my_activities, ComparisonActivities(engine).record,
                                *control.activities()])
    await control.run(Path("rollout-v2.toml"), actor="me", reason="v2 reads more layouts")
    state = await control.wait()            # PROMOTED, ABORTED or STOPPED, with its reasons

The rollout and controller workflows run on the pipeline's own queue beside its workflow: one
worker registers all three, so no workflow task lands on a worker that does not know its type.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client

from modelbaton.contracts.rollout import AuditEntry, RolloutPlan
from modelbaton.controller.activities import ControllerActivities
from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import ControllerState, ControllerView
from modelbaton.controller.plan import RolloutPlanFile, load_plan
from modelbaton.controller.truth import GroundTruth
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.models.catalog import Catalog
from modelbaton.models.resolver import CatalogSource
from modelbaton.ops.preflight import Preflight, run_preflight
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.rollout.spec import PipelineSpec
from modelbaton.rollout.workflow import RolloutWorkflow
from modelbaton.shadow.report import ShadowReport, build_report
from modelbaton.shadow.store import ShadowStore


class RolloutControl:
    """Rollouts and their controller for one pipeline (its queue, catalog, comparisons' engine
    and :class:`~modelbaton.rollout.spec.PipelineSpec`)."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        catalog: Path,
        engine: Engine,
        spec: PipelineSpec,
        *,
        ground_truth: GroundTruth | None = None,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.engine = engine
        self.spec = spec
        #: The accuracy gate's truth (None: the gate is never judged; waive it in the plan).
        self.ground_truth = ground_truth
        self._source = CatalogSource(catalog)
        self._source.current()  # a bad catalog fails here, naming the file and the entry

    @property
    def catalog(self) -> Catalog:
        return self._source.current()

    @property
    def workflows(self) -> list[type]:
        """The rollout workflow and the controller: register them on the pipeline's worker."""
        return [RolloutWorkflow, RolloutControllerWorkflow]

    def activities(self) -> list[object]:
        """The controller's activities, for the same worker (the pipeline registers the
        comparisons' record itself: :class:`~modelbaton.controller.comparisons.
        ComparisonActivities` on the same engine)."""
        controller = ControllerActivities(
            self.client,
            self._source,
            spec=self.spec,
            engine=self.engine,
            ground_truth=self.ground_truth,
        )
        return controller.all()

    @property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.client, self.catalog, self.task_queue, spec=self.spec)

    @property
    def controllers(self) -> Controllers:
        return Controllers(self.client, self.catalog, self.task_queue, spec=self.spec)

    async def plan(self) -> RolloutPlan:
        """The rollout plan in force (the catalog's primary before any rollout)."""
        return await self.rollouts.plan()

    async def audit(self) -> list[AuditEntry]:
        return await self.rollouts.audit()

    async def run(self, plan: Path | RolloutPlanFile, *, actor: str, reason: str = "") -> str:
        """Start the controller on ``plan`` (a TOML file or a parsed plan); its workflow id."""
        parsed = load_plan(plan) if isinstance(plan, Path) else plan
        return await self.controllers.run(parsed, ChangeBy(actor=actor, reason=reason))

    async def status(self) -> ControllerView | None:
        return await self.controllers.status()

    async def wait(self) -> ControllerState:
        """The controller's final state, once it ends (promoted, aborted or stopped)."""
        state: ControllerState = await self.controllers.handle().result()
        return state

    async def shadow_report(self, rollout_id: str) -> ShadowReport:
        """The shadow report of ``rollout_id`` against the catalog's ``[shadow_gate]``."""
        rows = await asyncio.to_thread(ShadowStore(self.engine).rows, rollout_id)
        return build_report(rollout_id, rows, self.catalog.shadow_gate)

    async def preflight(self, candidate: str) -> Preflight:
        """The pre-upgrade checklist for ``candidate`` against the baseline in force."""
        return await run_preflight(
            self.client,
            self.catalog,
            None,
            self.task_queue,
            candidate,
            spec=self.spec,
            engine=self.engine,
        )
