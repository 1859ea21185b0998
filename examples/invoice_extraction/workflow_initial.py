"""Release 1 of the invoice workflow: one model (v1), called on the workflow's own queue.

Frozen: workflows it started may still be running, and its histories must keep replaying on the
next release (``workflow.py``), which guards its new model call with a patch.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from invoice_extraction._base import MODEL_RETRY, InvoiceBase

with workflow.unsafe.imports_passed_through():
    from invoice_extraction.activities import InvoiceActivities
    from invoice_extraction.messages import WORKFLOW_TYPE, InvoiceInput, InvoiceOutcome


@workflow.defn(name=WORKFLOW_TYPE)
class InvoiceWorkflow(InvoiceBase):
    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        invoice = await workflow.execute_activity_method(
            InvoiceActivities.extract_legacy,
            inp.document,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=MODEL_RETRY,
        )
        booked, approver = await self._approve_and_book(inp, invoice)
        return InvoiceOutcome(
            invoice_id=inp.document.invoice_id, invoice=invoice, booked=booked, approver=approver
        )
