"""The rollout controller: a plan of steps in TOML, metric gates between them, and the durable
workflow that drives a rollout through them, aborting and rolling back by itself.

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.controller.client import Controllers
    from modelbaton.controller.messages import ControllerState
    from modelbaton.controller.plan import describe_step, parse_plan

_EXPORTS = {
    "Controllers": "modelbaton.controller.client",
    "ControllerState": "modelbaton.controller.messages",
    "parse_plan": "modelbaton.controller.plan",
    "describe_step": "modelbaton.controller.plan",
}

__all__ = [
    "ControllerState",
    "Controllers",
    "describe_step",
    "parse_plan",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
