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

``--breakdown`` adds the steps between them (see ``_invoice_steps.py``), each adding one thing:
a second queue, the assignment at start, the ``ModelRoute`` helper; release 2 then adds its patch.

``--no-eager`` runs every workflow worker with Temporal's eager activity dispatch off. With it on
(the SDK's default), an activity scheduled on the workflow's own queue comes back to its worker
in the reply to the workflow task, without the server matching it: the direct arm's model call
has that, a call on a pool's queue cannot. The flag shows what that alone is worth.

Every arm's workers run for the whole bench, as a deployment's would. Rounds alternate the order
(AB, BA, ...) so a noisy neighbour biases neither arm; the CPU each arm
spends per workflow (this process, the dev server, the model server) is printed beside its docs/s,
a figure a busy machine moves less. Each workflow is approved as soon as it waits for approval:
the extraction activity tells the driver it returned, and the driver queries the status until the
workflow waits (the queries per workflow are printed: the same load in every arm).

    uv run python bench/overhead.py [--docs 100] [--rounds 8] [--concurrency 64] [--breakdown]
                                    [--no-eager]
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
from _invoice_steps import (
    AssignedInvoiceWorkflow,
    PoolQueueInvoiceWorkflow,
    UnpatchedInvoiceWorkflow,
)
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
from modelbaton import ModelTarget, RolloutPlan, assign, steady
from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Histories fetched per arm and round to count their events.
HISTORY_SAMPLE = 5
GOAL = 0.95


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


def child_pids() -> list[int]:
    """This process's children (the dev server, the model server), read from /proc."""
    pids: list[int] = []
    for children in Path("/proc/self/task").glob("*/children"):
        pids += [int(p) for p in children.read_text().split()]
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (every thread), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(others: list[int]) -> tuple[float, float]:
    """CPU seconds so far: this process (workers and client), and ``others`` together."""
    return time.process_time(), sum(cpu_seconds(p) for p in others)


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


Handle = WorkflowHandle[Any, InvoiceOutcome]
Starter = Callable[[InvoiceDocument, str], Awaitable[Handle]]


@dataclass
class Batch:
    seconds: float
    queries: int
    cpu_bench: float
    cpu_servers: float
    handles: list[Handle]


@dataclass
class Arm:
    name: str
    release: type
    versions: tuple[str, ...]  # pools to run beside the workflow worker
    start: Starter
    task_queue: str = ""  # set while its workers run
    rates: list[float] = field(default_factory=list)
    seconds: float = 0.0
    docs: int = 0
    queries: int = 0
    cpu_bench: float = 0.0
    cpu_servers: float = 0.0
    events: list[int] = field(default_factory=list)
    history_bytes: list[int] = field(default_factory=list)
    event_types: Counter[str] = field(default_factory=Counter)

    @property
    def slug(self) -> str:
        return self.name.strip("+").replace(" ", "-").lower()

    @property
    def rate(self) -> float:
        return self.docs / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * (self.cpu_bench + self.cpu_servers) / self.docs

    def add(self, n: int, batch: Batch) -> None:
        self.rates.append(n / batch.seconds)
        self.seconds += batch.seconds
        self.docs += n
        self.queries += batch.queries
        self.cpu_bench += batch.cpu_bench
        self.cpu_servers += batch.cpu_servers


@asynccontextmanager
async def workers(
    client: Client, arm: Arm, acts: InvoiceActivities, eager: bool
) -> AsyncIterator[None]:
    """The example's workflow worker for ``arm`` (and its pools) on a queue of its own, running
    for the whole bench as a deployment's workers would."""
    arm.task_queue = f"overhead-{arm.slug}-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        worker = workflow_worker(client, arm.task_queue, arm.release, acts, eager_activities=eager)
        await stack.enter_async_context(worker)
        await stack.enter_async_context(pools(client, arm.task_queue, acts, arm.versions))
        yield


async def run_batch(
    client: Client,
    arm: Arm,
    acts: SignallingActivities,
    docs: list[InvoiceDocument],
    concurrency: int,
    servers: list[int],
) -> Batch:
    """Start, approve and await every document's workflow on ``arm``'s running workers; seconds
    from first start to last result, and the CPU spent meanwhile by this process and by the
    ``servers`` (dev server, model server)."""
    queries = 0

    async def one(doc: InvoiceDocument, task_queue: str) -> Handle:
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

    gate = asyncio.Semaphore(concurrency)

    async def gated(doc: InvoiceDocument) -> Handle:
        async with gate:
            return await one(doc, arm.task_queue)

    cpu0 = cpu_now(servers)
    t0 = time.perf_counter()
    handles = await asyncio.gather(*(gated(d) for d in docs))
    seconds = time.perf_counter() - t0
    cpu1 = cpu_now(servers)
    for d in docs:
        acts.extracted.pop(d.invoice_id, None)
    return Batch(
        seconds=seconds,
        queries=queries,
        cpu_bench=cpu1[0] - cpu0[0],
        cpu_servers=cpu1[1] - cpu0[1],
        handles=list(handles),
    )


async def count_history(arm: Arm, handles: list[Handle]) -> None:
    """Events and serialized bytes of a few real histories of this arm."""
    step = max(1, len(handles) // HISTORY_SAMPLE)
    for handle in handles[::step][:HISTORY_SAMPLE]:
        history = await handle.fetch_history()
        arm.events.append(len(history.events))
        arm.history_bytes.append(sum(e.ByteSize() for e in history.events))
        arm.event_types = Counter(EventType.Name(e.event_type) for e in history.events)


def documents(n: int, tag: str) -> list[InvoiceDocument]:
    """The first ``n`` invoices of the example's corpus, ids tagged per batch (workflow ids are
    unique per run); every arm of a round gets the same texts."""
    return [
        InvoiceDocument(invoice_id=f"{s.invoice_id}-{tag}", text=s.text) for s in generate(size=n)
    ]


def make_arms(client: Client, plan: RolloutPlan, breakdown: bool) -> list[Arm]:
    def start_plain(release: type) -> Starter:
        def start(doc: InvoiceDocument, task_queue: str) -> Awaitable[Handle]:
            return client.start_workflow(
                release.run,  # type: ignore[attr-defined]
                InvoiceInput(document=doc),
                id=f"invoice-{doc.invoice_id}",
                task_queue=task_queue,
            )

        return start

    def start_assigned(release: type) -> Starter:
        """As the example's starter does, for a workflow type of the bench."""

        def start(doc: InvoiceDocument, task_queue: str) -> Awaitable[Handle]:
            assigned = assign(doc.invoice_id, plan, task_queue)
            return client.start_workflow(
                release.run,  # type: ignore[attr-defined]
                InvoiceInput(document=doc, assignment=assigned.model, shadow=assigned.shadow),
                id=f"invoice-{doc.invoice_id}",
                task_queue=task_queue,
                search_attributes=assigned.search_attributes,
            )

        return start

    def start_example(doc: InvoiceDocument, task_queue: str) -> Awaitable[Handle]:
        return start_invoice(client, doc, plan, task_queue)

    arms = [Arm("direct", DirectInvoiceWorkflow, (), start_plain(DirectInvoiceWorkflow))]
    if breakdown:
        arms += [
            Arm(
                "+pool queue",
                PoolQueueInvoiceWorkflow,
                ("v1",),
                start_plain(PoolQueueInvoiceWorkflow),
            ),
            Arm(
                "+assign", AssignedInvoiceWorkflow, ("v1",), start_assigned(AssignedInvoiceWorkflow)
            ),
            Arm(
                "+ModelRoute",
                UnpatchedInvoiceWorkflow,
                ("v1",),
                start_assigned(UnpatchedInvoiceWorkflow),
            ),
        ]
    arms.append(Arm("modelbaton", InvoiceWorkflow, ("v1",), start_example))
    return arms


async def main(
    n_docs: int, warmup: int, rounds: int, concurrency: int, breakdown: bool, eager: bool
) -> None:
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
                AsyncExitStack() as running,
            ):
                engine = sa.create_engine(f"sqlite:///{home / 'bookings.db'}")
                acts = SignallingActivities(url, http, engine)
                arms = make_arms(env.client, plan, breakdown)
                for arm in arms:
                    await running.enter_async_context(workers(env.client, arm, acts, eager))
                servers = child_pids()  # the dev server and the model server
                for arm in arms:  # sandbox imports, connections, the model server's first call
                    warm = documents(warmup, f"w-{arm.slug}")
                    await run_batch(env.client, arm, acts, warm, concurrency, servers)
                dispatch = "on" if eager else "off"
                print(
                    f"workflows per arm and round {n_docs}, {concurrency} in flight, "
                    f"eager activity dispatch {dispatch}; docs/s:"
                )
                print("round  " + "  ".join(f"{a.name:>12}" for a in arms) + "  modelbaton/direct")
                for r in range(rounds):
                    order = arms if r % 2 == 0 else arms[::-1]
                    for arm in order:
                        docs = documents(n_docs, f"r{r}-{arm.slug}")
                        batch = await run_batch(env.client, arm, acts, docs, concurrency, servers)
                        arm.add(n_docs, batch)
                        await count_history(arm, batch.handles)
                    ratio = arms[-1].rates[-1] / arms[0].rates[-1]
                    rates = "  ".join(f"{a.rates[-1]:12.1f}" for a in arms)
                    print(f"{r + 1:5d}  {rates}  {ratio:17.3f}", flush=True)
                await running.aclose()
                engine.dispose()
    print_summary(arms)


def print_summary(arms: list[Arm]) -> None:
    direct, mb = arms[0], arms[-1]
    print()
    print(
        f"{'arm':<12} {'workflows':>9} {'docs/s':>7} {'/direct':>7} {'CPU ms/wf':>9} "
        f"{'(workers':>8} {'servers)':>8} {'events/wf':>9} {'bytes/wf':>8} {'queries/wf':>10}"
    )
    for arm in arms:
        bench_ms = 1000 * arm.cpu_bench / arm.docs
        servers_ms = 1000 * arm.cpu_servers / arm.docs
        print(
            f"{arm.name:<12} {arm.docs:9d} {arm.rate:7.1f} {arm.rate / direct.rate:7.3f} "
            f"{arm.cpu_ms:9.1f} {bench_ms:8.1f} {servers_ms:8.1f} "
            f"{statistics.mean(arm.events):9.1f} {statistics.mean(arm.history_bytes):8.0f} "
            f"{arm.queries / arm.docs:10.2f}"
        )
    ratios = [a / b for a, b in zip(mb.rates, direct.rates, strict=True)]
    spread = (
        f"rounds: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    print()
    for arm in (mb, direct):
        label = f"{arm.name} docs/s"
        print(f"{label:<29} {arm.rate:7.1f}  ({arm.docs} workflows in {arm.seconds:.1f} s)")
    print(f"ratio modelbaton/direct       {mb.rate / direct.rate:7.3f}  (goal >= {GOAL}; {spread})")
    cpu_ratio = direct.cpu_ms / mb.cpu_ms
    print(f"CPU ratio direct/modelbaton   {cpu_ratio:7.3f}  (the docs/s ratio if CPU-bound)")
    added = statistics.mean(mb.events) - statistics.mean(direct.events)
    extra = mb.event_types - direct.event_types
    fewer = direct.event_types - mb.event_types
    detail = [f"+{n} {t.removeprefix('EVENT_TYPE_')}" for t, n in extra.items()]
    detail += [f"-{n} {t.removeprefix('EVENT_TYPE_')}" for t, n in fewer.items()]
    print(
        f"history events added per wf   {added:+7.1f}  ({', '.join(detail) or 'same event types'})"
    )
    print(f"bench process peak RSS        {peak_rss_mib():7.1f} MiB (workers and client)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100, help="workflows per arm and round")
    parser.add_argument("--rounds", type=int, default=8, help="rounds, the order alternating")
    parser.add_argument("--warmup", type=int, default=20, help="workflows per arm before timing")
    parser.add_argument("--concurrency", type=int, default=64, help="workflows in flight")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the steps from direct to modelbaton"
    )
    parser.add_argument(
        "--no-eager",
        action="store_true",
        help="turn off eager activity dispatch in every arm's workflow worker",
    )
    args = parser.parse_args()
    for name in ("docs", "rounds", "warmup", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    asyncio.run(
        main(
            args.docs,
            args.warmup,
            args.rounds,
            args.concurrency,
            args.breakdown,
            not args.no_eager,
        )
    )
