"""The embedded stack: a Temporal dev server, the model server and workers, all on this machine.

``start_stack`` starts them in that order, waits until each answers, and records addresses and
PIDs in ``<home>/stack.json`` (rewritten atomically after every change, so even an interrupted
start leaves a file that ``stop_stack`` can act on). Run again, it repairs: what is still ours and
healthy is kept, the rest restarts on its recorded port. Temporal keeps its state in
``<home>/temporal.db``, so stopping and starting again keeps every workflow.

This module is the life cycle (start, repair, stop); what the stack contains and the state file
are ``modelbaton.stack.layout``, health and readiness checks ``modelbaton.stack.health``, and
spawning, identifying and stopping one process ``modelbaton.stack.processes``, and one component
at a time (the pools, workers and dashboard it spawns, the per-component commands)
``modelbaton.stack.components``.

Children get the stack's addresses through the environment they already honour (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, MODELBATON_HOME, MODELBATON_MODEL_BASE_URL, MODELBATON_TASK_QUEUE), so a
worker started by hand against the same variables behaves exactly like one started here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from modelbaton.errors import StackError
from modelbaton.settings import Settings
from modelbaton.stack import processes
from modelbaton.stack.components import (
    _default_pools,
    _on_port,
    _spawn_dashboard,
    _spawn_pools,
    _spawn_workers,
    restart_workers,
    stack_status,
    start_models,
    start_pool,
    stop_models,
    stop_pool,
)
from modelbaton.stack.connect import require_stack_extras, temporal_binary
from modelbaton.stack.devserver import dev_server_command
from modelbaton.stack.health import (
    DYING_GRACE_SECONDS,
    SURVIVOR_GRACE_SECONDS,
    await_temporal,
    await_workers,
    claim_port,
    ensure_search_attributes,
    healthy_within,
    http_healthy,
    not_polling,
    run_async,
    temporal_answers,
)
from modelbaton.stack.layout import (
    CLIENT_CONFIG_FILE,
    DASHBOARD,
    DEFAULT_RELEASE,
    MODELS,
    POOL_PREFIX,
    TEMPORAL,
    WORKER_PREFIX,
    WORKER_TIMEOUT,
    ProcessStatus,
    StackOptions,
    StackState,
    StackStatus,
    child_env,
    choose_ports,
    load_state,
    locked,
    now,
    remove_state,
    stack_variables,
    venv_bin,
    write_client_config,
    write_state,
)
from modelbaton.stack.processes import ProcessRecord, StopResult

__all__ = [
    "CLIENT_CONFIG_FILE",
    "DASHBOARD",
    "DEFAULT_RELEASE",
    "DYING_GRACE_SECONDS",
    "MODELS",
    "POOL_PREFIX",
    "SURVIVOR_GRACE_SECONDS",
    "TEMPORAL",
    "WORKER_PREFIX",
    "WORKER_TIMEOUT",
    "ProcessStatus",
    "StackOptions",
    "StackState",
    "StackStatus",
    "ensure_search_attributes",
    "load_state",
    "restart_workers",
    "stack_status",
    "stack_variables",
    "start_models",
    "start_pool",
    "start_stack",
    "stop_models",
    "stop_pool",
    "stop_stack",
]


# --------------------------------------------------------------------------------------------
# public API


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
    require_stack_extras(models=options.models, dashboard=options.dashboard)
    home = options.home.resolve()
    with locked(home):
        existing = load_state(home)
        if existing is not None and existing.process(TEMPORAL) is not None:
            return _repair(existing, options)
        if existing is not None:
            # A file without Temporal (never written by us): stop what it lists, start afresh.
            processes.stop_many(list(reversed(existing.processes)))
            remove_state(home)
        return _start(replace(options, home=home))


def _start(options: StackOptions) -> StackState:
    home = options.home
    ports = choose_ports(options)
    address = f"{options.host}:{ports[TEMPORAL]}"
    model_url = (
        f"http://{options.host}:{ports[MODELS]}"
        if options.models
        else Settings.from_env().model_base_url
    )
    state = StackState(
        home=home,
        temporal_address=address,
        namespace=options.namespace,
        ui_url=f"http://{options.host}:{ports['ui']}" if options.ui else None,
        model_base_url=model_url,
        task_queue=options.task_queue,
        release=options.release,
        started_at=now(),
        build_id=options.build_id,
        catalog=str(options.catalog.resolve()) if options.catalog else None,
        cache_dir=str(options.cache_dir.resolve()) if options.cache_dir else None,
    )
    write_client_config(home, address, options.namespace)
    env = child_env(state)
    with processes.tracking() as started:
        try:
            return _start_components(options, state, ports, env, started)
        except BaseException as exc:
            # BaseException: Ctrl-C (KeyboardInterrupt) must also stop what was started.
            # Everything spawned in this call, whether or not the file got to record it.
            current = load_state(home) or state
            recorded = [p for p in current.processes if p in started]
            processes.stop_many([*reversed(started), *[p for p in recorded if p not in started]])
            remove_state(home)
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
    write_state(state)
    run_async(
        lambda: await_temporal(temporal, address, options.namespace, options.temporal_timeout)
    )

    if options.models:
        assert model_url is not None
        baton = str(venv_bin() / "baton")
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
        write_state(state)
        processes.wait_until(
            models,
            lambda: http_healthy(model_url),
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
            write_state(
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
            claim_port(host, port, record)
        new = processes.spawn(
            record.name,
            record.command,
            Path(record.log),
            child_env(state),
            port=record.port,
            cwd=state.home,
        )
        replaced[new.name] = record
        actions.append(f"restarted {new.name} (pid {new.pid}" + _on_port(new) + ")")
        updated = replace(state, processes=[new if p == record else p for p in state.processes])
        write_state(updated)
        return updated

    temporal = state.process(TEMPORAL)
    assert temporal is not None
    address, namespace = state.temporal_address, state.namespace
    if processes.is_ours(temporal) and run_async(
        lambda: temporal_answers(address, namespace, SURVIVOR_GRACE_SECONDS)
    ):
        actions.append(f"kept {TEMPORAL} (pid {temporal.pid})")
    else:
        state = respawn(temporal)
        restarted = state.process(TEMPORAL)
        assert restarted is not None
        run_async(lambda: await_temporal(restarted, address, namespace, options.temporal_timeout))

    for name, url in ((MODELS, state.model_base_url), (DASHBOARD, state.dashboard_url)):
        record = state.process(name)
        if record is None or url is None:
            continue
        if processes.is_ours(record) and healthy_within(url, SURVIVOR_GRACE_SECONDS, record):
            actions.append(f"kept {name} (pid {record.pid})")
            continue
        state = respawn(record)
        new = state.process(name)
        assert new is not None
        timeout = options.model_timeout if name == MODELS else WORKER_TIMEOUT
        processes.wait_until(
            new,
            lambda url=url: http_healthy(url),  # type: ignore[misc]
            timeout=timeout,
            what=f"a 200 from {url}/healthz",
        )

    pollers = [*state.pools.values(), *state.workers]
    alive = [p for p in pollers if processes.is_ours(p)]
    # A survivor reconnects to a restarted server by itself; one that does not poll is restarted.
    silent = run_async(lambda: not_polling(state, alive, SURVIVOR_GRACE_SECONDS)) if alive else []
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
        run_async(lambda: await_workers(current, restarted_pollers, options.worker_timeout))
    return replace(state, already_running=not replaced, repairs=tuple(actions))


def stop_stack(home: Path) -> list[StopResult]:
    """Stop what ``start_stack`` started, by PID: workers, then the model server, then Temporal.

    Each step is recorded as it happens, so an interrupted stop can be resumed. Idempotent: with
    nothing recorded it returns an empty list. The Temporal database stays, with every workflow.
    """
    home = home.resolve()
    with locked(home):
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
            write_state(state)
        remove_state(home)
        return results
