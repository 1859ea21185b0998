"""Ground truth for the accuracy gate is pluggable: the invoice example's audits (real SQLite,
bookings written by the example's own booking activity) counted per rollout arm, and the
controller's measurement reading whatever provider it was given."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from invoice_extraction.activities import InvoiceActivities
from invoice_extraction.contracts import Invoice
from invoice_extraction.messages import BookInput
from invoice_extraction.truth import InvoiceAudits, record_audits
from modelbaton import Arm, GroundTruth, ModelAssignment
from modelbaton.controller.activities import ControllerActivities

DUE = date(2027, 1, 31)


def assignment(arm: Arm, rollout_id: str | None) -> ModelAssignment:
    return ModelAssignment(
        model_id="invoice",
        model_version="v3" if arm is Arm.CANDIDATE else "v2",
        output_schema_version=2,
        task_queue="invoices-model-x",
        arm=arm,
        rollout_id=rollout_id,
    )


async def book(
    acts: InvoiceActivities, invoice_id: str, total: str, a: ModelAssignment | None
) -> None:
    invoice = Invoice(
        total=Decimal(total),
        currency="EUR",
        due_date=DUE,
        model_version=a.model_version if a else "v1",
        schema_version=2,
    )
    await acts.book(
        BookInput(invoice_id=invoice_id, invoice=invoice, approver="clerk", assignment=a)
    )


def test_audits_count_per_arm_of_one_rollout(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'invoices.db'}")
    acts = InvoiceActivities("http://127.0.0.1:9", None, engine)  # type: ignore[arg-type]
    base, cand = assignment(Arm.BASELINE, "r1"), assignment(Arm.CANDIDATE, "r1")

    async def bookings() -> None:
        await book(acts, "b1", "100.00", base)
        await book(acts, "b2", "200.00", base)
        await book(acts, "b3", "300.00", base)  # booked, never audited
        await book(acts, "c1", "90.00", cand)  # the net amount read as the total
        await book(acts, "c2", "50.00", cand)
        await book(acts, "o1", "10.00", assignment(Arm.CANDIDATE, "other-rollout"))
        await book(acts, "n1", "10.00", None)  # the first release's: no rollout

    asyncio.run(bookings())
    record_audits(
        engine,
        [
            ("b1", Decimal("100"), "EUR", DUE),
            ("b2", Decimal("200.00"), "USD", DUE),  # the model read the wrong currency
            ("c1", Decimal("108.00"), "EUR", DUE),
            ("c2", Decimal("50.00"), "EUR", DUE),
            ("o1", Decimal("10.00"), "EUR", DUE),
            ("n1", Decimal("10.00"), "EUR", DUE),
        ],
    )
    truth = InvoiceAudits(engine)
    assert isinstance(truth, GroundTruth)
    assert truth.judged("r1") == {"baseline": (2, 1), "candidate": (2, 1)}
    assert truth.judged("other-rollout") == {"candidate": (1, 1)}
    assert truth.judged("none-such") == {}
    engine.dispose()


class Scripted:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def judged(self, rollout_id: str) -> dict[str, tuple[int, int]]:
        self.asked.append(rollout_id)
        return {"baseline": (10, 9), "candidate": (8, 5)}


def test_the_controller_measures_accuracy_from_the_provider_it_was_given(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    truth = Scripted()
    acts: Any = ControllerActivities(None, None, engine=engine, ground_truth=truth)  # type: ignore[arg-type]
    assert acts.meter.reviewed("r9") == {"baseline": (10, 9), "candidate": (8, 5)}
    assert truth.asked == ["r9"]
    # Without a provider (and no results store) accuracy is never judged: nothing, not zeros
    # that would read as measured.
    assert ControllerActivities(None, None, engine=engine).meter.reviewed("r9") == {}  # type: ignore[arg-type]
    engine.dispose()
