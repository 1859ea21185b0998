"""The embedded stack: a Temporal dev server, the model server, pools and workers on one machine,
supervised from the stack file.

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.stack.embedded import (
        DEFAULT_RELEASE,
        StackOptions,
        StackState,
        restart_workers,
        stack_variables,
        start_stack,
        stop_stack,
    )

_EXPORTS = {
    "DEFAULT_RELEASE": "modelbaton.stack.embedded",
    "StackOptions": "modelbaton.stack.embedded",
    "StackState": "modelbaton.stack.embedded",
    "restart_workers": "modelbaton.stack.embedded",
    "start_stack": "modelbaton.stack.embedded",
    "stack_variables": "modelbaton.stack.embedded",
    "stop_stack": "modelbaton.stack.embedded",
}

__all__ = [
    "DEFAULT_RELEASE",
    "StackOptions",
    "StackState",
    "restart_workers",
    "stack_variables",
    "start_stack",
    "stop_stack",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
