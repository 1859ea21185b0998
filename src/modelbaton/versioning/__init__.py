"""Code rollouts on Temporal's Worker Versioning: builds, the control plane, drains.

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.versioning.builds import (
        Build,
        deployment_name_for,
    )
    from modelbaton.versioning.control import (
        DeploymentControl,
        workflow_build,
    )
    from modelbaton.versioning.drain import DrainTarget

_EXPORTS = {
    "Build": "modelbaton.versioning.builds",
    "deployment_name_for": "modelbaton.versioning.builds",
    "DeploymentControl": "modelbaton.versioning.control",
    "workflow_build": "modelbaton.versioning.control",
    "DrainTarget": "modelbaton.versioning.drain",
}

__all__ = [
    "Build",
    "DeploymentControl",
    "DrainTarget",
    "deployment_name_for",
    "workflow_build",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
