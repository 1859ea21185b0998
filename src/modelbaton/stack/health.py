"""Is a component of the embedded stack healthy: readiness and health checks, and the ports.

Temporal answers for its namespace, an HTTP component answers 200 on ``/healthz``, a worker or
pool shows up among its task queue's pollers with its own PID, and a port that a restart needs is
free (or held by a leftover of the process we started, never by a stranger).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from modelbaton import polling
from modelbaton.contracts.rollout import pool_task_queue
from modelbaton.errors import PortInUseError, StackError
from modelbaton.pipeline import search_attributes
from modelbaton.stack import processes
from modelbaton.stack.layout import POOL_PREFIX, TEMPORAL, StackState
from modelbaton.stack.processes import ProcessRecord

T = TypeVar("T")


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop.

    The demo and async tests call the synchronous stack API from a coroutine; ``asyncio.run``
    refuses to nest, so then the coroutine gets its own loop in a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the pipeline's search attributes the namespace lacks; return their names.

    ``--search-attribute`` only acts when the dev server creates its database, so a database made
    before an attribute was added to the pipeline would silently lack it after a restart.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in search_attributes.ALL:
        want = IndexedValueType.ValueType(key.indexed_value_type.value)
        have = listed.custom_attributes.get(key.name)
        if have is None:
            missing[key.name] = want
        elif have != want:
            raise StackError(
                f"search attribute {key.name} is registered as {IndexedValueType.Name(have)} in "
                f"namespace {namespace}, modelbaton needs {IndexedValueType.Name(want)}; "
                "start with a fresh --home"
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


async def await_temporal(
    record: ProcessRecord, address: str, namespace: str, seconds: float
) -> None:
    host, _, port = address.rpartition(":")
    last_error = "the port never accepted a connection"

    async def answers() -> bool:
        nonlocal last_error
        if not processes.is_ours(record):
            raise StackError(f"{TEMPORAL} exited during start-up; see its log {record.log}")
        if not processes.port_accepts(host, int(port)):
            return False
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            )
            await ensure_search_attributes(client, namespace)
        except (RuntimeError, RPCError) as exc:
            last_error = str(exc)
            return False
        return True

    await polling.await_until(
        answers,
        within=seconds,
        every=0.25,
        give_up=lambda: StackError(
            f"{TEMPORAL} (pid {record.pid}) did not answer for namespace {namespace} within "
            f"{seconds:.0f} s ({last_error}); see its log {record.log}"
        ),
    )


def polled_queue(state: StackState, record: ProcessRecord) -> tuple[str, int]:
    """The task queue a worker process polls, and whether for workflow or activity tasks."""
    if record.name.startswith(POOL_PREFIX):
        version = record.name.removeprefix(POOL_PREFIX)
        return pool_task_queue(state.task_queue, version), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    return state.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW


async def await_workers(state: StackState, workers: list[ProcessRecord], seconds: float) -> None:
    """Wait until every worker (or pool) polls its task queue.

    The SDK's default identity is ``<pid>@<host>``, so a poller with our PID proves that this
    very process is connected and polling (old pollers of a restarted worker linger in the list
    for minutes, which is why the PID matters).
    """
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    pending = {w.pid: w for w in workers}

    async def all_polling() -> bool:
        for worker in pending.values():
            if not processes.is_ours(worker):
                raise StackError(f"{worker.name} exited during start-up; see its log {worker.log}")
        await _sweep_pollers(client, state, pending)
        return not pending

    def late() -> StackError:
        worker = next(iter(pending.values()))
        return StackError(
            f"{worker.name} (pid {worker.pid}) did not poll task queue "
            f"{polled_queue(state, worker)[0]} within {seconds:.0f} s; see its log {worker.log}"
        )

    await polling.await_until(all_polling, within=seconds, every=0.5, give_up=late)


async def _sweep_pollers(
    client: Client, state: StackState, pending: dict[int, ProcessRecord]
) -> None:
    """Drop from ``pending`` every worker seen polling its task queue now (by the PID in the
    SDK's default ``<pid>@<host>`` identity)."""
    for queue, kind in {polled_queue(state, w) for w in pending.values()}:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=state.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=kind,  # type: ignore[arg-type]
            )
        )
        for poller in described.pollers:
            pending.pop(identity_pid(poller.identity), None)


async def not_polling(
    state: StackState, workers: list[ProcessRecord], seconds: float
) -> list[ProcessRecord]:
    """The ones of ``workers`` not seen polling their task queue within ``seconds`` (or gone)."""
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    pending = {w.pid: w for w in workers}

    async def settled() -> bool:
        if not any(processes.is_ours(w) for w in pending.values()):
            return True  # none left alive to start polling
        await _sweep_pollers(client, state, pending)
        return not pending

    with contextlib.suppress(TimeoutError):
        await polling.await_until(
            settled, within=seconds, every=0.5, give_up=lambda: TimeoutError()
        )
    return list(pending.values())


def identity_pid(identity: str) -> int:
    head = identity.partition("@")[0]
    return int(head) if head.isdigit() else -1


def http_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


#: Seconds a surviving process gets to prove it is healthy before it is restarted: a loaded
#: machine may answer slowly, and a survivor that still holds its port must not be replaced by a
#: second instance (issue 18).
SURVIVOR_GRACE_SECONDS = 20.0


#: Seconds a process that just died may keep its listening sockets while the kernel tears it down.
DYING_GRACE_SECONDS = 10.0


def claim_port(host: str, port: int | None, record: ProcessRecord) -> None:
    """Make sure ``port`` is free for ``record``'s restart.

    A process left over from the recorded one (it forked it, so it is in its process group) is
    stopped; a foreign process is never touched, it is named in a :class:`PortInUseError`.
    """
    if port is None:
        return
    held = processes.listener(host, port)

    # A process SIGKILLed just now may still be tearing down (its threads exit one by one) and
    # hold its sockets for a moment after it stopped counting as alive: wait for that to end.
    # (While it exits, its socket may also show no process at all.)
    def settled() -> bool:
        nonlocal held
        if held is not None and held.pid in (record.pid, None):
            held = processes.listener(host, port)
            return held is None or held.pid not in (record.pid, None)
        return True

    with contextlib.suppress(TimeoutError):
        polling.wait_until(
            settled, within=DYING_GRACE_SECONDS, every=0.1, give_up=lambda: TimeoutError()
        )
    if held is None:
        return
    holder = held.pid
    if holder is not None and processes.stop_stray(holder, group=record.pid):
        if processes.listener(host, held.port) is None:
            return
        holder = processes.port_holder(host, held.port)
    raise PortInUseError(
        f"port {port} on {host}, where the stack's {record.name} ran, is held by another process "
        f"({processes.describe_pid(holder)}); stop it, or start a fresh stack with 'baton dev "
        "down' and other ports"
    )


def healthy_within(url: str, seconds: float, record: ProcessRecord) -> bool:
    """True once ``url/healthz`` answers 200 within ``seconds`` while ``record`` runs."""

    def answered() -> bool:
        if not processes.is_ours(record):
            raise ProcessLookupError
        return http_healthy(url)

    try:
        return polling.wait_until(
            answered, within=seconds, every=0.5, give_up=lambda: TimeoutError()
        )
    except (ProcessLookupError, TimeoutError):
        return False
    return False


async def temporal_answers(address: str, namespace: str, seconds: float) -> bool:
    """True when Temporal at ``address`` answers for ``namespace`` within ``seconds``."""
    host, _, port = address.rpartition(":")
    if not processes.port_accepts(host, int(port)):
        return False
    try:
        async with asyncio.timeout(seconds):
            client = await Client.connect(address, namespace=namespace)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            )
            return True
    except (TimeoutError, RuntimeError, RPCError):
        return False
