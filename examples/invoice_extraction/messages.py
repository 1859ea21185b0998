"""What the invoice workflow records: inputs, update and query payloads, its result.

Tolerant readers (``extra="ignore"``) that evolve only by adding optional fields: histories hold
them. The input carries the model assignment (identity), never an endpoint.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from invoice_extraction.contracts import Invoice
from modelbaton import Comparison, ModelAssignment, ShadowAssignment

WORKFLOW_TYPE = "InvoiceExtraction"
#: The workflow's own task queue in the example's config; pools are named from it.
TASK_QUEUE = "invoices"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class InvoiceDocument(_Message):
    invoice_id: str = Field(min_length=1)
    text: str = Field(min_length=1)


class InvoiceInput(_Message):
    document: InvoiceDocument
    assignment: ModelAssignment | None = None
    shadow: ShadowAssignment | None = None


class State(StrEnum):
    EXTRACTING = "extracting"
    AWAITING_APPROVAL = "awaiting_approval"
    BOOKING = "booking"
    DONE = "done"


class Approval(_Message):
    approver: str = Field(min_length=1)
    approved: bool = True


class InvoiceStatus(_Message):
    state: State
    invoice: Invoice | None = None


class BookInput(_Message):
    invoice_id: str
    invoice: Invoice
    approver: str
    #: The assignment the invoice ran on (None for the first release's), so that the booking
    #: says which rollout and arm it belongs to: what the audits' ground truth counts by.
    assignment: ModelAssignment | None = None


class InvoiceOutcome(_Message):
    invoice_id: str
    invoice: Invoice
    booked: bool
    approver: str
    #: The shadow comparison, when the document was shadowed and the candidate answered.
    shadow: Comparison | None = None
    shadow_error: str | None = None
