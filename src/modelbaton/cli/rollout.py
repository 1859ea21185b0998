"""``baton rollout``: start, steer and watch a model rollout (the durable rollout workflow)."""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.cli._project import Context, ProjectOption, TaskQueueOption, context, duration
from modelbaton.errors import ModelBatonError

app = typer.Typer(
    no_args_is_help=True,
    help="Move a share of documents to a candidate model, promote or abort it, and watch each arm.",
)

ReasonOption = typer.Option("", "--reason", help="Why: recorded in the audit trail.")
ActorOption = typer.Option(
    None, "--by", help="Who: recorded in the audit trail (default: user@host)."
)
QueueOption = TaskQueueOption


def _actor(by: str | None) -> str:
    if by:
        return by
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _context(project: Path | None, task_queue: str | None, command: str) -> Context:
    """The project's rollout settings: its task queue, and its catalog (which it must have)."""
    return context(project, task_queue, needs_catalog=command)


def _run(
    ctx: Context,
    action: Callable[[Any], Awaitable[Any]],
    *,
    controller: bool = False,
) -> Any:
    """Connect, build the pipeline's rollout operations (or its controller's, with
    ``controller``), run ``action`` on them."""
    from modelbaton.controller.client import Controllers
    from modelbaton.rollout.client import Rollouts
    from modelbaton.stack.connect import connect

    spec = ctx.spec()

    async def main() -> Any:
        catalog = ctx.catalog()
        client = await connect(ctx.settings.home)
        kind = Controllers if controller else Rollouts
        return await action(kind(client, catalog, ctx.task_queue, spec=spec))

    try:
        return asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


def _show_plan(plan: Any, as_json: bool, what: str) -> None:
    def render() -> None:
        console.print(f"{escape(what)}: {escape(_describe(plan))}")

    emit(plan.model_dump(mode="json"), as_json, render)


def _describe(plan: Any) -> str:
    if plan.candidate is None:
        return f"{plan.baseline.version} serves every document (revision {plan.revision})"
    if plan.stage == "shadow":
        noise = (
            f", baseline called twice on {plan.noise_sample:.2%} of those"
            if plan.noise_sample
            else ""
        )
        return (
            f"rollout {plan.rollout_id}: baseline {plan.baseline.version} serves every document; "
            f"candidate {plan.candidate.version} shadows {plan.sample:.2%} of them{noise} "
            f"(revision {plan.revision})"
        )
    return (
        f"rollout {plan.rollout_id}: {plan.fraction:.2%} to candidate {plan.candidate.version}, "
        f"the rest to baseline {plan.baseline.version} (revision {plan.revision})"
    )


def _change_by(by: str | None, reason: str, evidence: str = "") -> Any:
    from modelbaton.rollout.messages import ChangeBy

    return ChangeBy(actor=_actor(by), reason=reason, evidence=evidence)


ForceOption = typer.Option(
    False, "--force", help="From the shadow stage: go on although the shadow verdict is NOT READY."
)


def _shadow_evidence(ctx: Context, plan: Any, force: bool) -> str:
    """The shadow report's verdict when leaving the shadow stage (refused when NOT READY unless
    forced); empty in any other stage."""
    if plan.stage != "shadow" or not plan.rollout_id:
        return ""
    from modelbaton.cli.shadow import load_report

    try:
        report = load_report(plan.rollout_id, ctx=ctx)
    except typer.Exit:
        if not force:
            raise fail(
                f"rollout {plan.rollout_id} has no shadow comparisons yet; wait for some or "
                "pass --force"
            ) from None
        return f"forced with no shadow comparisons of {plan.rollout_id}"
    if report.ready:
        return str(report.summary())
    if not force:
        raise fail(f"refused: {report.summary()}; pass --force to go on anyway", code=1)
    return f"forced past {report.summary()}"


def _leave_shadow(ctx: Context, force: bool, by: str | None, reason: str) -> Any:
    """The change author, with the shadow verdict as evidence when the plan is in shadow."""
    plan = _run(ctx, lambda r: r.plan())
    return _change_by(by, reason, _shadow_evidence(ctx, plan, force))


def _share(name: str, value: float, *, zero: bool = False) -> float:
    low_ok = value >= 0.0 if zero else value > 0.0
    if not (low_ok and value <= 1.0):
        raise fail(f"{name} must be within {'[' if zero else '('}0, 1], got {value}")
    return value


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise fail(f"--fraction must be within [0, 1], got {value}")
    return value


@app.command()
def start(
    candidate: str = typer.Option(..., "--candidate", help="Catalog version to roll out."),
    fraction: float = typer.Option(
        0.05, "--fraction", help="Share of business keys on the candidate, in [0, 1]."
    ),
    salt: str | None = typer.Option(
        None, "--salt", help="Salt of the canary hash (default: random, kept in the plan)."
    ),
    shadow: bool = typer.Option(
        False,
        "--shadow",
        help="Shadow instead of canary: the baseline serves every document and the candidate "
        "also answers --sample of them, for comparison only.",
    ),
    sample: float = typer.Option(
        1.0, "--sample", help="With --shadow: share of business keys shadowed, in (0, 1]."
    ),
    noise_sample: float = typer.Option(
        0.05,
        "--noise-sample",
        help="With --shadow: share of shadowed documents whose baseline is called twice "
        "(the noise baseline), in [0, 1].",
    ),
    shadow_budget: str = typer.Option(
        "60s",
        "--shadow-budget",
        help="With --shadow: how long a shadow call may take, retries included (e.g. 60s, 2m); "
        "a document never waits longer than this for its comparison.",
    ),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Start a rollout of CANDIDATE (a canary, or a shadow); its pool must be polling."""
    _fraction(fraction)
    budget = duration(shadow_budget, "--shadow-budget")
    if shadow:
        _share("--sample", sample)
        _share("--noise-sample", noise_sample, zero=True)
    ctx = _context(project, task_queue, "rollout start")
    change = _change_by(by, reason)
    plan = _run(
        ctx,
        lambda r: r.start(
            candidate,
            fraction,
            change,
            salt=salt,
            sample=sample if shadow else None,
            noise_sample=noise_sample,
            shadow_budget_seconds=budget,
        ),
    )
    _show_plan(plan, as_json, "started")


@app.command("set")
def set_(
    fraction: float = typer.Option(..., "--fraction", help="New candidate share, in [0, 1]."),
    force: bool = ForceOption,
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Change the candidate fraction of the rollout in progress.

    From the shadow stage this starts the canary, only on a READY shadow verdict (or --force);
    the verdict goes into the audit trail.
    """
    _fraction(fraction)
    ctx = _context(project, task_queue, "rollout set")
    change = _leave_shadow(ctx, force, by, reason)
    plan = _run(ctx, lambda r: r.set_fraction(fraction, change))
    _show_plan(plan, as_json, "changed")


@app.command()
def promote(
    force: bool = ForceOption,
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Make the candidate the baseline of every new document.

    From the shadow stage only on a READY shadow verdict (or --force); the verdict goes into
    the audit trail.
    """
    ctx = _context(project, task_queue, "rollout promote")
    change = _leave_shadow(ctx, force, by, reason)
    plan = _run(ctx, lambda r: r.promote(change))
    _show_plan(plan, as_json, "promoted")


@app.command()
def abort(
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Send every new document to the baseline again (running documents keep their arm).

    When a controller drives the rollout, it is aborted instead and rolls back as its plan says.
    """
    ctx = _context(project, task_queue, "rollout abort")
    change = _change_by(by, reason)

    async def stop(c: Any) -> Any:
        if await c.running():
            await c.abort(change)
            return None
        return False

    if _run(ctx, stop, controller=True) is None:
        emit(
            {"controller": "aborting"},
            as_json,
            lambda: console.print(
                "controller aborting: it rolls back as its plan says; follow it with "
                "'baton rollout status --watch'"
            ),
        )
        return
    plan = _run(ctx, lambda r: r.abort(change))
    _show_plan(plan, as_json, "aborted")


@app.command("run")
def run_plan(
    plan_file: Path = typer.Argument(..., help="The rollout plan: steps and gates, in TOML."),
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Run a rollout plan (TOML) unattended.

    The controller applies each step, measures its gates, and promotes, pauses, or aborts and
    rolls back by itself.
    """
    from modelbaton.controller.plan import load_plan

    try:
        plan = load_plan(plan_file)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    ctx = _context(project, task_queue, "rollout run")
    change = _change_by(by, reason)
    workflow_id = _run(ctx, lambda c: c.run(plan, change), controller=True)
    emit(
        {"controller": workflow_id, "candidate": plan.candidate, "steps": len(plan.steps)},
        as_json,
        lambda: console.print(
            f"controller {escape(workflow_id)} runs {len(plan.steps)} steps for candidate "
            f"{escape(plan.candidate)}; follow it with 'baton rollout status --watch'"
        ),
    )


def _steer(what: str, ctx: Context, by: str | None, reason: str, as_json: bool) -> None:
    change = _change_by(by, reason)
    state = _run(ctx, lambda c: getattr(c, what)(change), controller=True)
    emit(
        state.model_dump(mode="json"),
        as_json,
        lambda: console.print(f"controller {what}: at step {state.step + 1}, {state.phase.value}"),
    )


@app.command()
def pause(
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Hold the controller at its current step (the fraction stays) until resumed."""
    _steer("pause", _context(project, task_queue, "rollout pause"), by, reason, as_json)


@app.command()
def resume(
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Let a paused controller measure its step again."""
    _steer("resume", _context(project, task_queue, "rollout resume"), by, reason, as_json)


@app.command()
def skip(
    reason: str = ReasonOption,
    by: str | None = ActorOption,
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """Pass the controller's current step by hand (recorded as such) and go on."""
    _steer("skip", _context(project, task_queue, "rollout skip"), by, reason, as_json)


@app.command()
def status(
    rollout_id: str | None = typer.Option(
        None, "--rollout", help="Count this rollout's arms (default: the current or last one)."
    ),
    watch: bool = typer.Option(False, "--watch", help="Refresh every --interval until Ctrl-C."),
    interval: str = typer.Option(
        "2s", "--interval", help="Time between refreshes (at least 200ms; e.g. 2s, 1m)."
    ),
    max_refreshes: int = typer.Option(
        0, "--max-refreshes", min=0, help="With --watch: stop after N refreshes (0: until Ctrl-C)."
    ),
    task_queue: str | None = QueueOption,
    project: Path | None = ProjectOption,
    as_json: bool = JsonOption,
) -> None:
    """The plan, the audit trail, and per arm: running, completed, failed, waiting for review."""
    from modelbaton.rollout.client import rollout_status

    every = duration(interval, "--interval")
    if every < 0.2:
        raise fail(f"--interval {interval!r}: must be at least 200ms")
    ctx = _context(project, task_queue, "rollout status")

    def once() -> None:
        report = _run(ctx, lambda r: rollout_status(r, rollout_id))
        view = _run(ctx, lambda c: c.status(), controller=True)
        data = report.as_dict() | {"controller": view.model_dump(mode="json") if view else None}
        emit(data, as_json, lambda: _render_status(report, view))

    if not watch:
        once()
        return
    refreshes = 0
    try:
        while True:
            if not as_json:
                console.clear()
            once()
            refreshes += 1
            if max_refreshes and refreshes >= max_refreshes:
                return
            time.sleep(every)
    except KeyboardInterrupt:
        return


def _render_controller(view: Any) -> None:
    from modelbaton.controller.plan import describe_step

    state, steps = view.state, view.plan.steps
    at = min(state.step + 1, len(steps))
    console.print(
        f"[bold]controller[/]: {escape(state.phase.value)}, step {at} of {len(steps)} "
        f"(candidate {escape(view.plan.candidate)})"
    )
    for i, step in enumerate(steps):
        mark = "done" if i < state.step else ("now" if i == state.step else "")
        console.print(f"  {i + 1}. {escape(describe_step(step))} {mark}")
    for result in state.last_results:
        console.print(f"  gate {escape(result.line())}")
    if state.abort_reason:
        console.print(f"  [red]{escape(state.abort_reason)}[/]")


def _render_status(report: Any, view: Any = None) -> None:
    plan = report.plan
    console.print(f"[bold]{escape(plan.model_id)}[/]: {escape(_describe(plan))}")
    if view is not None:
        _render_controller(view)
    if report.arms:
        table = Table("arm", "running", "waiting for review", "completed", "failed")
        for arm, counts in report.arms.items():
            table.add_row(
                escape(arm),
                str(counts.running),
                str(counts.waiting_for_review),
                str(counts.completed),
                str(counts.failed),
            )
        console.print(table)
    if report.audit:
        trail = Table("when (UTC)", "revision", "who", "action", "what", "why", title="audit trail")
        for entry in report.audit:
            trail.add_row(
                entry.at.strftime("%Y-%m-%d %H:%M:%S"),
                str(entry.revision),
                escape(entry.actor),
                escape(entry.action),
                escape(entry.detail),
                escape(entry.reason),
            )
        console.print(trail)
