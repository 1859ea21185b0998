"""The canary: split accuracy at 10,000 keys, and docs/s with two model pools against one.

Split error: for several fractions, the share of 10,000 business keys that land on the candidate,
minus the fraction (goal: within 1 percentage point).

Pools: the same batch size through the real pipeline on one dev server and one model server,
once with every document on v2's pool (one pool) and once split 50/50 between v2's and v3's pools
(two pools, each a separate worker with its own concurrency). The runs alternate (one, two, one,
two) and each configuration's median is compared: goal two ÷ one >= 0.9.

    uv run python bench/canary.py [--docs 300] [--rounds 2]
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
from pathlib import Path

from temporalio.client import Client
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
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, start_canary, takes_candidate
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.messages import ClassificationOutcome
from modelbaton.pipeline.starter import start_workflow, workflow_input
from modelbaton.pipeline.store import ResultsStore
from modelbaton.settings import Settings
from modelbaton.stack.connect import temporal_binary

FRACTIONS = (0.01, 0.05, 0.2, 0.5)


def split_errors(n_keys: int = 10_000) -> dict[float, float]:
    keys = [f"customer-{i}" for i in range(n_keys)]
    return {
        f: sum(takes_candidate(k, "bench-salt", f) for k in keys) / n_keys - f for f in FRACTIONS
    }


async def run_batch(
    client: Client, catalog: Catalog, store: ResultsStore, docs: list[Document], plan: RolloutPlan
) -> float:
    """Workflow worker plus a pool per plan version; documents/s, first start to last result."""
    queue = f"bench-canary-{uuid.uuid4().hex[:8]}"
    source = CatalogSource.fixed(catalog)
    pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
    async with make_http_client() as http:
        acts = pipeline_activities(store, source, http).all()
        workers = [build_worker(client, WorkerOptions(task_queue=queue), acts)]
        workers += [build_pool_worker(client, queue, v, source, http) for v in plan.versions]
        for w in workers:
            await w.__aenter__()
        try:
            t0 = time.perf_counter()
            gate = asyncio.Semaphore(64)

            async def one(doc: Document) -> None:
                inp = workflow_input(doc, plan.assign(doc.document_id, queue), pipeline)
                async with gate:
                    handle = await start_workflow(client, doc.workflow_id, inp, queue)
                out: ClassificationOutcome = await handle.result()
                assert out.assignment is not None

            await asyncio.gather(*(one(d) for d in docs))
            return len(docs) / (time.perf_counter() - t0)
        finally:
            for w in reversed(workers):
                await w.__aexit__(None, None, None)


async def main(n_docs: int, rounds: int) -> None:
    errors = split_errors()
    print("split error at 10,000 keys (share on candidate minus fraction)")
    for fraction, err in errors.items():
        print(f"  fraction {fraction:5.2f}   error {err * 100:+6.2f} pp")
    with tempfile.TemporaryDirectory(prefix="mb-canary-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env()
        os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)  # reuse trained models
        with model_server(home) as url:
            catalog = load_catalog(settings.catalog_path, base_url=url)
            one_pool = RolloutPlan(
                model_id=catalog.primary.model_id,
                baseline=ModelRef(version="v2", output_schema_version=2),
            )
            two_pools = start_canary(
                one_pool, ModelRef(version="v3", output_schema_version=2), 0.5, "bench-salt"
            )
            async with await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal_binary()),
                data_converter=pydantic_data_converter,
                search_attributes=search_attributes.ALL,
            ) as env:
                store = ResultsStore(f"sqlite:///{home / 'bench.db'}")
                await run_batch(env.client, catalog, store, documents(40, 1), two_pools)  # warm
                one: list[float] = []
                two: list[float] = []
                for r in range(rounds):
                    one.append(
                        await run_batch(
                            env.client, catalog, store, documents(n_docs, 10 + r), one_pool
                        )
                    )
                    two.append(
                        await run_batch(
                            env.client, catalog, store, documents(n_docs, 20 + r), two_pools
                        )
                    )
                store.close()
    m1, m2 = statistics.median(one), statistics.median(two)
    print(f"documents per run            {n_docs} x {rounds} rounds each")
    print(f"one pool (v2)        docs/s  {m1:8.1f}   runs {[round(x, 1) for x in one]}")
    print(f"two pools (v2 + v3)  docs/s  {m2:8.1f}   runs {[round(x, 1) for x in two]}")
    print(f"ratio two / one              {m2 / m1:8.2f}   (goal >= 0.90)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.docs, args.rounds))
