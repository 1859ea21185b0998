"""The shadow stage of a plan, the per-document comparison and the report's verdict, on values
worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.contracts.rollout import (
    Arm,
    ModelRef,
    RolloutPlan,
    RolloutRefused,
    RolloutStage,
    abort,
    bucket,
    promote,
    set_fraction,
    start_shadow,
    threshold,
)
from modelbaton.errors import CatalogError
from modelbaton.models.catalog import ShadowGate, load_catalog
from modelbaton.pipeline.messages import ArmAnswer, ShadowRecordInput
from modelbaton.pipeline.store import ResultsStore
from modelbaton.shadow.compare import comparison_row
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowComparison, ShadowStore

V2 = ModelRef(version="v2", output_schema_version=2)
V3 = ModelRef(version="v3", output_schema_version=2)
STEADY = RolloutPlan(model_id="doc-classifier", baseline=V2)


def test_shadow_plan_serves_every_document_with_the_baseline() -> None:
    plan = start_shadow(STEADY, V3, 0.25, "salt", noise_sample=0.5, budget_seconds=30)
    assert plan.stage is RolloutStage.SHADOW
    keys = [f"k{i}" for i in range(2000)]
    assignments = [plan.assign(k, "q") for k in keys]
    assert {(a.model_version, a.arm, a.task_queue) for a in assignments} == {
        ("v2", Arm.BASELINE, "q-model-v2")
    }
    assert {a.rollout_id for a in assignments} == {plan.rollout_id}
    shadows = {k: plan.shadow_for(k, "q") for k in keys}
    sampled = [k for k, s in shadows.items() if s is not None]
    # Independent of shadow_for: the canary's bucket under the plan's salt.
    assert sampled == [k for k in keys if bucket(k, "salt") < threshold(0.25)]
    one = shadows[sampled[0]]
    assert one is not None
    assert (one.candidate.model_version, one.candidate.task_queue) == ("v3", "q-model-v3")
    assert one.budget_seconds == 30
    noisy = [s for s in shadows.values() if s is not None and s.noise is not None]
    assert 0 < len(noisy) < len(sampled)
    assert {s.noise.task_queue for s in noisy if s.noise} == {"q-model-v2"}


def test_shadow_transitions_and_refusals() -> None:
    with pytest.raises(RolloutRefused, match="shadow sample must be within"):
        start_shadow(STEADY, V3, 0.0, "s")
    with pytest.raises(RolloutRefused, match="noise sample must be within"):
        start_shadow(STEADY, V3, 0.5, "s", noise_sample=2.0)
    with pytest.raises(RolloutRefused, match="budget must be positive"):
        start_shadow(STEADY, V3, 0.5, "s", budget_seconds=0)
    with pytest.raises(RolloutRefused, match="already the baseline"):
        start_shadow(STEADY, V2, 0.5, "s")
    shadow = start_shadow(STEADY, V3, 0.5, "s")
    with pytest.raises(RolloutRefused, match="in progress"):
        start_shadow(shadow, V3, 0.5, "s")
    canary = set_fraction(shadow, 0.1)
    assert (canary.stage, canary.fraction, canary.sample) == (RolloutStage.CANARY, 0.1, 0.0)
    assert canary.rollout_id == shadow.rollout_id
    assert canary.shadow_for("k", "q") is None
    assert promote(shadow).baseline == V3
    assert abort(shadow).stage is RolloutStage.STEADY
    assert abort(shadow).shadow_for("k", "q") is None


def result(
    label: str, scores: dict[str, float], version: str = "v2"
) -> NormalizedClassificationResult:
    return NormalizedClassificationResult(
        label=label,
        confidence=max(scores.values()),
        scores_by_class=scores,
        model_version=version,
        schema_version=2,
    )


def test_comparison_row_of_two_answers_and_of_an_error() -> None:
    base = ArmAnswer(model_version="v2", result=result("a", {"a": 1.0, "b": 0.0}), latency_ms=10)
    cand = ArmAnswer(model_version="v3", result=result("c", {"a": 0.0, "c": 1.0}, "v3"))
    row = comparison_row(
        ShadowRecordInput(
            rollout_id="r",
            document_id="d",
            workflow_id="w",
            run_id="x",
            baseline=base,
            candidate=cand,
        )
    )
    assert row["agree"] is False
    assert row["js_distance"] == pytest.approx(1.0)  # disjoint supports: the maximum distance
    assert (row["only_baseline_classes"], row["only_candidate_classes"]) == (["b"], ["c"])
    failed = ArmAnswer(model_version="v3", error_type="ModelOutputError", error="bad")
    row = comparison_row(
        ShadowRecordInput(
            rollout_id="r",
            document_id="d",
            workflow_id="w",
            run_id="x",
            baseline=base,
            candidate=failed,
        )
    )
    assert (row["agree"], row["js_distance"], row["candidate_label"]) == (None, None, None)
    assert row["candidate_error_type"] == "ModelOutputError"


def row(**kw: Any) -> ShadowComparison:
    values: dict[str, Any] = {
        "rollout_id": "r",
        "document_id": "d",
        "workflow_id": "w",
        "run_id": "x",
        "baseline_version": "v2",
        "candidate_version": "v3",
        "baseline_label": "a",
        "candidate_label": "a",
        "agree": True,
        "js_distance": 0.1,
        "only_baseline_classes": [],
        "only_candidate_classes": [],
        "baseline_latency_ms": 100.0,
        "baseline_confidence": 0.6,
        "candidate_confidence": 0.6,
        "candidate_latency_ms": 100.0,
    }
    return ShadowComparison(**(values | kw))


def test_report_figures_and_verdict_worked_by_hand() -> None:
    # 8 agree, 2 disagree (a -> b); one schema error; reviewed: 4 documents.
    rows = [row(document_id=f"d{i}") for i in range(8)]
    rows += [
        row(document_id=f"x{i}", candidate_label="b", agree=False, candidate_confidence=0.5)
        for i in range(2)
    ]
    rows.append(
        row(
            document_id="e",
            candidate_label=None,
            agree=None,
            js_distance=None,
            candidate_error_type="ModelOutputError",
        )
    )
    # Reviewed: baseline right on all 4, candidate wrong on the 2 disagreements.
    rows[0].reviewed_label = "a"
    rows[1].reviewed_label = "a"
    rows[8].reviewed_label = "a"
    rows[9].reviewed_label = "a"
    gate = ShadowGate(min_documents=10, min_agreement=0.5, max_error_rate=0.2)
    report = build_report("r", rows, gate)
    assert report.agreement is not None
    assert (report.agreement.successes, report.agreement.n) == (8, 10)
    low, high = report.agreement.interval
    # Wilson 95 % for 8/10, worked by hand: (0.4902, 0.9433).
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert report.confusion == {"a": {"a": 8, "b": 2}}
    assert report.confidence_delta == {
        "mean": pytest.approx(-0.02),
        "p50": 0.0,
        "mean_abs": pytest.approx(0.02),
    }
    assert report.schema_errors == 1
    assert report.reviewed is not None
    assert (report.reviewed["only_baseline_right"], report.reviewed["only_candidate_right"]) == (
        2,
        0,
    )
    assert report.reviewed["mcnemar_p"] == pytest.approx(0.5)  # 2 * 0.5**2
    reasons = report.reasons
    assert reasons == [
        "agreement lower bound 49.0% is below the gate's 50.0%",
        "1 schema errors (the gate allows 0)",
    ]
    assert report.verdict == "NOT READY"
    assert report.summary().startswith("shadow verdict NOT READY (agreement 80.0% [49.0%, 94.3%]")


def test_report_ready_and_latency_gate() -> None:
    rows = [row(document_id=f"d{i}", candidate_latency_ms=100.0 + i) for i in range(20)]
    gate = ShadowGate(min_documents=20, min_agreement=0.8)
    assert build_report("r", rows, gate).verdict == "READY"
    slow = [row(document_id=f"d{i}", candidate_latency_ms=300.0) for i in range(20)]
    (reason,) = build_report("r", slow, gate).reasons
    assert reason == "candidate p95 latency is 3.00x the baseline's (the gate allows 1.50x)"


def test_store_upserts_one_row_per_document_and_keeps_the_reviewed_label(tmp_path: Path) -> None:
    results = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store = ShadowStore(results.engine)
    base = ArmAnswer(model_version="v2", result=result("a", {"a": 0.9, "b": 0.1}))
    inp = ShadowRecordInput(
        rollout_id="r",
        document_id="d",
        workflow_id="w",
        run_id="x",
        baseline=base,
        candidate=base,
    )
    store.record(comparison_row(inp))
    store.record(comparison_row(inp.model_copy(update={"reviewed_label": "b"})))
    store.record(comparison_row(inp))  # a late retry of the first write
    (only,) = store.rows("r")
    assert only.reviewed_label == "b"
    assert store.rollouts() == ["r"]
    results.close()


def test_catalog_shadow_gate_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    base = (
        '[pipeline]\nprimary = "a"\n[[models]]\nmodel_id = "m"\nversion = "a"\n'
        'endpoint = "/c"\noutput_schema_version = 2\n'
    )
    path.write_text(base + "[shadow_gate]\nmin_agreement = 2\n")
    with pytest.raises(CatalogError, match=r"\[shadow_gate\]: field 'min_agreement'"):
        load_catalog(path)
    path.write_text(base + "[shadow_gate]\nmin_agrement = 0.5\n")
    with pytest.raises(CatalogError, match=r"\[shadow_gate\]: field 'min_agrement'"):
        load_catalog(path)
    path.write_text(base + "[shadow_gate]\nmin_documents = 7\n")
    assert load_catalog(path).shadow_gate.min_documents == 7
