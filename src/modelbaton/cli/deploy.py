"""``baton deploy``: Worker Versioning routing of the pipeline's builds (``baton drain`` is in
:mod:`modelbaton.cli.drain`).

Temporal's client is imported inside the commands, so ``baton --help`` starts fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import (
    Context,
    DeploymentOption,
    ProjectOption,
    TaskQueueOption,
    context,
)
from modelbaton.errors import ModelBatonError, RolloutError

if TYPE_CHECKING:
    from temporalio.client import Client

    from modelbaton.versioning.control import DeploymentControl

app = typer.Typer(
    no_args_is_help=True,
    help="Route the pipeline's workflows between builds (Temporal Worker Versioning).",
)

#: How many pinned workflows a rollback names before it only counts them.
LIST_LIMIT = 50


def _run(
    ctx: Context,
    deployment: str | None,
    action: Callable[[Client, DeploymentControl], Awaitable[Any]],
) -> Any:
    """Connect and run ``action`` with the pipeline's deployment control; errors exit cleanly."""
    from modelbaton.stack.connect import connect
    from modelbaton.versioning.control import DeploymentControl

    name = ctx.deployment(deployment)

    async def main() -> Any:
        client = await connect(ctx.settings.home)
        return await action(client, DeploymentControl(client, name))

    try:
        return asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def _status(
    client: Client, control: DeploymentControl, waiting: str | None
) -> dict[str, Any]:
    from modelbaton.versioning.builds import Build
    from modelbaton.versioning.drain import DrainTarget, count_or_zero

    view = await control.describe()
    versions = []
    for v in view.versions:
        target = DrainTarget.build(Build(view.name, v.build_id).version, waiting)
        running, at_review = await asyncio.gather(
            _count(client, target.running), count_or_zero(client, target.at_review)
        )
        versions.append(
            {
                "build_id": v.build_id,
                "version": target.label,
                "status": v.status,
                "drainage": v.drainage,
                "running": running,
                "at_review": at_review,
                "created": v.created,
            }
        )
    return {
        "deployment": view.name,
        "namespace": client.namespace,
        "current": view.current,
        "ramping": view.ramping,
        "ramp_percent": view.ramp_percent,
        "previous": view.previous(),
        "versions": versions,
    }


@app.command()
def status(
    deployment: str | None = DeploymentOption,
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Builds of the deployment: current, ramping, and per build its running pinned workflows
    (those at review apart) and drainage."""
    ctx = context(project, task_queue)
    waiting = ctx.spec().waiting_now()
    data = _run(ctx, deployment, lambda client, control: _status(client, control, waiting))

    def render() -> None:
        ramp = (
            f", ramping {escape(data['ramping'])} at {data['ramp_percent']:g} %"
            if data["ramping"]
            else ""
        )
        console.print(
            f"deployment {escape(data['deployment'])}: current {escape(str(data['current']))}{ramp}"
        )
        table = Table("build", "status", "running", "at review", "drainage")
        for v in data["versions"]:
            table.add_row(
                escape(v["build_id"]),
                v["status"],
                str(v["running"]),
                str(v["at_review"]),
                v["drainage"] or "",
            )
        console.print(table)

    emit(data, as_json, render)


def _change_dict(change: Any) -> dict[str, Any]:
    return {
        "deployment": change.deployment,
        "current": change.current,
        "ramping": change.ramping,
        "ramp_percent": change.ramp_percent,
        "previous_current": change.previous_current,
        "seconds_to_propagate": round(change.seconds_to_propagate, 3),
    }


@app.command()
def ramp(
    build: str = typer.Argument(..., help="Build id to ramp (its workers must be polling)."),
    percent: float = typer.Option(
        ..., "--percent", help="Share of new workflows, by workflow id (0 clears the ramp)."
    ),
    deployment: str | None = DeploymentOption,
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Send PERCENT % of new workflows to BUILD, chosen deterministically by workflow id."""
    if not 0.0 <= percent <= 100.0:
        raise fail(f"--percent {percent:g}: must be between 0 and 100")

    async def action(client: Client, control: DeploymentControl) -> Any:
        if percent == 0.0:
            return await control.clear_ramp()
        return await control.set_ramping(build, percent)

    change = _run(context(project, task_queue), deployment, action)
    emit(
        _change_dict(change),
        as_json,
        lambda: console.print(
            f"current {escape(str(change.current))}; "
            + (
                f"ramping {escape(str(change.ramping))} at {change.ramp_percent:g} %"
                if change.ramping
                else "no ramp"
            )
            + f" (propagated in {change.seconds_to_propagate:.1f} s)"
        ),
    )


@app.command()
def promote(
    build: str = typer.Argument(..., help="Build id to make current (its workers must poll)."),
    deployment: str | None = DeploymentOption,
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Make BUILD current: every new workflow starts on it; pinned ones stay where they are."""
    ctx = context(project, task_queue)
    change = _run(ctx, deployment, lambda client, control: control.set_current(build))
    emit(
        _change_dict(change),
        as_json,
        lambda: console.print(
            f"current {escape(str(change.previous_current))} -> {escape(str(change.current))} "
            f"(propagated in {change.seconds_to_propagate:.1f} s); drain the old build with "
            f"'baton drain --from {escape(str(change.previous_current))}'"
        ),
    )


async def _rollback(client: Client, control: DeploymentControl) -> dict[str, Any]:
    from modelbaton.versioning.builds import Build
    from modelbaton.versioning.drain import DrainTarget

    view = await control.describe()
    if view.current is None:
        raise RolloutError(f"deployment {view.name!r} has no current build: nothing to roll back")
    previous = view.previous()
    if previous is None:
        raise RolloutError(
            f"deployment {view.name!r}: no build was current before {view.current!r}; "
            "nothing to roll back to"
        )
    rolled_from = view.current
    await control.require_pollers(previous)  # refuse before changing anything
    if view.ramping is not None:
        await control.clear_ramp()
    change = await control.set_current(previous)
    target = DrainTarget.build(Build(view.name, rolled_from).version)
    pinned = [wf.id async for wf in client.list_workflows(target.running, limit=LIST_LIMIT)]
    total = await _count(client, target.running)
    moving = await _count(
        client,
        f"TemporalWorkerDeploymentVersion = '{Build(view.name, rolled_from).version}' "
        "AND TemporalWorkflowVersioningBehavior = 'AutoUpgrade' AND ExecutionStatus = 'Running'",
    )
    warning = (
        f"{moving} running auto-upgrade workflows last ran on {rolled_from} and move to "
        f"{previous} at their next task: any that took a code path {previous} does not have (a "
        f"patch {rolled_from} added) will fail non-determinism; check first with 'baton "
        f"replay-check --build {rolled_from} --release <{previous}'s release>'."
        if moving
        else None
    )
    return _change_dict(change) | {
        "rolled_back_from": rolled_from,
        "pinned_to_rolled_back": total,
        "pinned_workflow_ids": pinned,
        "auto_upgrade_moving_back": moving,
        "warning": warning,
        "advice": (
            f"{total} running workflows stay pinned to {rolled_from} and finish on it: keep its "
            f"workers running, or 'baton drain --from {rolled_from} --deadline 1h "
            "--on-deadline terminate' and run them again ('baton submit'). Moving them onto "
            f"{previous} (temporal workflow update-options --versioning-override-behavior "
            f"pinned) is safe only if {previous}'s code replays what {rolled_from} recorded "
            f"(check with 'baton replay-check --build {rolled_from}')."
            if total
            else f"no workflow is pinned to {rolled_from}; its workers can be stopped"
        ),
    }


@app.command()
def rollback(
    deployment: str | None = DeploymentOption,
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Make the previous build current again; list the workflows still pinned to the build rolled
    back from, with what to do about them."""
    data = _run(context(project, task_queue), deployment, _rollback)

    def render() -> None:
        console.print(
            f"current {escape(data['rolled_back_from'])} -> {escape(str(data['current']))} "
            f"(propagated in {data['seconds_to_propagate']:.1f} s)"
        )
        for wid in data["pinned_workflow_ids"]:
            console.print(f"  pinned to {escape(data['rolled_back_from'])}: {escape(wid)}")
        if data["pinned_to_rolled_back"] > len(data["pinned_workflow_ids"]):
            console.print(f"  ... and {data['pinned_to_rolled_back'] - LIST_LIMIT} more")
        console.print(escape(data["advice"]))
        if data["warning"]:
            console.print(f"[yellow]warning:[/] {escape(data['warning'])}")

    emit(data, as_json, render)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
