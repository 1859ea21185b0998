"""Release 2 of the invoice workflow: the model the assignment names, on its pool, through
modelbaton's model call, with a shadow candidate beside it when the document is sampled.

``workflow.patched(PATCH_ASSIGNED_MODEL)`` guards the new call: it schedules
``extract_invoice_v1``/``_v2`` on a pool's queue where release 1 scheduled ``extract_invoice`` on
its own, so a release-1 history (no marker) replays down the old branch, and new workflows take
the new one. The canonical :class:`Invoice` is the same for v1 and v2 models: nothing after the
call knows which schema the model answered.

``workflow.patched(PATCH_RECORD_COMPARISON)`` guards the comparison's record (an activity after
the booking, for shadowed documents only): the rollout controller's gates and the shadow report
read it. Histories recorded before it replay without it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from invoice_extraction._base import MODEL_RETRY, InvoiceBase

with workflow.unsafe.imports_passed_through():
    from invoice_extraction.activities import InvoiceActivities
    from invoice_extraction.contracts import FIELDS, Invoice
    from invoice_extraction.messages import WORKFLOW_TYPE, InvoiceInput, InvoiceOutcome
    from modelbaton import (
        Comparison,
        ComparisonActivities,
        ComparisonRecord,
        FieldMatch,
        ModelRoute,
        ShadowAnswer,
    )

PATCH_ASSIGNED_MODEL = "invoice-assigned-model"
PATCH_RECORD_COMPARISON = "invoice-record-comparison"
#: A comparison that cannot be written for this long is logged; it never fails the invoice.
RECORD_BUDGET = timedelta(minutes=10)

ROUTE: ModelRoute[Invoice] = ModelRoute(
    {1: InvoiceActivities.extract_v1, 2: InvoiceActivities.extract_v2},
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=MODEL_RETRY,
)
#: Per-field agreement of the shadow candidate (amounts within half a cent).
AGREEMENT = FieldMatch(FIELDS, tolerance=0.005)


@workflow.defn(name=WORKFLOW_TYPE)
class InvoiceWorkflow(InvoiceBase):
    @workflow.run
    async def run(self, inp: InvoiceInput) -> InvoiceOutcome:
        shadow: Comparison | None = None
        shadow_error: str | None = None
        if inp.assignment is not None and workflow.patched(PATCH_ASSIGNED_MODEL):
            call = ROUTE.start(inp.assignment, inp.document, shadow=inp.shadow)
            invoice = await call  # the primary answer only; the shadow runs beside it
            booked, approver = await self._approve_and_book(inp, invoice)
            answers = await call.shadow_answers()
            for answer in answers[:1]:
                if answer.result is not None:
                    shadow = AGREEMENT.compare(invoice, answer.result)
                else:
                    shadow_error = f"{answer.error_type}: {answer.error}"
            if answers and inp.shadow is not None and workflow.patched(PATCH_RECORD_COMPARISON):
                await self._record(inp, invoice, answers, shadow, call.latency_ms)
        else:
            invoice = await workflow.execute_activity_method(
                InvoiceActivities.extract_legacy,
                inp.document,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=MODEL_RETRY,
            )
            booked, approver = await self._approve_and_book(inp, invoice)
        return InvoiceOutcome(
            invoice_id=inp.document.invoice_id,
            invoice=invoice,
            booked=booked,
            approver=approver,
            shadow=shadow,
            shadow_error=shadow_error,
        )

    async def _record(
        self,
        inp: InvoiceInput,
        invoice: Invoice,
        answers: list[ShadowAnswer[Invoice]],
        shadow: Comparison | None,
        latency_ms: float | None,
    ) -> None:
        """Record the comparison (and the noise baseline's, when sampled) for the gates."""
        assert inp.shadow is not None
        assert inp.assignment is not None
        first = answers[0]
        noise = answers[1] if len(answers) > 1 else None
        record = ComparisonRecord.of(
            inp.shadow,
            inp.assignment,
            inp.document.invoice_id,
            shadow,
            error_type=first.error_type,
            error=first.error,
            noise=(
                AGREEMENT.compare(invoice, noise.result)
                if noise is not None and noise.result is not None
                else None
            ),
            noise_error_type=noise.error_type if noise is not None else None,
            primary_latency_ms=latency_ms,
            other_latency_ms=first.latency_ms,
        )
        try:
            await workflow.execute_activity_method(
                ComparisonActivities.record,
                record,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=RECORD_BUDGET,
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
        except ActivityError as err:
            workflow.logger.warning(
                "comparison of %s not recorded: %s", inp.document.invoice_id, err
            )
