"""``baton demo``: the article's upgrade, end to end, on the embedded stack.

1. Bring up a real Temporal dev server, the model server and one worker on the PRE-PATCH release.
2. Submit a batch classified by model v1; uncertain documents wait at the review checkpoint.
3. Restart the worker on the current release (the deploy), while those documents are in flight.
4. Submit a second batch: each document is assigned model v2 and runs on v2's worker pool.
5. Start a rollout of candidate v3 at 30 %: a third batch splits by business key between the v2
   and v3 pools; visibility counts each arm; the rollout is promoted, with its audit trail.
6. Complete every pending review (the reviewer gives the document's true class).
7. Blue-green cutover on Worker Versioning: documents pinned to build blue wait at review while
   build green becomes current and takes new ones; ``baton drain --from blue`` shows a progress
   bar until the last blue workflow closes (see ``demo_bluegreen``).
8. Summarize: per branch and model version, all results in the canonical contract, zero
   failures; then stop everything that was started.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton.contracts import DeploymentStrategy, NormalizedClassificationResult, normalize
from modelbaton.contracts.rollout import RolloutPlan
from modelbaton.models.catalog import Catalog, PipelineSection, load_catalog
from modelbaton.models.client import call_model_endpoint, make_http_client
from modelbaton.models.corpus import generate_documents
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.messages import (
    ClassificationOutcome,
    ReviewDecision,
    WorkflowState,
)
from modelbaton.pipeline.starter import legacy_workflow_input, start_document, submit_documents
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
from modelbaton.rollout.client import Rollouts, rollout_status
from modelbaton.rollout.messages import ChangeBy
from modelbaton.settings import Settings
from modelbaton.stack import embedded

DEMO_QUEUE = "modelbaton-demo"


@dataclass
class Batch:
    """Documents of one phase with their true labels (known because the corpus generated them)."""

    name: str
    docs: list[Document]
    truth: dict[str, str]
    handles: dict[str, WorkflowHandle[Any, ClassificationOutcome]] = field(default_factory=dict)


def make_batch(name: str, n: int, seed: int) -> Batch:
    docs: list[Document] = []
    truth: dict[str, str] = {}
    for i, gen in enumerate(generate_documents(n, seed)):
        doc = validate_text(gen.text, f"demo:{name}:{i}")
        docs.append(doc)
        truth[doc.workflow_id] = gen.label
    return Batch(name, docs, truth)


async def submit_legacy(
    client: Client, batch: Batch, deployment: DeploymentStrategy, pipeline: PipelineSection
) -> None:
    """Start a batch as the pre-patch release's starter did (the configuration in the input)."""
    for doc in batch.docs:
        inp = legacy_workflow_input(doc, deployment, pipeline)
        await start_document(client, doc, inp, DEMO_QUEUE)
        batch.handles[doc.workflow_id] = client.get_workflow_handle(
            doc.workflow_id, result_type=ClassificationOutcome
        )


async def submit(
    client: Client, batch: Batch, plan: RolloutPlan, pipeline: PipelineSection
) -> None:
    """Start a batch assigned by the rollout plan, as ``baton submit`` does."""
    report = await submit_documents(client, batch.docs, plan, pipeline, DEMO_QUEUE)
    for doc in batch.docs:
        batch.handles[doc.workflow_id] = client.get_workflow_handle(
            doc.workflow_id, result_type=ClassificationOutcome
        )
    arms = ", ".join(f"{arm}: {n}" for arm, n in sorted(report.by_arm().items()))
    Console().print(f"assignments: {arms}")


async def settle(batch: Batch, within: float = 120.0) -> dict[str, str]:
    """Wait until every workflow is done or waiting for review; return their states."""
    deadline = time.monotonic() + within
    while True:
        states: dict[str, str] = {}
        for wid, handle in batch.handles.items():
            desc = await handle.describe()
            if desc.status is not None and desc.status.name != "RUNNING":
                states[wid] = desc.status.name.lower()
                continue
            view = await handle.query(DocumentClassificationWorkflow.status)
            states[wid] = view.state.value
        pending = [s for s in states.values() if s in ("classifying", "processing")]
        if not pending:
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} documents of {batch.name} still in progress")
        await asyncio.sleep(0.5)


def raw_versus_canonical(console: Console, raws: Sequence[tuple[str, dict[str, Any]]]) -> None:
    table = Table(title="Same document, raw model output vs the canonical contract")
    table.add_column("model")
    table.add_column("raw output (what the model returns)", overflow="fold")
    table.add_column("canonical (what workflows store)", overflow="fold")
    for version, pair in raws:
        table.add_row(version, pair["raw"], pair["canonical"])
    console.print(table)


async def show_raw_vs_canonical(console: Console, catalog: Catalog, text: str) -> None:
    rows: list[tuple[str, dict[str, Any]]] = []
    async with make_http_client() as http:
        for version in ("v1", "v2"):
            config = catalog.get(version)
            raw = await call_model_endpoint(config, text, client=http)
            canon: NormalizedClassificationResult = normalize(raw, config)
            rows.append(
                (
                    version,
                    {
                        "raw": raw.model_dump_json(),
                        "canonical": canon.model_dump_json(),
                    },
                )
            )
    raw_versus_canonical(console, rows)


async def run(
    console: Console, home: Path, per_batch: int, review_threshold: float, keep: bool = False
) -> int:
    settings = Settings.from_env()
    options = embedded.StackOptions(
        home=home,
        workers=1,
        release="initial",
        task_queue=DEMO_QUEUE,
        ephemeral_ports=True,
        pools=("v2", "v3"),
    )
    console.rule("[bold]1. embedded stack, worker on the PRE-PATCH release")
    console.print(
        "starting Temporal, the model server (the first run trains the reference models, "
        "about a minute), the v2 and v3 pools and a worker ..."
    )
    state = embedded.start_stack(options)
    try:
        console.print(
            f"Temporal {state.temporal_address} (UI {state.ui_url}), "
            f"models {state.model_base_url}, state in {home}"
        )
        client = await Client.connect(
            state.temporal_address,
            namespace=state.namespace,
            data_converter=pydantic_data_converter,
        )
        catalog = load_catalog(settings.catalog_path, base_url=state.model_base_url)
        pipeline = catalog.pipeline.model_copy(update={"review_threshold": review_threshold})
        before = make_batch("before", per_batch, seed=101)
        after = make_batch("after", per_batch, seed=202)
        canary = make_batch("canary", per_batch * 2, seed=303)
        rollouts = Rollouts(client, catalog, DEMO_QUEUE)

        await show_raw_vs_canonical(console, catalog, before.docs[0].text)

        console.rule("[bold]2. batch 1: model v1 on the pre-patch code")
        await submit_legacy(
            client, before, DeploymentStrategy(primary_version=catalog.get("v1")), pipeline
        )
        states = await settle(before)
        waiting = [w for w, s in states.items() if s == WorkflowState.AWAITING_REVIEW.value]
        console.print(f"{len(before.docs)} submitted; {len(waiting)} wait for human review")

        console.rule("[bold]3. deploy: restart the worker on the CURRENT release")
        embedded.restart_workers(home, release="assigned")
        console.print(
            "worker now runs releases/r5_assigned.py; in-flight workflows keep going; "
            f"model pools polling: {', '.join(state.pools)}"
        )

        console.rule(f"[bold]4. batch 2: model {catalog.pipeline.primary} on its worker pool")
        await submit(client, after, await rollouts.plan(), pipeline)
        states = await settle(after)
        waiting = [w for w, s in states.items() if s == WorkflowState.AWAITING_REVIEW.value]
        console.print(f"{len(after.docs)} submitted; {len(waiting)} wait for human review")
        in_flight = {
            version: (
                await client.count_workflows(
                    f"ModelVersion = '{version}' AND ExecutionStatus = 'Running' "
                    f"AND TaskQueue = '{DEMO_QUEUE}'"
                )
            ).count
            for version in catalog.versions
        }
        console.print(f"in flight per model version (Temporal visibility): {in_flight}")

        console.rule("[bold]5. rollout: candidate v3 takes 30 % of business keys")
        by = ChangeBy(actor="demo", reason="v3 adds the tax_form class")
        plan = await rollouts.start("v3", 0.3, by)
        console.print(
            f"rollout {plan.rollout_id} (revision {plan.revision}): "
            f"{plan.fraction:.0%} to {plan.candidate.version if plan.candidate else '?'}"
        )
        await submit(client, canary, plan, pipeline)
        await settle(canary)
        arms = await rollouts.arm_counts(plan.rollout_id or "")
        for arm, counts in arms.items():
            console.print(f"  {arm}: {counts.as_dict()} (Temporal visibility)")
        await rollouts.promote(ChangeBy(actor="demo", reason="canary looked healthy"))
        report = await rollout_status(rollouts, plan.rollout_id)
        trail = Table("revision", "who", "action", "what", "why", title="rollout audit trail")
        for entry in report.audit:
            trail.add_row(
                str(entry.revision), entry.actor, entry.action, entry.detail, entry.reason
            )
        console.print(trail)

        console.rule("[bold]6. reviewers complete every pending review")
        reviewed = 0
        for batch in (before, after, canary):
            for wid, handle in batch.handles.items():
                view = await handle.query(DocumentClassificationWorkflow.status)
                if view.state is WorkflowState.AWAITING_REVIEW:
                    decision = ReviewDecision(label=batch.truth[wid], reviewer="demo-reviewer")
                    await handle.execute_update(
                        DocumentClassificationWorkflow.submit_review, decision
                    )
                    reviewed += 1
        console.print(f"{reviewed} reviews submitted")

        console.rule(
            "[bold]7. blue-green cutover: Worker Versioning builds, drained from visibility"
        )
        from modelbaton.demo_bluegreen import blue_green

        cutover = make_batch("blue-green", max(per_batch // 2, 2) * 2, seed=404)
        drain_code, builds = await blue_green(
            console, client, state, catalog, pipeline, cutover, cutover.truth
        )
        console.print(
            f"documents per build: {dict(Counter(builds.values()))}; "
            f"baton drain exit code {drain_code}"
        )

        outcomes: list[ClassificationOutcome] = []
        for batch in (before, after, canary, cutover):
            for handle in batch.handles.values():
                outcomes.append(await asyncio.wait_for(handle.result(), 120))
        ok = await summarize(console, outcomes, [before, after, canary, cutover])
        return ok or drain_code
    finally:
        if keep:
            console.rule("[bold]8. the stack keeps running (--keep)")
            console.print(f"Temporal Web UI: {state.ui_url}")
            console.print(f'point this shell at it: eval "$(baton dev env --home {home})"')
            console.print("then: baton rollout status, baton pending, baton results")
            console.print(f"stop it: baton dev down --home {home}")
        else:
            console.rule("[bold]8. stopping everything the demo started")
            for stopped in embedded.stop_stack(home):
                console.print(f"stopped {stopped}")


async def summarize(
    console: Console, outcomes: list[ClassificationOutcome], batches: list[Batch]
) -> int:
    truth: dict[str, str] = {}
    for b in batches:
        truth |= b.truth
    table = Table(title="Documents per workflow branch")
    for col in ("batch", "branch", "model", "schema", "auto", "reviewed", "escalated", "correct"):
        table.add_column(col, justify="right" if col not in ("batch", "branch") else "left")
    for batch in batches:
        ids = set(batch.handles)
        rows = Counter(
            (o.branch, o.result.model_version, o.result.schema_version)
            for o in outcomes
            if f"classify-{o.document_id}" in ids
        )
        for (branch, model, schema), _n in sorted(rows.items()):
            sel = [
                o
                for o in outcomes
                if f"classify-{o.document_id}" in ids
                and (o.branch, o.result.model_version) == (branch, model)
            ]
            by = Counter(o.outcome.value for o in sel)
            correct = sum(o.final_label == truth[f"classify-{o.document_id}"] for o in sel)
            table.add_row(
                batch.name,
                branch,
                model,
                str(schema),
                str(by["auto"]),
                str(by["reviewed"]),
                str(by["escalated"]),
                f"{correct}/{len(sel)}",
            )
    console.print(table)
    canonical = all(
        isinstance(o.result, NormalizedClassificationResult)
        and isinstance(o.result.scores_by_class, dict)
        for o in outcomes
    )
    # Ask each workflow, not visibility: visibility is eventually consistent and may lag the
    # results we have just received.
    statuses: Counter[str] = Counter()
    for batch in batches:
        for handle in batch.handles.values():
            status = (await handle.describe()).status
            statuses[status.name if status is not None else "UNKNOWN"] += 1
    failed = sum(n for status, n in statuses.items() if status != "COMPLETED")
    console.print(
        f"results: {len(outcomes)}; all in the canonical contract: {canonical}; "
        f"workflow statuses: {dict(statuses)}; failed or unfinished: {failed}"
    )
    ok = canonical and failed == 0 and len(outcomes) == sum(len(b.docs) for b in batches)
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED[/]")
    return 0 if ok else 1


def main(
    home: Path | None = None,
    per_batch: int = 12,
    review_threshold: float = 0.8,
    keep: bool = False,
) -> int:
    """Run the demo in a fresh state directory; return the process exit code.

    With ``keep`` the stack stays up afterwards to explore (Web UI, ``baton`` commands).
    """
    console = Console()
    settings = Settings.from_env()
    home = home or settings.home / "demo"
    # The stack's children inherit this, so the demo reuses the trained-model cache.
    os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)
    # A stack kept by an earlier 'demo --keep' runs from this folder: stop it before clearing.
    embedded.stop_stack(home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return asyncio.run(run(console, home, per_batch, review_threshold, keep))
