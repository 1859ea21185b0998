"""Worker registration: one workflow release plus every activity, on one task queue."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from modelbaton.errors import ConfigError
from modelbaton.models.catalog import load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.pipeline.activities import PipelineActivities
from modelbaton.pipeline.releases import CURRENT_RELEASE, RELEASES
from modelbaton.pipeline.store import ResultsStore
from modelbaton.settings import Settings


@dataclass(frozen=True)
class WorkerOptions:
    """Slot counts chosen for a 2-core box where the worker shares the CPU with the server.

    Activities are I/O-bound HTTP and database calls, so many run at once; workflow tasks are
    CPU-bound replay in the sandbox, so a handful saturate a core without queueing behind the GIL.
    """

    task_queue: str
    release: str = CURRENT_RELEASE
    max_concurrent_activities: int = 64
    max_concurrent_workflow_tasks: int = 8
    graceful_shutdown: timedelta = timedelta(seconds=10)


def workflow_class(release: str) -> type:
    """The workflow class of a release name (``initial``, ``patched``, ...)."""
    try:
        return RELEASES[release]
    except KeyError:
        raise ConfigError(
            f"unknown workflow release {release!r}; choose one of {', '.join(RELEASES)}"
        ) from None


def build_worker(
    client: Client,
    options: WorkerOptions,
    activities: Sequence[object],
    *,
    workflows: Sequence[type] | None = None,
) -> Worker:
    """A worker for ``options.release`` (or explicit ``workflows``) and the given activities."""
    return Worker(
        client,
        task_queue=options.task_queue,
        workflows=list(workflows) if workflows is not None else [workflow_class(options.release)],
        activities=list(activities),  # type: ignore[arg-type]
        max_concurrent_activities=options.max_concurrent_activities,
        max_concurrent_workflow_tasks=options.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=options.graceful_shutdown,
    )


async def run_worker(client: Client, settings: Settings, options: WorkerOptions) -> None:
    """Run until SIGINT or SIGTERM, then let in-flight activities finish within the grace period."""
    workflow_class(options.release)  # fail fast on a bad release name
    catalog = load_catalog(settings.catalog_path, base_url=settings.model_base_url)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(make_http_client())
        store = ResultsStore(settings.database_url)
        stack.callback(store.close)
        acts = PipelineActivities(store, catalog.pipeline, http)
        worker = build_worker(client, options, acts.all())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            print(
                f"worker ready: task queue {options.task_queue}, release {options.release}, "
                f"namespace {client.namespace}",
                flush=True,
            )
            await stop.wait()
            print("worker shutting down gracefully", flush=True)
