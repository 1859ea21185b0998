"""``baton demo``: the article's upgrade, end to end, on the embedded stack.

1. Bring up a real Temporal dev server, the model server and one worker on the PRE-PATCH release.
2. Submit a batch classified by model v1; uncertain documents wait at the review checkpoint.
3. Restart the worker on the current release (the deploy), while those documents are in flight.
4. Submit a second batch: each document is assigned model v2 and runs on v2's worker pool.
5. The rollout controller upgrades to v3 unattended while documents keep arriving: a shadow of
   every document until its verdict is READY, a 30 % canary, the promotion.
6. A quietly wrong candidate, v4: valid output, consistent scores, the wrong class on about 30 %
   of documents. The baseline also answers every canary document (off the primary path), so
   the agreement gate sees v4 disagree far beyond the baseline's own noise, without a single
   review; the controller aborts and restarts v4's documents on the baseline (rollback scenario
   B); the audit trail of both rollouts is printed.
7. Complete every pending review (the reviewer gives the document's true class).
8. Blue-green cutover on Worker Versioning: documents pinned to build blue wait at review while
   build green becomes current and takes new ones; ``baton drain --from blue`` shows a progress
   bar until the last blue workflow closes (see ``demo_bluegreen``).
9. Summarize: per branch and model version, all results in the canonical contract, zero
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton.contracts import DeploymentStrategy, NormalizedClassificationResult, normalize
from modelbaton.contracts.rollout import RolloutPlan
from modelbaton.controller.client import Controllers
from modelbaton.controller.messages import ControllerState
from modelbaton.controller.plan import parse_plan
from modelbaton.controller.workflow import describe_step
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
#: The controller's plans: seconds, not hours, so the demo sees every step.
UPGRADE_PLAN: dict[str, Any] = {
    "candidate": "v3",
    "poll": 1,
    # Five canary documents cannot show non-inferiority: the gates only watch for harm here.
    "gates": {"waive": ["failure_rate", "p95_latency", "review_share", "reviewed_accuracy"]},
    "steps": [
        {"kind": "shadow", "sample": 1.0, "documents": 120, "noise_sample": 0.1, "budget": 30},
        {"kind": "canary", "fraction": 0.3, "bake": 5, "min_documents": 5},
        {"kind": "promote"},
    ],
}
BAD_PLAN: dict[str, Any] = {
    "candidate": "v4",
    "poll": 1,
    # v4's completed answers are wrong too: run them again on the baseline.
    "on_failure": "rerun-on-baseline",
    # The live signal is agreement: no reviews are needed. Failures and stuck workflows stay
    # watched; latency, review share and reviewed accuracy are off so that alpha is not split
    # among gates this short canary cannot decide.
    "gates": {
        "retrying_after": 3,
        "max_agreement_drop": 0.05,
        "max_p95_latency_ratio": False,
        "max_review_share_increase": False,
        "max_accuracy_drop": False,
    },
    "steps": [
        {
            "kind": "canary",
            "fraction": 0.5,
            "compare_sample": 1.0,
            "bake": 120,
            "min_documents": 20,
        },
        {"kind": "promote"},
    ],
}


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


async def feed(
    client: Client,
    batch: Batch,
    source: Batch,
    rollouts: Rollouts,
    pipeline: PipelineSection,
    stop: asyncio.Event,
    every: float = 0.25,
) -> None:
    """Submit ``source``'s documents one by one, each assigned by the plan in force then, until
    ``stop`` is set or they run out (as documents arrive in production during a rollout)."""
    for doc in source.docs:
        if stop.is_set():
            return
        await submit_documents(client, [doc], await rollouts.plan(), pipeline, DEMO_QUEUE)
        batch.docs.append(doc)
        batch.truth[doc.workflow_id] = source.truth[doc.workflow_id]
        batch.handles[doc.workflow_id] = client.get_workflow_handle(
            doc.workflow_id, result_type=ClassificationOutcome
        )
        await asyncio.sleep(every)


async def follow_controller(
    console: Console, controllers: Controllers, stop: asyncio.Event, feeding: asyncio.Task[None]
) -> ControllerState:
    """Print each change of the controller's step and phase until it finishes."""
    last = ""
    handle = controllers.handle()
    while True:
        view = await controllers.status()
        if view is not None:
            s = view.state
            at = min(s.step, len(view.plan.steps) - 1)
            line = f"  step {at + 1}/{len(view.plan.steps)} {describe_step(view.plan.steps[at])}: "
            line += s.phase.value
            if s.last_results:
                line += " | " + ", ".join(
                    r.line() if r.gate in ("shadow", "drain") else f"{r.gate} {r.shown}"
                    for r in s.last_results
                )
            if line != last:
                console.print(line, highlight=False)
                last = line
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            stop.set()  # between two documents, so every started one is in its batch
            await feeding
            state: ControllerState = await handle.result()
            return state
        await asyncio.sleep(1.0)


def demo_catalog(home: Path, packaged: Path) -> Path:
    """The packaged catalog plus v4, a quietly wrong candidate the model server serves."""
    path = home / "catalog.toml"
    path.write_text(
        packaged.read_text()
        + "\n[[models]]\n"
        + 'model_id = "doc-classifier"\nversion = "v4"\n'
        + 'endpoint = "/models/v4/classify"\noutput_schema_version = 2\ntimeout_seconds = 5.0\n'
        + 'reference = "v3-quietly-wrong"\n'
    )
    return path


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
    packaged = Settings.from_env().catalog_path
    before = os.environ.get("MODELBATON_CATALOG")
    # The stack's processes (and this one) read the catalog from here, v4 included.
    os.environ["MODELBATON_CATALOG"] = str(demo_catalog(home, packaged))
    try:
        return await run_stack(console, home, per_batch, review_threshold, keep)
    finally:
        if before is None:
            os.environ.pop("MODELBATON_CATALOG", None)
        else:
            os.environ["MODELBATON_CATALOG"] = before


async def run_stack(
    console: Console, home: Path, per_batch: int, review_threshold: float, keep: bool
) -> int:
    settings = Settings.from_env()
    options = embedded.StackOptions(
        home=home,
        workers=1,
        release="initial",
        task_queue=DEMO_QUEUE,
        ephemeral_ports=True,
        pools=("v2", "v3", "v4"),
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
        upgrade_source = make_batch("upgrade", 400, seed=303)
        bad_source = make_batch("bad", 400, seed=404)
        upgrade = Batch("upgrade", [], {})
        bad = Batch("bad-candidate", [], {})
        rollouts = Rollouts(client, catalog, DEMO_QUEUE)
        controllers = Controllers(client, catalog, DEMO_QUEUE)

        await show_raw_vs_canonical(console, catalog, before.docs[0].text)

        console.rule("[bold]2. batch 1: model v1 on the pre-patch code")
        await submit_legacy(
            client, before, DeploymentStrategy(primary_version=catalog.get("v1")), pipeline
        )
        states = await settle(before)
        waiting = [w for w, s in states.items() if s == WorkflowState.AWAITING_REVIEW.value]
        console.print(f"{len(before.docs)} submitted; {len(waiting)} wait for human review")

        console.rule("[bold]3. deploy: restart the worker on the CURRENT release")
        embedded.restart_workers(home, release=embedded.DEFAULT_RELEASE)
        console.print(
            "worker now runs releases/r6_shadow.py; in-flight workflows keep going; "
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

        console.rule("[bold]5. the rollout controller upgrades to v3 while documents arrive")
        console.print(
            "plan: shadow every document until 120 comparisons are in and the verdict is READY; "
            "30 % canary for 5 s and 5 candidate documents; promote"
        )
        by = ChangeBy(actor="demo", reason="v3 adds the tax_form class")
        await controllers.run(parse_plan(UPGRADE_PLAN), by)
        stop = asyncio.Event()
        feeding = asyncio.create_task(
            feed(client, upgrade, upgrade_source, rollouts, pipeline, stop)
        )
        ctl = await follow_controller(console, controllers, stop, feeding)
        after_upgrade = await rollouts.plan()
        first = after_upgrade.rollout_id
        console.print(
            f"controller {ctl.phase.value}: baseline is now {after_upgrade.baseline.version}"
        )
        await settle(upgrade)

        console.rule("[bold]6. a quietly wrong candidate: v4 answers validly, wrong on ~30 %")
        console.print(
            "plan: 50 % canary for 120 s and 20 documents, the baseline answering beside every "
            "canary document; agreement may drop at most 5 points below the baseline's own; promote"
        )
        by = ChangeBy(actor="demo", reason="v4: new weights")
        bad_started = datetime.now(UTC)
        await controllers.run(parse_plan(BAD_PLAN), by)
        stop = asyncio.Event()
        feeding = asyncio.create_task(feed(client, bad, bad_source, rollouts, pipeline, stop))
        ctl = await follow_controller(console, controllers, stop, feeding)
        second = (await rollouts.plan()).rollout_id
        on_v4 = await client.count_workflows(
            f"TaskQueue = '{DEMO_QUEUE}' AND RolloutId = '{second}' AND RolloutArm = 'candidate'"
        )
        lag = (
            f"{(ctl.fraction_zero_at - ctl.breach_at).total_seconds():.1f} s"
            if ctl.fraction_zero_at and ctl.breach_at
            else "n/a"
        )
        to_abort = (
            f"{(ctl.fraction_zero_at - bad_started).total_seconds():.1f} s"
            if ctl.fraction_zero_at
            else "n/a"
        )
        console.print(f"controller {ctl.phase.value} at step {ctl.step + 1}: {ctl.abort_reason}")
        console.print(
            f"start -> abort: {to_abort}; gate breach -> candidate fraction 0: {lag}; "
            f"documents exposed to v4: {on_v4.count}; restarted on the baseline: "
            f"{len(ctl.rolled_back)}; reviews used: 0"
        )
        await settle(bad)
        report = await rollout_status(rollouts, second)
        trail = Table(
            "when", "who", "action", "what", title=f"rollout audit trail ({first}, {second})"
        )
        for entry in report.audit:
            if entry.revision == 0:
                continue
            trail.add_row(entry.at.strftime("%H:%M:%S"), entry.actor, entry.action, entry.detail)
        console.print(trail)

        console.rule("[bold]7. reviewers complete every pending review")
        reviewed = 0
        for batch in (before, after, upgrade, bad):
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
            "[bold]8. blue-green cutover: Worker Versioning builds, drained from visibility"
        )
        from modelbaton.demo_bluegreen import blue_green

        cutover = make_batch("blue-green", max(per_batch // 2, 2) * 2, seed=505)
        drain_code, builds = await blue_green(
            console, client, state, catalog, pipeline, cutover, cutover.truth
        )
        console.print(
            f"documents per build: {dict(Counter(builds.values()))}; "
            f"baton drain exit code {drain_code}"
        )

        outcomes: list[ClassificationOutcome] = []
        for batch in (before, after, upgrade, bad, cutover):
            for handle in batch.handles.values():
                outcomes.append(await asyncio.wait_for(handle.result(), 120))
        ok = await summarize(console, outcomes, [before, after, upgrade, bad, cutover])
        return ok or drain_code
    finally:
        if keep:
            console.rule("[bold]9. the stack keeps running (--keep)")
            console.print(f"Temporal Web UI: {state.ui_url}")
            console.print(f'point this shell at it: eval "$(baton dev env --home {home})"')
            console.print("then: baton rollout status, baton pending, baton results")
            console.print(f"stop it: baton dev down --home {home}")
        else:
            console.rule("[bold]9. stopping everything the demo started")
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
    # A v4 document that waited for review was kept there (its reviewer decided its label);
    # every other v4 document must have run again on the baseline.
    on_v4 = [o for o in outcomes if o.result.model_version == "v4"]
    on_bad = sorted({o.document_id for o in on_v4 if o.outcome.value != "reviewed"})
    console.print(
        f"documents whose current result is an unreviewed v4 answer: {len(on_bad)}; "
        f"v4 documents a reviewer decided: {len(on_v4) - len(on_bad)}"
    )
    ok = (
        canonical
        and failed == 0
        and not on_bad
        and len(outcomes) == sum(len(b.docs) for b in batches)
    )
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
