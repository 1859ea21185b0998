"""``baton replay-check --build --release`` and ``baton patches --by-build`` know about builds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.pipeline.messages import WorkflowState
from modelbaton.pipeline.patches import PATCH_MODEL_ASSIGNMENT
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.versioning.control import DeploymentControl
from pipeline_fixtures import Pipeline
from versioning_helpers import await_pollers
from waiting import eventually

pytestmark = pytest.mark.integration
HISTORIES = Path(__file__).parent.parent / "histories"


async def test_replay_and_patches_per_build(pipeline: Pipeline, tmp_path: Path) -> None:
    env = {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
    }

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)

    async def waiting_doc() -> None:
        handle = await pipeline.start(pipeline.doc(), threshold=1.0)

        async def at_review() -> bool:
            return (await handle.query(Current.status)).state is WorkflowState.AWAITING_REVIEW

        await eventually(at_review, what="at review")

    control = DeploymentControl(pipeline.client, pipeline.deployment)
    async with (
        pipeline.worker(build=pipeline.build("A")),
        pipeline.worker(build=pipeline.build("B"), pools=()),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        await control.set_current("A")
        await waiting_doc()
        await waiting_doc()
        await control.set_current("B")
        await waiting_doc()

    async def per_build() -> dict[str, Any] | None:
        result = await cli("patches", "--by-build", "--json")
        assert result.exit_code == 0, result.output
        row = next(r for r in json.loads(result.stdout) if r["patch_id"] == PATCH_MODEL_ASSIGNMENT)
        counts: dict[str, Any] = row["by_build"]
        return counts if counts["A"]["running"] == 2 and counts["B"]["running"] == 1 else None

    counts = await eventually(per_build, what="per-build patch counts")
    assert counts["A"] == {"running": 2, "with_marker": 2, "without_marker": 0}
    assert counts["B"] == {"running": 1, "with_marker": 1, "without_marker": 0}

    ok = await cli(
        "replay-check", "--build", "A", "--release", "assigned", "--processes", "1", "--json"
    )
    assert ok.exit_code == 0, ok.output
    assert (json.loads(ok.stdout)["replayed"], json.loads(ok.stdout)["failed"]) == (2, 0)
    # The pre-patch release cannot take over A's workflows: it has no assignment path.
    old = await cli(
        "replay-check", "--build", "A", "--release", "initial", "--processes", "1", "--json"
    )
    assert old.exit_code == 1, old.output
    assert (json.loads(old.stdout)["replayed"], json.loads(old.stdout)["failed"]) == (2, 2)

    for args, needle in (
        (["--release", "bogus"], "--release 'bogus'"),
        (["--build", "A", "--histories", str(HISTORIES)], "--build"),
        (["--release", "assigned", "--workflows", "x:Y"], "--release or --workflows"),
        (["--build", "dep.x:A"], "must not contain a dot"),
    ):
        bad = await cli("replay-check", *args)
        assert bad.exit_code == 2, bad.output
        assert needle in bad.output
        assert "Traceback" not in bad.output
    missing = await cli("patches", "--by-build", "--deployment", "nope")
    assert missing.exit_code == 2, missing.output
    assert "no worker deployment 'nope'" in missing.output
