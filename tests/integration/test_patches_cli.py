"""``baton patches`` counts markers through real visibility queries on its own namespace."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.app.worker import WorkerOptions, build_worker
from modelbaton.contracts import (
    DeploymentStrategy,
    ModelVersionConfig,
)
from modelbaton.pipeline.messages import ClassifyDocumentInput, ReviewDecision
from waiting import eventually

# The benchmark's stub activities (bench/_floor.py): they answer at once.
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
from _floor import FLOOR_ACTIVITIES

pytestmark = pytest.mark.integration


# The subject here is marker bookkeeping in visibility, not models: fixed answers.
ACTS = FLOOR_ACTIVITIES


def inp(schema: int) -> ClassifyDocumentInput:
    cfg = ModelVersionConfig(
        model_id="m",
        version=f"v{schema}",
        endpoint="http://127.0.0.1:1/x",
        output_schema_version=schema,
    )
    return ClassifyDocumentInput(
        document_id=uuid.uuid4().hex,
        text="x",
        deployment=DeploymentStrategy(primary_version=cfg),
        review_threshold=1.0,
    )


async def start_waiting(
    client: Client, release: str, schema: int, queue: str
) -> WorkflowHandle[object, object]:
    async with build_worker(client, WorkerOptions(queue, release), ACTS):
        handle = await client.start_workflow(
            "DocumentClassificationWorkflow", inp(schema), id=uuid.uuid4().hex, task_queue=queue
        )

        async def at_review() -> bool:
            return (await handle.query("status"))["state"] == "awaiting_review"

        await eventually(at_review, what="the review checkpoint")
        return handle


async def patches(
    client: Client,
    tmp_path: Path,
    *extra: str,
    until: Callable[[dict[str, object]], bool] = lambda row: True,
) -> dict[str, object]:
    """The PATCH_CLASSIFY_V2 row of ``baton patches``, once ``until`` holds for it
    (visibility is eventually consistent, so the counts may lag a moment)."""
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
    }

    async def row() -> dict[str, object] | None:
        result = await asyncio.to_thread(
            CliRunner().invoke, baton, ["patches", "--json", *extra], env=env
        )
        assert result.exit_code == 0, result.output
        rows: list[dict[str, object]] = json.loads(result.stdout)
        first = next(r for r in rows if r["patch_id"] == "PATCH_CLASSIFY_V2")
        return first if until(first) else None

    found = await eventually(row, what="settled patch counts")
    assert found is not None
    return found


async def test_patch_lifecycle_advice_follows_the_running_workflows(
    isolated_client: Client, tmp_path: Path
) -> None:
    client = isolated_client
    queue = "patches"
    prepatch = await start_waiting(client, "initial", 1, queue)
    marked = await start_waiting(client, "patched", 2, queue)

    row = await patches(
        client,
        tmp_path,
        until=lambda r: (r["running_with_marker"], r["running_pre_patch"]) == (1, 1),
    )
    assert row["advice"] == "keep"
    assert row["retention"] == str(timedelta(days=3))

    async with build_worker(client, WorkerOptions(queue, "patched"), ACTS):
        await prepatch.execute_update("submit_review", ReviewDecision(label="a", reviewer="r"))
        await prepatch.result()
    row = await patches(
        client,
        tmp_path,
        until=lambda r: (r["running_pre_patch"], r["closed_without_marker"]) == (0, 1),
    )
    assert row["advice"] == "safe to deprecate"
    assert "within 3 days" in str(row["reason"])

    # What if the deprecation had shipped now? Everything recorded before it is still visible.
    now = datetime.now(UTC).isoformat()
    row = await patches(client, tmp_path, "--deprecated-since", f"PATCH_CLASSIFY_V2={now}")
    assert row["advice"] == "deprecated: keep"
    assert row["recorded_before_deprecation"] == 2
    # Even with the deprecation shipped before all of them, the closed pre-patch workflow is
    # within retention, and code without the patch cannot replay it.
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    row = await patches(client, tmp_path, "--deprecated-since", f"PATCH_CLASSIFY_V2={past}")
    assert row["recorded_before_deprecation"] == 0
    assert row["advice"] == "deprecated: keep"
    assert "cannot replay them" in str(row["reason"])
    await marked.terminate("cleanup")
