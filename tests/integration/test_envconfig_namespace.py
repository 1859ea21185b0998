"""Connections follow Temporal's environment configuration, not localhost:7233 or "default".

A second dev server (not the session fixture's) runs on an ephemeral port with a namespace other
than ``default``; TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE alone must lead modelbaton there.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from modelbaton.pipeline import search_attributes
from modelbaton.stack import embedded
from modelbaton.stack.connect import connect
from modelbaton.stack.embedded import StackOptions, StackState
from waiting import eventually

pytestmark = pytest.mark.integration

NAMESPACE = "modelbaton-ci"
BATON = Path(sys.executable).parent / "baton"


@pytest.fixture(scope="module")
def ci_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    home = tmp_path_factory.mktemp("envconfig") / "stack"
    try:
        yield embedded.start_stack(
            StackOptions(
                home=home,
                namespace=NAMESPACE,
                models=False,
                workers=0,
                ui=False,
                ephemeral_ports=True,
            )
        )
    finally:
        embedded.stop_stack(home)


@pytest.fixture
def temporal_env(
    ci_stack: StackState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point Temporal's environment configuration at the second server, and nothing else."""
    for name in [n for n in os.environ if n.startswith("TEMPORAL_")]:
        monkeypatch.delenv(name)
    env = {
        "TEMPORAL_ADDRESS": ci_stack.temporal_address,
        "TEMPORAL_NAMESPACE": NAMESPACE,
        # A config file that does not exist: a developer's own profile must not leak in.
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def test_connect_uses_env_address_and_namespace(
    ci_stack: StackState, temporal_env: dict[str, str], tmp_path: Path
) -> None:
    # A state directory that records another address: the environment must win over it.
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "stack.json").write_text(
        json.dumps({"temporal_address": "127.0.0.1:1", "namespace": "default"})
    )
    client = await connect(decoy)
    assert client.namespace == NAMESPACE
    assert client.service_client.config.target_host == ci_stack.temporal_address

    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=NAMESPACE)
    )
    assert {key.name for key in search_attributes.ALL} <= listed.custom_attributes.keys()

    workflow_id = f"envconfig-{uuid.uuid4().hex[:8]}"
    await client.start_workflow("EnvconfigProbe", id=workflow_id, task_queue=f"tq-{workflow_id}")
    query = f"WorkflowId = '{workflow_id}'"

    async def visible() -> bool:  # visibility is eventually consistent
        return await count(client, query) == 1

    await eventually(visible, what="the probe in the env namespace's visibility")
    default = await Client.connect(ci_stack.temporal_address, namespace="default")
    assert await count(default, query) == 0


async def test_baton_submit_starts_workflows_in_env_namespace(
    ci_stack: StackState, temporal_env: dict[str, str], tmp_path: Path
) -> None:
    queue = f"tq-submit-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ) | {
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": queue,
    }
    proc = await asyncio.create_subprocess_exec(
        str(BATON),
        *["submit", "--generate", "3", "--no-wait", "--no-require-pools", "--json"],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(120):
            output, _ = await proc.communicate()
    finally:
        if proc.returncode is None:  # timed out: stop our own child by its handle
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output.decode()

    query = f"WorkflowType = 'DocumentClassificationWorkflow' AND TaskQueue = '{queue}'"
    client = await connect()

    async def all_visible() -> bool:  # visibility is eventually consistent
        return await count(client, query) == 3

    await eventually(all_visible, what="the 3 workflows in the env namespace's visibility")
    default = await Client.connect(ci_stack.temporal_address, namespace="default")
    assert await count(default, query) == 0
