"""`baton rollback` after a promotion, on the invoice example through its own project config: the
command finds the invoices the promoted v2 booked since, the dry run changes nothing, and
``--rerun-since`` starts each again on v1 with its first run's document. The example's workers,
its rollout workflow and pools in process, its models over HTTP, bookings in SQLite, the CLI
against the dev server.

A rerun is the example's workflow again: it waits for approval, and the booking it makes
replaces the promoted model's (one row per invoice)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client, WorkflowHandle
from typer.testing import CliRunner

from invoice_catalog import INVOICE_CATALOG, example_project
from invoice_extraction.activities import BOOKINGS, InvoiceActivities
from invoice_extraction.corpus import generate
from invoice_extraction.demo import pipeline_spec
from invoice_extraction.messages import Approval, InvoiceDocument, InvoiceOutcome, State
from invoice_extraction.models import create_app, serve_in_thread
from invoice_extraction.starter import start_invoice
from invoice_extraction.worker import pools, workflow_worker
from invoice_extraction.workflow import InvoiceWorkflow
from modelbaton import ChangeBy, RolloutControl
from modelbaton.app.main import baton
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="rollback of the example after promotion")


async def cli(env: dict[str, str | None], *args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)


async def approved(handle: WorkflowHandle[Any, InvoiceOutcome]) -> InvoiceOutcome:
    """Wait until the invoice waits for approval, approve it, and return its outcome."""

    async def waiting() -> bool:
        return (await handle.query(InvoiceWorkflow.status)).state is State.AWAITING_APPROVAL

    await eventually(waiting, what=f"{handle.id} awaiting approval")
    await handle.execute_update(InvoiceWorkflow.approve, Approval(approver="ap-clerk"))
    return await handle.result()


@pytest.fixture
async def control(
    isolated_client: Client, task_queue: str, tmp_path: Path
) -> AsyncIterator[tuple[RolloutControl, sa.Engine]]:
    """The example's release 2 with its rollout workflow, and pools for v1 and v2."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'invoices.db'}")
    example_project(tmp_path, INVOICE_CATALOG)
    ctl = RolloutControl(
        isolated_client, task_queue, tmp_path / "catalog.toml", engine, pipeline_spec()
    )
    async with AsyncExitStack() as stack:
        url = stack.enter_context(serve_in_thread(create_app()))
        http = await stack.enter_async_context(httpx.AsyncClient())
        acts = InvoiceActivities(url, http, engine)
        worker = workflow_worker(isolated_client, task_queue, InvoiceWorkflow, acts, ctl)
        await stack.enter_async_context(worker)
        await stack.enter_async_context(pools(isolated_client, task_queue, acts, ("v1", "v2")))
        yield ctl, engine
    engine.dispose()


@pytest.mark.timeout(180)
async def test_rollback_after_promotion_reruns_the_invoices_v2_booked_on_v1(
    isolated_client: Client,
    task_queue: str,
    tmp_path: Path,
    control: tuple[RolloutControl, sa.Engine],
) -> None:
    ctl, engine = control
    rollouts = ctl.rollouts
    env: dict[str, str | None] = {
        "TEMPORAL_ADDRESS": isolated_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": isolated_client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_PROJECT": str(tmp_path / "modelbaton.toml"),
        "MODELBATON_TASK_QUEUE": task_queue,
        "MODELBATON_CATALOG": None,
    }
    samples = generate()
    docs = [InvoiceDocument(invoice_id=s.invoice_id, text=s.text) for s in samples[:4]]

    async def start(doc: InvoiceDocument) -> WorkflowHandle[Any, InvoiceOutcome]:
        return await start_invoice(isolated_client, doc, await ctl.plan(), task_queue)

    await eventually(lambda: rollouts.pool_pollers("v2"), what="v2 pool polling")
    # Not promoted yet: there is nothing to roll back to after a promotion.
    early = await cli(env, "rollback", "--rerun-since")
    assert early.exit_code == 2, early.output
    assert "applies after a promotion" in early.output

    await rollouts.start("v2", 0.5, BY)
    before = await approved(await start(docs[0]))
    await rollouts.promote(BY)
    served = [await start(d) for d in docs[1:]]
    outcomes = [await approved(h) for h in served]
    assert {o.invoice.model_version for o in outcomes} == {"v2"}
    ids = sorted(h.id for h in served)
    plan_before = await ctl.plan()
    audit_before = await ctl.audit()

    dry = await cli(env, "rollback", "--dry-run", "--rerun-since", "--json")
    assert dry.exit_code == 0, dry.output
    would = json.loads(dry.stdout)
    assert (would["promoted"], would["restores"], would["dry_run"]) == ("v2", "v1", True)
    assert would["completed_since_promotion"] == 3
    assert sorted(would["rerun"]) == ids
    assert await ctl.plan() == plan_before
    assert len(await ctl.audit()) == len(audit_before)

    done = await cli(env, "rollback", "--rerun-since", "--by", "ana", "--json")
    assert done.exit_code == 0, done.output
    assert sorted(json.loads(done.stdout)["restarted"]) == ids

    # Each rerun is a new run of the same workflow id, on the restored v1, with its document.
    for wid, doc in zip([h.id for h in served], docs[1:], strict=True):
        rerun = await approved(isolated_client.get_workflow_handle_for(InvoiceWorkflow.run, wid))
        assert (rerun.invoice_id, rerun.invoice.model_version) == (doc.invoice_id, "v1")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(BOOKINGS.c.invoice_id, BOOKINGS.c.model_version))
        booked = {r.invoice_id: r.model_version for r in rows}
    assert booked == {
        docs[0].invoice_id: before.invoice.model_version,
        **{d.invoice_id: "v1" for d in docs[1:]},
    }
    plan = await ctl.plan()
    assert (plan.baseline.version, plan.ended) == ("v1", "rolled-back")
    audit = await ctl.audit()
    restored = next(a for a in audit if a.action == "rollback-promotion")
    assert restored.actor == "ana"
    assert "v1 restored as the baseline, replacing promoted v2" in restored.detail
    assert audit[-1].action == "rerun-since"
