"""``baton rollback`` and ``baton preflight``: deciding, from live state, how to undo an upgrade
and whether to start one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import Context, ProjectOption, context
from modelbaton.cli.rollout import ActorOption, QueueOption, ReasonOption, _change_by
from modelbaton.errors import ModelBatonError


def _connected(ctx: Context, action: Any) -> Any:
    from modelbaton.pipeline.store import ResultsStore
    from modelbaton.stack.connect import connect

    settings = ctx.settings

    async def main() -> Any:
        catalog = ctx.catalog()
        client = await connect(settings.home)
        store = ResultsStore(settings.database_url)
        try:
            return await action(client, catalog, store, ctx.task_queue)
        finally:
            store.close()

    try:
        return asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


def rollback(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print exactly what would be done, and do nothing."
    ),
    let_finish: bool = typer.Option(
        False, "--let-finish", help="Scenario B: let unfinished candidate documents finish."
    ),
    restart_on_baseline: bool = typer.Option(
        False,
        "--restart-on-baseline",
        help="Scenario B: terminate unfinished candidate documents and start each again on the "
        "baseline with the same document.",
    ),
    rerun_since: bool = typer.Option(
        False,
        "--rerun-since",
        help="After a promotion: start every document the promoted model served since the "
        "promotion again on the restored model (their records are kept as superseded).",
    ),
    release: str | None = typer.Option(
        None,
        "--release",
        help="The workflow release the workers run (default: the current one); decides scenario C.",
    ),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Roll back the current (or last aborted) rollout by scenario (A, B or C), or the last
    promotion.

    A: nothing ran the candidate. B: candidate documents exist (--let-finish or
    --restart-on-baseline). C: the code has no path for the baseline any more (explained, with
    the worked example; exit 1). After a promotion: the baseline it replaced serves again, and
    with --rerun-since the documents the promoted model served since are started again on it.
    """
    from modelbaton.controller import rollback as rb
    from modelbaton.controller.client import Controllers
    from modelbaton.rollout.client import Rollouts

    if let_finish and restart_on_baseline:
        raise fail("choose one of --let-finish and --restart-on-baseline")
    ctx = context(project, task_queue, needs_catalog="rollback")
    spec = ctx.spec(release)
    change = _change_by(by, reason)

    async def act(client: Any, catalog: Any, store: Any, queue: str) -> Any:
        if await Controllers(client, catalog, queue, spec=spec).running():
            raise fail(
                "a controller drives this rollout; abort it with 'baton rollout abort' (it "
                "rolls back as its plan says)"
            )
        rollouts = Rollouts(client, catalog, queue, spec=spec)
        promoted = await rb.assess_promoted(rollouts, rerun_since=rerun_since)
        if promoted is not None:
            if let_finish or restart_on_baseline:
                raise fail(
                    f"rollout {promoted.promotion.rollout_id} was promoted: --let-finish and "
                    "--restart-on-baseline apply to a rollout in progress; use --rerun-since"
                )
            if dry_run:
                return promoted, None
            return promoted, await rb.execute_promoted(rollouts, promoted, by=change)
        if rerun_since:
            raise fail(
                "--rerun-since applies after a promotion, and the last rollout was not promoted"
            )
        assessed = await rb.assess(rollouts, restart_on_baseline=restart_on_baseline)
        if assessed.scenario == "B" and not (let_finish or restart_on_baseline) and not dry_run:
            raise fail(
                f"scenario B: {assessed.explanation}; choose --let-finish or "
                "--restart-on-baseline (see --dry-run)"
            )
        if dry_run or assessed.scenario == "C":
            return assessed, None
        return assessed, await rb.execute(
            rollouts, assessed, restart_on_baseline=restart_on_baseline, by=change
        )

    assessed, outcome = _connected(ctx, act)
    if isinstance(assessed, rb.PromotionRollback):
        _show_promotion_rollback(assessed, outcome, dry_run, as_json)
        return
    data = assessed.as_dict() | {
        "dry_run": dry_run,
        "restarted": outcome.restarted if outcome else [],
        "left_to_finish": outcome.left_to_finish if outcome else [],
    }

    def render() -> None:
        head = "would" if dry_run else "did"
        console.print(
            f"[bold]scenario {assessed.scenario}[/] for rollout {escape(str(assessed.rollout_id))}"
            f" (candidate {escape(str(assessed.candidate))}, baseline {escape(assessed.baseline)})"
        )
        console.print(escape(assessed.explanation))
        if assessed.scenario != "C":
            for action in assessed.actions:
                console.print(f"  {head}: {escape(action)}")
            if not assessed.actions:
                console.print("  nothing to do")
        if outcome and outcome.restarted:
            console.print(f"{len(outcome.restarted)} documents restarted on the baseline")

    emit(data, as_json, render)
    if assessed.scenario == "C":
        raise typer.Exit(1)


def _show_promotion_rollback(assessed: Any, outcome: Any, dry_run: bool, as_json: bool) -> None:
    p = assessed.promotion
    data = assessed.as_dict() | {
        "dry_run": dry_run,
        "restarted": outcome.restarted if outcome else [],
    }

    def render() -> None:
        head = "would" if dry_run else "did"
        console.print(
            f"[bold]rollback of the promotion[/] of {escape(p.promoted.version)} "
            f"(rollout {escape(str(p.rollout_id))}): {escape(p.previous.version)} serves again"
        )
        console.print(
            f"{len(assessed.completed_since)} documents completed on "
            f"{escape(p.promoted.version)} since the promotion"
        )
        for action in assessed.actions:
            console.print(f"  {head}: {escape(action)}")
        if outcome and outcome.restarted:
            console.print(
                f"{len(outcome.restarted)} documents restarted on {escape(p.previous.version)}"
            )

    emit(data, as_json, render)


def preflight(
    candidate: str = typer.Option(..., "--candidate", help="The catalog version to upgrade to."),
    release: str | None = typer.Option(
        None, "--release", help="The workflow release that will run (default: the current one)."
    ),
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """The pre-upgrade checklist as one command; exit 1 on any fail.

    Schemas and normalizers, compatibility both ways, replay of live histories, the shadow
    verdict, patches, stuck workflows, pools polling.
    """
    from modelbaton.ops.preflight import run_preflight

    ctx = context(project, task_queue, needs_catalog="preflight")
    spec = ctx.spec(release)

    async def act(client: Any, catalog: Any, store: Any, queue: str) -> Any:
        return await run_preflight(client, catalog, store, queue, candidate, spec=spec)

    result = _connected(ctx, act)

    def render() -> None:
        table = Table(
            "check", "result", "why", title=f"preflight: {result.baseline} -> {candidate}"
        )
        colours = {"pass": "green", "fail": "red", "n/a": "dim"}
        for check in result.checks:
            colour = colours[check.status.value]
            table.add_row(
                escape(check.name), f"[{colour}]{check.status.value}[/]", escape(check.reason)
            )
        console.print(table)
        console.print("[bold green]ready to upgrade[/]" if result.ok else "[bold red]not ready[/]")

    emit(result.as_dict(), as_json, render)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command()(rollback)
    app.command()(preflight)
