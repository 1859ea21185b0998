"""The embedded stack: a Temporal dev server, the model server and workers, all on this machine.

``start_stack`` starts them in that order, waits until each answers, and records addresses and
PIDs in ``<home>/stack.json`` (rewritten atomically after every change, so even an interrupted
start leaves a file that ``stop_stack`` can act on). Temporal keeps its state in
``<home>/temporal.db``, so stopping and starting again keeps every workflow.

Children get the stack's addresses through the environment they already honour (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, MODELBATON_HOME, MODELBATON_MODEL_BASE_URL, MODELBATON_TASK_QUEUE), so a
worker started by hand against the same variables behaves exactly like one started here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from modelbaton.contracts.rollout import pool_task_queue
from modelbaton.errors import PortInUseError, StackError
from modelbaton.pipeline import search_attributes
from modelbaton.settings import DEFAULT_TASK_QUEUE
from modelbaton.stack import processes
from modelbaton.stack.connect import STACK_FILE, read_stack_state, temporal_binary
from modelbaton.stack.devserver import dev_server_command
from modelbaton.stack.processes import ProcessRecord, StopResult

#: The worker validates release names itself; naming the default here (rather than importing
#: the pipeline's releases) keeps ``baton dev status`` and ``down`` free of workflow imports.
DEFAULT_RELEASE = "shadow"
TEMPORAL = "temporal"
MODELS = "models"
WORKER_PREFIX = "worker-"
POOL_PREFIX = "pool-"
DASHBOARD = "dashboard"
CLIENT_CONFIG_FILE = "temporal.toml"
#: Seconds a worker may take from spawn to polling (imports, connecting).
WORKER_TIMEOUT = 120.0

T = TypeVar("T")


@dataclass(frozen=True)
class StackOptions:
    """What ``start_stack`` starts and where.

    ``ephemeral_ports`` ignores the three port fields and lets the OS choose free ports (the demo
    and tests use it so they never collide with a stack someone else runs).
    """

    home: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    model_port: int = 8601
    workers: int = 1
    #: Model versions whose pools to start; None: those the rollout plan needs (the catalog's
    #: primary when no rollout was started); empty: none.
    pools: tuple[str, ...] | None = None
    task_queue: str = DEFAULT_TASK_QUEUE
    release: str = DEFAULT_RELEASE
    namespace: str = "default"
    models: bool = True
    ui: bool = True
    #: The rollout dashboard (``baton ui``); off unless asked for (``baton dev up`` asks).
    dashboard: bool = False
    dashboard_port: int = 8700
    ephemeral_ports: bool = False
    host: str = "127.0.0.1"
    temporal_timeout: float = 60.0
    #: The model server's first start may train the models.
    model_timeout: float = 180.0
    worker_timeout: float = WORKER_TIMEOUT
    #: Run the workers as this Worker Deployment build (Worker Versioning, pinned workflows);
    #: None runs them unversioned, as before. The deployment is named after the task queue.
    build_id: str | None = None
    #: More arguments for ``temporal server start-dev`` (e.g. ``--log-level debug``); recorded
    #: in the server's command, so a repair starts it with them again.
    temporal_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackState:
    """What runs where, as recorded in ``<home>/stack.json``."""

    home: Path
    temporal_address: str
    namespace: str
    ui_url: str | None
    model_base_url: str | None
    task_queue: str
    release: str
    started_at: str
    processes: list[ProcessRecord] = field(default_factory=list)
    #: The rollout dashboard's URL (``baton ui``), when the stack runs one.
    dashboard_url: str | None = None
    #: True when ``start_stack`` found this stack already running and started nothing.
    #: Not persisted.
    already_running: bool = False
    #: The Worker Deployment build the workers run as; None: unversioned workers.
    build_id: str | None = None
    #: What ``start_stack`` did, one line per component ("kept temporal (pid 1)", "restarted
    #: models (pid 2, port 8601)"). Not persisted.
    repairs: tuple[str, ...] = ()

    @property
    def deployment(self) -> str | None:
        """The Worker Deployment of a versioned stack (named after the task queue)."""
        from modelbaton.versioning.builds import deployment_name_for

        return deployment_name_for(self.task_queue) if self.build_id else None

    @property
    def worker_version(self) -> str | None:
        """``<deployment>:<build>`` as visibility shows it, for a versioned stack."""
        return f"{self.deployment}:{self.build_id}" if self.build_id else None

    @property
    def workers(self) -> list[ProcessRecord]:
        """The worker processes, in start order."""
        return [p for p in self.processes if p.name.startswith(WORKER_PREFIX)]

    @property
    def pools(self) -> dict[str, ProcessRecord]:
        """The model pools by version."""
        return {
            p.name.removeprefix(POOL_PREFIX): p
            for p in self.processes
            if p.name.startswith(POOL_PREFIX)
        }

    def process(self, name: str) -> ProcessRecord | None:
        """The recorded process called ``name``, if any."""
        return next((p for p in self.processes if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``stack.json``."""
        return {
            "home": str(self.home),
            "temporal_address": self.temporal_address,
            "namespace": self.namespace,
            "ui_url": self.ui_url,
            "model_base_url": self.model_base_url,
            "task_queue": self.task_queue,
            "release": self.release,
            "build_id": self.build_id,
            "worker_deployment_version": self.worker_version,
            "started_at": self.started_at,
            "dashboard_url": self.dashboard_url,
            "client_config_file": str(self.home / CLIENT_CONFIG_FILE),
            "processes": [p.to_dict() for p in self.processes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], home: Path) -> StackState:
        """Inverse of :meth:`to_dict`; ``home`` is where the file was found."""
        return cls(
            home=home,
            temporal_address=str(data["temporal_address"]),
            namespace=str(data.get("namespace", "default")),
            ui_url=data.get("ui_url"),
            model_base_url=data.get("model_base_url"),
            task_queue=str(data.get("task_queue", DEFAULT_TASK_QUEUE)),
            release=str(data.get("release", DEFAULT_RELEASE)),
            started_at=str(data.get("started_at", "")),
            processes=[ProcessRecord.from_dict(p) for p in data.get("processes", [])],
            dashboard_url=data.get("dashboard_url"),
            build_id=data.get("build_id") or None,
        )


@dataclass(frozen=True)
class ProcessStatus:
    """One recorded process and whether it still runs."""

    record: ProcessRecord
    alive: bool


@dataclass(frozen=True)
class StackStatus:
    """The answer of :func:`stack_status`."""

    home: Path
    state: StackState | None
    processes: list[ProcessStatus]

    @property
    def running(self) -> bool:
        """True when a stack is recorded and every one of its processes is alive."""
        return self.state is not None and all(p.alive for p in self.processes)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready report (``baton dev status --json``)."""
        data: dict[str, Any] = {"home": str(self.home), "running": self.running}
        if self.state is not None:
            data |= self.state.to_dict()
            data["processes"] = [p.record.to_dict() | {"alive": p.alive} for p in self.processes]
        return data


# --------------------------------------------------------------------------------------------
# state file


def load_state(home: Path) -> StackState | None:
    """The recorded stack of ``home``, or None when nothing is recorded there."""
    home = home.resolve()
    try:
        data = read_stack_state(home)
    except (OSError, ValueError) as exc:
        raise StackError(
            f"cannot read {home / STACK_FILE}: {exc}; stop any process it lists by hand "
            "and delete the file"
        ) from None
    return StackState.from_dict(data, home) if data is not None else None


def _write_state(state: StackState) -> None:
    # Write-then-rename: a reader (or a crash) sees the old file or the new one, never half.
    path = state.home / STACK_FILE
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    with tmp.open("w") as out:
        json.dump(state.to_dict(), out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _remove_state(home: Path) -> None:
    (home / STACK_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One ``up``, ``down`` or restart at a time per state directory."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                f"another 'baton dev' command is working on {home}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# helpers


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
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


def _venv_bin() -> Path:
    # The same interpreter directory as temporal_binary(): the project's venv.
    return Path(sys.executable).parent


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _choose_ports(options: StackOptions) -> dict[str, int]:
    wanted: list[tuple[str, int, str]] = [(TEMPORAL, options.temporal_port, "--temporal-port")]
    if options.ui:
        wanted.append(("ui", options.ui_port, "--ui-port"))
    if options.models:
        wanted.append((MODELS, options.model_port, "--model-port"))
    if options.dashboard:
        wanted.append((DASHBOARD, options.dashboard_port, "--dashboard-port"))
    chosen: dict[str, int] = {}
    if options.ephemeral_ports:
        for name, _, _ in wanted:
            port = processes.free_port(options.host)
            while port in chosen.values():
                port = processes.free_port(options.host)
            chosen[name] = port
        return chosen
    for name, port, flag in wanted:
        clash = next((other for other, p in chosen.items() if p == port), None)
        if clash is not None:
            raise StackError(f"port {port} is asked for both {clash} and {name}; change {flag}")
        if processes.port_in_use(options.host, port):
            holder = processes.describe_pid(processes.port_holder(options.host, port))
            raise PortInUseError(
                f"port {port} on {options.host} is already in use by another process ({holder}), "
                f"wanted by {name}; pass another {flag}, or stop that process"
            )
        chosen[name] = port
    return chosen


def _write_client_config(home: Path, address: str, namespace: str) -> Path:
    # A profile for this stack alone: children read it instead of the user's own config file,
    # whose default profile may add TLS or an API key meant for another cluster. People can use
    # it too: ``temporal --config-file <home>/temporal.toml workflow list``.
    path = home / CLIENT_CONFIG_FILE
    path.write_text(
        "# Written by 'baton dev up': the embedded stack's Temporal.\n"
        f'[profile.default]\naddress = "{address}"\nnamespace = "{namespace}"\n'
    )
    return path


def stack_variables(state: StackState) -> dict[str, str]:
    """The variables that point a shell (or any process) at this stack, and nothing else."""
    env = {
        "TEMPORAL_ADDRESS": state.temporal_address,
        "TEMPORAL_NAMESPACE": state.namespace,
        "TEMPORAL_CONFIG_FILE": str(state.home / CLIENT_CONFIG_FILE),
        "MODELBATON_HOME": str(state.home),
        "MODELBATON_TASK_QUEUE": state.task_queue,
    }
    if state.model_base_url:
        env["MODELBATON_MODEL_BASE_URL"] = state.model_base_url
    return env


def _child_env(state: StackState) -> dict[str, str]:
    # Drop inherited TEMPORAL_* (a profile, API key or TLS for another cluster) so children
    # reach this stack and nothing else.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= stack_variables(state)
    # Log lines should reach the log file as they happen, not when a buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------------------------
# readiness


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


async def _await_temporal(
    record: ProcessRecord, address: str, namespace: str, seconds: float
) -> None:
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    last_error = "the port never accepted a connection"
    while True:
        if not processes.is_ours(record):
            raise StackError(f"{TEMPORAL} exited during start-up; see its log {record.log}")
        if processes.port_accepts(host, int(port)):
            try:
                client = await Client.connect(address, namespace=namespace)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace)
                )
                await ensure_search_attributes(client, namespace)
                return
            except (RuntimeError, RPCError) as exc:
                last_error = str(exc)
        if loop.time() > deadline:
            raise StackError(
                f"{TEMPORAL} (pid {record.pid}) did not answer for namespace {namespace} within "
                f"{seconds:.0f} s ({last_error}); see its log {record.log}"
            )
        await asyncio.sleep(0.25)


def _polled_queue(state: StackState, record: ProcessRecord) -> tuple[str, int]:
    """The task queue a worker process polls, and whether for workflow or activity tasks."""
    if record.name.startswith(POOL_PREFIX):
        version = record.name.removeprefix(POOL_PREFIX)
        return pool_task_queue(state.task_queue, version), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    return state.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW


async def _await_workers(state: StackState, workers: list[ProcessRecord], seconds: float) -> None:
    """Wait until every worker (or pool) polls its task queue.

    The SDK's default identity is ``<pid>@<host>``, so a poller with our PID proves that this
    very process is connected and polling (old pollers of a restarted worker linger in the list
    for minutes, which is why the PID matters).
    """
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending = {w.pid: w for w in workers}
    while pending:
        for worker in pending.values():
            if not processes.is_ours(worker):
                raise StackError(f"{worker.name} exited during start-up; see its log {worker.log}")
        for queue, kind in {_polled_queue(state, w) for w in pending.values()}:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=state.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,  # type: ignore[arg-type]
                )
            )
            for poller in described.pollers:
                pending.pop(_identity_pid(poller.identity), None)
        if not pending:
            return
        if loop.time() > deadline:
            late = next(iter(pending.values()))
            raise StackError(
                f"{late.name} (pid {late.pid}) did not poll task queue "
                f"{_polled_queue(state, late)[0]} within {seconds:.0f} s; see its log {late.log}"
            )
        await asyncio.sleep(0.5)


async def _not_polling(
    state: StackState, workers: list[ProcessRecord], seconds: float
) -> list[ProcessRecord]:
    """The ones of ``workers`` not seen polling their task queue within ``seconds`` (or gone)."""
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending = {w.pid: w for w in workers}
    while pending and loop.time() <= deadline:
        if not any(processes.is_ours(w) for w in pending.values()):
            break
        for queue, kind in {_polled_queue(state, w) for w in pending.values()}:
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=state.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=kind,  # type: ignore[arg-type]
                )
            )
            for poller in described.pollers:
                pending.pop(_identity_pid(poller.identity), None)
        if pending:
            await asyncio.sleep(0.5)
    return list(pending.values())


def _identity_pid(identity: str) -> int:
    head = identity.partition("@")[0]
    return int(head) if head.isdigit() else -1


def _model_server_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------------------------
# public API


def stack_status(home: Path) -> StackStatus:
    """What the state directory records, and which recorded PIDs still run what we started."""
    home = home.resolve()
    state = load_state(home)
    procs = [ProcessStatus(p, processes.is_ours(p)) for p in state.processes] if state else []
    return StackStatus(home=home, state=state, processes=procs)


def start_stack(options: StackOptions) -> StackState:
    """Start Temporal, then the model server, pools, workers and dashboard; return what runs where.

    Idempotent, and it repairs: when a stack is recorded, each recorded component that still is
    the process we started (psutil: pid, create time, command line) and is healthy is kept, and
    each other one is started again with its recorded command on its recorded port (the Temporal
    database, and so every workflow, is kept). A healthy stack is returned unchanged, with
    ``already_running`` set; ``repairs`` says what was kept and what was restarted.

    When a component fails to start, everything this call started is stopped by PID (and what
    it forked) and a :class:`StackError` names the component and its log file; what it kept
    keeps running. Ctrl-C during start-up does the same.
    """
    home = options.home.resolve()
    with _locked(home):
        existing = load_state(home)
        if existing is not None and existing.process(TEMPORAL) is not None:
            return _repair(existing, options)
        if existing is not None:
            # A file without Temporal (never written by us): stop what it lists, start afresh.
            processes.stop_many(list(reversed(existing.processes)))
            _remove_state(home)
        return _start(replace(options, home=home))


def _start(options: StackOptions) -> StackState:
    home = options.home
    ports = _choose_ports(options)
    address = f"{options.host}:{ports[TEMPORAL]}"
    model_url = (
        f"http://{options.host}:{ports[MODELS]}"
        if options.models
        else os.environ.get("MODELBATON_MODEL_BASE_URL") or None
    )
    state = StackState(
        home=home,
        temporal_address=address,
        namespace=options.namespace,
        ui_url=f"http://{options.host}:{ports['ui']}" if options.ui else None,
        model_base_url=model_url,
        task_queue=options.task_queue,
        release=options.release,
        started_at=_now(),
        build_id=options.build_id,
    )
    _write_client_config(home, address, options.namespace)
    env = _child_env(state)
    with processes.tracking() as started:
        try:
            return _start_components(options, state, ports, env, started)
        except BaseException as exc:
            # BaseException: Ctrl-C (KeyboardInterrupt) must also stop what was started.
            # Everything spawned in this call, whether or not the file got to record it.
            current = load_state(home) or state
            recorded = [p for p in current.processes if p in started]
            processes.stop_many([*reversed(started), *[p for p in recorded if p not in started]])
            _remove_state(home)
            if isinstance(exc, StackError):
                raise
            if isinstance(exc, Exception):
                component = started[-1].name if started else TEMPORAL
                raise StackError(f"starting {component} failed: {exc}") from exc
            raise


def _start_components(
    options: StackOptions,
    state: StackState,
    ports: dict[str, int],
    env: dict[str, str],
    started: list[ProcessRecord],
) -> StackState:
    home = state.home
    logs = home / "logs"
    address = state.temporal_address
    model_url = state.model_base_url
    temporal = processes.spawn(
        TEMPORAL,
        dev_server_command(
            temporal_binary(),
            ip=options.host,
            port=ports[TEMPORAL],
            ui_port=ports.get("ui"),
            db_filename=home / "temporal.db",
            namespace=options.namespace,
        )
        + list(options.temporal_args),
        logs / "temporal.log",
        env,
        port=ports[TEMPORAL],
        cwd=home,
    )
    state = replace(state, processes=[temporal])
    _write_state(state)
    _run_async(
        lambda: _await_temporal(temporal, address, options.namespace, options.temporal_timeout)
    )

    if options.models:
        assert model_url is not None
        baton = str(_venv_bin() / "baton")
        command = [baton, "models", "serve", "--host", options.host, "--port"]
        models = processes.spawn(
            MODELS,
            [*command, str(ports[MODELS])],
            logs / "models.log",
            env,
            port=ports[MODELS],
            cwd=home,
        )
        state = replace(state, processes=[*state.processes, models])
        _write_state(state)
        processes.wait_until(
            models,
            lambda: _model_server_healthy(model_url),
            timeout=options.model_timeout,
            what=f"a 200 from {model_url}/healthz",
        )

    versions = _default_pools(state) if options.pools is None else list(options.pools)
    state = _spawn_pools(state, versions, options.worker_timeout)
    state = _spawn_workers(state, options.workers, options.worker_timeout)
    if options.dashboard:
        state = _spawn_dashboard(state, options.host, ports[DASHBOARD])
    return replace(state, repairs=tuple(f"started {p.name} (pid {p.pid})" for p in started))


# --------------------------------------------------------------------------------------------
# repair: keep what still is ours and healthy, restart the rest on its recorded port

#: Seconds a surviving process gets to prove it is healthy before it is restarted: a loaded
#: machine may answer slowly, and a survivor that still holds its port must not be replaced by a
#: second instance (issue 18).
SURVIVOR_GRACE_SECONDS = 20.0
#: Seconds a process that just died may keep its listening sockets while the kernel tears it down.
DYING_GRACE_SECONDS = 10.0


def _repair(state: StackState, options: StackOptions) -> StackState:
    """Bring every recorded component back; on failure stop what this call started, by PID,
    and record the stack as it was (survivors alive, the rest dead, for the next ``up``)."""
    with processes.tracking() as started:
        replaced: dict[str, ProcessRecord] = {}
        try:
            return _repair_components(state, options, replaced)
        except BaseException as exc:
            processes.stop_many(list(reversed(started)))
            current = load_state(state.home) or state
            originals = {new.pid: replaced[new.name] for new in started if new.name in replaced}
            _write_state(
                replace(current, processes=[originals.get(p.pid, p) for p in current.processes])
            )
            if isinstance(exc, Exception) and not isinstance(exc, StackError):
                component = started[-1].name if started else TEMPORAL
                raise StackError(f"restarting {component} failed: {exc}") from exc
            raise


def _repair_components(
    state: StackState, options: StackOptions, replaced: dict[str, ProcessRecord]
) -> StackState:
    actions: list[str] = []
    host = state.temporal_address.rpartition(":")[0]

    def respawn(record: ProcessRecord) -> StackState:
        if processes.is_ours(record):  # alive but not healthy
            processes.stop_many([record])
        ports = [record.port]
        if record.name == TEMPORAL and state.ui_url:
            ports.append(int(state.ui_url.rpartition(":")[2]))
        for port in ports:
            _claim_port(host, port, record)
        new = processes.spawn(
            record.name,
            record.command,
            Path(record.log),
            _child_env(state),
            port=record.port,
            cwd=state.home,
        )
        replaced[new.name] = record
        actions.append(f"restarted {new.name} (pid {new.pid}" + _on_port(new) + ")")
        updated = replace(state, processes=[new if p == record else p for p in state.processes])
        _write_state(updated)
        return updated

    temporal = state.process(TEMPORAL)
    assert temporal is not None
    address, namespace = state.temporal_address, state.namespace
    if processes.is_ours(temporal) and _run_async(
        lambda: _temporal_answers(address, namespace, SURVIVOR_GRACE_SECONDS)
    ):
        actions.append(f"kept {TEMPORAL} (pid {temporal.pid})")
    else:
        state = respawn(temporal)
        restarted = state.process(TEMPORAL)
        assert restarted is not None
        _run_async(lambda: _await_temporal(restarted, address, namespace, options.temporal_timeout))

    for name, url in ((MODELS, state.model_base_url), (DASHBOARD, state.dashboard_url)):
        record = state.process(name)
        if record is None or url is None:
            continue
        if processes.is_ours(record) and _healthy_within(url, SURVIVOR_GRACE_SECONDS, record):
            actions.append(f"kept {name} (pid {record.pid})")
            continue
        state = respawn(record)
        new = state.process(name)
        assert new is not None
        timeout = options.model_timeout if name == MODELS else WORKER_TIMEOUT
        processes.wait_until(
            new,
            lambda url=url: _model_server_healthy(url),  # type: ignore[misc]
            timeout=timeout,
            what=f"a 200 from {url}/healthz",
        )

    pollers = [*state.pools.values(), *state.workers]
    alive = [p for p in pollers if processes.is_ours(p)]
    # A survivor reconnects to a restarted server by itself; one that does not poll is restarted.
    silent = _run_async(lambda: _not_polling(state, alive, SURVIVOR_GRACE_SECONDS)) if alive else []
    restarted_pollers: list[ProcessRecord] = []
    for record in pollers:
        if record in alive and record not in silent:
            actions.append(f"kept {record.name} (pid {record.pid})")
            continue
        state = respawn(record)
        new = state.process(record.name)
        assert new is not None
        restarted_pollers.append(new)
    if restarted_pollers:
        current = state
        _run_async(lambda: _await_workers(current, restarted_pollers, options.worker_timeout))
    return replace(state, already_running=not replaced, repairs=tuple(actions))


def _on_port(record: ProcessRecord) -> str:
    return f", port {record.port}" if record.port is not None else ""


def _claim_port(host: str, port: int | None, record: ProcessRecord) -> None:
    """Make sure ``port`` is free for ``record``'s restart.

    A process left over from the recorded one (it forked it, so it is in its process group) is
    stopped; a foreign process is never touched, it is named in a :class:`PortInUseError`.
    """
    held = processes.listener(host, port) if port is not None else None
    # A process SIGKILLed just now may still be tearing down (its threads exit one by one) and
    # hold its sockets for a moment after it stopped counting as alive: wait for that to end.
    deadline = time.monotonic() + DYING_GRACE_SECONDS
    while held is not None and held.pid == record.pid and time.monotonic() < deadline:
        time.sleep(0.1)
        held = processes.listener(host, held.port)
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


def _healthy_within(url: str, seconds: float, record: ProcessRecord) -> bool:
    """True once ``url/healthz`` answers 200 within ``seconds`` while ``record`` runs."""
    deadline = time.monotonic() + seconds
    while processes.is_ours(record):
        if _model_server_healthy(url):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return False


async def _temporal_answers(address: str, namespace: str, seconds: float) -> bool:
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


def _metrics_flag(state: StackState) -> tuple[list[str], int]:
    """``--metrics HOST:PORT`` on a free port for a worker or pool (recorded as its port)."""
    host = state.temporal_address.rpartition(":")[0]
    port = processes.free_port(host)
    return ["--metrics", f"{host}:{port}"], port


def _spawn_dashboard(state: StackState, host: str, port: int) -> StackState:
    """Start ``baton ui`` for the stack's pipeline and wait until it answers."""
    url = f"http://{host}:{port}"
    command = [str(_venv_bin() / "baton"), "ui", "--host", host, "--port", str(port)]
    if state.ui_url:
        command += ["--temporal-ui", state.ui_url]
    record = processes.spawn(
        DASHBOARD,
        command,
        state.home / "logs" / "dashboard.log",
        _child_env(state),
        port=port,
        cwd=state.home,
    )
    state = replace(state, processes=[*state.processes, record], dashboard_url=url)
    _write_state(state)
    processes.wait_until(
        record,
        lambda: _model_server_healthy(url),
        timeout=WORKER_TIMEOUT,
        what=f"a 200 from {url}/healthz",
    )
    return state


def _spawn_workers(state: StackState, count: int, timeout: float) -> StackState:
    """Start ``count`` workers for ``state`` and wait until they poll; record them as they start."""
    env = _child_env(state)
    baton = str(_venv_bin() / "baton")
    started: list[ProcessRecord] = []
    command = [baton, "worker", "--task-queue", state.task_queue, "--release", state.release]
    if state.build_id and state.deployment:
        command += ["--build-id", state.build_id, "--deployment", state.deployment]
    for i in range(1, count + 1):
        name = f"{WORKER_PREFIX}{i}"
        flag, port = _metrics_flag(state)
        worker = processes.spawn(
            name,
            [*command, *flag],
            state.home / "logs" / f"{name}.log",
            env,
            port=port,
            cwd=state.home,
        )
        started.append(worker)
        state = replace(state, processes=[*state.processes, worker])
        _write_state(state)
    if started:
        _run_async(lambda: _await_workers(state, started, timeout))
        if state.build_id:
            _run_async(lambda: _bootstrap_current(state))
    return state


async def _bootstrap_current(state: StackState) -> None:
    """Make the stack's build current when the deployment has none yet.

    Until a deployment has a current build, new workflows go to unversioned workers, and a
    versioned stack has none: they would wait forever. Later builds are promoted by hand
    (``baton deploy promote``), never here.
    """
    from modelbaton.errors import RolloutError
    from modelbaton.versioning.control import DeploymentControl

    assert state.deployment is not None
    assert state.build_id is not None
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    control = DeploymentControl(client, state.deployment)
    try:
        current = (await control.describe()).current
    except RolloutError:
        current = None
    if current is None:
        await control.set_current(state.build_id)


def _default_pools(state: StackState) -> list[str]:
    """The versions the pipeline's rollout plan needs (the catalog's primary when none)."""
    from modelbaton.models.catalog import load_catalog
    from modelbaton.rollout.client import Rollouts
    from modelbaton.settings import Settings

    catalog = load_catalog(Settings.from_env().catalog_path, base_url=state.model_base_url)

    async def versions() -> list[str]:
        client = await Client.connect(
            state.temporal_address,
            namespace=state.namespace,
            data_converter=pydantic_data_converter,
        )
        return (await Rollouts(client, catalog, state.task_queue).plan()).versions

    return _run_async(versions)


def _spawn_pools(
    state: StackState, versions: list[str], timeout: float = WORKER_TIMEOUT
) -> StackState:
    """Start one pool process per version and wait until each polls its queue."""
    env = _child_env(state)
    baton = str(_venv_bin() / "baton")
    started: list[ProcessRecord] = []
    for version in versions:
        if version in state.pools:
            continue
        name = f"{POOL_PREFIX}{version}"
        flag, port = _metrics_flag(state)
        pool = processes.spawn(
            name,
            [baton, "worker", "--task-queue", state.task_queue, "--pool", version, *flag],
            state.home / "logs" / f"{name}.log",
            env,
            port=port,
            cwd=state.home,
        )
        started.append(pool)
        state = replace(state, processes=[*state.processes, pool])
        _write_state(state)
    if started:
        _run_async(lambda: _await_workers(state, started, timeout))
    return state


def start_pool(home: Path, version: str) -> StackState:
    """Start the pool of ``version`` in the running stack (nothing when it already runs)."""
    home = home.resolve()
    with _locked(home):
        state = _running_state(home)
        alive = state.pools.get(version)
        if alive is not None and processes.is_ours(alive):
            return state
        if alive is not None:
            state = replace(state, processes=[p for p in state.processes if p is not alive])
        try:
            return _spawn_pools(state, [version])
        except BaseException:
            current = load_state(home) or state
            dead = current.pools.get(version)
            if dead is not None:
                processes.stop_many([dead])
            _write_state(replace(current, processes=[p for p in current.processes if p != dead]))
            raise


def stop_pool(home: Path, version: str) -> list[StopResult]:
    """Stop the pool of ``version``: its documents wait in its queue until a pool returns."""
    home = home.resolve()
    with _locked(home):
        state = _running_state(home)
        pool = state.pools.get(version)
        if pool is None:
            running = ", ".join(state.pools) or "none"
            raise StackError(f"no pool of {version} in the stack (running pools: {running})")
        results = processes.stop_many([pool])
        _write_state(replace(state, processes=[p for p in state.processes if p != pool]))
        return results


def stop_models(home: Path) -> list[StopResult]:
    """Stop the model server (an outage); its record stays so :func:`start_models` reuses the
    port, which is where the pools look for it."""
    home = home.resolve()
    with _locked(home):
        state = _running_state(home)
        models = state.process(MODELS)
        if models is None:
            raise StackError(f"the stack in {home} runs no model server")
        return processes.stop_many([models])


def start_models(home: Path, timeout: float = 180.0) -> StackState:
    """Start the model server again on its recorded port (nothing when it runs)."""
    home = home.resolve()
    with _locked(home):
        state = _running_state(home)
        old = state.process(MODELS)
        if old is None or old.port is None or state.model_base_url is None:
            raise StackError(f"the stack in {home} has no model server to start")
        if processes.is_ours(old):
            return state
        url = state.model_base_url
        models = processes.spawn(
            MODELS,
            old.command,
            Path(old.log),
            _child_env(state),
            port=old.port,
            cwd=home,
        )
        state = replace(state, processes=[models if p == old else p for p in state.processes])
        _write_state(state)
        processes.wait_until(
            models,
            lambda: _model_server_healthy(url),
            timeout=timeout,
            what=f"a 200 from {url}/healthz",
        )
        return state


def _running_state(home: Path) -> StackState:
    state = load_state(home)
    temporal = state.process(TEMPORAL) if state else None
    if state is None or temporal is None or not processes.is_ours(temporal):
        raise StackError(f"no running stack in {home}; start one with 'baton dev up'")
    return state


def stop_stack(home: Path) -> list[StopResult]:
    """Stop what ``start_stack`` started, by PID: workers, then the model server, then Temporal.

    Each step is recorded as it happens, so an interrupted stop can be resumed. Idempotent: with
    nothing recorded it returns an empty list. The Temporal database stays, with every workflow.
    """
    home = home.resolve()
    with _locked(home):
        state = load_state(home)
        if state is None:
            return []
        results: list[StopResult] = []
        # Workers first, so none is left polling a server that is going away; Temporal last.
        tiers = [
            state.workers + list(state.pools.values()),
            [p for p in state.processes if p.name == MODELS],
        ]
        tiers.append([p for p in state.processes if p.name == TEMPORAL])
        tiers.append([p for p in state.processes if not any(p in tier for tier in tiers)])
        for tier in tiers:
            if not tier:
                continue
            results += processes.stop_many(tier)
            remaining = [p for p in state.processes if p not in tier]
            state = replace(state, processes=remaining)
            _write_state(state)
        _remove_state(home)
        return results


def _refuse_in_place_code_change(state: StackState, release: str | None) -> None:
    """A versioned stack's workers may restart only with the code their build id names.

    Other code under the same build id would replay pinned workflows on code that did not record
    them; a new code version is a new build, started beside the old one and promoted.
    """
    from modelbaton.errors import ConfigError
    from modelbaton.versioning.builds import code_version

    if not state.build_id:
        return
    advice = (
        "start it as a new build beside the running one (baton worker --versioned), promote it "
        "(baton deploy promote) and drain the old one (baton drain)"
    )
    if release is not None and release != state.release:
        raise ConfigError(
            f"the stack's workers are build {state.build_id} of release {state.release}: "
            f"release {release} is another code version; {advice}"
        )
    now = code_version(state.release)
    if state.build_id.startswith(f"{state.release}-") and state.build_id != now:
        raise ConfigError(
            f"the workflow code changed since build {state.build_id} started (its code version "
            f"is now {now}); {advice}"
        )


def restart_workers(
    home: Path, *, release: str | None = None, workers: int | None = None
) -> StackState:
    """Stop the stack's workers and start new ones, optionally on another workflow release.

    This is a deploy: in-flight workflows continue on the new workers (the demo moves from the
    pre-patch release to the patched one this way). ``workers`` changes how many run.
    """
    from modelbaton.errors import ConfigError
    from modelbaton.pipeline.releases import RELEASES

    if release is not None and release not in RELEASES:
        # Validate before acting: a bad name must not stop the working workers.
        raise ConfigError(
            f"unknown workflow release {release!r}; choose one of {', '.join(RELEASES)}"
        )
    home = home.resolve()
    with _locked(home):
        status = stack_status(home)
        state = status.state
        temporal = state.process(TEMPORAL) if state else None
        if state is None or temporal is None or not processes.is_ours(temporal):
            raise StackError(f"no running stack in {home}; start one with 'baton dev up'")
        count = len(state.workers) if workers is None else workers
        _refuse_in_place_code_change(state, release)
        processes.stop_many(state.workers)
        state = replace(
            state,
            release=release or state.release,
            processes=[p for p in state.processes if not p.name.startswith(WORKER_PREFIX)],
        )
        _write_state(state)
        try:
            return _spawn_workers(state, count, WORKER_TIMEOUT)
        except BaseException:
            current = load_state(home) or state
            processes.stop_many(current.workers)
            _write_state(replace(current, processes=state.processes))
            raise
