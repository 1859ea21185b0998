"""Pipeline commands: ``baton worker``, ``baton submit``, ``baton review``, ``baton results``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, err_console, fail
from modelbaton.cli._project import duration
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.pipeline.intake import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    Document,
    expand_paths,
    read_document,
    validate_text,
)
from modelbaton.pipeline.messages import ReviewDecision
from modelbaton.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from temporalio.client import Client

    from modelbaton.contracts.rollout import RolloutPlan
    from modelbaton.pipeline.follow import DocumentState
    from modelbaton.pipeline.starter import SubmitReport

# Heavy modules (Temporal's client, SQLAlchemy) are imported inside the commands that use them,
# so that 'baton --help' and unrelated commands start fast.


def catalog_from(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog_path, base_url=settings.model_base_url)


def _collect(
    paths: list[Path], generate: int, seed: int, max_bytes: int
) -> tuple[list[Document], dict[str, str]]:
    docs: list[Document] = []
    rejected: dict[str, str] = {}
    for path in expand_paths(paths):
        try:
            docs.append(read_document(path, max_bytes))
        except ModelBatonError as exc:
            rejected[str(path)] = str(exc)
    if generate:
        from modelbaton.models.corpus import generate_documents

        for i, gen in enumerate(generate_documents(generate, seed)):
            source = f"generated:{seed}:{i}"
            try:
                docs.append(validate_text(gen.text, source, max_bytes))
            except ModelBatonError as exc:
                rejected[source] = str(exc)
    return docs, rejected


def submit(
    paths: list[Path] = typer.Argument(None, help="Text files or folders of them."),
    generate: int = typer.Option(0, "--generate", min=0, help="Also submit N generated documents."),
    seed: int = typer.Option(7, help="Seed of the generated documents."),
    model: str | None = typer.Option(
        None, help="Run every document on this catalog version (default: the rollout's plan)."
    ),
    key: str | None = typer.Option(
        None,
        "--key",
        help="Business key for the canary split (a source or customer id); default: each "
        "document's id.",
    ),
    task_queue: str | None = typer.Option(None, help="Task queue (default MODELBATON_TASK_QUEUE)."),
    max_bytes: int = typer.Option(
        DEFAULT_MAX_DOCUMENT_BYTES,
        min=1,
        max=1024 * 1024,
        help="Refuse documents larger than this many bytes (documents travel in history).",
    ),
    wait: bool = typer.Option(
        False,
        "--wait/--no-wait",
        help="Follow the started documents until each is done, failed or waiting for review.",
    ),
    wait_timeout: str = typer.Option(
        "10m", "--timeout", help="With --wait: stop following after this long (e.g. 90s, 10m)."
    ),
    require_pools: bool = typer.Option(
        True,
        "--require-pools/--no-require-pools",
        help="Refuse to start anything when the workers' code sends documents to a model pool "
        "and no worker polled that pool in the last seconds (documents would wait there); a "
        "pool only a shadow uses gives a warning.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Start one workflow per document, on the model the rollout assigns to its key.

    A running or completed document starts nothing new; a failed or terminated one runs again.
    Empty, oversized or unreadable documents are refused with a reason, and nothing is started
    for them. Exit code 1 when any document was refused.
    """
    from modelbaton.contracts.rollout import RolloutPlan, pool_task_queue
    from modelbaton.errors import UnreachableError
    from modelbaton.pipeline.follow import Where, settle
    from modelbaton.pipeline.starter import SubmitReport, submit_documents
    from modelbaton.rollout.client import POOL_LIVENESS_SECONDS, Rollouts, model_ref
    from modelbaton.rollout.pools import pools_needed, reads_assignments
    from modelbaton.stack.connect import connect, workers_release

    within = duration(wait_timeout, "--timeout")
    if within < 1.0:
        raise fail(f"--timeout {wait_timeout!r}: must be at least 1s")
    settings = Settings.from_env()
    queue = task_queue or settings.task_queue
    warnings: list[str] = []
    try:
        catalog = catalog_from(settings)
        fixed = model_ref(catalog, model) if model else None
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    docs, rejected = _collect(list(paths or []), generate, seed, max_bytes)
    if not docs and not rejected:
        raise fail("nothing to submit: give files, folders or --generate N")

    async def main() -> tuple[SubmitReport, RolloutPlan, dict[str, DocumentState]]:
        client = await connect(settings.home)
        rollouts = Rollouts(client, catalog, queue)
        plan = await rollouts.plan()
        if fixed is not None:
            plan = RolloutPlan(model_id=catalog.get(fixed.version).model_id, baseline=fixed)
        release = workers_release(settings.home, client.service_client.config.target_host, queue)
        if require_pools:
            # Only what the workers' code will use, and only a pool that polled just now.
            needed = pools_needed(plan, release)
            idle = [v for v in needed.required if await rollouts.pool_pollers(v) == 0]
            if idle:
                raise UnreachableError(
                    "nothing started: no worker polls the pool of "
                    + ", ".join(f"{v} ({pool_task_queue(queue, v)})" for v in idle)
                    + f" (none polled in the last {POOL_LIVENESS_SECONDS:.0f} s); start it with "
                    "'baton worker --pool VERSION' or 'baton dev pool VERSION'"
                )
            for version in needed.shadow_only:
                if await rollouts.pool_pollers(version) == 0:
                    warnings.append(
                        f"no worker polls the pool of {version}, which only the shadow uses: "
                        "documents run on the baseline, and the shadow records its errors"
                    )
                    err_console.print(f"[yellow]warning:[/] {escape(warnings[-1])}")
        legacy = release is not None and not reads_assignments(release)
        if legacy and plan.candidate is not None:
            warnings.append(
                f"the workers run release {release}, which predates model assignment: "
                f"every document runs on {plan.baseline.version}, none on the candidate"
            )
            err_console.print(f"[yellow]warning:[/] {escape(warnings[-1])}")
        with Progress(console=console, transient=True, disable=as_json or len(docs) < 50) as bar:
            task = bar.add_task("starting workflows", total=len(docs))
            if legacy:
                report = await _submit_legacy(
                    client, docs, catalog, plan, queue, lambda n: bar.advance(task, n)
                )
            else:
                report = await submit_documents(
                    client,
                    docs,
                    plan,
                    catalog.pipeline,
                    queue,
                    key=key,
                    on_progress=lambda n: bar.advance(task, n),
                    current_plan=rollouts.plan if fixed is None else None,
                )
        followed: dict[str, DocumentState] = {}
        if wait and report.launched:
            if not as_json:
                console.print(f"started {len(report.launched)}: " + " ".join(report.launched))
                console.print("following them (Ctrl-C stops following; they keep running)")

            def said(state: DocumentState) -> None:
                if not as_json:
                    console.print(f"  {escape(_state_line(state))}")

            followed = await settle(client, report.launched, within=within, on_change=said)
        return report, plan, followed

    try:
        report, plan, followed = asyncio.run(main()) if docs else (SubmitReport(), None, {})
    except KeyboardInterrupt:
        raise fail("stopped following; the started documents keep running", 130) from None
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    report.rejected.update(rejected)
    reviews = [s for s in followed.values() if s.where is Where.AWAITING_REVIEW]
    failed = [s for s in followed.values() if s.where is Where.FAILED]

    def render() -> None:
        console.print(
            f"started {len(report.started)}, restarted after failure {len(report.restarted)}, "
            f"already running {len(report.already_running)}, already completed "
            f"{len(report.already_completed)}, refused {len(report.rejected)}"
        )
        for arm, count in sorted(report.by_arm().items()):
            console.print(f"  {escape(arm)}: {count}")
        for source, reason in report.rejected.items():
            console.print(f"  [red]refused[/] {escape(source)}: {escape(reason)}")
        if followed:
            done = sum(s.where is Where.COMPLETED for s in followed.values())
            still = sum(s.where is Where.RUNNING for s in followed.values())
            console.print(
                f"completed {done}, waiting for review {len(reviews)}, failed {len(failed)}, "
                f"still running {still}"
            )
        if reviews:
            console.print(
                "review them with: baton review WORKFLOW_ID --label LABEL --reviewer NAME"
            )
            console.print("(baton pending lists every document waiting for review)")

    extra: dict[str, object] = (
        {"plan_revision": plan.revision, "rollout_id": plan.rollout_id} if plan else {}
    )
    if wait:
        extra["documents"] = [s.as_dict() for s in followed.values()]
    if warnings:
        extra["warnings"] = warnings
    emit(report.as_dict() | extra, as_json, render)
    if report.rejected or failed:
        raise typer.Exit(1)


async def _submit_legacy(
    client: Client,
    docs: list[Document],
    catalog: Catalog,
    plan: RolloutPlan,
    queue: str,
    on_progress: Callable[[int], object],
) -> SubmitReport:
    """Start documents the way releases before model assignment read them: the baseline's
    configuration in the input, classified on the workflow worker's own queue (no pool)."""
    from modelbaton.contracts import DeploymentStrategy
    from modelbaton.pipeline.starter import SubmitReport, legacy_workflow_input, start_document

    report = SubmitReport()
    deployment = DeploymentStrategy(primary_version=catalog.get(plan.baseline.version))
    gate = asyncio.Semaphore(32)

    async def one(doc: Document) -> None:
        inp = legacy_workflow_input(doc, deployment, catalog.pipeline)
        async with gate:
            await start_document(client, doc, inp, queue, report)
        on_progress(1)

    await asyncio.gather(*(one(d) for d in docs))
    return report


def _state_line(state: DocumentState) -> str:
    from modelbaton.pipeline.follow import Where

    if state.where is Where.AWAITING_REVIEW:
        return (
            f"{state.workflow_id}: waiting for review (model says {state.label}, "
            f"confidence {state.confidence:.2f})"
        )
    if state.where is Where.COMPLETED:
        return f"{state.workflow_id}: {state.label} ({state.detail})"
    return f"{state.workflow_id}: {state.where.value} {state.detail}".rstrip()


def pending(
    limit: int = typer.Option(200, min=1, help="At most this many documents."),
    as_json: bool = JsonOption,
) -> None:
    """Documents waiting for a human review: id, model label, confidence, age, Web UI link."""
    from rich.table import Table

    from modelbaton.pipeline.follow import pending_reviews
    from modelbaton.stack.connect import connect, read_stack_state

    settings = Settings.from_env()

    async def main() -> tuple[list[Any], str]:
        client = await connect(settings.home)
        return await pending_reviews(client, limit, settings.task_queue), client.namespace

    found, namespace = asyncio.run(main())
    state = read_stack_state(settings.home) or {}
    ui = state.get("ui_url")

    def link(wid: str) -> str | None:
        return f"{ui}/namespaces/{namespace}/workflows/{wid}" if ui else None

    rows = [p.as_dict() | {"web_ui": link(p.workflow_id)} for p in found]

    def render() -> None:
        if not found:
            console.print("no document is waiting for review")
            return
        table = Table("workflow id", "model label", "confidence", "model", "waiting", "Web UI")
        for p in found:
            table.add_row(
                escape(p.workflow_id),
                escape(p.label or "?"),
                f"{p.confidence:.2f}" if p.confidence is not None else "?",
                escape(p.model_version or "?"),
                _age(p.age_seconds),
                escape(link(p.workflow_id) or "-"),
            )
        console.print(table)
        console.print("review one with: baton review WORKFLOW_ID --label LABEL --reviewer NAME")

    emit(rows, as_json, render)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def review(
    workflow_id: str = typer.Argument(..., help="Workflow id of the document under review."),
    label: str = typer.Option(..., help="The label the reviewer decided."),
    reviewer: str = typer.Option(..., help="Who decided."),
    note: str | None = typer.Option(None, help="A note kept with the decision."),
    as_json: bool = JsonOption,
) -> None:
    """Send a review decision (a workflow update; unknown labels are rejected)."""
    from temporalio.client import WorkflowUpdateFailedError

    from modelbaton.pipeline.messages import ReviewReceipt
    from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
    from modelbaton.stack.connect import connect

    settings = Settings.from_env()

    async def main() -> ReviewReceipt:
        client = await connect(settings.home)
        handle = client.get_workflow_handle(workflow_id)
        receipt: ReviewReceipt = await handle.execute_update(
            DocumentClassificationWorkflow.submit_review,
            ReviewDecision(label=label, reviewer=reviewer, note=note),
        )
        return receipt

    try:
        receipt = asyncio.run(main())
    except WorkflowUpdateFailedError as exc:
        raise fail(f"review rejected: {exc.cause}", 1) from None
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    emit(
        receipt.model_dump(),
        as_json,
        lambda: console.print(
            f"review accepted for {receipt.document_id}: {receipt.accepted_label}"
            + (" (changed from the model's label)" if receipt.changed else "")
        ),
    )


def results(as_json: bool = JsonOption) -> None:
    """Counts of stored results per class, per model version, per branch and per outcome."""
    from modelbaton.pipeline.store import ResultsStore

    settings = Settings.from_env()
    try:
        store = ResultsStore(settings.database_url)
    except ModelBatonError as exc:
        raise fail(str(exc)) from None
    where = store.engine.url.render_as_string(hide_password=True)
    try:
        summary: dict[str, Any] = store.summary()
    finally:
        store.close()

    def render() -> None:
        console.print(f"[bold]{summary['total']}[/] results in {where}")
        for key in ("by_class", "by_model_version", "by_branch", "by_outcome"):
            table = Table(title=key.replace("_", " "), title_justify="left")
            table.add_column(key.removeprefix("by_"))
            table.add_column("count", justify="right")
            for name, count in sorted(summary[key].items()):
                table.add_row(str(name), str(count))
            console.print(table)

    emit(summary, as_json, render)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command()(submit)
    app.command()(review)
    app.command()(pending)
    app.command()(results)
