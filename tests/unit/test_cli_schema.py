"""``baton schema`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from temporalio import activity
from typer.testing import CliRunner

from modelbaton.app.main import baton as app
from modelbaton.contracts import NormalizedClassificationResult, canonical
from modelbaton.errors import ConfigError
from modelbaton.models.catalog import load_catalog
from modelbaton.models.resolver import CatalogSource
from modelbaton.pipeline.activities import CLASSIFY_BY_SCHEMA, ClassifyActivities

runner = CliRunner()


def test_diff_v1_v2_flags_raw_scores_both_ways_and_coverage() -> None:
    result = runner.invoke(app, ["schema", "diff", "v1", "v2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_path = {c["path"]: c for c in report["changes"]}
    assert by_path["/raw_scores"]["kind"] == "map to array"
    assert by_path["/raw_scores"]["breaks_backward"]
    assert by_path["/raw_scores"]["breaks_forward"]
    assert report["covered_by_normalizers"]
    assert "normalize_v1" in report["coverage"]
    assert "normalize_v2" in report["coverage"]


def test_diff_human_output_and_strict_exit() -> None:
    result = runner.invoke(app, ["schema", "diff", "v1", "v2"])
    assert "map to array" in result.stdout
    assert "covered" in result.stdout
    assert runner.invoke(app, ["schema", "diff", "v1", "v2", "--strict"]).exit_code == 1


def test_diff_v2_v3_reports_the_extended_label_set() -> None:
    result = runner.invoke(app, ["schema", "diff", "v2", "v3", "--json"])
    report = json.loads(result.stdout)
    kinds = {c["kind"] for c in report["changes"]}
    assert kinds == {"label set extended"}
    assert all("tax_form" in c["detail"] for c in report["changes"])
    assert report["backward_ok"]
    assert not report["forward_ok"]


def test_same_version_is_compatible() -> None:
    result = runner.invoke(app, ["schema", "diff", "v2", "v2", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["changes"] == []


def test_unknown_version_is_a_usage_error() -> None:
    result = runner.invoke(app, ["schema", "diff", "v1", "v9"])
    assert result.exit_code == 2
    assert "unknown version 'v9'" in result.output


def test_check_passes_on_the_default_catalog() -> None:
    result = runner.invoke(app, ["schema", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["reports"]]
    assert names == [
        "catalog versions",
        "contracts 'classification': raw output schemas",
        "contracts 'classification': canonical contract",
    ]
    assert len(report["reports"][0]["pairs"]) == 3  # v1-v2, v1-v3, v2-v3


def test_check_strict_refuses_covered_breaks_and_bad_catalog_is_usage_error(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["schema", "check", "--strict"])
    assert result.exit_code == 1
    bad = tmp_path / "c.toml"
    bad.write_text("[pipeline]\nprimary='x'\n[[models]]\nmodel_id='m'\n")
    result = runner.invoke(app, ["schema", "check", "--catalog", str(bad)])
    assert result.exit_code == 2
    assert "field 'version'" in result.output


def test_check_fails_when_the_canonical_contract_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Histories store the canonical contract: no normalizer can excuse a break there."""

    class CanonicalV2(BaseModel):
        label: str
        confidence: float
        scores_by_class: list[float]
        model_version: str
        schema_version: int

    monkeypatch.setitem(canonical.CANONICAL_VERSIONS, 2, CanonicalV2)
    result = runner.invoke(app, ["schema", "check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)["reports"][2]
    assert not report["compatible"]
    by_path = {c["path"]: c for c in report["pairs"][0]["changes"]}
    assert by_path["/scores_by_class"]["kind"] == "map to array"


def test_check_runs_the_canonical_contract_over_a_second_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compatible first (an added optional field), then breaking (a removed required field)."""

    class CanonicalV2(NormalizedClassificationResult):
        explanation: str | None = None

    monkeypatch.setitem(canonical.CANONICAL_VERSIONS, 2, CanonicalV2)
    result = runner.invoke(app, ["schema", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["reports"][2]
    assert report["compatible"]
    (pair,) = report["pairs"]
    assert [(c["path"], c["kind"]) for c in pair["changes"]] == [
        ("/explanation", "optional field added")
    ]

    class CanonicalV2Breaking(BaseModel):
        label: str
        confidence: float
        scores_by_class: dict[str, float]
        model_version: str

    monkeypatch.setitem(canonical.CANONICAL_VERSIONS, 2, CanonicalV2Breaking)
    result = runner.invoke(app, ["schema", "check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)["reports"][2]
    assert not report["compatible"]
    by_path = {c["path"]: c for c in report["pairs"][0]["changes"]}
    assert by_path["/schema_version"]["kind"] == "field removed"
    assert by_path["/schema_version"]["breaks_forward"]
    human = runner.invoke(app, ["schema", "check"])
    assert human.exit_code == 1
    assert "field removed" in human.stdout


CATALOG = """
[pipeline]
primary = "p1"

[[models]]
model_id = "pets"
version = "p1"
endpoint = "http://127.0.0.1:1/classify"
output_schema_version = 2
"""


def test_check_fails_when_the_workflow_code_calls_no_models_schema(tmp_path: Path) -> None:
    """The project says which schemas its workflow code calls (``schema_versions``, else every
    version of its registry): a catalog model of another one cannot run at all."""
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    config = tmp_path / "modelbaton.toml"
    body = (
        'name = "classify"\ntask_queue = "classify"\n'
        'workflows = ["modelbaton.pipeline.workflow:DocumentClassificationWorkflow"]\n'
        'activity_modules = ["modelbaton.pipeline.activities"]\n'
        'contracts = "modelbaton.contracts.registry:CLASSIFICATION"\n'
    )
    config.write_text(body)
    args = ["schema", "check", "--project", str(config), "--catalog", str(path)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models_without_model_call"] == []

    config.write_text(body + "schema_versions = [1]\n")
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["models_without_model_call"] == [
        {"model": "pets", "version": "p1", "schema": 2}
    ]
    human = runner.invoke(app, args)
    assert human.exit_code == 1
    assert "model pets:p1 declares output schema v2, which the workflow code never calls" in (
        " ".join(human.stdout.split())
    )


async def test_each_output_schema_maps_to_the_classify_activity_that_reads_it(
    tmp_path: Path,
) -> None:
    # The activity names the committed histories hold (the SDK's own reading of the decorator).
    names = {
        schema: activity._Definition.must_from_callable(method).name
        for schema, method in CLASSIFY_BY_SCHEMA.items()
    }
    assert names == {1: "classify_document_v1", 2: "classify_document_v2"}
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    async with httpx.AsyncClient() as http:
        pool = ClassifyActivities(CatalogSource.fixed(load_catalog(path)), http, only_version="p1")
        registered = [activity._Definition.must_from_callable(a) for a in pool.for_pool(2)]
        assert [d.name for d in registered] == ["classify_document_v2", "shadow_classify"]
        with pytest.raises(ConfigError, match="no classify activity reads output schema v3"):
            pool.for_schema(3)
