"""The shadow report of a pipeline that is not a classification: the invoice example's records
(per-field comparisons, each call's latency as the workflow measured it), read back by
``baton shadow report --project`` on the example's config. Nothing of a label is shown, and
the expected figures are counted here from how the rows were made."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from invoice_catalog import INVOICE_CATALOG
from modelbaton import Comparison, ComparisonActivities, ComparisonRecord
from modelbaton.app.main import baton

EXAMPLE = Path(__file__).parents[2] / "examples" / "invoice_extraction" / "modelbaton.toml"
ROLLOUT = "invoice-7"
#: Invoice i: the total differs when i % 4 == 0, the due date when i % 5 == 0; the last one's
#: candidate timed out (counted as an error, never timed).
COMPARED = 49


def example_project(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text().replace(
        'python_path = [".."]', f'python_path = ["{EXAMPLE.parents[1]}"]'
    )
    text = text.replace('histories = "histories"', f'histories = "{EXAMPLE.parent / "histories"}"')
    (tmp_path / "catalog.toml").write_text(
        INVOICE_CATALOG + "\n[shadow_gate]\nmin_documents = 40\nmin_agreement = 0.3\n"
        "max_error_rate = 0.05\nmax_p95_latency_ratio = 2.0\n"
    )
    path = tmp_path / "modelbaton.toml"
    path.write_text(text + 'catalog = "catalog.toml"\n')
    return path


async def record_rows(url: str) -> None:
    engine = sa.create_engine(url)
    acts = ComparisonActivities(engine)
    env = ActivityEnvironment()
    for i in range(COMPARED + 1):
        fields = {"total": i % 4 != 0, "currency": True, "due_date": i % 5 != 0}
        timed_out = i == COMPARED
        await env.run(
            acts.record,
            ComparisonRecord(
                rollout_id=ROLLOUT,
                document_id=f"inv-{i}",
                primary_version="v1",
                other_version="v2",
                comparison=None
                if timed_out
                else Comparison(
                    agree=all(fields.values()),
                    distance=sum(not ok for ok in fields.values()) / 3,
                    fields=fields,
                ),
                other_error_type="Timeout" if timed_out else None,
                primary_latency_ms=100.0 + i,
                other_latency_ms=30_000.0 if timed_out else 150.0 + i,
            ),
        )
    engine.dispose()


async def test_the_report_of_an_extraction_shows_fields_and_latency_and_no_labels(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'invoices.db'}"
    await record_rows(url)
    project = example_project(tmp_path)
    env = {"MODELBATON_DATABASE_URL": url, "MODELBATON_HOME": str(tmp_path / "home")}
    args = ["shadow", "report", "--project", str(project), "--rollout", ROLLOUT]
    result = CliRunner().invoke(baton, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output  # READY
    report = json.loads(result.stdout)
    # Whole-invoice agreement: neither i % 4 == 0 nor i % 5 == 0, over i in 0..48: 13 + 10 - 3
    # invoices differ somewhere.
    assert (report["agreement"]["successes"], report["agreement"]["n"]) == (29, COMPARED)
    by_field = {k: (v["successes"], v["n"]) for k, v in report["agreement_by_field"].items()}
    assert by_field == {"currency": (49, 49), "due_date": (39, 49), "total": (36, 49)}
    assert report["confusion"] == {}  # no labels, no confusion table
    assert report["candidate_errors"] == {"Timeout": 1}
    # Latency of answers only: the primary answered all 50 (100..149 ms), the candidate 49
    # (150..198 ms); its timeout is not timed.
    assert report["latency_ms"]["baseline"]["p50"] == 124.5
    assert report["latency_ms"]["baseline"]["n"] == COMPARED + 1
    assert report["latency_ms"]["candidate"]["p50"] == 174.0
    assert report["latency_ms"]["candidate"]["n"] == COMPARED
    assert report["verdict"] == "READY"

    human = CliRunner().invoke(baton, args, env=env)
    assert human.exit_code == 0, human.output
    assert "agreement on total" in human.output
    assert "label confusion" not in human.output

    # A stricter latency gate sees the candidate's p95 (linear interpolation: 195.6 ms against
    # 146.55 ms, 1.33x).
    strict = project.parent / "catalog.toml"
    strict.write_text(
        strict.read_text().replace("max_p95_latency_ratio = 2.0", "max_p95_latency_ratio = 1.2")
    )
    slow = CliRunner().invoke(baton, [*args, "--json"], env=env)
    assert slow.exit_code == 1, slow.output
    reasons = json.loads(slow.stdout)["reasons"]
    assert any(r.startswith("candidate p95 latency is 1.33x the baseline's") for r in reasons)
