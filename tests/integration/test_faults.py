"""Faults where they matter: the real stack (dev server, model server, pools, worker) as processes.

A worker SIGKILLed mid-batch, the dev server restarted mid-batch, the model server down for 30 s,
and Temporal, the model server or a pool SIGKILLed three times in one batch on a loaded machine
with ``dev up`` (:func:`embedded.start_stack`) as the only recovery: every document completes
with exactly one current downstream record, counted from the results store and from Temporal
visibility. (A model returning malformed output fails its documents at
once and writes nothing: ``test_malformed_model_output_fails_document_without_retry`` in
``test_pipeline.py``.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter

from machine_load import LoadFloor
from modelbaton.contracts.rollout import ModelRef, RolloutPlan
from modelbaton.models.catalog import Catalog
from modelbaton.models.corpus import generate_documents
from modelbaton.pipeline.intake import Document, validate_text
from modelbaton.pipeline.starter import submit_documents
from modelbaton.pipeline.store import ResultsStore
from modelbaton.stack import embedded, processes
from modelbaton.stack.embedded import StackOptions, StackState
from waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.faults]
#: 30 s in the suite; MODELBATON_FAULT_OUTAGE_SECONDS=200 shows an outage longer than the old
#: retry budget (8 attempts, about 90 s) fails nothing either.
OUTAGE_SECONDS = float(os.environ.get("MODELBATON_FAULT_OUTAGE_SECONDS", "30"))


@pytest.fixture
def stack_options(
    tmp_path: Path, model_cache: Path, reference_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StackOptions]:
    # The stack's model server reuses the artifacts this session trained.
    monkeypatch.setenv("MODELBATON_CACHE_DIR", str(model_cache))
    for name in [n for n in os.environ if n.startswith(("TEMPORAL_", "MODELBATON_"))]:
        if name != "MODELBATON_CACHE_DIR":
            monkeypatch.delenv(name)
    home = tmp_path / "stack"
    options = StackOptions(home=home, ui=False, ephemeral_ports=True, pools=("v2",))
    try:
        yield options
    finally:
        embedded.stop_stack(home)


async def connect(state: StackState) -> Client:
    return await Client.connect(
        state.temporal_address, namespace=state.namespace, data_converter=pydantic_data_converter
    )


def batch(n: int, seed: int) -> list[Document]:
    return [
        validate_text(g.text, f"fault:{seed}:{i}")
        for i, g in enumerate(generate_documents(n, seed))
    ]


async def submit(
    client: Client, state: StackState, catalog: Catalog, docs: list[Document]
) -> list[str]:
    plan = RolloutPlan(
        model_id="doc-classifier", baseline=ModelRef(version="v2", output_schema_version=2)
    )
    pipeline = catalog.pipeline.model_copy(update={"review_threshold": 0.0})
    report = await submit_documents(client, docs, plan, pipeline, state.task_queue)
    assert len(report.started) == len(docs)
    return report.started


def records(state: StackState) -> int:
    store = ResultsStore(f"sqlite:///{state.home / 'results.db'}")
    try:
        return store.summary()["total"]
    except Exception:  # the table appears with the first write
        return 0
    finally:
        store.close()


async def all_completed(client: Client, state: StackState, ids: list[str], within: float) -> None:
    """Every document of the batch completed once, none failed. The stack is this test's own, so
    its task queue holds exactly the batch: the wait polls two visibility counts (not 200
    describes a second, which loaded the server it measures), then each document is checked."""
    queue = f"TaskQueue = '{state.task_queue}'"
    ended_badly = f"{queue} AND ExecutionStatus != 'Running' AND ExecutionStatus != 'Completed'"

    async def done() -> bool:
        bad = (await client.count_workflows(ended_badly)).count
        assert bad == 0, f"{bad} documents failed, were terminated or timed out"
        completed = await client.count_workflows(f"{queue} AND ExecutionStatus = 'Completed'")
        return completed.count >= len(ids)

    await eventually(done, within=within, every=1.0, what=f"{len(ids)} documents completed")
    statuses = await asyncio.gather(*(client.get_workflow_handle(w).describe() for w in ids))
    assert all(d.status is WorkflowExecutionStatus.COMPLETED for d in statuses), [
        (d.id, d.status) for d in statuses if d.status is not WorkflowExecutionStatus.COMPLETED
    ][:5]
    # Exactly one current record per document, and visibility agrees.
    store = ResultsStore(f"sqlite:///{state.home / 'results.db'}")
    try:
        current = [r.document_id for r in store.records()]
        assert len(current) == len(set(current)) == len(ids)
        assert store.superseded() == []
    finally:
        store.close()

    async def visible() -> bool:
        query = f"TaskQueue = '{state.task_queue}' AND ExecutionStatus = 'Completed'"
        return (await client.count_workflows(query)).count == len(ids)

    await eventually(visible, what="visibility counts every document completed")


async def batch_under_way(
    options: StackOptions, catalog: Catalog, n: int, seed: int, done_before_fault: int
) -> tuple[StackState, Client, list[str]]:
    """Start the stack, submit ``n`` documents, return once ``done_before_fault`` are stored."""
    state = embedded.start_stack(options)
    client = await connect(state)
    ids = await submit(client, state, catalog, batch(n, seed))
    await eventually(
        lambda: records(state) >= done_before_fault, within=120, what="a part of the batch done"
    )
    return state, client, ids


@pytest.mark.slow(seconds=90)
@pytest.mark.timeout(420)
async def test_worker_killed_mid_batch(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    state, client, ids = await batch_under_way(stack_options, reference_catalog, 200, 501, 30)
    (worker,) = state.workers
    os.kill(worker.pid, signal.SIGKILL)  # by its own PID, as recorded by the stack
    await eventually(lambda: not processes.is_ours(worker), what="the worker gone")
    assert records(state) < 200, "the batch finished before the kill; the test proves nothing"
    embedded.restart_workers(state.home)
    await all_completed(client, state, ids, within=240)


@pytest.mark.slow(seconds=70)
@pytest.mark.timeout(420)
async def test_dev_server_restarted_mid_batch(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    state, client, ids = await batch_under_way(stack_options, reference_catalog, 100, 502, 10)
    temporal = state.process(embedded.TEMPORAL)
    assert temporal is not None
    processes.stop(temporal)
    assert records(state) < 100, "the batch finished before the restart; the test proves nothing"
    # 'baton dev up' on a degraded stack restarts it; Temporal's SQLite file keeps every workflow.
    state = embedded.start_stack(stack_options)
    client = await connect(state)
    await all_completed(client, state, ids, within=240)


@pytest.mark.slow(seconds=95)
@pytest.mark.timeout(420 + OUTAGE_SECONDS)
async def test_model_server_down_for_a_while(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    state, client, ids = await batch_under_way(stack_options, reference_catalog, 80, 503, 5)
    embedded.stop_models(state.home)
    assert records(state) < 80, "the batch finished before the outage; the test proves nothing"
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a state
    embedded.start_models(state.home)
    await all_completed(client, state, ids, within=180 + OUTAGE_SECONDS)


@pytest.fixture
def loaded_machine() -> Iterator[None]:
    """At least a core's worth of load from outside the test for the whole test: a CPU burner
    that runs whenever the rest of the machine brings less (:mod:`machine_load`)."""
    with LoadFloor(floor=1.0) as floor:
        yield
    print(floor.summary())  # shown with -rP


#: The batch (issue 18's 200), and how many documents are stored before each of the three kills.
#: Here (2 shared cores, a CPU burner) the three tests took 60, 64 and 116 s; on a busier machine
#: MODELBATON_FAULT_BATCH=120 keeps them shorter and still leaves 50 in flight after the last kill.
BATCH = int(os.environ.get("MODELBATON_FAULT_BATCH", "200"))
KILL_AT = (BATCH // 12, BATCH // 3, BATCH * 7 // 12)


async def kill_three_times_and_repair(
    options: StackOptions,
    catalog: Catalog,
    seed: int,
    victim_of: Callable[[StackState], processes.ProcessRecord],
) -> None:
    """SIGKILL one component three times in one batch, each time recovering with ``dev up`` alone.

    Each ``dev up`` must restart exactly the killed component on its recorded port and keep every
    survivor (the same PID): issue 18's race started a second model server beside a survivor.
    """
    began = time.monotonic()
    phases: list[str] = []
    state, client, ids = await batch_under_way(options, catalog, BATCH, seed, KILL_AT[0])
    phases.append(f"stack up and {KILL_AT[0]} stored {time.monotonic() - began:.0f} s")
    for stored in KILL_AT:
        await eventually(
            lambda s=state, n=stored: records(s) >= n,  # type: ignore[misc]
            within=180,
            what=f"{stored} documents stored",
        )
        victim = victim_of(state)
        survivors = {p.name: p.pid for p in state.processes if p.name != victim.name}
        os.kill(victim.pid, signal.SIGKILL)  # by its own PID, as recorded by the stack
        await eventually(lambda v=victim: not processes.is_ours(v), what=f"{victim.name} gone")  # type: ignore[misc]
        assert records(state) < BATCH, "the batch finished before the kill; the test proves nothing"
        repair_began = time.monotonic()
        state = embedded.start_stack(options)
        phases.append(f"dev up {time.monotonic() - repair_began:.0f} s")
        assert not state.already_running
        restarted = state.process(victim.name)
        assert restarted is not None
        assert restarted.pid != victim.pid
        assert restarted.port == victim.port
        assert processes.is_ours(restarted)
        assert {p.name: p.pid for p in state.processes if p.name != victim.name} == survivors
        assert all(processes.is_ours(p) for p in state.processes)
        assert any(line.startswith(f"restarted {victim.name} ") for line in state.repairs)
        client = await connect(state)
    last_repair = time.monotonic()
    await all_completed(client, state, ids, within=300)
    phases.append(f"rest of the batch {time.monotonic() - last_repair:.0f} s")
    print(f"{victim.name} x3: " + ", ".join(phases))  # shown with -rP: where the time goes
    # A healthy stack: 'dev up' changes nothing.
    again = embedded.start_stack(options)
    assert again.already_running
    assert [p.pid for p in again.processes] == [p.pid for p in state.processes]


def temporal_of(state: StackState) -> processes.ProcessRecord:
    record = state.process(embedded.TEMPORAL)
    assert record is not None
    return record


def models_of(state: StackState) -> processes.ProcessRecord:
    record = state.process(embedded.MODELS)
    assert record is not None
    return record


def pool_of(state: StackState) -> processes.ProcessRecord:
    return state.pools["v2"]


@pytest.mark.slow(seconds=100)
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("loaded_machine")
async def test_temporal_sigkilled_three_times_dev_up_repairs(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    await kill_three_times_and_repair(stack_options, reference_catalog, 511, temporal_of)


@pytest.mark.slow(seconds=145)
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("loaded_machine")
async def test_model_server_sigkilled_three_times_dev_up_repairs(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    await kill_three_times_and_repair(stack_options, reference_catalog, 512, models_of)


@pytest.mark.slow(seconds=130)
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("loaded_machine")
async def test_pool_sigkilled_three_times_dev_up_repairs(
    stack_options: StackOptions, reference_catalog: Catalog
) -> None:
    await kill_three_times_and_repair(stack_options, reference_catalog, 513, pool_of)
