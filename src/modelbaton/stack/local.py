"""A throwaway local Temporal dev server for a script, an example or a test of a user's pipeline:
the pinned ``temporal`` binary, in memory, on free ports, with modelbaton's search attributes
and the dev stack's dynamic config; stopped (by the process it started) when the block ends.

    async with local_temporal() as client:   # a Client with the pydantic data converter
        ...

``baton dev up`` is the long-lived stack of the reference pipeline; this is the short-lived one
that any pipeline can bring up around itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary
from modelbaton.stack.devserver import dynamic_config_flags


@asynccontextmanager
async def local_temporal(*, startup_timeout: float = 60.0) -> AsyncIterator[Client]:
    """Start a local dev server, yield a client of its default namespace, stop it."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=dynamic_config_flags(),
        dev_server_startup_timeout=timedelta(seconds=startup_timeout),
    ) as env:
        yield env.client
