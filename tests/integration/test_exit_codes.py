"""Temporal-facing commands exit with their documented code every time, never 134 at exit."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

pytestmark = pytest.mark.integration
BATON = Path(sys.executable).parent / "baton"


async def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BATON), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("rollout", "status", "--json"), 0),
        (("rollout", "promote"), 2),  # a refusal: nothing to promote
    ],
)
@pytest.mark.slow(seconds=35)
async def test_exit_code_is_the_same_every_time(
    client: Client, task_queue: str, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    env = dict(os.environ) | {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": task_queue,
    }
    results = [await run(env, *args) for _ in range(5)]
    assert [rc for rc, _ in results] == [code] * 5, results[0][1][-2000:]
    assert not any("Fatal Python error" in text for _, text in results)
