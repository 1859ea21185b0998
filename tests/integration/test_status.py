"""``baton status`` names what needs a person: failed documents and activities retrying too long.

On a namespace of its own, so the counts are this test's alone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from test_pipeline import control_app
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.contracts import ModelVersionConfig
from modelbaton.models.catalog import Catalog
from modelbaton.models.server import serve_in_thread
from modelbaton.pipeline.store import ResultsStore
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
MALFORMED = {"label": "a", "confidence": 0.9, "raw_scores": [0.9, 0.1], "class_order": ["a"]}


async def test_status_reports_failed_documents_and_long_retries(
    isolated_client: Client, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    pipeline = Pipeline(isolated_client, reference_catalog, store, task_queue)
    env = {
        "TEMPORAL_ADDRESS": isolated_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": isolated_client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
    }

    async def status(*args: str) -> Any:
        return await asyncio.to_thread(
            CliRunner().invoke, baton, ["status", "--json", *args], env=env
        )

    clean = await status()
    assert clean.exit_code == 0, clean.output
    with (
        serve_in_thread(control_app([(200, MALFORMED)])) as bad_url,
        serve_in_thread(control_app([(503, {"detail": "overloaded"})])) as down_url,
    ):
        for version, url in (("bad", bad_url), ("down", down_url)):
            pipeline.add_model(
                ModelVersionConfig(
                    model_id="doc-classifier",
                    version=version,
                    endpoint=f"{url}/classify",
                    output_schema_version=2,
                )
            )
        async with pipeline.worker(pools=["bad", "down", "v2"]):
            broken = pipeline.doc()
            failing = await pipeline.start(broken, "bad")
            with pytest.raises(WorkflowFailureError):
                await failing.result()
            waiting = await pipeline.start(pipeline.doc(), "down")

            async def flagged() -> dict[str, Any] | None:
                result = await status("--retrying-for", "2s")
                if result.exit_code != 1:
                    return None
                report: dict[str, Any] = json.loads(result.stdout)
                return report if report["retrying"] and report["failed"] else None

            report = await eventually(flagged, within=60, what="status flags both")
            assert report is not None
            assert [f["workflow_id"] for f in report["failed"]] == [failing.id]
            assert (
                "ModelOutputError" in report["failed"][0]["reason"]
                or "raw_scores" in (report["failed"][0]["reason"])
            )
            (retry,) = report["retrying"]
            assert (retry["workflow_id"], retry["activity_type"]) == (
                waiting.id,
                "classify_document_v2",
            )
            assert "HTTP 503" in retry["last_failure"]
            # Running the failed document again (on a good model) clears it from the report.
            again = await pipeline.start(broken, "v2")
            await again.result()
            await waiting.terminate("test done")

            async def cleared() -> bool:
                return (await status("--retrying-for", "2s")).exit_code == 0

            await eventually(cleared, within=30, what="status clear after the re-run")
    bad = await status("--since", "soon")
    assert bad.exit_code == 2
    assert "expected a duration" in bad.output
    store.close()
