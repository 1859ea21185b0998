"""The primary path's latency with a shadow on and off, on one stack.

One dev server, the model server (a subprocess), one workflow worker and the v2 and v3 pools.
Documents arrive at a steady rate (open loop, so the shadow's extra load shows as latency rather
than as a slower submitter), in blocks that alternate between the steady plan (v2 only) and a
shadow of v3 on every document, so a noisy neighbour hits both alike. A document's primary
latency runs from just before its workflow start to its downstream write (the ``created_at`` of
its record). Prints p50 and p95 per condition and the on/off ratios (goal: p50 ratio <= 1.10).

    uv run python bench/shadow.py [--docs 300] [--rate 5] [--blocks 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))
from _common import documents, model_server
from modelbaton.app.worker import (
    WorkerOptions,
    build_pool_worker,
    build_worker,
    pipeline_activities,
)
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, start_shadow
from modelbaton.models.catalog import load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.starter import start_workflow, workflow_input
from modelbaton.pipeline.store import ResultsStore
from modelbaton.settings import Settings
from modelbaton.shadow.store import ShadowStore
from modelbaton.stack.connect import temporal_binary

QUEUE = "bench-shadow"


async def run_block(
    client: Client, plan: RolloutPlan, docs: list[Document], rate: float, pipeline: object
) -> dict[str, datetime]:
    """Start ``docs`` at ``rate`` per second under ``plan``; wait for all; return start times."""
    started: dict[str, datetime] = {}
    handles: list[WorkflowHandle[object, object]] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, doc in enumerate(docs):
        await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
        assignment = plan.assign(doc.document_id, QUEUE)
        shadow = plan.shadow_for(doc.document_id, QUEUE)
        inp = workflow_input(doc, assignment, pipeline, shadow)  # type: ignore[arg-type]
        started[doc.document_id] = datetime.now(UTC)
        handles.append(await start_workflow(client, doc.workflow_id, inp, QUEUE))
    await asyncio.gather(*(h.result() for h in handles))
    return started


async def main(n_docs: int, rate: float, blocks: int) -> None:
    per_block = max(1, -(-n_docs // (blocks // 2)))
    with tempfile.TemporaryDirectory(prefix="mb-bench-shadow-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env()
        os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)
        with model_server(home) as url:
            catalog = load_catalog(settings.catalog_path, base_url=url)
            steady = RolloutPlan(
                model_id=catalog.primary.model_id,
                baseline=ModelRef(version="v2", output_schema_version=2),
            )
            shadowed = start_shadow(
                steady, ModelRef(version="v3", output_schema_version=2), 1.0, "bench"
            )
            pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
            async with (
                await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(temporal_binary()),
                    data_converter=pydantic_data_converter,
                    search_attributes=search_attributes.ALL,
                ) as env,
                make_http_client() as http,
                AsyncExitStack() as stack,
            ):
                store = ResultsStore(f"sqlite:///{home / 'bench.db'}")
                stack.callback(store.close)
                source = CatalogSource.fixed(catalog)
                acts = pipeline_activities(store, source, http).all()
                await stack.enter_async_context(
                    build_worker(env.client, WorkerOptions(task_queue=QUEUE), acts)
                )
                for version in ("v2", "v3"):
                    await stack.enter_async_context(
                        build_pool_worker(env.client, QUEUE, version, source, http)
                    )
                seed = 100
                await run_block(env.client, shadowed, documents(30, seed), rate, pipeline)
                started: dict[str, dict[str, datetime]] = {"off": {}, "on": {}}
                for block in range(blocks):
                    seed += 1
                    name, plan = ("off", steady) if block % 2 == 0 else ("on", shadowed)
                    docs = documents(per_block, seed)
                    started[name] |= await run_block(env.client, plan, docs, rate, pipeline)
                written = {r.document_id: r.created_at for r in store.records()}
                compared = len(ShadowStore(store.engine).rows(shadowed.rollout_id or ""))
    figures: dict[str, tuple[float, float]] = {}
    for name, starts in started.items():
        ms = [
            (written[d].replace(tzinfo=UTC) - t).total_seconds() * 1000 for d, t in starts.items()
        ]
        p50, p95 = np.percentile(ms, [50, 95])
        figures[name] = (float(p50), float(p95))
    n_off, n_on = len(started["off"]), len(started["on"])
    print(f"documents: {n_off} shadow off, {n_on} shadow on (v3 on every one), {rate:g}/s")
    print(f"comparisons recorded   {compared:8d}")
    print(f"{'primary latency':22} {'p50 ms':>8} {'p95 ms':>8}   (start -> downstream write)")
    for name in ("off", "on"):
        p50, p95 = figures[name]
        print(f"shadow {name:15} {p50:8.1f} {p95:8.1f}")
    print(f"ratio on/off p50       {figures['on'][0] / figures['off'][0]:8.2f}   (goal <= 1.10)")
    print(f"ratio on/off p95       {figures['on'][1] / figures['off'][1]:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="documents per condition")
    parser.add_argument("--rate", type=float, default=5.0, help="documents started per second")
    parser.add_argument("--blocks", type=int, default=6, help="alternating blocks (even)")
    args = parser.parse_args()
    asyncio.run(main(args.docs, args.rate, args.blocks))
