"""``baton histories export``: a seeded sample of a live server's histories, written whole, that
the replay gate then replays; bad input is one line with exit 2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelbaton.app.main import baton
from pipeline_fixtures import Pipeline

pytestmark = pytest.mark.integration


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(baton, list(args), env=env)


@pytest.fixture
def env(pipeline: Pipeline, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
    }


async def export(env: dict[str, str], out: Path, *extra: str) -> dict[str, Any]:
    result = await asyncio.to_thread(
        invoke, env, "histories", "export", "--out", str(out), "--json", *extra
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


async def test_a_seeded_sample_is_exported_and_replays(
    pipeline: Pipeline, env: dict[str, str], tmp_path: Path
) -> None:
    async with pipeline.worker(pools=["v2"]):
        handles = [await pipeline.start(pipeline.doc()) for _ in range(6)]
        for handle in handles:
            await handle.result()
    started = {h.id for h in handles}

    out = tmp_path / "prod"
    first = await export(env, out, "--sample", "3", "--seed", "7")
    assert first["matched"] == 6
    assert len(first["written"]) == 3
    assert first["kept"] == []
    files = sorted(out.glob("*.json"))
    assert [str(f) for f in files] == sorted(first["written"])
    ids = {json.loads(f.read_text())["workflowId"] for f in files}
    assert len(ids) == 3
    assert ids <= started
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)  # no temp files

    # The same seed picks the same runs: all three are there already and kept as they are.
    again = await export(env, out, "--sample", "3", "--seed", "7")
    assert again["written"] == []
    assert sorted(again["kept"]) == sorted(first["written"])

    # No sample: every run the query finds; the files already there are kept.
    everything = await export(env, out)
    assert len(everything["written"]) == 3
    assert {json.loads(f.read_text())["workflowId"] for f in out.glob("*.json")} == started

    # What was exported is what the replay gate reads, and today's code replays it.
    replayed = await asyncio.to_thread(
        invoke, env, "replay-check", "--histories", str(out), "--json", "--processes", "1"
    )
    assert replayed.exit_code == 0, replayed.output
    report = json.loads(replayed.output)
    assert report["replayed"] == 6, report
    assert report["failed"] == 0, report

    # Or the replay gate samples the live server itself, with the same seeded draw.
    live = (
        f"WorkflowType = 'DocumentClassificationWorkflow' AND TaskQueue = '{pipeline.task_queue}'"
    )
    sampled = await asyncio.to_thread(
        invoke, env, "replay-check", "--query", live, "--sample", "2", "--seed", "7", "--json",
        "--processes", "1",
    )  # fmt: skip
    assert sampled.exit_code == 0, sampled.output
    report = json.loads(sampled.output)
    assert (report["replayed"], report["failed"]) == (2, 0), report
    refused = await asyncio.to_thread(
        invoke, env, "replay-check", "--histories", str(out), "--sample", "2"
    )
    assert refused.exit_code == 2, refused.output
    assert "--sample draws from live workflows" in refused.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sample", "0"], "--sample"),
        (["--limit", "0"], "--limit"),
        (["--query", "WorkflowType = ((("], "query"),
    ],
)
async def test_bad_input_is_one_line_and_writes_nothing(
    env: dict[str, str], tmp_path: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    result = await asyncio.to_thread(invoke, env, "histories", "export", "--out", str(out), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert needle in result.output
    assert not out.exists() or not any(out.iterdir())


async def test_an_out_that_is_a_file_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    result = await asyncio.to_thread(invoke, env, "histories", "export", "--out", str(taken))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "--out" in errors[0]
    assert taken.read_text() == "keep me"
