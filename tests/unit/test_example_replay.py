"""The invoice example's committed histories replay on today's code, and would not without the
patch: the gate can fail."""

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
from invoice_extraction.workflow import ROUTE, InvoiceWorkflow

HISTORIES = Path(__file__).parents[2] / "examples" / "invoice_extraction" / "histories"


def histories(folder: str) -> list[WorkflowHistory]:
    paths = sorted((HISTORIES / folder).glob("*.json"))
    assert paths, f"no committed histories in {HISTORIES / folder}"
    return [WorkflowHistory.from_json(p.stem, json.loads(p.read_text())) for p in paths]


@workflow.defn(name=WORKFLOW_TYPE)
class Unpatched(InvoiceBase):
    """Release 2 as it would read without the patch: the model call for every workflow."""

    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        assert inp.assignment is not None
        invoice = await ROUTE.call(inp.assignment, inp.document)
        booked, approver = await self._approve_and_book(inp, invoice)
        return InvoiceOutcome(
            invoice_id=inp.document.invoice_id, invoice=invoice, booked=booked, approver=approver
        )


@pytest.mark.parametrize("folder", ["initial", "assigned", "shadow"])
async def test_committed_histories_replay_on_today_s_workflow(folder: str) -> None:
    replayer = Replayer(workflows=[InvoiceWorkflow], data_converter=pydantic_data_converter)
    for history in histories(folder):
        await replayer.replay_workflow(history)


async def test_without_the_patch_release_1_histories_fail_to_replay() -> None:
    replayer = Replayer(workflows=[Unpatched], data_converter=pydantic_data_converter)
    for history in histories("initial"):
        with pytest.raises(NondeterminismError, match="extract_invoice"):
            await replayer.replay_workflow(history)
