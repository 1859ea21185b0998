"""``baton submit --wait`` and ``baton pending`` as a user drives them, on the real stack parts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_pipeline import control_app
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.contracts import ModelVersionConfig
from modelbaton.models.client import make_http_client
from modelbaton.models.server import serve_in_thread
from modelbaton.rollout.client import Rollouts
from modelbaton.settings import Settings
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
MALFORMED = {"label": "a", "confidence": 0.9, "raw_scores": [0.9, 0.1], "class_order": ["a"]}


def catalog_file(tmp_path: Path, base_url: str, bad_url: str) -> Path:
    """The default catalog, every document sent to review, plus a model 'bad' at ``bad_url``."""
    text = Settings.from_env().catalog_path.read_text()
    text = text.replace('base_url = "http://127.0.0.1:8601"', f'base_url = "{base_url}"')
    text = text.replace("review_threshold = 0.55", "review_threshold = 1.0")
    text += (
        '\n[[models]]\nmodel_id = "doc-classifier"\nversion = "bad"\n'
        f'endpoint = "{bad_url}/classify"\noutput_schema_version = 2\n'
    )
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


async def test_submit_wait_stops_at_review_reports_failures_and_pending_lists(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with serve_in_thread(control_app([(200, MALFORMED)])) as bad_url:
        catalog = catalog_file(tmp_path, pipeline.catalog.base_url, bad_url)
        pipeline.add_model(
            ModelVersionConfig(
                model_id="doc-classifier",
                version="bad",
                endpoint=f"{bad_url}/classify",
                output_schema_version=2,
            )
        )
        env = {
            "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": pipeline.client.namespace,
            "MODELBATON_HOME": str(tmp_path / "home"),
            "MODELBATON_TASK_QUEUE": pipeline.task_queue,
            "MODELBATON_CATALOG": str(catalog),
        }

        async def run(*args: str) -> Any:
            return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)

        # No pool polls v3: nothing starts, and the message says what to start.
        refused = await run("submit", "--generate", "2", "--seed", "31", "--model", "v3")
        assert refused.exit_code == 3, refused.output
        assert "no worker polls the pool of v3" in refused.output
        assert "Traceback" not in refused.output

        async with pipeline.worker(pools=["v2"]), make_http_client() as http:
            rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
            await eventually(lambda: rollouts.pool_pollers("v2"), what="v2's pool polling")
            # The same documents were not started by the refused call.
            done = await run("submit", "--generate", "3", "--seed", "31", "--wait", "--json")
            assert done.exit_code == 0, done.output
            report = json.loads(done.stdout)
            # The refused call started nothing: its two documents (the same seed) start now.
            assert report["started"] == 3
            states = {d["workflow_id"]: d for d in report["documents"]}
            assert set(states) == set(report["workflow_ids"])
            assert {d["state"] for d in states.values()} == {"awaiting_review"}
            assert all(d["label"] for d in states.values())

            listed = await run("pending", "--json")
            assert listed.exit_code == 0, listed.output
            rows = {r["workflow_id"]: r for r in json.loads(listed.stdout)}
            assert set(states) <= set(rows)
            wid = next(iter(states))
            assert rows[wid]["label"] == states[wid]["label"]
            human = await run("pending")
            assert "baton review" in human.output

            reviewed = await run("review", wid, "--label", "invoice", "--reviewer", "ana")
            assert reviewed.exit_code == 0, reviewed.output

            async with pipeline.pool("bad", http):
                failed = await run(
                    "submit", "--generate", "1", "--seed", "32", "--model", "bad", "--wait",
                    "--json",
                )  # fmt: skip
            assert failed.exit_code == 1, failed.output
            (doc,) = json.loads(failed.stdout)["documents"]
            assert doc["state"] == "failed"
            assert "raw_scores" in doc["detail"]
