"""The rollout workflow and the rollout controller as versioned workers register them:
auto-upgrade.

The rollout workflow lives as long as the pipeline (it continues as new, never ends). Pinned, it
would keep the first build's workers alive forever and no build would ever drain; auto-upgrade, it
moves to the current build at its next task, and its code evolves by patching, as before.

The behavior is declared on this subclass, registered only by versioned workers: declared on the
class unversioned workers run, it fails their workflow tasks (measured: "Workflow Task in failed
state" on the first update).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.rollout.workflow import RolloutWorkflow

with workflow.unsafe.imports_passed_through():
    from modelbaton.controller.messages import (
        CONTROLLER_WORKFLOW_TYPE,
        ControllerInput,
        ControllerState,
    )
    from modelbaton.rollout.messages import ROLLOUT_WORKFLOW_TYPE, RolloutInput


@workflow.defn(name=ROLLOUT_WORKFLOW_TYPE, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradeRolloutWorkflow(RolloutWorkflow):
    """Same type name, handlers and history as :class:`RolloutWorkflow`."""

    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: RolloutInput) -> None:
        await super().run(inp)


@workflow.defn(name=CONTROLLER_WORKFLOW_TYPE, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradeRolloutControllerWorkflow(RolloutControllerWorkflow):
    """Same type name, handlers and history as :class:`RolloutControllerWorkflow`: a controller
    bakes for hours and may see the build it started on replaced (a code rollout during a model
    rollout), so it must not keep that build from draining."""

    @workflow.init
    def __init__(self, inp: ControllerInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: ControllerInput) -> ControllerState:
        return await super().run(inp)
