"""Drain detection lag: from the last old-build workflow closing to ``baton drain`` saying drained.

Each run: a fresh deployment with two versioned builds (A, B) on one task queue, A current,
``--workflows`` workflows started on A and held; B becomes current; the real ``baton drain --from A
--json`` runs as a subprocess; the workflows are released one by one. The lag is the drain's
``drained_at`` (the poll that found nothing running) minus the server's close time of the last A
workflow. The server's own DRAINED status is timed too, with the shortened dynamic config
(5 s grace, 2 s refresh) the dev stack uses; its default grace period is 180 s.
Goal: drain lag at most 5 s in every run.

    uv run python bench/drain.py [--runs 5] [--workflows 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parent))
from _probe import DrainProbe
from modelbaton.app.worker import WorkerOptions, build_worker
from modelbaton.pipeline import search_attributes
from modelbaton.stack.connect import temporal_binary
from modelbaton.stack.devserver import DEV_SERVER_DYNAMIC_CONFIG
from modelbaton.versioning.builds import Build
from modelbaton.versioning.control import DeploymentControl


async def await_polling(control: DeploymentControl, build_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if await control.pollers(build_id):
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"build {build_id} never polled")
        await asyncio.sleep(0.2)


async def one_run(client: Client, n: int) -> tuple[float, float, float]:
    queue = f"drain-bench-{uuid.uuid4().hex[:8]}"
    control = DeploymentControl(client, queue)
    workers = [
        build_worker(
            client,
            WorkerOptions(task_queue=queue, build=Build(queue, b)),
            [],
            workflows=[DrainProbe],
        )
        for b in ("A", "B")
    ]
    async with workers[0], workers[1]:
        await await_polling(control, "A")
        await await_polling(control, "B")
        await control.set_current("A")
        handles = [
            await client.start_workflow(DrainProbe.run, id=f"{queue}-{i}", task_queue=queue)
            for i in range(n)
        ]
        promoted = await control.set_current("B")
        env = os.environ | {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": client.namespace,
            "MODELBATON_TASK_QUEUE": queue,
        }
        baton = Path(sys.executable).parent / "baton"
        proc = await asyncio.create_subprocess_exec(
            str(baton), "drain", "--from", "A", "--json",
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        try:
            await asyncio.sleep(4)  # let the drain connect and take its first count
            closes: list[float] = []
            for h in handles:
                await h.signal(DrainProbe.release)
                await h.result()
                closed = (await h.describe()).close_time
                assert closed is not None
                closes.append(closed.timestamp())
                await asyncio.sleep(0.3)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        report = json.loads(out)
        if not report["drained"]:
            raise RuntimeError(f"drain did not report drained: {report}")
        drain_lag = float(report["drained_at"]) - max(closes)
        while True:
            view = await control.describe()
            a = view.version("A")
            if a is not None and a.drainage == "drained":
                server_lag = time.time() - max(closes)
                break
            if time.time() - max(closes) > 300:
                server_lag = float("inf")
                break
            await asyncio.sleep(0.25)
    return drain_lag, server_lag, promoted.seconds_to_propagate


async def main(runs: int, n: int, server_default: bool) -> int:
    flags: list[str] = []
    for entry in DEV_SERVER_DYNAMIC_CONFIG:
        if not (server_default and "VersionDrainage" in entry):
            flags += ["--dynamic-config-value", entry]
    grace = "server default drainage config" if server_default else "5 s grace, 2 s refresh"
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=flags,
        dev_server_startup_timeout=timedelta(seconds=60),
    ) as env:
        drains: list[float] = []
        servers: list[float] = []
        routing: list[float] = []
        for i in range(runs):
            drain_lag, server_lag, propagated = await one_run(env.client, n)
            drains.append(drain_lag)
            servers.append(server_lag)
            routing.append(propagated)
            print(
                f"run {i + 1}: baton drain reported drained {drain_lag:.2f} s after the last "
                f"A workflow closed; server DRAINED after {server_lag:.2f} s; promoting B "
                f"propagated in {propagated:.2f} s",
                flush=True,
            )
    print(
        f"baton drain lag over {runs} runs of {n} workflows: median "
        f"{statistics.median(drains):.2f} s, max {max(drains):.2f} s (goal <= 5 s)"
    )
    print(
        f"server DRAINED lag ({grace}): median {statistics.median(servers):.2f} s, "
        f"max {max(servers):.2f} s"
    )
    print(
        f"set current (promote) until propagated: median {statistics.median(routing):.2f} s, "
        f"max {max(routing):.2f} s"
    )
    return 0 if max(drains) <= 5.0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workflows", type=int, default=5)
    parser.add_argument(
        "--server-default",
        action="store_true",
        help="Run the dev server without the shortened drainage config (server DRAINED ~180 s).",
    )
    args = parser.parse_args()
    code = asyncio.run(main(args.runs, args.workflows, args.server_default))
    sys.stdout.flush()
    os._exit(code)  # temporalio's runtime may abort interpreter finalization (see cli.main)
