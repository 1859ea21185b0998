"""Histories per second: the plain single-process Replayer versus ``baton replay-check``.

The same set of histories (the committed ones, repeated under distinct workflow ids to reach at
least --count) is replayed by both, in one run, against the current workflow release.

    uv run python bench/replay.py [--count 2100] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from modelbaton.ops.defaults import DEFAULT_WORKFLOWS
from modelbaton.ops.replay import (
    HistoryItem,
    load_histories_from_dir,
    replay_histories,
)
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "histories"


def corpus(count: int) -> list[HistoryItem]:
    base = load_histories_from_dir(HISTORIES)
    items: list[HistoryItem] = []
    while len(items) < count:
        for item in base:
            n = len(items)
            items.append(HistoryItem(f"{item.workflow_id}-{n}", item.source, item.history_json))
    return items[:count]


async def plain(items: list[HistoryItem]) -> float:
    replayer = Replayer(
        workflows=[DocumentClassificationWorkflow], data_converter=pydantic_data_converter
    )

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for item in items:
            yield WorkflowHistory.from_json(item.workflow_id, item.history_json)

    t0 = time.perf_counter()
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    elapsed = time.perf_counter() - t0
    assert not results.replay_failures, results.replay_failures
    return len(items) / elapsed


def gate(items: list[HistoryItem], processes: int) -> float:
    t0 = time.perf_counter()
    outcomes = replay_histories(DEFAULT_WORKFLOWS, items, processes=processes)
    elapsed = time.perf_counter() - t0
    assert len(outcomes) == len(items)
    assert all(o.ok for o in outcomes)
    return len(items) / elapsed


def main(count: int, processes: int) -> None:
    items = corpus(count)
    single = asyncio.run(plain(items))
    parallel = gate(items, processes)
    print(f"histories                    {len(items)}  (cpus: {os.cpu_count()})")
    print(f"plain Replayer, 1 process    {single:8.1f} histories/s")
    print(f"replay-check, {processes} processes   {parallel:8.1f} histories/s (incl. spawn)")
    print(f"ratio replay-check/plain     {parallel / single:8.2f}   (goal >= 1.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    main(args.count, args.processes)
