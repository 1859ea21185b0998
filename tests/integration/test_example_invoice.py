"""The invoice extraction example on the real dev server, real model server over HTTP, real
SQLite through SQLAlchemy: shadow and canary through modelbaton's model call, and the transition
from release 1 (pre-patch) to release 2 with a workflow paused in between.

``MODELBATON_RECORD_EXAMPLE_HISTORIES=1`` writes the histories of the transition test into
examples/invoice_extraction/histories/ (the committed ones the replay test reads).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from invoice_extraction import workflow_initial
from invoice_extraction.activities import BOOKINGS, InvoiceActivities
from invoice_extraction.corpus import Sample, generate
from invoice_extraction.messages import Approval, InvoiceDocument, InvoiceOutcome, State
from invoice_extraction.models import create_app, serve_in_thread
from invoice_extraction.starter import start_invoice
from invoice_extraction.worker import pools, workflow_worker
from invoice_extraction.workflow import PATCH_ASSIGNED_MODEL, InvoiceWorkflow
from modelbaton import ModelRef, RolloutPlan, pool_worker, start_canary, start_shadow, steady
from waiting import eventually

pytestmark = pytest.mark.integration

HISTORIES = Path(__file__).parents[2] / "examples" / "invoice_extraction" / "histories"
RECORD = os.environ.get("MODELBATON_RECORD_EXAMPLE_HISTORIES") == "1"
V2 = ModelRef(version="v2", output_schema_version=2)


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serve_in_thread(create_app()) as url:
        yield url


@pytest.fixture
async def acts(model_url: str, tmp_path: Path) -> AsyncIterator[InvoiceActivities]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bookings.db'}")
    async with httpx.AsyncClient() as http:
        yield InvoiceActivities(model_url, http, engine)
    engine.dispose()


def pick(predicate: Any, n: int) -> list[Sample]:
    return [s for s in generate() if predicate(s.text)][:n]


DOT_DECIMAL_TOTAL = re.compile(r"^Total due: [A-Z]{3} \d[\d,]*\.\d\d$", re.M)


def v1_readable(text: str) -> bool:
    """Layouts the v1 rules read: a code before a dot-decimal amount, a day-first numeric date."""
    return bool(DOT_DECIMAL_TOTAL.search(text)) and "Due date:" in text


def doc(sample: Sample) -> InvoiceDocument:
    # A fresh id per run: workflow ids on the session server are shared by every test.
    return InvoiceDocument(
        invoice_id=f"{sample.invoice_id}-{uuid.uuid4().hex[:6]}", text=sample.text
    )


async def at_approval(handle: WorkflowHandle[Any, InvoiceOutcome]) -> None:
    async def waiting() -> bool:
        return (await handle.query(InvoiceWorkflow.status)).state is State.AWAITING_APPROVAL

    await eventually(waiting, what=f"{handle.id} awaiting approval")


async def approve(handle: WorkflowHandle[Any, InvoiceOutcome]) -> InvoiceOutcome:
    await handle.execute_update(InvoiceWorkflow.approve, Approval(approver="ap-clerk"))
    return await handle.result()


async def scheduled(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(activity type, task queue) of every activity the workflow scheduled, in order."""
    out = []
    for e in (await handle.fetch_history()).events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            out.append((a.activity_type.name, a.task_queue.name))
    return out


async def patch_ids(handle: WorkflowHandle[Any, Any]) -> list[str]:
    ids = []
    for e in (await handle.fetch_history()).events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            for p in e.marker_recorded_event_attributes.details["patch-data"].payloads:
                ids.append(json.loads(p.data)["id"])
    return ids


async def record(handle: WorkflowHandle[Any, Any], folder: str, name: str) -> None:
    if RECORD:
        (HISTORIES / folder).mkdir(parents=True, exist_ok=True)
        history = await handle.fetch_history()
        (HISTORIES / folder / f"{name}.json").write_text(history.to_json() + "\n")


def truth(sample: Sample) -> tuple[Any, ...]:
    return (sample.total, sample.currency, sample.due_date)


def fields(outcome: InvoiceOutcome) -> tuple[Any, ...]:
    return (outcome.invoice.total, outcome.invoice.currency, outcome.invoice.due_date)


async def test_shadow_compares_per_field_without_holding_the_primary(
    client: Client, task_queue: str, acts: InvoiceActivities
) -> None:
    plan = start_shadow(steady("invoice", "v1", 1), V2, 1.0, "s1")
    readable = pick(v1_readable, 2)
    iso_due = pick(lambda t: bool(DOT_DECIMAL_TOTAL.search(t)) and "Payment due 2026" in t, 1)
    assert len(readable) == 2
    assert len(iso_due) == 1
    samples = readable + iso_due
    async with (
        workflow_worker(client, task_queue, InvoiceWorkflow, acts),
        pools(client, task_queue, acts, ("v1", "v2")),
    ):
        handles = [await start_invoice(client, doc(s), plan, task_queue) for s in samples]
        for h in handles:
            await at_approval(h)
        outcomes = [await approve(h) for h in handles]
    for sample, outcome in zip(readable, outcomes, strict=False):
        assert fields(outcome) == truth(sample)
        assert outcome.invoice.model_version == "v1"
        assert outcome.shadow is not None
        assert outcome.shadow.agree, outcome.shadow
    # v1 does not read ISO due dates; v2 does: the comparison says which field differs.
    last = outcomes[2]
    assert last.invoice.due_date is None
    assert last.shadow is not None
    assert last.shadow.fields == {"total": True, "currency": True, "due_date": False}
    types = await scheduled(handles[0])
    assert types[:2] == [
        ("extract_invoice_v1", f"{task_queue}-model-v1"),
        ("extract_invoice_v2", f"{task_queue}-model-v2"),
    ]
    await record(handles[2], "shadow", "shadow-due-date-differs")
    with acts._engine.connect() as conn:
        rows = conn.execute(sa.select(BOOKINGS.c.invoice_id, BOOKINGS.c.model_version)).all()
    assert sorted(rows) == sorted((o.invoice_id, "v1") for o in outcomes)


async def test_canary_routes_v2_to_its_pool_and_normalizes_nested_values(
    client: Client, task_queue: str, acts: InvoiceActivities
) -> None:
    plan = start_canary(steady("invoice", "v1", 1), V2, 1.0, "c1")
    sample = pick(lambda t: "TOTAL " in t and "Pay by" in t, 1)[0]
    async with (
        workflow_worker(client, task_queue, InvoiceWorkflow, acts),
        pools(client, task_queue, acts, ("v2",)),
    ):
        handle = await start_invoice(client, doc(sample), plan, task_queue)
        await at_approval(handle)
        outcome = await approve(handle)
    assert fields(outcome) == truth(sample)
    assert (outcome.invoice.model_version, outcome.invoice.schema_version) == ("v2", 2)
    assert outcome.shadow is None
    assert await scheduled(handle) == [
        ("extract_invoice_v2", f"{task_queue}-model-v2"),
        ("book_invoice", task_queue),
    ]


async def test_release_1_workflow_resumes_on_release_2_and_new_ones_take_the_patch(
    client: Client, task_queue: str, acts: InvoiceActivities
) -> None:
    v1_plan: RolloutPlan = steady("invoice", "v1", 1)
    sample, other = pick(v1_readable, 2)
    async with workflow_worker(client, task_queue, workflow_initial.InvoiceWorkflow, acts):
        old = await start_invoice(client, doc(sample), v1_plan, task_queue)
        await at_approval(old)
    # Release 1's worker is gone; release 2 (and the pools it needs) take over the same queue.
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(workflow_worker(client, task_queue, InvoiceWorkflow, acts))
        await stack.enter_async_context(pools(client, task_queue, acts, ("v1", "v2")))
        resumed = await approve(old)
        new = await start_invoice(
            client, doc(other), start_canary(v1_plan, V2, 1.0, "t"), task_queue
        )
        await at_approval(new)
        fresh = await approve(new)
    assert fields(resumed) == truth(sample)
    assert await patch_ids(old) == []
    assert [t for t, _ in await scheduled(old)] == ["extract_invoice", "book_invoice"]
    assert fields(fresh) == truth(other)
    assert fresh.invoice.model_version == "v2"
    assert await patch_ids(new) == [PATCH_ASSIGNED_MODEL]
    assert [t for t, _ in await scheduled(new)] == ["extract_invoice_v2", "book_invoice"]
    await record(old, "initial", "initial-resumed-on-assigned")
    await record(new, "assigned", "assigned-v2-canary")


async def test_the_primary_never_waits_for_the_shadow(
    client: Client, task_queue: str, acts: InvoiceActivities
) -> None:
    """v2's pool is down: the document still reaches approval on v1's answer; the comparison
    arrives once the pool is back, before the workflow completes."""
    plan = start_shadow(steady("invoice", "v1", 1), V2, 1.0, "s2")
    (sample,) = pick(v1_readable, 1)
    async with (
        workflow_worker(client, task_queue, InvoiceWorkflow, acts),
        pools(client, task_queue, acts, ("v1",)),
    ):
        handle = await start_invoice(client, doc(sample), plan, task_queue)
        await at_approval(handle)
        status = await handle.query(InvoiceWorkflow.status)
        assert status.invoice is not None
        assert status.invoice.model_version == "v1"
        await handle.execute_update(InvoiceWorkflow.approve, Approval(approver="ap"))

        async def booked_waiting_for_shadow() -> bool:
            return (await handle.query(InvoiceWorkflow.status)).state is State.DONE

        await eventually(booked_waiting_for_shadow, what="booked while the shadow is pending")
        async with pools(client, task_queue, acts, ("v2",)):
            outcome = await handle.result()
    assert outcome.booked
    assert outcome.shadow is not None
    assert outcome.shadow.agree


async def test_a_failing_shadow_never_fails_the_document_and_a_misrouted_primary_does(
    client: Client, task_queue: str, acts: InvoiceActivities
) -> None:
    (sample,) = pick(v1_readable, 1)
    # The candidate names a version the pool's activity refuses (a deploy mistake).
    bogus = ModelRef(version="v9", output_schema_version=2)
    plan = start_shadow(steady("invoice", "v1", 1), bogus, 1.0, "s3")
    async with (
        workflow_worker(client, task_queue, InvoiceWorkflow, acts),
        pools(client, task_queue, acts, ("v1",)),
        pool_worker(client, task_queue, "v9", acts.for_pool("v2")),  # type: ignore[arg-type]
    ):
        handle = await start_invoice(client, doc(sample), plan, task_queue)
        await at_approval(handle)
        outcome = await approve(handle)
        assert fields(outcome) == truth(sample)
        assert outcome.shadow is None
        assert outcome.shadow_error is not None
        assert outcome.shadow_error.startswith("ConfigError: ")

        # A candidate of a schema this workflow does not read: its shadow answer says so.
        unread = start_shadow(
            steady("invoice", "v1", 1), ModelRef(version="v7", output_schema_version=3), 1.0, "u"
        )
        odd = await start_invoice(client, doc(sample), unread, task_queue)
        await at_approval(odd)
        odd_outcome = await approve(odd)
        assert odd_outcome.booked
        assert odd_outcome.shadow_error is not None
        assert odd_outcome.shadow_error.startswith("UnknownSchemaVersionError: no activity reads")

        # A primary assigned an output schema no activity of this workflow reads fails the
        # workflow at once (not its task, which would retry forever).
        v3 = steady("invoice", "v1", 3)
        wrong = await start_invoice(client, doc(sample), v3, task_queue)
        with pytest.raises(WorkflowFailureError) as err:
            await wrong.result()
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "UnknownSchemaVersionError"
    assert "output schema v3" in cause.message
