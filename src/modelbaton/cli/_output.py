"""Shared output helpers: every reporting command prints Rich for people or JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print a machine-readable JSON report.")


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON when asked, otherwise call ``render`` for the human view."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        render()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise (2: usage or input error)."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)
