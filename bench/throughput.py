"""Documents per second through the real pipeline versus a floor workflow of the same shape.

Same dev server, same workflow release, same worker settings, same documents; the only
difference is that the floor's activities return at once instead of calling the model server and
the database. The ratio says how much of the orchestration ceiling the real work leaves.

    uv run python bench/throughput.py [--docs 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))
from _common import model_server, peak_rss_mib
from modelbaton.contracts import DeploymentStrategy
from modelbaton.models.catalog import PipelineSection, load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.corpus import generate_documents
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.activities import PipelineActivities
from modelbaton.pipeline.floor import FLOOR_ACTIVITIES
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.starter import start_document
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.worker import WorkerOptions, build_worker
from modelbaton.settings import Settings
from modelbaton.stack.connect import temporal_binary


async def run_batch(
    client: Client,
    activities: list[object],
    docs: list[Document],
    deployment: DeploymentStrategy,
    pipeline: PipelineSection,
) -> float:
    """Start every document, wait for every result; documents per second, start to last result."""
    options = WorkerOptions(task_queue=f"bench-{uuid.uuid4().hex[:8]}")
    async with build_worker(client, options, activities):
        t0 = time.perf_counter()
        gate = asyncio.Semaphore(64)

        async def one(doc: Document) -> None:
            async with gate:
                handle = await start_document(client, doc, deployment, pipeline, options.task_queue)
            assert handle is not None, "duplicate document in bench batch"
            await handle.result()

        await asyncio.gather(*(one(d) for d in docs))
        return len(docs) / (time.perf_counter() - t0)


def documents(n: int, seed: int) -> list[Document]:
    return [
        validate_text(d.text, f"bench:{seed}:{i}")
        for i, d in enumerate(generate_documents(n, seed))
    ]


async def main(n_docs: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mb-bench-") as tmp:
        home = Path(tmp)
        settings = Settings.from_env()
        os.environ["MODELBATON_CACHE_DIR"] = str(settings.cache_dir)  # reuse trained models
        with model_server(home) as url:
            catalog = load_catalog(settings.catalog_path, base_url=url)
            deployment = DeploymentStrategy(primary_version=catalog.get("v2"))
            pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
            async with await WorkflowEnvironment.start_local(
                dev_server_existing_path=str(temporal_binary()),
                data_converter=pydantic_data_converter,
                search_attributes=search_attributes.ALL,
            ) as env:
                store = ResultsStore(f"sqlite:///{home / 'bench.db'}")
                async with make_http_client() as http:
                    real = PipelineActivities(store, pipeline, http).all()
                    noop = FLOOR_ACTIVITIES
                    # Warm both paths (sandbox imports, connections) before measuring.
                    await run_batch(env.client, noop, documents(warmup, 1), deployment, pipeline)
                    await run_batch(env.client, real, documents(warmup, 2), deployment, pipeline)
                    floor = await run_batch(
                        env.client, noop, documents(n_docs, 3), deployment, pipeline
                    )
                    pipe = await run_batch(
                        env.client, real, documents(n_docs, 4), deployment, pipeline
                    )
                store.close()
    print(f"documents per run      {n_docs}")
    print(f"floor (no-op)  docs/s  {floor:8.1f}")
    print(f"pipeline       docs/s  {pipe:8.1f}")
    print(f"ratio pipeline/floor   {pipe / floor:8.2f}   (goal >= 0.80)")
    print(f"bench process peak RSS {peak_rss_mib():8.1f} MiB (worker + client in one process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.docs, args.warmup))
