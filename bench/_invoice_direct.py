"""The baseline of ``overhead.py``: the invoice example's workflow without modelbaton.

Release 2's shape (``examples/invoice_extraction/workflow.py``): extract, wait for the approval
update, book. The extraction is the example's own v1 activity (``extract_invoice``) called with
``execute_activity_method`` on the workflow's own queue, where release 2 calls
``extract_invoice_v1`` through modelbaton's model call on the assigned model's pool. Both read the
same model server and normalize to the same ``Invoice``.

A module of its own with this one workflow, as the example's release is: the sandbox re-imports a
workflow's module for every run, so a bigger module would charge the baseline more.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from invoice_extraction._base import MODEL_RETRY, InvoiceBase

with workflow.unsafe.imports_passed_through():
    from invoice_extraction.activities import InvoiceActivities
    from invoice_extraction.messages import InvoiceInput, InvoiceOutcome


@workflow.defn(name="InvoiceExtractionDirect")
class DirectInvoiceWorkflow(InvoiceBase):
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
