"""``baton drain``: blue-green drain of a build or a model version's pool, following its in-flight
workflows from visibility until none runs.

Temporal's client is imported inside the command, so ``baton --help`` starts fast.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import (
    Context,
    DeploymentOption,
    ProjectOption,
    TaskQueueOption,
    context,
    duration,
)
from modelbaton.errors import ModelBatonError, RolloutError

if TYPE_CHECKING:
    from temporalio.client import Client


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
    return DrainTarget.build(build.version, ctx.spec().waiting_now()), stopped


async def _pool_target(client: Client, ctx: Context, version: str) -> Any:
    from modelbaton.rollout.client import Rollouts
    from modelbaton.versioning.drain import DrainTarget

    catalog = ctx.catalog()
    catalog.get(version)  # unknown version: a ConfigError naming it
    spec = ctx.spec()
    plan = await Rollouts(client, catalog, ctx.task_queue, spec=spec).plan()
    if version in plan.versions:
        raise RolloutError(
            f"model version {version!r} is still assigned by the rollout plan "
            f"(baseline {plan.baseline.version}"
            + (f", candidate {plan.candidate.version}" if plan.candidate else "")
            + "): promote or abort the rollout first (baton rollout)"
        )
    return DrainTarget.pool(version, ctx.task_queue, spec.workflow_type, spec.waiting_now())


async def _what_can_go(client: Client, ctx: Context, target: Any, source: str) -> dict[str, Any]:
    """Once drained: may the old workers go, and what ``baton patches`` says of the old paths."""
    from modelbaton.ops.patches import patch_report, project_patches

    closed_query = f"{target.query} AND ExecutionStatus != 'Running'"
    closed = (await client.count_workflows(closed_query)).count
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
    root.command()(drain)
