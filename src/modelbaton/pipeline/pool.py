"""Pools for any pipeline: an activity-only worker for one model version around the user's own
activities, on that version's queue (``<pipeline queue>-model-<version>``, the queue an assignment
names). Stopping a pool stalls only its version's calls, which wait in its queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from modelbaton.contracts.rollout import pool_task_queue
from modelbaton.errors import ConfigError


def pool_worker(
    client: Client,
    base_task_queue: str,
    version: str,
    activities: Sequence[Callable[..., Any]],
    *,
    max_concurrent: int = 32,
    graceful_shutdown: timedelta = timedelta(seconds=10),
) -> Worker:
    """An activity-only worker for model ``version`` of the pipeline on ``base_task_queue``.

    ``activities`` are ``@activity.defn`` callables (bound methods of the user's activity class
    or functions); no workflow is registered, so the pool never runs workflow code.
    """
    if not activities:
        raise ConfigError(f"the pool of {version} needs at least one activity")
    for fn in activities:
        if activity._Definition.from_callable(fn) is None:
            name = getattr(fn, "__qualname__", repr(fn))
            raise ConfigError(f"the pool of {version}: {name} is not an @activity.defn")
    return Worker(
        client,
        task_queue=pool_task_queue(base_task_queue, version),
        activities=list(activities),
        max_concurrent_activities=max_concurrent,
        graceful_shutdown_timeout=graceful_shutdown,
    )


async def run_pool(
    client: Client,
    base_task_queue: str,
    version: str,
    activities: Sequence[Callable[..., Any]],
    *,
    stop: asyncio.Event,
    max_concurrent: int = 32,
) -> None:
    """Run the pool of ``version`` until ``stop`` is set, then shut it down gracefully."""
    async with pool_worker(
        client, base_task_queue, version, activities, max_concurrent=max_concurrent
    ):
        await stop.wait()
