"""Rollouts: the durable rollout workflow and the operations that read and change it.

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.rollout.client import (
        Rollouts,
        rollout_status,
        steady_plan,
    )
    from modelbaton.rollout.messages import (
        ROLLOUT_WORKFLOW_TYPE,
        ChangeBy,
        rollout_workflow_id,
    )
    from modelbaton.rollout.workflow import RolloutWorkflow

_EXPORTS = {
    "ROLLOUT_WORKFLOW_TYPE": "modelbaton.rollout.messages",
    "ChangeBy": "modelbaton.rollout.messages",
    "rollout_workflow_id": "modelbaton.rollout.messages",
    "RolloutWorkflow": "modelbaton.rollout.workflow",
    "Rollouts": "modelbaton.rollout.client",
    "rollout_status": "modelbaton.rollout.client",
    "steady_plan": "modelbaton.rollout.client",
}

__all__ = [
    "ROLLOUT_WORKFLOW_TYPE",
    "ChangeBy",
    "RolloutWorkflow",
    "Rollouts",
    "rollout_status",
    "rollout_workflow_id",
    "steady_plan",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
