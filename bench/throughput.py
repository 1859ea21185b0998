"""Documents per second through the real pipeline versus two floors, on one dev server.

- bare: a plain two-activity workflow with no-op activities and the default data converter
  (``_bare.py``), the physical floor of one Python worker on this machine;
- floor: the pipeline's own workflow release with activities that answer at once
  (``_floor.py``), the project floor;
- pipeline: the same release with the real activities (model server, database).

Same server, same worker settings, same number of workflows for each. pipeline/floor says how
much of the orchestration ceiling the real work leaves; pipeline/bare adds what the workflow's
shape (Pydantic payloads, search attributes, patch marker, handlers) costs on top.

    uv run python bench/throughput.py [--docs 400] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).parent))
from _bare import BARE_ACTIVITIES, BareTwoActivityWorkflow
from _common import documents, model_server, peak_rss_mib
from _floor import FLOOR_ACTIVITIES, fixed_classify_v2
from modelbaton.app.worker import (
    WorkerOptions,
    build_pool_worker,
    build_worker,
    pipeline_activities,
    workflow_class,
)
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, pool_task_queue
from modelbaton.models.catalog import load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.starter import start_workflow, workflow_input
from modelbaton.pipeline.store import ResultsStore
from modelbaton.settings import Settings
from modelbaton.stack.connect import temporal_binary

#: Starts the workflow of one document on a task queue; None when it was a duplicate.
Starter = Callable[[Document, str], Awaitable[WorkflowHandle[Any, Any] | None]]


async def run_batch(
    client: Client,
    workflow: type,
    activities: Sequence[object],
    docs: list[Document],
    start: Starter,
    pool: Callable[[str], Worker] | None = None,
) -> float:
    """Start every document, wait for every result; documents per second, start to last result.

    The worker gets the project's settings (``WorkerOptions``) whatever the workflow; ``pool``
    builds the model pool of the pipeline's queue (the pipeline classifies on v2's pool).
    """
    options = WorkerOptions(task_queue=f"bench-{uuid.uuid4().hex[:8]}")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            build_worker(client, options, activities, workflows=[workflow])
        )
        if pool is not None:
            await stack.enter_async_context(pool(options.task_queue))
        t0 = time.perf_counter()
        gate = asyncio.Semaphore(64)

        async def one(doc: Document) -> None:
            async with gate:
                handle = await start(doc, options.task_queue)
            assert handle is not None, "duplicate document in bench batch"
            await handle.result()

        await asyncio.gather(*(one(d) for d in docs))
        return len(docs) / (time.perf_counter() - t0)


async def main(n_docs: int, warmup: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {"bare": [], "floor": [], "pipeline": []}
    with tempfile.TemporaryDirectory(prefix="mb-bench-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env()
        os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)  # reuse trained models
        with model_server(home) as url:
            catalog = load_catalog(settings.catalog_path, base_url=url)
            plan = RolloutPlan(
                model_id=catalog.primary.model_id,
                baseline=ModelRef(version="v2", output_schema_version=2),
            )
            pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
            async with await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal_binary()),
                data_converter=pydantic_data_converter,
                search_attributes=search_attributes.ALL,
            ) as env:
                # The bare workflow talks to the same server through the SDK's default converter.
                bare_config = env.client.config() | {"data_converter": DataConverter.default}
                bare_client = Client(**bare_config)
                release = workflow_class(WorkerOptions(task_queue="-").release)
                store = ResultsStore(f"sqlite:///{home / 'bench.db'}")
                async with make_http_client() as http:
                    source = CatalogSource.fixed(catalog)
                    real = pipeline_activities(store, source, http).all()

                    def real_pool(task_queue: str) -> Worker:
                        return build_pool_worker(env.client, task_queue, "v2", source, http)

                    def floor_pool(task_queue: str) -> Worker:
                        return Worker(
                            env.client,
                            task_queue=pool_task_queue(task_queue, "v2"),
                            activities=[fixed_classify_v2],
                        )

                    def start_bare(doc: Document, task_queue: str) -> Awaitable[Any]:
                        return bare_client.start_workflow(
                            BareTwoActivityWorkflow.run,
                            doc.document_id,
                            id=f"bare-{doc.document_id}",
                            task_queue=task_queue,
                        )

                    def start_pipeline(doc: Document, task_queue: str) -> Awaitable[Any]:
                        assignment = plan.assign(doc.document_id, task_queue)
                        inp = workflow_input(doc, assignment, pipeline)
                        return start_workflow(env.client, doc.workflow_id, inp, task_queue)

                    cases: dict[str, Callable[[list[Document]], Awaitable[float]]] = {
                        "bare": lambda docs: run_batch(
                            bare_client, BareTwoActivityWorkflow, BARE_ACTIVITIES, docs, start_bare
                        ),
                        "floor": lambda docs: run_batch(
                            env.client, release, FLOOR_ACTIVITIES, docs, start_pipeline, floor_pool
                        ),
                        "pipeline": lambda docs: run_batch(
                            env.client, release, real, docs, start_pipeline, real_pool
                        ),
                    }
                    seed = 0
                    # Warm every path (sandbox imports, connections) before measuring.
                    for run in cases.values():
                        seed += 1
                        await run(documents(warmup, seed))
                    # Rounds interleave the cases, so a noisy neighbour hits each alike.
                    for _ in range(rounds):
                        for name, run in cases.items():
                            seed += 1
                            rates[name].append(await run(documents(n_docs, seed)))
                store.close()
    bare, floor, pipe = (statistics.median(rates[k]) for k in ("bare", "floor", "pipeline"))
    print(f"documents per run      {n_docs} (median of {rounds} round(s))")
    print(f"bare (2 no-op acts) /s {bare:8.1f}")
    print(f"floor (no-op)  docs/s  {floor:8.1f}")
    print(f"pipeline       docs/s  {pipe:8.1f}")
    print(f"ratio floor/bare       {floor / bare:8.2f}   (cost of the workflow's shape)")
    print(f"ratio pipeline/floor   {pipe / floor:8.2f}   (goal >= 0.80)")
    print(f"ratio pipeline/bare    {pipe / bare:8.2f}   (goal >= 0.75)")
    print(f"bench process peak RSS {peak_rss_mib():8.1f} MiB (worker + client in one process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians shown")
    args = parser.parse_args()
    asyncio.run(main(args.docs, args.warmup, args.rounds))
