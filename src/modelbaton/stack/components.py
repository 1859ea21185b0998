"""One component of a running stack at a time: spawning the pools, the workers and the
dashboard (for a start or a repair, :mod:`modelbaton.stack.embedded`), and the operator's
per-component commands (``baton dev pool``, ``dev models``, restarting the workers on another
release), each on the stack its state file records."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton.errors import StackError
from modelbaton.settings import Settings
from modelbaton.stack import processes
from modelbaton.stack.health import (
    await_workers,
    http_healthy,
    run_async,
)
from modelbaton.stack.layout import (
    DASHBOARD,
    MODELS,
    POOL_PREFIX,
    TEMPORAL,
    WORKER_PREFIX,
    WORKER_TIMEOUT,
    ProcessStatus,
    StackState,
    StackStatus,
    child_env,
    load_state,
    locked,
    venv_bin,
    write_state,
)
from modelbaton.stack.processes import ProcessRecord, StopResult


def stack_status(home: Path) -> StackStatus:
    """What the state directory records, and which recorded PIDs still run what we started."""
    home = home.resolve()
    state = load_state(home)
    procs = [ProcessStatus(p, processes.is_ours(p)) for p in state.processes] if state else []
    return StackStatus(home=home, state=state, processes=procs)


def _on_port(record: ProcessRecord) -> str:
    return f", port {record.port}" if record.port is not None else ""


def _metrics_flag(state: StackState) -> tuple[list[str], int]:
    """``--metrics HOST:PORT`` on a free port for a worker or pool (recorded as its port)."""
    host = state.temporal_address.rpartition(":")[0]
    port = processes.free_port(host)
    return ["--metrics", f"{host}:{port}"], port


def _spawn_dashboard(state: StackState, host: str, port: int) -> StackState:
    """Start ``baton ui`` for the stack's pipeline and wait until it answers."""
    url = f"http://{host}:{port}"
    command = [str(venv_bin() / "baton"), "ui", "--host", host, "--port", str(port)]
    if state.ui_url:
        command += ["--temporal-ui", state.ui_url]
    record = processes.spawn(
        DASHBOARD,
        command,
        state.home / "logs" / "dashboard.log",
        child_env(state),
        port=port,
        cwd=state.home,
    )
    state = replace(state, processes=[*state.processes, record], dashboard_url=url)
    write_state(state)
    processes.wait_until(
        record,
        lambda: http_healthy(url),
        timeout=WORKER_TIMEOUT,
        what=f"a 200 from {url}/healthz",
    )
    return state


def _spawn_workers(state: StackState, count: int, timeout: float) -> StackState:
    """Start ``count`` workers for ``state`` and wait until they poll; record them as they start."""
    env = child_env(state)
    baton = str(venv_bin() / "baton")
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
        write_state(state)
    if started:
        run_async(lambda: await_workers(state, started, timeout))
        if state.build_id:
            run_async(lambda: _bootstrap_current(state, timeout))
    return state


async def _bootstrap_current(state: StackState, within: float) -> None:
    """Make the stack's build current when the deployment has none yet.

    Until a deployment has a current build, new workflows go to unversioned workers, and a
    versioned stack has none: they would wait forever. Later builds are promoted by hand
    (``baton deploy promote``), never here.

    The workers were just seen polling their queue, but the deployment registers a build's
    queues a moment after its first poll (a full run met "no worker polling" here): wait until
    the build itself shows its pollers, within the workers' start-up time ``within``.
    """
    from modelbaton.errors import RolloutError
    from modelbaton.versioning.control import DeploymentControl

    deployment, build = state.deployment, state.build_id
    assert deployment is not None
    assert build is not None
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    control = DeploymentControl(client, deployment)
    try:
        current = (await control.describe()).current
    except RolloutError:
        current = None
    if current is not None:
        return
    try:
        await control.await_pollers(build, within)
    except RolloutError as exc:
        raise StackError(f"{exc}, though its workers poll {state.task_queue}") from None
    await control.set_current(build)


def _default_pools(state: StackState) -> list[str]:
    """The versions the pipeline's rollout plan needs (the catalog's primary when none)."""
    from modelbaton.models.catalog import load_catalog
    from modelbaton.rollout.client import Rollouts

    path = Path(state.catalog) if state.catalog else Settings.from_env().catalog_path
    catalog = load_catalog(path, base_url=state.model_base_url)

    async def versions() -> list[str]:
        client = await Client.connect(
            state.temporal_address,
            namespace=state.namespace,
            data_converter=pydantic_data_converter,
        )
        return (await Rollouts(client, catalog, state.task_queue).plan()).versions

    return run_async(versions)


def _spawn_pools(
    state: StackState, versions: list[str], timeout: float = WORKER_TIMEOUT
) -> StackState:
    """Start one pool process per version and wait until each polls its queue."""
    env = child_env(state)
    baton = str(venv_bin() / "baton")
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
        write_state(state)
    if started:
        run_async(lambda: await_workers(state, started, timeout))
    return state


def start_pool(home: Path, version: str) -> StackState:
    """Start the pool of ``version`` in the running stack (nothing when it already runs)."""
    home = home.resolve()
    with locked(home):
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
            write_state(replace(current, processes=[p for p in current.processes if p != dead]))
            raise


def stop_pool(home: Path, version: str) -> list[StopResult]:
    """Stop the pool of ``version``: its documents wait in its queue until a pool returns."""
    home = home.resolve()
    with locked(home):
        state = _running_state(home)
        pool = state.pools.get(version)
        if pool is None:
            running = ", ".join(state.pools) or "none"
            raise StackError(f"no pool of {version} in the stack (running pools: {running})")
        results = processes.stop_many([pool])
        write_state(replace(state, processes=[p for p in state.processes if p != pool]))
        return results


def stop_models(home: Path) -> list[StopResult]:
    """Stop the model server (an outage); its record stays so :func:`start_models` reuses the
    port, which is where the pools look for it."""
    home = home.resolve()
    with locked(home):
        state = _running_state(home)
        models = state.process(MODELS)
        if models is None:
            raise StackError(f"the stack in {home} runs no model server")
        return processes.stop_many([models])


def start_models(home: Path, timeout: float = 180.0) -> StackState:
    """Start the model server again on its recorded port (nothing when it runs)."""
    home = home.resolve()
    with locked(home):
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
            child_env(state),
            port=old.port,
            cwd=home,
        )
        state = replace(state, processes=[models if p == old else p for p in state.processes])
        write_state(state)
        processes.wait_until(
            models,
            lambda: http_healthy(url),
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
    with locked(home):
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
        write_state(state)
        try:
            return _spawn_workers(state, count, WORKER_TIMEOUT)
        except BaseException:
            current = load_state(home) or state
            processes.stop_many(current.workers)
            write_state(replace(current, processes=state.processes))
            raise
