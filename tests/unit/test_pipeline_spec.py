"""A user pipeline's spec for the rollout tools: how a rollback reassigns a document's input,
the per-field agreement the agreement gate reports, the generic comparison record, and
preflight's schema and compatibility checks over a user's contracts registry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from invoice_extraction.contracts import CONTRACTS, Invoice, InvoiceV1, from_v1
from invoice_extraction.messages import InvoiceDocument, InvoiceInput
from modelbaton import (
    Comparison,
    ComparisonActivities,
    ComparisonRecord,
    ContractRegistry,
    ModelRef,
    PipelineSpec,
    abort,
    start_canary,
    steady,
)
from modelbaton.controller.gates import ArmMetrics, Metrics, Verdict, canary_gates
from modelbaton.controller.plan import Gates
from modelbaton.models.catalog import parse_catalog
from modelbaton.ops.preflight import Status, _compatibility, _schema_check
from modelbaton.shadow.store import ShadowStore

SPEC = PipelineSpec(
    workflow_type="InvoiceExtraction",
    input_type=InvoiceInput,
    schema_versions=frozenset({1, 2}),
    contracts=CONTRACTS,
)
V2 = ModelRef(version="v2", output_schema_version=2)


def test_a_rollback_reassigns_the_first_runs_input_by_its_business_key() -> None:
    canary = start_canary(steady("invoice", "v1", 1), V2, 1.0, "salt", check_sample=1.0)
    doc = InvoiceDocument(invoice_id="inv-1", text="Total due: EUR 10.00")
    first = InvoiceInput(
        document=doc,
        assignment=canary.assign("customer-7", "invoices"),
        shadow=canary.shadow_for("customer-7", "invoices"),
    )
    assert first.assignment is not None
    assert first.assignment.model_version == "v2"  # fraction 1.0: the candidate
    assert first.shadow is not None
    again, assignment = SPEC.reassigned(first, abort(canary), "invoices", fallback_key="wf-1")
    assert isinstance(again, InvoiceInput)
    assert again.document == doc
    assert again.assignment == assignment
    assert (assignment.model_version, assignment.arm.value) == ("v1", "baseline")
    assert assignment.key == "customer-7"
    assert assignment.task_queue == "invoices-model-v1"
    assert again.shadow is None  # nothing is compared once the rollout is aborted


def test_without_an_assignment_the_workflow_id_is_the_key() -> None:
    plan = steady("invoice", "v1", 1)
    old = InvoiceInput(document=InvoiceDocument(invoice_id="i", text="t"))
    _, assignment = SPEC.reassigned(old, plan, "invoices", fallback_key="invoice-i")
    assert assignment.key == "invoice-i"


def test_the_agreement_gate_names_each_fields_agreement_of_the_candidate() -> None:
    metrics = Metrics(
        candidate=ArmMetrics(
            completed=10, compared=10, agreed=6, agreed_by_field={"currency": 10, "total": 6}
        ),
        baseline=ArmMetrics(completed=10, compared=10, agreed=10),
    )
    gates = Gates(max_agreement_drop=0.05)
    (agreement,) = [r for r in canary_gates(metrics, gates, 5) if r.gate == "agreement"]
    assert agreement.measured.endswith("; candidate per field: currency 100%, total 60%")
    plain = metrics.model_copy(
        update={"candidate": metrics.candidate.model_copy(update={"agreed_by_field": None})}
    )
    (same,) = [r for r in canary_gates(plain, gates, 5) if r.gate == "agreement"]
    assert "per field" not in same.measured
    assert same.verdict is agreement.verdict is Verdict.INCONCLUSIVE


async def test_a_comparison_record_lands_where_the_gates_count_it(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    acts = ComparisonActivities(engine)
    env = ActivityEnvironment()
    wrong_total = Comparison(
        agree=False, distance=1 / 3, fields={"total": False, "currency": True, "due_date": True}
    )
    same = Comparison(agree=True, fields={"total": True, "currency": True, "due_date": True})
    records = [
        ComparisonRecord(
            rollout_id="invoice-2:canary",
            document_id="a",
            primary_version="v3",
            other_version="v2",
            comparison=wrong_total,
        ),
        ComparisonRecord(
            rollout_id="invoice-2:canary",
            document_id="b",
            primary_version="v2",
            other_version="v2",
            comparison=same,
        ),
        ComparisonRecord(
            rollout_id="invoice-2:canary",
            document_id="c",
            primary_version="v3",
            other_version="v2",
            other_error_type="Timeout",
        ),
    ]
    for rec in records:
        await env.run(acts.record, rec)
    await env.run(acts.record, records[0])  # a retry leaves one row
    store = ShadowStore(engine)
    assert store.check_counts("invoice-2:canary", "v3") == {
        "candidate": (1, 0),
        "baseline": (1, 1),
    }
    rows = {r.document_id: r for r in store.rows("invoice-2:canary")}
    assert len(rows) == 3
    assert rows["a"].fields == {"total": False, "currency": True, "due_date": True}
    assert rows["c"].agree is None
    assert rows["c"].candidate_error_type == "Timeout"
    engine.dispose()


CATALOG = {
    "pipeline": {"primary": "v1"},
    "models": [
        {"model_id": "invoice", "version": v, "endpoint": f"/{v}", "output_schema_version": s}
        for v, s in (("v1", 1), ("v2", 2))
    ],
}


def test_preflight_reads_the_users_registry_and_served_schemas() -> None:
    catalog = parse_catalog(Path("catalog.toml"), CATALOG)
    ok = _schema_check(catalog, ["v1", "v2"], SPEC)
    assert ok.status is Status.PASS
    assert "called by InvoiceExtraction" in ok.reason
    only_v1: ContractRegistry[Invoice] = ContractRegistry("invoice-v1", canonical=Invoice)
    only_v1.register(1, InvoiceV1, from_v1)
    older = replace(SPEC, schema_versions=frozenset({1}), contracts=only_v1)
    bad = _schema_check(catalog, ["v1", "v2"], older)
    assert bad.status is Status.FAIL
    assert "v2: output schema v2 is not in ContractRegistry('invoice-v1'" in bad.reason
    assert "v2: InvoiceExtraction has no model call for v2" in bad.reason
    pair = _compatibility(catalog, "v1", "v2", SPEC)
    assert pair.status is Status.PASS
    assert "breaks backward, forward" in pair.reason
    assert "from_v1 and from_v2 both produce the canonical Invoice" in pair.reason
