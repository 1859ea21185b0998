"""One error boundary for every ``baton`` command.

Whatever a command lets escape becomes one line on stderr naming what was wrong, and an exit code
that CI can rely on:

- 0: done;
- 1: a finding (a check failed, a workflow failed, an update was rejected);
- 2: a usage or configuration error (bad input, unknown id, invalid catalog or URL);
- 3: infrastructure unreachable (Temporal or a model server does not answer).

Messages are escaped before Rich prints them, so user data (paths, ids) never reads as markup.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from modelbaton.cli._output import err_console

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

_UNREACHABLE_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"}


def classify_error(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for an error the boundary knows, else None."""
    from temporalio.client import (
        WorkflowFailureError,
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
    )
    from temporalio.service import RPCError

    from modelbaton.errors import ModelBatonError, StackError, UnreachableError

    if isinstance(exc, UnreachableError):
        return EXIT_UNREACHABLE, str(exc)
    if isinstance(exc, StackError):
        return EXIT_FINDING, str(exc)
    if isinstance(exc, ModelBatonError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, RPCError):
        name = exc.status.name if exc.status is not None else "UNKNOWN"
        if name in _UNREACHABLE_CODES:
            return EXIT_UNREACHABLE, f"Temporal did not answer ({name}): {exc.message}"
        hint = {
            "NOT_FOUND": "check the id (baton pending lists documents waiting for review)",
            "INVALID_ARGUMENT": "check the value given",
            "PERMISSION_DENIED": "check TEMPORAL_API_KEY / TLS settings",
            "UNAUTHENTICATED": "check TEMPORAL_API_KEY / TLS settings",
        }.get(name, "")
        return EXIT_USAGE, f"{exc.message} ({name})" + (f"; {hint}" if hint else "")
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        return EXIT_FINDING, f"update rejected: {getattr(cause, 'message', cause)}"
    if isinstance(exc, WorkflowFailureError):
        cause = exc.cause
        return EXIT_FINDING, f"workflow failed: {getattr(cause, 'message', cause)}"
    if isinstance(exc, WorkflowQueryFailedError):
        return EXIT_FINDING, f"query failed: {exc.message}"
    if type(exc) is RuntimeError and "connect" in str(exc).lower():
        return EXIT_UNREACHABLE, f"cannot connect to Temporal: {exc}"
    return None


class BoundaryGroup(TyperGroup):
    """The root command group: turns known errors into a message and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            known = classify_error(exc)
            if known is None:
                raise
            code, message = known
            first = " ".join(message.split())  # one line, whatever the source text
            err_console.print(f"[bold red]error:[/] {escape(first)}")
            raise typer.Exit(code) from None


def fail_error(exc: BaseException) -> typer.Exit:
    """Print ``exc`` as the boundary would and return the Exit to raise."""
    from modelbaton.cli._output import fail

    code, message = classify_error(exc) or (EXIT_USAGE, str(exc))
    return fail(message, code)
