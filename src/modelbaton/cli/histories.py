"""``baton histories export``: workflow histories from a server, as the JSON files the replay gate
reads, so that CI replays production's real histories against the code about to ship.

Temporal's client is imported inside the command, so ``baton --help`` starts fast.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._options import SampleOption, SeedOption
from modelbaton.cli._output import JsonOption, console, emit
from modelbaton.cli._project import ProjectOption, TaskQueueOption, context
from modelbaton.errors import ModelBatonError

app = typer.Typer(no_args_is_help=True, help="Workflow histories for the replay gate.")


@app.command()
def export(
    out: Path = typer.Option(
        ..., "--out", help="Folder to write into, created if missing (e.g. tests/histories/prod)."
    ),
    query: str | None = typer.Option(
        None,
        help="Visibility query (default: the project's workflow types on its task queue, "
        "running and closed).",
    ),
    sample: int | None = SampleOption,
    seed: int = SeedOption,
    limit: int = typer.Option(
        10_000, "--limit", min=1, help="Read at most this many workflows from the listing."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace files already there (default: keep them)."
    ),
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Export histories from the server (read-only), one JSON file per run, for
    'baton replay-check --histories'. A sample is seeded: the same seed, the same workflows."""
    from modelbaton.ops.replay import ExportReport, export_histories
    from modelbaton.stack.connect import connect

    ctx = context(project, task_queue)
    selected = query or f"{ctx.types_condition()} AND TaskQueue = '{ctx.task_queue}'"

    async def run() -> ExportReport:
        client = await connect(ctx.settings.home)
        return await export_histories(
            client, selected, out, sample=sample, seed=seed, overwrite=overwrite, limit=limit
        )

    try:
        report = asyncio.run(run())
    except ModelBatonError as exc:
        raise fail_error(exc) from None

    def render() -> None:
        kept = f", kept {len(report.kept)} already there" if report.kept else ""
        console.print(
            f"{report.matched} workflows match; wrote {len(report.written)} histories to "
            f"{escape(str(out))}{kept}",
            emoji=False,
        )

    emit({"query": selected, **asdict(report)}, as_json, render)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="histories")
