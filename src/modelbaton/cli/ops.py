"""Operations commands: ``baton replay-check``, ``baton patches``, ``baton status``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.errors import ModelBatonError
from modelbaton.ops.defaults import DEFAULT_QUERY, DEFAULT_WORKFLOWS
from modelbaton.settings import Settings

if TYPE_CHECKING:
    from modelbaton.ops import problems, replay

# Temporal's client and worker are imported inside the commands, so 'baton --help' starts fast.


def replay_check(
    workflows: str = typer.Option(
        ",".join(DEFAULT_WORKFLOWS),
        help="Workflow classes to check, comma-separated module:Class import paths.",
    ),
    histories: Path | None = typer.Option(
        None, help="Folder of JSON histories (ours or 'temporal workflow show -o json')."
    ),
    query: str | None = typer.Option(
        None, help=f"Visibility query on a live server (default: {DEFAULT_QUERY})."
    ),
    processes: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU)."),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Pass when there is nothing to replay (default: exit 2)."
    ),
    build: str | None = typer.Option(
        None,
        "--build",
        help="Only histories pinned to this Worker Deployment build (BUILD or DEPLOYMENT:BUILD; "
        "the deployment defaults to the one of MODELBATON_TASK_QUEUE), running or closed.",
    ),
    release: str | None = typer.Option(
        None, "--release", help="Check against this release's code instead of --workflows."
    ),
    project: Path | None = typer.Option(
        None,
        "--project",
        help="A project config (modelbaton.toml or pyproject.toml with [tool.modelbaton]): its "
        "workflows, and its histories folder unless --histories or --query is given.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Replay histories against today's workflow code; exit 1 on any failure.

    Put it in CI between build and deploy: against the committed histories, and against the
    running workflows of staging or production (read-only: it only fetches histories). With
    --build and --release: may the code of RELEASE take over the workflows pinned to BUILD?
    """
    from modelbaton.ops import replay
    from modelbaton.stack.connect import connect

    if histories is not None and query is not None:
        raise fail("give --histories or --query, not both")
    if project is not None:
        from modelbaton.project import load_project

        if workflows != ",".join(DEFAULT_WORKFLOWS) or release is not None:
            raise fail("give --project or --workflows/--release, not both")
        try:
            loaded = load_project(project)
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        workflows = ",".join(loaded.workflow_paths)
        if histories is None and query is None:
            histories = loaded.histories_path
        if histories is None and query is None:
            types = ", ".join(f"'{name}'" for name in loaded.workflow_types)
            query = f"WorkflowType IN ({types}) AND ExecutionStatus = 'Running'"
    if histories is not None and build is not None:
        raise fail("--build selects live workflows; it cannot filter --histories")
    if release is not None:
        from modelbaton.pipeline.releases import RELEASES, class_path

        if workflows != ",".join(DEFAULT_WORKFLOWS):
            raise fail("give --release or --workflows, not both")
        if release not in RELEASES:
            raise fail(f"--release {release!r}: choose one of {', '.join(RELEASES)}")
        workflows = class_path(release)
    if build is not None:
        from modelbaton.versioning.builds import Build, deployment_name_for

        try:
            pinned = Build.parse(build, deployment_name_for(Settings.from_env().task_queue))
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        base = f"({query})" if query else "WorkflowType = 'DocumentClassificationWorkflow'"
        query = f"{base} AND {pinned.visibility_query()}"
    paths = [p.strip() for p in workflows.split(",") if p.strip()]
    try:
        replay.load_workflow_classes(paths)
        if histories is not None:
            items = replay.load_histories_from_dir(histories)
        else:
            settings = Settings.from_env()

            async def fetch() -> list[replay.HistoryItem]:
                client = await connect(settings.home)
                return await replay.fetch_histories(client, query or DEFAULT_QUERY)

            items = asyncio.run(fetch())
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    if not items and not allow_empty:
        raise fail("nothing to replay: the query selected no workflow (--allow-empty to pass)")
    # The SDK core logs replay failures on stdout; with --json only the report may go there.
    with (
        _stdout_to_stderr(as_json),
        Progress(console=console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("replaying", total=len(items))
        outcomes = replay.replay_histories(
            paths, items, processes=processes or None, on_progress=lambda n: bar.advance(task, n)
        )
    summary = replay.summarize(outcomes) | {"workflows": paths}

    def render() -> None:
        console.print(
            f"replayed {summary['replayed']}: [green]{summary['passed']} passed[/], "
            f"[{'red' if summary['failed'] else 'green'}]{summary['failed']} failed[/]"
        )
        for key in ("by_workflow_type", "by_model_version"):
            table = Table(title=key.replace("_", " "), title_justify="left")
            for col in (key.removeprefix("by_"), "replayed", "failed"):
                table.add_column(col)
            for name, c in summary[key].items():
                table.add_row(name, str(c["replayed"]), str(c["failed"]))
            console.print(table)
        for f in summary["failures"]:
            console.print(f"[red]FAIL[/] {f['workflow_id']} ({f['source']}): {f['error_type']}")
            console.print(f"     {f['reason']}")

    emit(summary, as_json, render)
    if summary["failed"]:
        raise typer.Exit(1)


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """Point file descriptor 1 at stderr for the block (native code and spawned children too)."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def patches(
    deprecated_since: list[str] = typer.Option(
        [],
        help="What-if: PATCH_ID=ISO-TIMESTAMP, as if that patch's deprecation shipped then.",
    ),
    by_build: bool = typer.Option(
        False,
        "--by-build",
        help="Also count running workflows per Worker Deployment build, with and without each "
        "marker (the deployment of MODELBATON_TASK_QUEUE, or --deployment).",
    ),
    deployment: str | None = typer.Option(
        None, "--deployment", help="With --by-build: the Worker Deployment name."
    ),
    as_json: bool = JsonOption,
) -> None:
    """For each registered patch: running workflows with and without its marker, and advice."""
    from modelbaton.ops import patches as patch_ops
    from modelbaton.stack.connect import connect

    overrides: dict[str, datetime] = {}
    for item in deprecated_since:
        pid, _, stamp = item.partition("=")
        try:
            overrides[pid] = datetime.fromisoformat(stamp)
        except ValueError:
            raise fail(f"--deprecated-since: {item!r} is not PATCH_ID=ISO-TIMESTAMP") from None
    settings = Settings.from_env()

    async def main() -> list[dict[str, Any]]:
        client = await connect(settings.home)
        rows = await patch_ops.patch_report(client, deprecated_since=overrides)
        if by_build:
            from modelbaton.versioning.builds import check_deployment_name, deployment_name_for
            from modelbaton.versioning.control import DeploymentControl

            name = (
                check_deployment_name(deployment)
                if deployment
                else deployment_name_for(settings.task_queue)
            )
            view = await DeploymentControl(client, name).describe()
            for row in rows:
                row["by_build"] = await patch_ops.counts_by_build(
                    client, row["patch_id"], row["workflow_type"], name, view.versions
                )
        return rows

    try:
        rows = asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None

    def render() -> None:
        table = Table(title="Patch lifecycle")
        for col in (
            "patch",
            "running with marker",
            "pre-patch running",
            "ambiguous",
            "closed w/o marker",
            "advice",
        ):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["patch_id"],
                str(r["running_with_marker"]),
                str(r["running_pre_patch"]),
                str(r["running_ambiguous"]),
                str(r["closed_without_marker"]),
                r["advice"],
            )
        console.print(table)
        for r in rows:
            console.print(f"{r['patch_id']}: {r['reason']}")
        for r in rows:
            for build, c in r.get("by_build", {}).items():
                console.print(
                    f"  {escape(r['patch_id'])} on build {escape(build)}: {c['running']} running, "
                    f"{c['with_marker']} with the marker, {c['without_marker']} without",
                    emoji=False,
                )

    emit(rows, as_json, render)


def _duration(value: str, option: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d`` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise fail(f"{option} {value!r}: expected a duration such as 90s, 15m, 24h or 7d") from None
    if seconds <= 0:
        raise fail(f"{option} {value!r}: must be positive")
    return timedelta(seconds=seconds)


def status(
    since: str = typer.Option(
        "24h", "--since", help="Report workflows that failed within this window (e.g. 24h, 7d)."
    ),
    retrying_for: str = typer.Option(
        "2m",
        "--retrying-for",
        help="Report activities that have kept failing for longer than this (e.g. 90s, 10m).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """What needs a person: workflows stuck on workflow-task problems (non-determinism), workflows
    that failed and were not run again, activities retrying for too long. Exit 1 if any."""
    from modelbaton.ops import problems
    from modelbaton.stack.connect import connect

    settings = Settings.from_env()
    window = _duration(since, "--since")
    patience = _duration(retrying_for, "--retrying-for")

    async def main() -> tuple[
        list[problems.StuckWorkflow], list[problems.FailedWorkflow], list[problems.RetryingActivity]
    ]:
        client = await connect(settings.home)
        return (
            await problems.stuck_workflows(client),
            await problems.failed_workflows(client, window),
            await problems.retrying_activities(client, patience),
        )

    try:
        stuck, failed, retrying = asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    data = {
        "stuck": len(stuck),
        "nondeterminism": sum(s.nondeterminism for s in stuck),
        "workflows": [
            {
                "workflow_id": s.workflow_id,
                "workflow_type": s.workflow_type,
                "problems": s.problems,
                "nondeterminism": s.nondeterminism,
            }
            for s in stuck
        ],
        "failed": [vars(f) for f in failed],
        "retrying": [vars(r) for r in retrying],
    }

    def render() -> None:
        if not (stuck or failed or retrying):
            console.print(
                "[green]nothing stuck, nothing failed in the last "
                f"{escape(since)}, nothing retrying for over {escape(retrying_for)}[/]"
            )
            return
        if stuck:
            console.print(
                f"[red]{len(stuck)} workflows stuck[/] ({data['nondeterminism']} on "
                "non-determinism)"
            )
            for s in stuck:
                console.print(
                    f"  {escape(s.workflow_id)} \\[{escape(s.workflow_type)}]: "
                    f"{escape(', '.join(s.problems))}"
                )
        if failed:
            console.print(
                f"[red]{len(failed)} workflows failed[/] in the last {escape(since)} "
                "(run them again with baton submit)"
            )
            for f in failed:
                console.print(f"  {escape(f.workflow_id)} {f.status.lower()}: {escape(f.reason)}")
        if retrying:
            console.print(
                f"[red]{len(retrying)} activities retrying[/] for over {escape(retrying_for)}"
            )
            for r in retrying:
                console.print(
                    f"  {escape(r.workflow_id)} {escape(r.activity_type)} attempt {r.attempt}, "
                    f"{r.retrying_seconds:.0f} s: {escape(r.last_failure)}"
                )

    emit(data, as_json, render)
    if stuck or failed or retrying:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("replay-check")(replay_check)
    app.command()(patches)
    app.command()(status)
