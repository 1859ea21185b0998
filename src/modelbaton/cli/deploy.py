"""``baton deploy`` (Worker Versioning routing of the pipeline's builds) and ``baton drain``.

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
from modelbaton.cli._project import Context, ProjectOption, TaskQueueOption, context, duration
from modelbaton.errors import ModelBatonError, RolloutError

if TYPE_CHECKING:
    from temporalio.client import Client

    from modelbaton.versioning.control import DeploymentControl

app = typer.Typer(
    no_args_is_help=True,
    help="Route the pipeline's workflows between builds (Temporal Worker Versioning).",
)

DeploymentOption = typer.Option(
    None,
    "--deployment",
    help="Worker Deployment name (default: derived from the task queue, as workers do).",
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


async def _status(client: Client, control: DeploymentControl) -> dict[str, Any]:
    from modelbaton.versioning.builds import Build
    from modelbaton.versioning.drain import DrainTarget

    view = await control.describe()
    versions = []
    for v in view.versions:
        target = DrainTarget.build(Build(view.name, v.build_id).version)
        running, at_review = await asyncio.gather(
            _count(client, target.running), _count(client, target.at_review)
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
    data = _run(context(project, task_queue), deployment, _status)

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


def drain(
    source: str = typer.Option(
        ..., "--from", help="Build id (or DEPLOYMENT:BUILD), or a model version with --pool."
    ),
    deadline: str | None = typer.Option(
        None, "--deadline", help="How long to wait, e.g. 90s, 15m, 24h (default: no deadline)."
    ),
    on_deadline: str = typer.Option(
        "wait",
        "--on-deadline",
        help="At the deadline: wait (keep waiting), report (list and exit 1), terminate.",
    ),
    pool: bool = typer.Option(
        False, "--pool", help="Drain a model version's pool (rollouts) instead of a build."
    ),
    deployment: str | None = DeploymentOption,
    poll: str = typer.Option("1s", "--poll", help="Time between counts (e.g. 500ms, 2s, 1m)."),
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Blue-green drain: check no new workflow starts on the old version, follow its in-flight
    workflows from visibility until none runs, act at the deadline, then say what can go."""
    from modelbaton.versioning.drain import OnDeadline

    try:
        action = OnDeadline(on_deadline)
    except ValueError:
        raise fail(f"--on-deadline {on_deadline!r}: choose wait, report or terminate") from None
    seconds = duration(deadline, "--deadline") if deadline else None
    every = duration(poll, "--poll")
    if not 0.1 <= every <= 60:
        raise fail(f"--poll {poll!r}: must be between 100ms and 1m")
    ctx = context(project, task_queue, needs_catalog="drain --pool" if pool else None)
    report = _drain(ctx, source, pool, deployment, seconds, action, every, as_json)
    emit(report, as_json, lambda: _render_drain(report))
    if not report["drained"]:
        raise typer.Exit(1)


def _drain(
    ctx: Context,
    source: str,
    pool: bool,
    deployment: str | None,
    deadline: float | None,
    action: Any,
    poll: float,
    as_json: bool,
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from modelbaton.stack.connect import connect
    from modelbaton.versioning.drain import Tally, drain

    async def main() -> dict[str, Any]:
        client = await connect(ctx.settings.home)
        if pool:
            target = await _pool_target(client, ctx, source)
            stopped = f"the rollout plan assigns no new document to {source}"
        else:
            target, stopped = await _build_target(client, ctx, source, deployment)
        if not as_json:
            # emoji=False: "dep:A: ..." must not become an emoji code.
            console.print(f"draining {escape(target.label)} ({escape(stopped)})", emoji=False)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task("closed", total=None, detail="counting")
            seen = {"initial": -1}

            def on_tally(t: Tally) -> None:
                if seen["initial"] < 0:
                    seen["initial"] = t.running
                total = max(seen["initial"], t.running)
                seen["initial"] = total
                bar.update(
                    task,
                    total=total,
                    completed=total - t.running,
                    detail=f"in flight {t.running} (running {t.working}, at review {t.at_review})",
                )

            def on_deadline_passed(ids: list[str]) -> None:
                if not as_json:
                    bar.console.print(f"deadline passed with {len(ids)} in flight ({action.value})")
                    for wid in ids:
                        bar.console.print(f"  {escape(wid)}")

            result = await drain(
                client,
                target,
                deadline=deadline,
                on_deadline=action,
                poll_seconds=poll,
                on_tally=on_tally,
                on_deadline_passed=on_deadline_passed,
            )
        report = result.as_dict() | {"strategy": target.strategy}
        if result.drained:
            report["next"] = await _what_can_go(client, ctx, target, source)
        return report

    try:
        return asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


async def _build_target(
    client: Client, ctx: Context, source: str, deployment: str | None
) -> tuple[Any, str]:
    """The drain target of a build, once new starts on it have stopped (a ramp is cleared)."""
    from modelbaton.versioning.builds import Build
    from modelbaton.versioning.control import DeploymentControl
    from modelbaton.versioning.drain import DrainTarget

    build = Build.parse(source, ctx.deployment(deployment))
    control = DeploymentControl(client, build.deployment)
    view = await control.describe()
    if view.version(build.build_id) is None:
        raise await control.unknown_build(build.build_id)
    if view.current == build.build_id:
        raise RolloutError(
            f"build {build.build_id!r} is current: new workflows still start on it; promote "
            "another build first (baton deploy promote BUILD)"
        )
    stopped = f"{view.current} is current"
    if view.ramping == build.build_id:
        await control.clear_ramp()
        stopped += f"; cleared the ramp of {build.build_id} ({view.ramp_percent:g} %)"
    return DrainTarget.build(build.version), stopped


async def _pool_target(client: Client, ctx: Context, version: str) -> Any:
    from modelbaton.rollout.client import Rollouts
    from modelbaton.versioning.drain import DrainTarget

    catalog = ctx.catalog()
    catalog.get(version)  # unknown version: a ConfigError naming it
    plan = await Rollouts(client, catalog, ctx.task_queue).plan()
    if version in plan.versions:
        raise RolloutError(
            f"model version {version!r} is still assigned by the rollout plan "
            f"(baseline {plan.baseline.version}"
            + (f", candidate {plan.candidate.version}" if plan.candidate else "")
            + "): promote or abort the rollout first (baton rollout)"
        )
    return DrainTarget.pool(version, ctx.task_queue)


async def _what_can_go(client: Client, ctx: Context, target: Any, source: str) -> dict[str, Any]:
    """Once drained: may the old workers go, and what ``baton patches`` says of the old paths."""
    from modelbaton.ops.patches import patch_report, project_patches

    closed = await _count(client, f"{target.query} AND ExecutionStatus != 'Running'")
    if target.strategy == "build":
        workers = f"no workflow pinned to {target.label} runs: its workers can be stopped" + (
            f"; {closed} of its closed workflows are within retention, and a query or a reset "
            "of one replays it on code that must still have their paths"
            if closed
            else ""
        )
    else:
        workers = (
            f"no document assigned to {source} runs: its pool can be stopped "
            f"(baton dev pool {source} --stop)"
        )
    patches = [
        {"patch_id": row["patch_id"], "advice": row["advice"], "reason": row["reason"]}
        for row in await patch_report(client, project_patches(ctx.project))
    ]
    return {"workers": workers, "closed_within_retention": closed, "patches": patches}


def _render_drain(report: dict[str, Any]) -> None:
    if report["terminated"]:
        console.print(f"terminated {len(report['terminated'])} at the deadline:")
        for wid in report["terminated"]:
            console.print(f"  {escape(wid)}")
    if not report["drained"]:
        console.print(
            f"[red]not drained[/]: {len(report['remaining'])} still in flight after "
            f"{report['seconds']:.0f} s"
        )
        for wid in report["remaining"]:
            console.print(f"  {escape(wid)}")
        return
    console.print(
        f"[green]drained[/] {escape(report['target'])} in {report['seconds']:.1f} s "
        f"({report['initial']} in flight at the start)",
        emoji=False,
    )
    nxt = report["next"]
    console.print(escape(nxt["workers"]), emoji=False)
    for p in nxt["patches"]:
        console.print(f"  patch {escape(p['patch_id'])}: {escape(p['advice'])}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
    root.command()(drain)
