"""What modelbaton costs a user: the invoice example's workflow with and without its model call.

Two arms on one dev server, against one model server (the example's rule-based models over HTTP,
in a subprocess), with the same documents, the same workflow worker and the same number of
workflows:

- modelbaton: release 2 of ``examples/invoice_extraction`` as a user runs it: the starter assigns
  the model with ``modelbaton.assign`` (steady plan on v1, no shadow), the workflow routes the call
  to v1's pool through ``ModelRoute`` (activity ``extract_invoice_v1``), which normalizes to the
  canonical ``Invoice``; then approval (an update) and booking (SQLite);
- direct: the same shape without modelbaton (``_invoice_direct.py``): the example's v1 activity
  called with ``execute_activity_method`` on the workflow's own queue, then the same approval and
  booking.

Rounds alternate the order (AB, BA, ...) so a noisy neighbour biases neither arm. Each workflow is
approved as soon as it waits for approval: the extraction activity tells the driver it returned,
and the driver queries the status until the workflow is waiting (the queries per workflow are
printed, so their load can be seen to be the same for both arms).

    uv run python bench/overhead.py [--docs 300] [--rounds 4] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _common import free_port, peak_rss_mib
from _invoice_direct import DirectInvoiceWorkflow
from invoice_extraction.activities import InvoiceActivities
from invoice_extraction.contracts import Invoice
from invoice_extraction.corpus import generate
from invoice_extraction.messages import (
    Approval,
    InvoiceDocument,
    InvoiceInput,
    InvoiceOutcome,
    State,
)
from invoice_extraction.starter import start_invoice
from invoice_extraction.worker import pools, workflow_worker
from invoice_extraction.workflow import InvoiceWorkflow
from modelbaton import ModelTarget, RolloutPlan, steady
from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODELBATON, DIRECT = "modelbaton", "direct"
#: Histories fetched per arm and round to count their events.
HISTORY_SAMPLE = 5


@contextlib.contextmanager
def invoice_model_server(log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """The example's models (``invoice_extraction.models:create_app``) under uvicorn in a
    subprocess, so the model server does not share the bench's interpreter; stopped by PID."""
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(EXAMPLES)}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "invoice_extraction.models:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the invoice model server exited; see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the invoice model server did not answer in {timeout}s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class SignallingActivities(InvoiceActivities):
    """The example's activities, which also tell the driver when an extraction has returned
    (the workflow waits for approval right after), so it need not poll from the start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extracted: dict[str, asyncio.Event] = {}

    async def _extract(self, target: ModelTarget, doc: InvoiceDocument, schema: int) -> Invoice:
        invoice = await super()._extract(target, doc, schema)
        self.extracted.setdefault(doc.invoice_id, asyncio.Event()).set()
        return invoice


@dataclass
class Batch:
    seconds: float
    queries: int
    handles: list[WorkflowHandle[Any, InvoiceOutcome]] = field(default_factory=list)


Starter = Callable[[InvoiceDocument, str], Awaitable[WorkflowHandle[Any, InvoiceOutcome]]]


@dataclass
class Arm:
    name: str
    release: type
    versions: tuple[str, ...]  # pools to run beside the workflow worker
    start: Starter
    rates: list[float] = field(default_factory=list)
    seconds: float = 0.0
    docs: int = 0
    queries: int = 0
    events: list[int] = field(default_factory=list)
    history_bytes: list[int] = field(default_factory=list)
    event_types: Counter[str] = field(default_factory=Counter)


@asynccontextmanager
async def workers(client: Client, arm: Arm, acts: InvoiceActivities) -> AsyncIterator[str]:
    """The example's workflow worker for ``arm`` (and its pools) on a fresh queue."""
    task_queue = f"overhead-{arm.name}-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(workflow_worker(client, task_queue, arm.release, acts))
        await stack.enter_async_context(pools(client, task_queue, acts, arm.versions))
        yield task_queue


async def run_batch(
    client: Client,
    arm: Arm,
    acts: SignallingActivities,
    docs: list[InvoiceDocument],
    concurrency: int,
) -> Batch:
    """Start, approve and await every document's workflow; seconds from first start to last
    result, with the workers already running."""
    queries = 0

    async def one(doc: InvoiceDocument, task_queue: str) -> WorkflowHandle[Any, InvoiceOutcome]:
        nonlocal queries
        extracted = acts.extracted.setdefault(doc.invoice_id, asyncio.Event())
        handle = await arm.start(doc, task_queue)
        await extracted.wait()
        delay = 0.005
        while True:  # the completion still travels to the server and back
            queries += 1
            if (await handle.query(InvoiceWorkflow.status)).state is not State.EXTRACTING:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        await handle.execute_update(InvoiceWorkflow.approve, Approval(approver="bench"))
        outcome = await handle.result()
        assert outcome.booked, f"{doc.invoice_id} was not booked"
        return handle

    async with workers(client, arm, acts) as task_queue:
        gate = asyncio.Semaphore(concurrency)

        async def gated(doc: InvoiceDocument) -> WorkflowHandle[Any, InvoiceOutcome]:
            async with gate:
                return await one(doc, task_queue)

        t0 = time.perf_counter()
        handles = await asyncio.gather(*(gated(d) for d in docs))
        seconds = time.perf_counter() - t0
    for d in docs:
        acts.extracted.pop(d.invoice_id, None)
    return Batch(seconds=seconds, queries=queries, handles=list(handles))


async def count_history(arm: Arm, handles: list[WorkflowHandle[Any, InvoiceOutcome]]) -> None:
    """Events and serialized bytes of a few real histories of this arm."""
    step = max(1, len(handles) // HISTORY_SAMPLE)
    for handle in handles[::step][:HISTORY_SAMPLE]:
        history = await handle.fetch_history()
        arm.events.append(len(history.events))
        arm.history_bytes.append(sum(e.ByteSize() for e in history.events))
        arm.event_types = Counter(EventType.Name(e.event_type) for e in history.events)


def documents(n: int, tag: str) -> list[InvoiceDocument]:
    """The first ``n`` invoices of the example's corpus, ids tagged per batch (workflow ids are
    unique per run); both arms of a round get the same texts."""
    return [
        InvoiceDocument(invoice_id=f"{s.invoice_id}-{tag}", text=s.text) for s in generate(size=n)
    ]


async def main(n_docs: int, warmup: int, rounds: int, concurrency: int) -> None:
    plan: RolloutPlan = steady("invoice", "v1", 1)
    with tempfile.TemporaryDirectory(prefix="mb-overhead-") as tmp:
        home = Path(tmp)
        with invoice_model_server(home / "models.log") as url:
            async with (
                await WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(temporal_binary()),
                    data_converter=pydantic_data_converter,
                    search_attributes=search_attributes.ALL,
                ) as env,
                httpx.AsyncClient() as http,
            ):
                client = env.client
                engine = sa.create_engine(f"sqlite:///{home / 'bookings.db'}")
                acts = SignallingActivities(url, http, engine)

                def start_modelbaton(
                    doc: InvoiceDocument, task_queue: str
                ) -> Awaitable[WorkflowHandle[Any, InvoiceOutcome]]:
                    return start_invoice(client, doc, plan, task_queue)

                def start_direct(
                    doc: InvoiceDocument, task_queue: str
                ) -> Awaitable[WorkflowHandle[Any, InvoiceOutcome]]:
                    return client.start_workflow(
                        DirectInvoiceWorkflow.run,
                        InvoiceInput(document=doc),
                        id=f"invoice-{doc.invoice_id}",
                        task_queue=task_queue,
                    )

                arms = [
                    Arm(MODELBATON, InvoiceWorkflow, ("v1",), start_modelbaton),
                    Arm(DIRECT, DirectInvoiceWorkflow, (), start_direct),
                ]
                for arm in arms:  # sandbox imports, connections, the model server's first call
                    await run_batch(client, arm, acts, documents(warmup, f"w-{arm.name}"), 16)
                print(f"workflows per arm and round {n_docs}, concurrency {concurrency}")
                print("round  first       modelbaton docs/s  direct docs/s  ratio")
                for r in range(rounds):
                    order = arms if r % 2 == 0 else arms[::-1]
                    for arm in order:
                        batch = await run_batch(
                            client, arm, acts, documents(n_docs, f"r{r}-{arm.name}"), concurrency
                        )
                        arm.rates.append(n_docs / batch.seconds)
                        arm.seconds += batch.seconds
                        arm.docs += n_docs
                        arm.queries += batch.queries
                        await count_history(arm, batch.handles)
                    mb, direct = arms[0].rates[-1], arms[1].rates[-1]
                    print(
                        f"{r + 1:5d}  {order[0].name:<10}  {mb:17.1f}  {direct:13.1f}  "
                        f"{mb / direct:5.3f}"
                    )
                engine.dispose()
    mb_arm, direct_arm = arms
    print_summary(mb_arm, direct_arm)


def print_summary(mb: Arm, direct: Arm) -> None:
    mb_rate, direct_rate = mb.docs / mb.seconds, direct.docs / direct.seconds
    ratios = [a / b for a, b in zip(mb.rates, direct.rates, strict=True)]
    print(
        f"modelbaton docs/s            {mb_rate:8.1f}   ({mb.docs} workflows, {mb.seconds:.1f} s)"
    )
    print(
        f"direct     docs/s            {direct_rate:8.1f}   "
        f"({direct.docs} workflows, {direct.seconds:.1f} s)"
    )
    print(
        f"ratio modelbaton/direct      {mb_rate / direct_rate:8.3f}   (goal >= 0.95; per round "
        f"median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    for arm in (mb, direct):
        events = sorted(set(arm.events))
        print(
            f"history events per workflow  {statistics.mean(arm.events):8.1f}   ({arm.name}; "
            f"{len(arm.events)} histories, counts seen {events}; "
            f"{statistics.mean(arm.history_bytes):.0f} bytes)"
        )
    added = statistics.mean(mb.events) - statistics.mean(direct.events)
    extra = mb.event_types - direct.event_types
    fewer = direct.event_types - mb.event_types
    detail = ", ".join(
        [f"+{n} {t}" for t, n in extra.items()] + [f"-{n} {t}" for t, n in fewer.items()]
    )
    print(f"history events added per wf  {added:+8.1f}   ({detail or 'same event types'})")
    added_bytes = statistics.mean(mb.history_bytes) - statistics.mean(direct.history_bytes)
    print(f"history bytes added per wf   {added_bytes:+8.0f}")
    for arm in (mb, direct):
        print(f"status queries per workflow  {arm.queries / arm.docs:8.2f}   ({arm.name})")
    print(f"bench process peak RSS       {peak_rss_mib():8.1f} MiB (workers and client)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="workflows per arm and round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, arms alternating order")
    parser.add_argument("--warmup", type=int, default=30, help="workflows per arm before timing")
    parser.add_argument("--concurrency", type=int, default=64, help="workflows in flight")
    args = parser.parse_args()
    for name in ("docs", "rounds", "warmup", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    asyncio.run(main(args.docs, args.warmup, args.rounds, args.concurrency))
