"""What both releases of the invoice workflow share: approval, status, booking."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from invoice_extraction.activities import InvoiceActivities
    from invoice_extraction.contracts import Invoice
    from invoice_extraction.messages import (
        Approval,
        BookInput,
        InvoiceInput,
        InvoiceStatus,
        State,
    )

MODEL_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=20)


class InvoiceBase:
    def __init__(self) -> None:
        self._state = State.EXTRACTING
        self._invoice: Invoice | None = None
        self._approval: Approval | None = None

    @workflow.query
    def status(self) -> InvoiceStatus:
        return InvoiceStatus(state=self._state, invoice=self._invoice)

    @workflow.update
    async def approve(self, decision: Approval) -> InvoiceStatus:
        self._approval = decision
        await workflow.wait_condition(lambda: self._state is not State.AWAITING_APPROVAL)
        return self.status()

    @approve.validator
    def _check_approval(self, decision: Approval) -> None:
        if self._state is not State.AWAITING_APPROVAL or self._approval is not None:
            raise ValueError(f"invoice is {self._state.value}, not awaiting approval")

    async def _approve_and_book(self, inp: InvoiceInput, invoice: Invoice) -> tuple[bool, str]:
        self._invoice = invoice
        self._state = State.AWAITING_APPROVAL
        await workflow.wait_condition(lambda: self._approval is not None)
        assert self._approval is not None
        self._state = State.BOOKING
        booked = False
        if self._approval.approved:
            booked = await workflow.execute_activity_method(
                InvoiceActivities.book,
                BookInput(
                    invoice_id=inp.document.invoice_id,
                    invoice=invoice,
                    approver=self._approval.approver,
                    assignment=inp.assignment,
                ),
                start_to_close_timeout=timedelta(seconds=30),
            )
        self._state = State.DONE
        return booked, self._approval.approver
