"""The invoice extraction example end to end, on modelbaton's public API only.

``baton demo --example invoice_extraction`` runs it (or ``python -m invoice_extraction.demo``
from ``examples/``). It brings up a local Temporal dev server, the example's model server, its
workflow worker and one pool per model version, then:

1. release 1 (one model, v1, on the workflow's own queue) extracts a first batch; some invoices
   wait for approval while release 2 (``workflow.patched``: the assigned model on its pool) is
   deployed, and finish on it down their old branch;
2. preflight for v2 (schemas, the v1 -> v2 break covered by the normalizers, live histories);
3. the rollout controller runs ``rollout-v2.toml`` while invoices keep arriving: v2 shadows
   every invoice (per-field agreement recorded), a 30 % canary, and promotes v2;
4. the controller runs ``rollout-v3.toml``: v3 is quietly wrong (the net amount as the total on
   about 30 % of invoices, valid schema); the baseline answers beside every canary invoice, the
   agreement gate sees v3 disagree far beyond the baseline's own noise without any review, and
   the controller aborts and reruns v3's invoices on v2;
5. the replay gate on the committed histories and on every history of this run;
6. what the demo guarantees, checked: every invoice booked exactly once, none by v3, none lost.

Everything it started is stopped when it ends (context managers: the dev server process, the
model server thread, the workers).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from invoice_extraction import workflow_initial
from invoice_extraction.activities import BOOKINGS, InvoiceActivities
from invoice_extraction.corpus import Sample, generate
from invoice_extraction.messages import (
    WORKFLOW_TYPE,
    Approval,
    InvoiceDocument,
    InvoiceOutcome,
    State,
)
from invoice_extraction.models import create_app, serve_in_thread
from invoice_extraction.starter import start_invoice
from invoice_extraction.truth import InvoiceAudits
from invoice_extraction.worker import pools, workflow_worker
from invoice_extraction.workflow import ROUTE, InvoiceWorkflow
from modelbaton import (
    PipelineSpec,
    RolloutControl,
    load_project,
    local_temporal,
)

HERE = Path(__file__).parent
TASK_QUEUE = "invoices"
MODEL_ID = "invoice"
VERSIONS = ("v1", "v2", "v3")
#: Seconds between two arriving invoices while a controller runs.
ARRIVAL_EVERY = 0.2
#: Invoices of the run in flight at most: arrivals wait beyond it (a slow machine then runs
#: fewer invoices in all instead of piling them up).
MAX_IN_FLIGHT = 12
#: Longest a controller plan may take here before the demo gives up.
PLAN_TIMEOUT = 400.0


def pipeline_spec() -> PipelineSpec:
    """The example as the rollout tools see it, from its project config (the workflow type and
    input, the contracts, the schemas its model call serves, its patches)."""
    spec = load_project(HERE / "modelbaton.toml").spec()
    assert spec.schema_versions == ROUTE.schema_versions
    return spec


Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What one run did and what it guarantees."""

    promoted: Any = None
    aborted: Any = None
    fed: list[str] = field(default_factory=list)
    #: invoice id -> the model version of its booking (one row per invoice: the current one)
    bookings: dict[str, str] = field(default_factory=dict)
    #: workflow id -> status of its latest run
    statuses: dict[str, str] = field(default_factory=dict)
    exposed_to_v3: int = 0
    rerun_on_baseline: list[str] = field(default_factory=list)
    shadow_by_field: dict[str, float] = field(default_factory=dict)
    #: The library's shadow report of v2's shadow stage (``ShadowReport.as_dict()``).
    shadow_report: dict[str, Any] = field(default_factory=dict)
    replayed: int = 0
    replay_failures: list[str] = field(default_factory=list)
    preflight_ok: bool | None = None
    audit: list[str] = field(default_factory=list)

    @property
    def lost(self) -> list[str]:
        """Invoices not completed, or completed without a booking."""
        return sorted(
            wid
            for wid in self.fed
            if self.statuses.get(wid) != "completed"
            or wid.removeprefix("invoice-") not in self.bookings
        )

    @property
    def booked_by_v3(self) -> list[str]:
        return sorted(i for i, v in self.bookings.items() if v == "v3")

    @property
    def ok(self) -> bool:
        return (
            self.promoted is not None
            and self.promoted.phase.value == "promoted"
            and self.aborted is not None
            and self.aborted.phase.value == "aborted"
            and not self.lost
            and not self.booked_by_v3
            and not self.replay_failures
        )


class Invoices:
    """The invoices of one run: fresh ids (a shared server keeps old workflows), the corpus
    cycled if a plan needs more than it has."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._samples: Iterator[tuple[int, Sample]] = (
            (n, s) for n in itertools.count() for s in generate()
        )

    def next(self) -> InvoiceDocument:
        n, sample = next(self._samples)
        return InvoiceDocument(
            invoice_id=f"{self._prefix}{n}-{sample.invoice_id}", text=sample.text
        )


async def approver(client: Client, task_queue: str, stop: asyncio.Event) -> None:
    """An accounts-payable clerk who approves every invoice waiting for approval."""
    query = (
        f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{task_queue}" '
        'AND ExecutionStatus = "Running"'
    )
    while not stop.is_set():
        async for wf in client.list_workflows(query):
            handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
            try:
                status = await handle.query(InvoiceWorkflow.status)
                if status.state is State.AWAITING_APPROVAL:
                    await handle.execute_update(
                        InvoiceWorkflow.approve, Approval(approver="ap-clerk")
                    )
            except Exception:  # closed, restarted or approved meanwhile: next round
                continue
        await asyncio.sleep(0.3)


async def feed(
    client: Client,
    control: RolloutControl,
    invoices: Invoices,
    fed: list[str],
    stop: asyncio.Event,
) -> None:
    """Invoices arriving one by one, each assigned by the plan in force when it arrives."""
    running = (
        f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{control.task_queue}" '
        'AND ExecutionStatus = "Running"'
    )
    while not stop.is_set():
        if (await client.count_workflows(running)).count >= MAX_IN_FLIGHT:
            await asyncio.sleep(ARRIVAL_EVERY)
            continue
        plan = await control.plan()
        handle = await start_invoice(client, invoices.next(), plan, control.task_queue)
        fed.append(handle.id)
        await asyncio.sleep(ARRIVAL_EVERY)


async def follow(control: RolloutControl, say: Say) -> Any:
    """Print each change of the controller's step, phase and gates; its final state."""
    last = ""
    deadline = time.monotonic() + PLAN_TIMEOUT
    handle = control.controllers.handle()
    while True:
        view = await control.status()
        if view is not None:
            s = view.state
            at = min(s.step, len(view.plan.steps) - 1)
            line = f"  step {at + 1}/{len(view.plan.steps)} {view.plan.steps[at].kind}: "
            line += s.phase.value
            if s.last_results:
                line += " | " + "; ".join(_shown(r) for r in s.last_results)
            if line != last:
                say(line)
                last = line
        described = await handle.describe()
        if described.status is not WorkflowExecutionStatus.RUNNING:
            return await control.wait()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the controller is still {line!r} after {PLAN_TIMEOUT:g} s")
        await asyncio.sleep(0.5)


def _shown(result: Any) -> str:
    """A gate as one short clause: the shadow's verdict, the agreement's counts."""
    if result.gate in ("shadow", "agreement"):
        return f"{result.gate} {result.shown} ({result.measured.split(';')[0]})"
    return f"{result.gate} {result.shown}"


async def run_plan(
    client: Client,
    control: RolloutControl,
    invoices: Invoices,
    fed: list[str],
    plan: Path,
    reason: str,
    say: Say,
) -> Any:
    """Run ``plan`` while invoices keep arriving; stop feeding once the controller ends."""
    stop = asyncio.Event()
    feeding = asyncio.create_task(feed(client, control, invoices, fed, stop))
    try:
        await control.run(plan, actor="invoice demo", reason=reason)
        return await follow(control, say)
    finally:
        stop.set()
        await feeding


async def settle(client: Client, task_queue: str, within: float = 180.0) -> None:
    """Wait until no invoice of the run is running (the clerk approves those waiting)."""
    query = (
        f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{task_queue}" '
        'AND ExecutionStatus = "Running"'
    )
    deadline = time.monotonic() + within
    while (await client.count_workflows(query)).count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"invoices of {task_queue} still running after {within:g} s")
        await asyncio.sleep(0.5)


async def wait_for_pools(control: RolloutControl, versions: tuple[str, ...]) -> None:
    for version in versions:
        for _ in range(100):
            if await control.rollouts.pool_pollers(version):
                break
            await asyncio.sleep(0.1)


async def replay_gate(client: Client, task_queue: str, result: DemoResult, say: Say) -> None:
    """The committed histories and every closed history of this run, replayed on release 2."""
    project = load_project(HERE / "modelbaton.toml")
    replayer = Replayer(workflows=list(project.workflows), data_converter=pydantic_data_converter)
    histories: list[Any] = []
    folder = project.histories_path
    if folder is not None:
        from temporalio.client import WorkflowHistory

        for path in sorted(folder.rglob("*.json")):
            histories.append(WorkflowHistory.from_json(path.stem, path.read_text()))
    query = f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{task_queue}"'
    async for history in client.list_workflows(query).map_histories():
        histories.append(history)
    for history in histories:
        outcome = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if outcome.replay_failure is not None:
            result.replay_failures.append(f"{history.workflow_id}: {outcome.replay_failure}")
    result.replayed = len(histories)
    committed = len(histories) - sum(1 for h in histories if h.workflow_id.startswith("invoice-"))
    say(
        f"  {len(histories)} histories ({committed} committed, the rest from this run) replayed "
        f"on release 2: {len(result.replay_failures)} failures"
    )


def bookings(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(BOOKINGS.c.invoice_id, BOOKINGS.c.model_version)).all()
    return {invoice_id: version for invoice_id, version in rows}


@asynccontextmanager
async def _client(client: Client | None) -> AsyncIterator[Client]:
    if client is not None:
        yield client
        return
    async with local_temporal() as started:
        yield started


async def run_demo(
    say: Say = print, *, client: Client | None = None, task_queue: str = TASK_QUEUE
) -> DemoResult:
    """Run every act; with ``client`` on that server (a test's) instead of a new dev server."""
    result = DemoResult()
    spec = pipeline_spec()
    invoices = Invoices(f"{uuid.uuid4().hex[:6]}-")
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="invoice-demo-")))
        engine = sa.create_engine(f"sqlite:///{folder / 'invoices.db'}")
        stack.callback(engine.dispose)
        model_url = stack.enter_context(serve_in_thread(create_app()))
        say(f"model server (v1, v2, v3) on {model_url}; bookings and comparisons in {folder}")
        client = await stack.enter_async_context(_client(client))
        http = await stack.enter_async_context(httpx.AsyncClient())
        acts = InvoiceActivities(model_url, http, engine)
        # Audits are the accuracy gate's truth; the demo records none (its plans waive that
        # gate): agreement catches v3 without waiting for any person.
        control = RolloutControl(
            client,
            task_queue,
            HERE / "catalog.toml",
            engine,
            spec,
            ground_truth=InvoiceAudits(engine),
        )

        say("\n1. release 1: v1 on the workflow's own queue")
        first: list[str] = []
        async with workflow_worker(client, task_queue, workflow_initial.InvoiceWorkflow, acts):
            for _ in range(6):
                doc = invoices.next()
                handle = await start_invoice(client, doc, await control.plan(), task_queue)
                first.append(handle.id)
            for wid in first[:3]:
                await _at_approval(client, wid)
                outcome: InvoiceOutcome = await _approve(client, wid)
                inv = outcome.invoice
                say(
                    f"  {wid}: total {inv.total or '(not found)'} {inv.currency or ''}, due "
                    f"{inv.due_date or '(not found)'} (model {inv.model_version})"
                )
            for wid in first[3:]:
                await _at_approval(client, wid)
            say(f"  {len(first[3:])} invoices wait for approval while release 2 is deployed")
        result.fed += first

        say("\n2. release 2 (patch invoice-assigned-model): pools v1, v2, v3; preflight for v2")
        await stack.enter_async_context(
            workflow_worker(client, task_queue, InvoiceWorkflow, acts, control)
        )
        await stack.enter_async_context(pools(client, task_queue, acts, VERSIONS))
        await wait_for_pools(control, VERSIONS)
        stop = asyncio.Event()
        clerk = asyncio.create_task(approver(client, task_queue, stop))
        try:
            check = await control.preflight("v2")
            for c in check.checks:
                say(f"  {c.status.value:5} {c.name}: {c.reason}")
            result.preflight_ok = check.ok

            say("\n3. the controller runs rollout-v2.toml: shadow, 30 % canary, promote")
            result.promoted = await run_plan(
                client,
                control,
                invoices,
                result.fed,
                HERE / "rollout-v2.toml",
                "v2 reads symbols, continental amounts and ISO dates",
                say,
            )
            say(f"  controller: {result.promoted.phase.value}")
            await settle(client, task_queue)
            shadowed = await control.plan()  # the promoted rollout's id stays in the plan
            assert shadowed.rollout_id is not None
            report = await control.shadow_report(shadowed.rollout_id)
            result.shadow_report = report.as_dict()
            result.shadow_by_field = {k: r.value for k, r in report.by_field.items()}
            say(f"  {report.summary()}")
            say(
                "  per field: "
                + ", ".join(f"{k} {v:.0%}" for k, v in result.shadow_by_field.items())
                + _latencies(report.latency_ms)
            )

            say("\n4. the controller runs rollout-v3.toml: v3 is quietly wrong on 30 % of totals")
            started = time.monotonic()
            result.aborted = await run_plan(
                client,
                control,
                invoices,
                result.fed,
                HERE / "rollout-v3.toml",
                "v3: faster amount rules",
                say,
            )
            took = time.monotonic() - started
            plan = await control.plan()
            exposed = await client.count_workflows(
                f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{task_queue}" '
                f'AND RolloutId = "{plan.rollout_id}" AND RolloutArm = "candidate"'
            )
            result.exposed_to_v3 = exposed.count
            result.rerun_on_baseline = list(result.aborted.rolled_back)
            say(
                f"  controller: {result.aborted.phase.value} after {took:.0f} s "
                f"({result.aborted.abort_reason}); {result.exposed_to_v3} invoice runs went to v3; "
                f"{len(result.rerun_on_baseline)} run again on the baseline; 0 reviews used"
            )
            await settle(client, task_queue)
        finally:
            stop.set()
            await clerk
        result.audit = [
            f"{e.at:%H:%M:%S} {e.actor}: {e.action} {e.detail}" for e in await control.audit()
        ]
        say("\n  audit trail:")
        for line in result.audit:
            say(f"    {line}")

        say("\n5. the replay gate")
        await replay_gate(client, task_queue, result, say)

        say("\n6. what the demo guarantees")
        result.bookings = bookings(engine)
        for wid in result.fed:
            described = await client.get_workflow_handle(wid).describe()
            status = described.status.name.lower() if described.status else "unknown"
            result.statuses[wid] = status
        by_version = Counter(
            result.bookings[w.removeprefix("invoice-")]
            for w in result.fed
            if w.removeprefix("invoice-") in result.bookings
        )
        say(
            f"  {len(result.fed)} invoices, {len(result.lost)} lost; bookings per model: "
            f"{dict(sorted(by_version.items()))}; booked by v3 now: {len(result.booked_by_v3)}"
        )
        say("  OK" if result.ok else "  NOT OK")
    return result


def _latencies(latency_ms: dict[str, Any]) -> str:
    """p95 of each arm's model call, as the shadow report has it."""
    base, cand = latency_ms.get("baseline"), latency_ms.get("candidate")
    if not base or not cand:
        return ""
    return f"; p95 latency v1 {base['p95']:.0f} ms, v2 {cand['p95']:.0f} ms"


async def _at_approval(client: Client, wid: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    handle = client.get_workflow_handle(wid)
    while (await handle.query(InvoiceWorkflow.status)).state is not State.AWAITING_APPROVAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{wid} did not reach approval within {within:g} s")
        await asyncio.sleep(0.2)


async def _approve(client: Client, wid: str) -> InvoiceOutcome:
    handle = client.get_workflow_handle(wid, result_type=InvoiceOutcome)
    await handle.execute_update(InvoiceWorkflow.approve, Approval(approver="ap-clerk"))
    outcome: InvoiceOutcome = await handle.result()
    return outcome


def main() -> int:
    """Run the demo; exit 0 when every guarantee holds, 1 otherwise."""
    try:
        result = asyncio.run(run_demo())
    except TimeoutError as exc:
        print(f"demo stopped: {exc}", file=sys.stderr)
        return 1
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
