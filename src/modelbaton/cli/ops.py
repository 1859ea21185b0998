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
from modelbaton.cli._options import SampleOption, SeedOption
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import ProjectOption, TaskQueueOption, context, duration
from modelbaton.errors import ModelBatonError
from modelbaton.ops.defaults import DEFAULT_QUERY, DEFAULT_WORKFLOWS

if TYPE_CHECKING:
    from modelbaton.ops import problems, replay

# Temporal's client and worker are imported inside the commands, so 'baton --help' starts fast.


def replay_check(
    workflows: str | None = typer.Option(
        None,
        help="Workflow classes to check, comma-separated module:Class import paths (default: "
        f"the project's; the reference pipeline's is {','.join(DEFAULT_WORKFLOWS)}).",
    ),
    histories: Path | None = typer.Option(
        None,
        help="Folder of JSON histories (ours or 'temporal workflow show -o json'); default: the "
        "project's histories folder, when it declares one and no --query or --build is given.",
    ),
    query: str | None = typer.Option(
        None,
        help="Visibility query on a live server (default: the running workflows of the types "
        f"checked, e.g. {DEFAULT_QUERY}).",
    ),
    processes: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU)."),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Pass when there is nothing to replay (default: exit 2)."
    ),
    sample: int | None = SampleOption,
    seed: int = SeedOption,
    build: str | None = typer.Option(
        None,
        "--build",
        help="Only histories pinned to this Worker Deployment build (BUILD or DEPLOYMENT:BUILD; "
        "the deployment defaults to the one of the task queue), running or closed.",
    ),
    release: str | None = typer.Option(
        None,
        "--release",
        help="Check against this release of the reference pipeline instead of the project's "
        "workflows.",
    ),
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """Replay histories against today's workflow code; exit 1 on any failure.

    Put it in CI between build and deploy: against the committed histories, and against the
    running workflows of staging or production (read-only: it only fetches histories; --sample N
    replays a seeded uniform sample of them). With --build and --release: may the code of
    RELEASE take over the workflows pinned to BUILD?
    """
    from modelbaton.ops import replay
    from modelbaton.stack.connect import connect

    if histories is not None and query is not None:
        raise fail("give --histories or --query, not both")
    if project is not None and (workflows is not None or release is not None):
        raise fail("give --project or --workflows/--release, not both")
    if release is not None and workflows is not None:
        raise fail("give --release or --workflows, not both")
    if histories is not None and build is not None:
        raise fail("--build selects live workflows; it cannot filter --histories")
    if histories is not None and sample is not None:
        raise fail("--sample draws from live workflows; it cannot sample --histories")
    ctx = context(project, task_queue)
    if release is not None:
        from modelbaton.pipeline.releases import RELEASES, class_path

        if release not in RELEASES:
            raise fail(f"--release {release!r}: choose one of {', '.join(RELEASES)}")
        workflows = class_path(release)
    elif workflows is None:
        workflows = ",".join(ctx.project.workflow_paths)
        if histories is None and query is None and build is None and sample is None:
            histories = ctx.project.histories_path
    paths = [p.strip() for p in workflows.split(",") if p.strip()]
    section = ctx.project.section
    # The project's workers' converter, plugins and sandbox passthrough, whichever workflows
    # are replayed: a history is decoded as the workers that wrote it decoded it.
    setup = replay.ReplaySetup(
        data_converter=section.data_converter,
        plugins=tuple(section.plugins),
        passthrough_modules=tuple(section.passthrough_modules),
    )
    try:
        classes = replay.load_workflow_classes(paths)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    checked = _types_condition(classes)
    if build is not None:
        from modelbaton.versioning.builds import Build

        try:
            pinned = Build.parse(build, ctx.deployment())
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        query = f"({query or checked}) AND {pinned.visibility_query()}"
    live = query or f"{checked} AND ExecutionStatus = 'Running'"
    try:
        if histories is not None:
            items = replay.load_histories_from_dir(histories)
        else:

            async def fetch() -> list[replay.HistoryItem]:
                client = await connect(ctx.settings.home)
                return await replay.fetch_histories(client, live, sample=sample, seed=seed)

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
            paths,
            items,
            processes=processes or None,
            on_progress=lambda n: bar.advance(task, n),
            setup=setup,
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


def _types_condition(classes: list[type]) -> str:
    """A visibility condition selecting the workflow types of ``classes``."""
    from temporalio import workflow

    names: list[str] = []
    for cls in classes:
        defn = workflow._Definition.from_class(cls)
        if defn is None:
            raise fail(f"--workflows: {cls.__module__}:{cls.__qualname__} is not a @workflow.defn")
        if (defn.name or "") not in names:
            names.append(defn.name or "")
    if len(names) == 1:
        return f"WorkflowType = '{names[0]}'"
    return "WorkflowType IN (" + ", ".join(f"'{n}'" for n in names) + ")"


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
        "marker (the deployment of the task queue, or --deployment).",
    ),
    deployment: str | None = typer.Option(
        None, "--deployment", help="With --by-build: the Worker Deployment name."
    ),
    project: Path | None = ProjectOption,
    task_queue: str | None = TaskQueueOption,
    as_json: bool = JsonOption,
) -> None:
    """For each patch of the project (its config's, else those its workflow code calls): running
    workflows with and without its marker, and advice."""
    from modelbaton.ops import patches as patch_ops
    from modelbaton.stack.connect import connect

    overrides: dict[str, datetime] = {}
    for item in deprecated_since:
        pid, _, stamp = item.partition("=")
        try:
            overrides[pid] = datetime.fromisoformat(stamp)
        except ValueError:
            raise fail(f"--deprecated-since: {item!r} is not PATCH_ID=ISO-TIMESTAMP") from None
    ctx = context(project, task_queue)
    try:
        known = patch_ops.project_patches(ctx.project)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    unknown = sorted(set(overrides) - {p.patch_id for p in known})
    if unknown:
        raise fail(
            f"--deprecated-since: {unknown[0]!r} is not a patch of project {ctx.project.name} "
            f"(known: {', '.join(p.patch_id for p in known) or 'none'})"
        )
    name = ctx.deployment(deployment) if by_build else ""

    async def main() -> list[dict[str, Any]]:
        client = await connect(ctx.settings.home)
        rows = await patch_ops.patch_report(client, known, deprecated_since=overrides)
        if by_build:
            from modelbaton.versioning.control import DeploymentControl

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


def status(
    since: str = typer.Option(
        "24h", "--since", help="Report workflows that failed within this window (e.g. 24h, 7d)."
    ),
    retrying_for: str = typer.Option(
        "2m",
        "--retrying-for",
        help="Report activities that have kept failing for longer than this (e.g. 90s, 10m).",
    ),
    project: Path | None = ProjectOption,
    task_queue: str | None = typer.Option(
        None,
        "--task-queue",
        help="Only workflows of this task queue (default: the project's workflow types on any "
        "queue).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """What needs a person among the project's workflows: stuck on workflow-task problems
    (non-determinism), failed and not run again, activities retrying for too long. Exit 1 if any."""
    from modelbaton.ops import problems
    from modelbaton.stack.connect import connect

    window = timedelta(seconds=duration(since, "--since"))
    patience = timedelta(seconds=duration(retrying_for, "--retrying-for"))
    ctx = context(project, task_queue)
    where = ctx.types_condition()
    if task_queue:
        where += f" AND TaskQueue = '{ctx.task_queue}'"

    async def main() -> tuple[
        list[problems.StuckWorkflow], list[problems.FailedWorkflow], list[problems.RetryingActivity]
    ]:
        client = await connect(ctx.settings.home)
        return (
            await problems.stuck_workflows(client, where=where),
            await problems.failed_workflows(client, window, where=where),
            await problems.retrying_activities(client, patience, where=where),
        )

    try:
        stuck, failed, retrying = asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    data = {
        "project": ctx.project.name,
        "workflow_types": ctx.workflow_types,
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
