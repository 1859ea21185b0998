"""Shared output helpers: every reporting command prints Rich for people or JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
#: Errors are one line whatever the terminal width (CI logs, pipes).
err_console = Console(stderr=True, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print a machine-readable JSON report.")


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON when asked, otherwise call ``render`` for the human view."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        render()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise (2: usage or input error).

    ``message`` is plain text: it is escaped, so user data never reads as Rich markup.
    """
    err_console.print(f"[bold red]error:[/] {escape(' '.join(message.split()))}")
    return typer.Exit(code)
