"""Starting an invoice workflow: the assignment comes from the rollout plan via ``assign``."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from invoice_extraction.messages import WORKFLOW_TYPE, InvoiceDocument, InvoiceInput, InvoiceOutcome
from modelbaton import RolloutPlan, assign


async def start_invoice(
    client: Client, doc: InvoiceDocument, plan: RolloutPlan, task_queue: str
) -> WorkflowHandle[Any, InvoiceOutcome]:
    assigned = assign(doc.invoice_id, plan, task_queue)
    return await client.start_workflow(
        WORKFLOW_TYPE,
        InvoiceInput(document=doc, assignment=assigned.model, shadow=assigned.shadow),
        id=f"invoice-{doc.invoice_id}",
        task_queue=task_queue,
        result_type=InvoiceOutcome,
        search_attributes=assigned.search_attributes,
    )
