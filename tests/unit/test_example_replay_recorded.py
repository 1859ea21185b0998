"""The invoice example's histories that took the ``invoice-record-comparison`` patch (recorded by
tests/integration/test_example_demo.py) replay on today's code, and would not on release 2 as it
was before the patch: the gate can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from invoice_extraction._base import InvoiceBase
from invoice_extraction.messages import WORKFLOW_TYPE, InvoiceInput, InvoiceOutcome
from invoice_extraction.workflow import AGREEMENT, PATCH_ASSIGNED_MODEL, ROUTE, InvoiceWorkflow

RECORDED = Path(__file__).parents[2] / "examples" / "invoice_extraction" / "histories" / "recorded"


def recorded() -> list[WorkflowHistory]:
    paths = sorted(RECORDED.glob("*.json"))
    assert len(paths) == 2, f"expected the shadow and canary-check histories in {RECORDED}"
    return [WorkflowHistory.from_json(p.stem, json.loads(p.read_text())) for p in paths]


@workflow.defn(name=WORKFLOW_TYPE)
class BeforeTheRecord(InvoiceBase):
    """Release 2 as it was before the comparison was recorded."""

    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        assert inp.assignment is not None
        assert workflow.patched(PATCH_ASSIGNED_MODEL)
        call = ROUTE.start(inp.assignment, inp.document, shadow=inp.shadow)
        invoice = await call
        booked, approver = await self._approve_and_book(inp, invoice)
        answers = await call.shadow_answers()
        shadow = None
        if answers and answers[0].result is not None:
            shadow = AGREEMENT.compare(invoice, answers[0].result)
        return InvoiceOutcome(
            invoice_id=inp.document.invoice_id,
            invoice=invoice,
            booked=booked,
            approver=approver,
            shadow=shadow,
        )


async def test_histories_with_the_recorded_comparison_replay_on_today_s_workflow() -> None:
    replayer = Replayer(workflows=[InvoiceWorkflow], data_converter=pydantic_data_converter)
    for history in recorded():
        await replayer.replay_workflow(history)


async def test_without_the_record_patch_they_fail_to_replay() -> None:
    replayer = Replayer(workflows=[BeforeTheRecord], data_converter=pydantic_data_converter)
    for history in recorded():
        with pytest.raises(NondeterminismError):
            await replayer.replay_workflow(history)
