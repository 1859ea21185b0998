"""The composition root wires the rooms together: the pipeline's shadow record activity stores
through the shadow room, on the results database (a real SQLite file, no mocks)."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.testing import ActivityEnvironment

from modelbaton.app.worker import pipeline_activities
from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.models.catalog import load_catalog
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.messages import ArmAnswer, ShadowRecordInput
from modelbaton.pipeline.store import ResultsStore
from modelbaton.settings import Settings
from modelbaton.shadow.store import ShadowStore


def answer(version: str, label: str, scores: dict[str, float]) -> ArmAnswer:
    result = NormalizedClassificationResult(
        label=label,
        confidence=max(scores.values()),
        scores_by_class=scores,
        model_version=version,
        schema_version=2,
    )
    return ArmAnswer(model_version=version, result=result)


async def test_record_shadow_comparison_stores_the_row_in_the_shadow_table(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    catalog = CatalogSource.fixed(load_catalog(Settings.from_env().catalog_path))
    inp = ShadowRecordInput(
        rollout_id="rollout-1",
        document_id="doc-1",
        workflow_id="wf-1",
        run_id="run-1",
        baseline=answer("v2", "invoice", {"invoice": 0.8, "receipt": 0.2}),
        candidate=answer("v3", "receipt", {"invoice": 0.3, "receipt": 0.7}),
    )
    async with httpx.AsyncClient() as http:
        acts = pipeline_activities(store, catalog, http)
        await ActivityEnvironment().run(acts.record_shadow_comparison, inp)
    (row,) = ShadowStore(store.engine).rows("rollout-1")
    assert (row.document_id, row.baseline_label, row.candidate_label) == (
        "doc-1",
        "invoice",
        "receipt",
    )
    assert row.agree is False
    assert store.count_for("doc-1") == 0  # never in the downstream results table
    store.close()
