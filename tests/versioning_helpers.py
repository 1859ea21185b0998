"""Helpers for Worker Versioning tests: versioned probe workers, the build a workflow ran on."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from modelbaton.app.worker import WorkerOptions, build_worker
from modelbaton.versioning.builds import Behavior, Build
from modelbaton.versioning.control import DeploymentControl, workflow_build
from workflow_variants.version_probe import VersionProbe


def probe_worker(
    client: Client, task_queue: str, build: Build, behavior: Behavior = Behavior.PINNED
) -> Worker:
    """A worker of ``build`` running only the probe workflow (pinned by default)."""
    return build_worker(
        client,
        WorkerOptions(task_queue=task_queue, build=build, behavior=behavior),
        [],
        workflows=[VersionProbe],
    )


async def await_pollers(control: DeploymentControl, build_id: str) -> None:
    """Until the server knows ``build_id`` and sees one of its workers polling."""
    await control.await_pollers(build_id, within=30)


async def ran_on(client: Client, workflow_id: str, run_id: str | None = None) -> str | None:
    """The build the server recorded for the workflow (pinned version, or last version)."""
    description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    return workflow_build(description)[0]


async def start_probe(client: Client, task_queue: str, workflow_id: str, hold: bool) -> Any:
    return await client.start_workflow(
        VersionProbe.run, hold, id=workflow_id, task_queue=task_queue
    )
