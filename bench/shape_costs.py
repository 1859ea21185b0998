"""What each trait of the pipeline's workflow shape costs, against the bare two-activity floor.

Every variant runs on one dev server, with the project's worker settings unless the variant is
about a setting, and with no-op activities. Rounds interleave the variants and measure the bare
workflow first in each round; the table shows per-variant medians of workflows per second and
of the ratio to that round's bare figure, which is robust to a noisy neighbour on the machine.

    uv run python bench/shape_costs.py [--docs 200] [--rounds 3] [--only bare,floor,...]

``--serve`` is internal: it runs one variant's worker in a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

sys.path.insert(0, str(Path(__file__).parent))
import _shapes
from _bare import BARE_ACTIVITIES, BareTwoActivityWorkflow
from _floor import FLOOR_ACTIVITIES
from modelbaton.app.worker import WorkerOptions
from modelbaton.contracts import DeploymentStrategy
from modelbaton.models.catalog import load_catalog
from modelbaton.models.corpus import generate_documents
from modelbaton.pipeline import search_attributes as sa
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.releases import RELEASES
from modelbaton.pipeline.starter import legacy_workflow_input, start_document
from modelbaton.settings import Settings
from modelbaton.stack.connect import temporal_binary

SETTINGS = WorkerOptions(task_queue="-")
FLOOR = RELEASES[SETTINGS.release]
SA_AT_START = TypedSearchAttributes(
    [SearchAttributePair(sa.MODEL_VERSION, "v2"), SearchAttributePair(sa.OUTPUT_SCHEMA_VERSION, 2)]
)


@dataclass(frozen=True)
class Variant:
    """One workflow, its activities, how it is started and how its worker is configured."""

    workflow: type
    activities: Sequence[object] = field(default_factory=lambda: BARE_ACTIVITIES)
    pydantic: bool = False  # Pydantic data converter instead of the default one
    payload: str = (
        "none"  # "none": a short string; "doc": the pipeline's input; "tiny": same, tiny text
    )
    start_sa: bool = False  # search attributes at start
    project_starter: bool = False  # modelbaton.pipeline.starter.start_document
    runner: str = "sandbox"  # "sandbox", "passthrough" (modelbaton passed through), "none"
    max_wft: int | None = SETTINGS.max_concurrent_workflow_tasks  # None: SDK default
    gate: int = 64  # starts in flight at once
    child: bool = False  # worker in its own process


BARE = Variant(BareTwoActivityWorkflow)
MODELS = Variant(_shapes.ModelsWorkflow, FLOOR_ACTIVITIES, pydantic=True, payload="doc")
PROJECT = Variant(FLOOR, FLOOR_ACTIVITIES, pydantic=True, payload="doc", project_starter=True)
VARIANTS: dict[str, Variant] = {
    "bare": BARE,
    "bare+pydantic-converter": replace(BARE, pydantic=True),
    "bare+upsert-2-SA": Variant(_shapes.UpsertWorkflow),
    "bare+SA-at-start": replace(BARE, start_sa=True),
    "bare+patched": Variant(_shapes.PatchedWorkflow),
    "bare+logger": Variant(_shapes.LoggerWorkflow),
    "bare+handlers": Variant(_shapes.HandlersWorkflow),
    "bare+pydantic-messages(doc)": MODELS,
    "bare+pydantic-messages(tiny)": replace(MODELS, payload="tiny"),
    "bare unsandboxed": replace(BARE, runner="none"),
    "bare max_wft=default": replace(BARE, max_wft=None),
    "bare gate=16": replace(BARE, gate=16),
    "bare worker-in-child": replace(BARE, child=True),
    "composed (all traits, small module)": Variant(
        _shapes.ComposedWorkflow, FLOOR_ACTIVITIES, pydantic=True, payload="doc", start_sa=True
    ),
    "floor": PROJECT,
    "floor tiny text": replace(PROJECT, payload="tiny", project_starter=False, start_sa=True),
    "floor passthrough modelbaton": replace(PROJECT, runner="passthrough"),
    "floor unsandboxed": replace(PROJECT, runner="none"),
    "floor max_wft=default": replace(PROJECT, max_wft=None),
    "floor gate=16": replace(PROJECT, gate=16),
    "floor gate=256": replace(PROJECT, gate=256),
    "floor worker-in-child": replace(PROJECT, child=True),
    "floor passthrough worker-in-child": replace(PROJECT, runner="passthrough", child=True),
}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid() -> int:
    """The dev server this process started (a ``temporal`` child process)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if comm == "temporal" and ppid == os.getpid():
            return int(stat.parent.name)
    raise RuntimeError("dev server process not found")


@dataclass
class Sample:
    rate: float  # workflows per second, first start to last result
    cpu_ms: float  # CPU of the Python process(es) running worker and starter, per workflow
    server_ms: float  # CPU of the dev server, per workflow


def converter(v: Variant) -> DataConverter:
    return pydantic_data_converter if v.pydantic else DataConverter.default


def runner(v: Variant) -> WorkflowRunner:
    if v.runner == "none":
        return UnsandboxedWorkflowRunner()
    if v.runner == "passthrough":
        restrictions = SandboxRestrictions.default.with_passthrough_modules("modelbaton", "_shapes")
        return SandboxedWorkflowRunner(restrictions=restrictions)
    return SandboxedWorkflowRunner()


def make_worker(client: Client, v: Variant, task_queue: str) -> Worker:
    """``modelbaton.app.worker.build_worker``'s settings, plus the variant's overrides."""
    extra: dict[str, Any] = {}
    if v.max_wft is not None:
        extra["max_concurrent_workflow_tasks"] = v.max_wft
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[v.workflow],
        activities=list(v.activities),  # type: ignore[arg-type]
        max_concurrent_activities=SETTINGS.max_concurrent_activities,
        graceful_shutdown_timeout=SETTINGS.graceful_shutdown,
        workflow_runner=runner(v),
        **extra,
    )


class Fixture:
    def __init__(self, env_client: Client) -> None:
        settings = Settings.from_env()
        catalog = load_catalog(settings.catalog_path, base_url="http://127.0.0.1:9")
        self.deployment = DeploymentStrategy(primary_version=catalog.get("v2"))
        self.pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
        self.clients = {
            True: Client(**(env_client.config() | {"data_converter": pydantic_data_converter})),
            False: Client(**(env_client.config() | {"data_converter": DataConverter.default})),
        }
        self.target = env_client.service_client.config.target_host
        self.server = server_pid()
        self.seed = 0

    def documents(self, n: int) -> list[Document]:
        self.seed += 1
        return [
            validate_text(d.text, f"shape:{self.seed}:{i}")
            for i, d in enumerate(generate_documents(n, self.seed))
        ]

    def starter(self, v: Variant) -> Callable[[Document, str], Awaitable[Any]]:
        client = self.clients[v.pydantic]

        def start(doc: Document, task_queue: str) -> Awaitable[Any]:
            if v.project_starter:
                inp = legacy_workflow_input(doc, self.deployment, self.pipeline)
                return start_document(client, doc, inp, task_queue)
            arg: Any = doc.document_id
            if v.payload != "none":
                arg = legacy_workflow_input(doc, self.deployment, self.pipeline)
                if v.payload == "tiny":
                    arg = arg.model_copy(update={"text": "tiny"})
            return client.start_workflow(
                v.workflow,
                arg,
                id=f"shape-{uuid.uuid4().hex}",
                task_queue=task_queue,
                search_attributes=SA_AT_START if v.start_sa else None,
            )

        return start

    async def run(self, name: str, n: int) -> Sample:
        v = VARIANTS[name]
        docs = self.documents(n)
        task_queue = f"shape-{uuid.uuid4().hex[:8]}"
        start = self.starter(v)
        cpu0, srv0 = time.process_time(), cpu_seconds(self.server)
        child_cpu = 0.0
        if v.child:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--serve",
                name,
                "--target",
                self.target,
                "--task-queue",
                task_queue,
                stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).strip() == b"ready"
            cpu0, srv0 = time.process_time(), cpu_seconds(self.server)
            child0 = cpu_seconds(proc.pid)
            try:
                rate = await self._drive(docs, start, task_queue, v.gate)
                child_cpu = cpu_seconds(proc.pid) - child0
            finally:
                os.kill(proc.pid, signal.SIGTERM)
                await proc.wait()
        else:
            async with make_worker(self.clients[v.pydantic], v, task_queue):
                cpu0, srv0 = time.process_time(), cpu_seconds(self.server)
                rate = await self._drive(docs, start, task_queue, v.gate)
        cpu = time.process_time() - cpu0 + child_cpu
        srv = cpu_seconds(self.server) - srv0
        return Sample(rate, 1000 * cpu / n, 1000 * srv / n)

    @staticmethod
    async def _drive(
        docs: list[Document],
        start: Callable[[Document, str], Awaitable[Any]],
        task_queue: str,
        gate_size: int,
    ) -> float:
        t0 = time.perf_counter()
        gate = asyncio.Semaphore(gate_size)

        async def one(doc: Document) -> None:
            async with gate:
                handle = await start(doc, task_queue)
            await handle.result()

        await asyncio.gather(*(one(d) for d in docs))
        return len(docs) / (time.perf_counter() - t0)


async def serve(name: str, target: str, task_queue: str) -> None:
    v = VARIANTS[name]
    client = await Client.connect(target, data_converter=converter(v))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with make_worker(client, v, task_queue):
        print("ready", flush=True)
        await stop.wait()
    # The SDK's native threads can crash interpreter finalization; the worker is already down.
    os._exit(0)


async def main(names: list[str], n: int, warmup: int, rounds: int) -> None:
    samples: dict[str, list[Sample]] = {k: [] for k in names}
    ratios: dict[str, list[float]] = {k: [] for k in names}
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=sa.ALL,
    ) as env:
        fx = Fixture(env.client)
        for name in names:
            await fx.run(name, warmup)
        for r in range(rounds):
            bare = await fx.run("bare", n)
            for name in names:
                s = bare if name == "bare" else await fx.run(name, n)
                samples[name].append(s)
                ratios[name].append(s.rate / bare.rate)
                print(
                    f"round {r + 1} {name:36s} {s.rate:6.1f} wf/s {s.rate / bare.rate:5.2f} "
                    f"py {s.cpu_ms:5.2f} ms/wf  server {s.server_ms:5.2f} ms/wf",
                    flush=True,
                )
    print(f"\n{n} workflows per run, medians of {rounds} rounds")
    head = ("wf/s", "÷bare", "py ms/wf", "÷bare", "srv ms/wf")
    print(f"{'variant':36s} {head[0]:>6s} {head[1]:>6s} {head[2]:>9s} {head[3]:>6s} {head[4]:>9s}")
    bare_cpu = statistics.median(s.cpu_ms for s in samples["bare"])
    for name in names:
        rate = statistics.median(s.rate for s in samples[name])
        cpu = statistics.median(s.cpu_ms for s in samples[name])
        srv = statistics.median(s.server_ms for s in samples[name])
        ratio = statistics.median(ratios[name])
        print(f"{name:36s} {rate:6.1f} {ratio:6.2f} {cpu:9.2f} {bare_cpu / cpu:6.2f} {srv:9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated variant names (bare is always measured)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.target, args.task_queue))
    else:
        chosen = args.only.split(",") if args.only else list(VARIANTS)
        names = ["bare", *(c for c in chosen if c != "bare")]
        asyncio.run(main(names, args.docs, args.warmup, args.rounds))
        # As in serve(): skip interpreter finalization, which the SDK's threads can crash.
        sys.stdout.flush()
        os._exit(0)
