"""Pipeline commands: ``baton worker``, ``baton submit``, ``baton review``, ``baton results``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from modelbaton.cli._boundary import fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
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
from modelbaton.pipeline.releases import CURRENT_RELEASE
from modelbaton.pipeline.starter import SubmitReport, submit_documents
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.worker import WorkerOptions, run_worker
from modelbaton.settings import Settings
from modelbaton.stack.connect import connect


def _catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog_path, base_url=settings.model_base_url)


def worker(
    task_queue: str | None = typer.Option(None, help="Task queue (default MODELBATON_TASK_QUEUE)."),
    release: str = typer.Option(
        CURRENT_RELEASE,
        help="Workflow release: initial, patched, deprecated, complete or assigned.",
    ),
    pool: str | None = typer.Option(
        None,
        "--pool",
        help="Run the pool of this model version instead: only its classify activity, on the "
        "queue <task queue>-model-<version>, with the catalog's max_concurrent.",
    ),
    max_concurrent_activities: int = typer.Option(64, min=1),
    max_concurrent_workflow_tasks: int = typer.Option(8, min=1),
) -> None:
    """Run a workflow worker (a release, the rollout workflow, shared activities) or a model pool,
    until SIGINT or SIGTERM."""
    settings = Settings.from_env()
    queue = task_queue or settings.task_queue
    if pool is not None:
        from modelbaton.pipeline.worker import run_pool

        try:
            _catalog(settings).get(pool)
        except ModelBatonError as exc:
            raise fail_error(exc) from None

        async def pool_main() -> None:
            client = await connect(settings.home)
            await run_pool(client, settings, queue, pool)

        try:
            asyncio.run(pool_main())
        except ModelBatonError as exc:
            raise fail_error(exc) from None
        return
    options = WorkerOptions(
        task_queue=queue,
        release=release,
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
    )

    async def main() -> None:
        client = await connect(settings.home)
        await run_worker(client, settings, options)

    try:
        asyncio.run(main())
    except ModelBatonError as exc:
        raise fail_error(exc) from None


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
    max_bytes: int = typer.Option(DEFAULT_MAX_DOCUMENT_BYTES, min=1, max=1024 * 1024),
    wait: bool = typer.Option(
        False, "--wait/--no-wait", help="Wait for every started document's result."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Start one workflow per document, on the model the rollout assigns to its key.

    A running or completed document starts nothing new; a failed or terminated one runs again.
    Empty, oversized or unreadable documents are refused with a reason, and nothing is started
    for them. Exit code 1 when any document was refused.
    """
    from modelbaton.contracts.rollout import RolloutPlan
    from modelbaton.rollout.client import Rollouts, model_ref

    settings = Settings.from_env()
    queue = task_queue or settings.task_queue
    try:
        catalog = _catalog(settings)
        fixed = model_ref(catalog, model) if model else None
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    docs, rejected = _collect(list(paths or []), generate, seed, max_bytes)
    if not docs and not rejected:
        raise fail("nothing to submit: give files, folders or --generate N")

    async def main() -> tuple[SubmitReport, RolloutPlan]:
        client = await connect(settings.home)
        plan = await Rollouts(client, catalog, queue).plan()
        if fixed is not None:
            plan = RolloutPlan(model_id=catalog.get(fixed.version).model_id, baseline=fixed)
        with Progress(console=console, transient=True, disable=as_json or len(docs) < 50) as bar:
            task = bar.add_task("starting workflows", total=len(docs))
            report = await submit_documents(
                client,
                docs,
                plan,
                catalog.pipeline,
                queue,
                key=key,
                on_progress=lambda n: bar.advance(task, n),
            )
            if wait:
                waiting = bar.add_task("waiting for results", total=len(report.launched))
                for wid in report.launched:
                    await client.get_workflow_handle(wid).result()
                    bar.advance(waiting, 1)
            return report, plan

    try:
        report, plan = asyncio.run(main()) if docs else (SubmitReport(), None)
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    report.rejected.update(rejected)

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

    extra = {"plan_revision": plan.revision, "rollout_id": plan.rollout_id} if plan else {}
    emit(report.as_dict() | extra, as_json, render)
    if report.rejected:
        raise typer.Exit(1)


def review(
    workflow_id: str = typer.Argument(..., help="Workflow id of the document under review."),
    label: str = typer.Option(..., help="The label the reviewer decided."),
    reviewer: str = typer.Option(..., help="Who decided."),
    note: str | None = typer.Option(None),
    as_json: bool = JsonOption,
) -> None:
    """Send a review decision (a workflow update; unknown labels are rejected)."""
    from temporalio.client import WorkflowUpdateFailedError

    from modelbaton.pipeline.messages import ReviewReceipt
    from modelbaton.pipeline.workflow import DocumentClassificationWorkflow

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
    settings = Settings.from_env()
    store = ResultsStore(settings.database_url)
    try:
        summary: dict[str, Any] = store.summary()
    finally:
        store.close()

    def render() -> None:
        console.print(f"[bold]{summary['total']}[/] results in {settings.database_url}")
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
    app.command()(worker)
    app.command()(submit)
    app.command()(review)
    app.command()(results)
