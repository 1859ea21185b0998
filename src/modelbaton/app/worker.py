"""Workers: the workflow worker (a release, the rollout workflow, the shared activities) and one
pool per model version (only that version's classify activity, on its own task queue).

A pool's queue is named from the pipeline's queue and the version (``<queue>-model-<version>``),
and its concurrency comes from the catalog (``max_concurrent``), so each model's compute is
isolated: stopping a pool stalls only its own version's documents, which wait in its queue.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from modelbaton.app.auto_upgrade import (
    AutoUpgradeRolloutControllerWorkflow,
    AutoUpgradeRolloutWorkflow,
)
from modelbaton.contracts.rollout import pool_task_queue
from modelbaton.controller.activities import ControllerActivities
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.errors import ConfigError
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.activities import ClassifyActivities, PipelineActivities
from modelbaton.pipeline.releases import CURRENT_RELEASE, RELEASES
from modelbaton.pipeline.store import ResultsStore
from modelbaton.rollout.workflow import RolloutWorkflow
from modelbaton.settings import Settings
from modelbaton.shadow.recorder import ComparisonRecorder
from modelbaton.versioning.builds import Behavior, Build


@dataclass(frozen=True)
class WorkerOptions:
    """Slot counts chosen for a 2-core box where the worker shares the CPU with the server.

    Activities are I/O-bound HTTP and database calls, so many run at once; workflow tasks are
    CPU-bound replay in the sandbox, so a handful saturate a core without queueing behind the GIL.
    """

    task_queue: str
    release: str = CURRENT_RELEASE
    #: When set, the worker runs as this Worker Deployment version (Worker Versioning): the
    #: server routes each workflow to the build that started it (pinned) or to the current build.
    build: Build | None = None
    behavior: Behavior = Behavior.PINNED
    max_concurrent_activities: int = 64
    max_concurrent_workflow_tasks: int = 8
    graceful_shutdown: timedelta = timedelta(seconds=10)


def pipeline_activities(
    store: ResultsStore, catalog: CatalogSource, http: httpx.AsyncClient
) -> PipelineActivities:
    """The workflow worker's pipeline activities, shadow comparisons stored beside the results."""
    return PipelineActivities(store, catalog, http, shadows=ComparisonRecorder(store.engine))


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
    """A worker for ``options.release`` (or explicit ``workflows``) and the given activities.

    The rollout workflow and the rollout controller are registered beside the document
    workflow, on the pipeline's queue (auto-upgrade on a versioned worker: they outlive builds,
    so they must not pin one).
    """
    extra: list[type] = [RolloutWorkflow, RolloutControllerWorkflow]
    if options.build is not None:
        extra = [AutoUpgradeRolloutWorkflow, AutoUpgradeRolloutControllerWorkflow]
    chosen = list(workflows) if workflows is not None else [workflow_class(options.release)]
    return Worker(
        client,
        task_queue=options.task_queue,
        workflows=[*chosen, *extra],
        activities=list(activities),  # type: ignore[arg-type]
        max_concurrent_activities=options.max_concurrent_activities,
        max_concurrent_workflow_tasks=options.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=options.graceful_shutdown,
        deployment_config=deployment_config(options.build, options.behavior),
    )


def deployment_config(build: Build | None, behavior: Behavior) -> WorkerDeploymentConfig | None:
    """Worker Versioning options of ``build``; None runs the worker unversioned, as before.

    The behavior is the default of every workflow the worker registers that does not declare its
    own, so the frozen releases need no change to run pinned or auto-upgrade.
    """
    if build is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(build.deployment, build.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=(
            VersioningBehavior.PINNED
            if behavior is Behavior.PINNED
            else VersioningBehavior.AUTO_UPGRADE
        ),
    )


def build_pool_worker(
    client: Client,
    base_task_queue: str,
    version: str,
    catalog: CatalogSource,
    http: httpx.AsyncClient,
    *,
    graceful_shutdown: timedelta = timedelta(seconds=10),
) -> Worker:
    """The pool of model ``version`` on its own queue: its classify activity, and the shadow
    call that answers for comparison when it is a shadowed candidate."""
    config = catalog.current().get(version)
    classify = ClassifyActivities(catalog, http, only_version=version)
    return Worker(
        client,
        task_queue=pool_task_queue(base_task_queue, version),
        activities=classify.for_pool(config.output_schema_version),  # type: ignore[arg-type]
        max_concurrent_activities=config.max_concurrent,
        graceful_shutdown_timeout=graceful_shutdown,
    )


async def _serve(worker: Worker, ready: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(ready, flush=True)
        await stop.wait()
        print("worker shutting down gracefully", flush=True)


async def run_worker(client: Client, settings: Settings, options: WorkerOptions) -> None:
    """Run until SIGINT or SIGTERM, then let in-flight activities finish within the grace period."""
    workflow_class(options.release)  # fail fast on a bad release name
    catalog = CatalogSource(settings.catalog_path, base_url=settings.model_base_url)
    catalog.current()  # fail fast on a bad catalog
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(make_http_client())
        store = ResultsStore(settings.database_url)
        stack.callback(store.close)
        acts = pipeline_activities(store, catalog, http)
        controller = ControllerActivities(client, catalog, store)
        worker = build_worker(client, options, [*acts.all(), *controller.all()])
        build = (
            f", build {options.build.version} ({options.behavior.value})" if options.build else ""
        )
        await _serve(
            worker,
            f"worker ready: task queue {options.task_queue}, release {options.release}{build}, "
            f"namespace {client.namespace}",
        )


async def run_pool(client: Client, settings: Settings, base_task_queue: str, version: str) -> None:
    """Run the pool of model ``version`` until SIGINT or SIGTERM."""
    catalog = CatalogSource(settings.catalog_path, base_url=settings.model_base_url)
    config = catalog.current().get(version)
    async with make_http_client() as http:
        worker = build_pool_worker(client, base_task_queue, version, catalog, http)
        await _serve(
            worker,
            f"pool ready: model {config.model_id} {version} (output schema "
            f"v{config.output_schema_version}) on task queue "
            f"{pool_task_queue(base_task_queue, version)}, {config.max_concurrent} at once, "
            f"namespace {client.namespace}",
        )


class DemoWorkers:
    """The demo's in-process workers (its blue-green act): the same composition as ``baton
    worker``, handed to :mod:`modelbaton.demo` so that the demo need not know it."""

    def pool(
        self,
        client: Client,
        queue: str,
        version: str,
        source: CatalogSource,
        http: httpx.AsyncClient,
    ) -> Worker:
        return build_pool_worker(client, queue, version, source, http)

    def build(
        self,
        client: Client,
        queue: str,
        build: Build,
        store: ResultsStore,
        source: CatalogSource,
        http: httpx.AsyncClient,
    ) -> Worker:
        acts = pipeline_activities(store, source, http).all()
        return build_worker(client, WorkerOptions(queue, build=build), acts)
