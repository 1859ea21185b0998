"""The steps from the baseline of ``overhead.py`` (``_invoice_direct.py``) to the example's
release 2, which ``overhead.py --breakdown`` times one at a time.

Every workflow here has release 2's shape (``examples/invoice_extraction/workflow.py``): extract,
wait for the approval update, book. Only the extraction differs, each step adding one thing:

- ``PoolQueueInvoiceWorkflow``: the activity the model call schedules (``extract_invoice_v1``,
  a ``ModelTarget`` and the document) on v1's pool queue, scheduled by hand: the price of a
  second queue;
- ``AssignedInvoiceWorkflow``: the same, with the target and queue read from the assignment the
  starter recorded in the input (the starter also sets the assignment's search attributes);
- ``UnpatchedInvoiceWorkflow``: modelbaton's model call (``ROUTE.start``) without the example's
  patch: a workflow written with modelbaton from its first release.

Release 2 itself adds ``workflow.patched``, which the example needs for its release-1 histories.
Not in ``overhead.py``: the sandbox re-imports a workflow's module by name.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from invoice_extraction._base import MODEL_RETRY, InvoiceBase

with workflow.unsafe.imports_passed_through():
    from invoice_extraction.activities import InvoiceActivities
    from invoice_extraction.contracts import Invoice
    from invoice_extraction.messages import InvoiceInput, InvoiceOutcome
    from invoice_extraction.workflow import ROUTE
    from modelbaton import ModelTarget, pool_task_queue

_TIMEOUT = timedelta(seconds=30)
#: What the starter of the hand-routed step would have assigned (steady plan on v1).
_V1 = ModelTarget(model_id="invoice", model_version="v1", output_schema_version=1)


class _Steps(InvoiceBase):
    async def _finish(self, inp: InvoiceInput, invoice: Invoice) -> InvoiceOutcome:
        booked, approver = await self._approve_and_book(inp, invoice)
        return InvoiceOutcome(
            invoice_id=inp.document.invoice_id, invoice=invoice, booked=booked, approver=approver
        )


@workflow.defn(name="InvoiceExtractionPoolQueue")
class PoolQueueInvoiceWorkflow(_Steps):
    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        invoice = await workflow.execute_activity_method(
            InvoiceActivities.extract_v1,
            args=[_V1, inp.document],
            task_queue=pool_task_queue(workflow.info().task_queue, "v1"),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=MODEL_RETRY,
        )
        return await self._finish(inp, invoice)


@workflow.defn(name="InvoiceExtractionAssigned")
class AssignedInvoiceWorkflow(_Steps):
    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        assert inp.assignment is not None, "started without an assignment"
        invoice = await workflow.execute_activity_method(
            InvoiceActivities.extract_v1,
            args=[ModelTarget.of(inp.assignment), inp.document],
            task_queue=inp.assignment.task_queue,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=MODEL_RETRY,
        )
        return await self._finish(inp, invoice)


@workflow.defn(name="InvoiceExtractionUnpatched")
class UnpatchedInvoiceWorkflow(_Steps):
    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        assert inp.assignment is not None, "started without an assignment"
        invoice = await ROUTE.start(inp.assignment, inp.document, shadow=inp.shadow)
        return await self._finish(inp, invoice)
