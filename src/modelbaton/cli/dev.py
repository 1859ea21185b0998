"""``baton dev``: the embedded stack (Temporal dev server, model server, workers) here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from modelbaton.cli._boundary import EXIT_FINDING, EXIT_USAGE, fail_error
from modelbaton.cli._output import JsonOption, console, emit, fail
from modelbaton.errors import PortInUseError, StackError
from modelbaton.pipeline.releases import CURRENT_RELEASE
from modelbaton.settings import DEFAULT_TASK_QUEUE, Settings

if TYPE_CHECKING:
    from modelbaton.stack.embedded import StackState, StackStatus

# The stack module pulls in Temporal's client; each command imports it when it runs, so that
# 'baton --help' starts fast.

app = typer.Typer(
    no_args_is_help=True,
    help="Run the embedded stack: a Temporal dev server, the model server and workers.",
)

HomeOption = typer.Option(
    None, "--home", help="State directory (default MODELBATON_HOME, else ./.modelbaton)."
)


def _code_version(release: str) -> str:
    from modelbaton.errors import ModelBatonError
    from modelbaton.versioning.builds import code_version

    try:
        return code_version(release)
    except ModelBatonError as exc:
        raise fail_error(exc) from None


def _home(home: Path | None) -> Path:
    return (home or Settings.from_env().home).resolve()


def _render_status(status: StackStatus) -> None:
    from modelbaton.stack import embedded

    state = status.state
    if state is None:
        console.print(f"no stack recorded in {status.home}; start one with 'baton dev up'")
        return
    verdict = "[green]running[/]" if status.running else "[red]degraded[/]"
    console.print(f"stack in {status.home}: {verdict} (started {state.started_at})")
    console.print(f"  Temporal   {state.temporal_address}  namespace {state.namespace}")
    console.print(f"  Web UI     {state.ui_url or '(headless)'}")
    console.print(f"  dashboard  {state.dashboard_url or '(not started)'}")
    console.print(f"  models     {state.model_base_url or '(not started)'}")
    console.print(f"  task queue {state.task_queue}  release {state.release}")
    console.print(
        f"  build      {escape(state.worker_version)} (pinned workflows; baton deploy status)"
        if state.worker_version
        else "  build      (unversioned workers: code changes need patches)",
        emoji=False,
    )
    console.print(f"  pools      {', '.join(state.pools) or '(none)'}")
    console.print(f"  client     temporal --config-file {state.home / embedded.CLIENT_CONFIG_FILE}")
    if state.workers or state.pools:
        host = state.temporal_address.rpartition(":")[0]
        console.print(
            f"  metrics    http://{host}:<port>/metrics of each worker and pool (port below)"
        )
    table = Table("process", "pid", "state", "port", "log")
    for proc in status.processes:
        record = proc.record
        table.add_row(
            record.name,
            str(record.pid),
            "[green]alive[/]" if proc.alive else "[red]dead[/]",
            str(record.port or ""),
            record.log,
        )
    console.print(table)
    if not status.running:
        console.print("some processes are dead: 'baton dev up' restarts them and keeps the rest")


def _render_up(state: StackState) -> None:
    from modelbaton.stack import embedded

    if state.already_running:
        console.print(
            f"stack already running and healthy in {state.home}: nothing changed; "
            "'baton dev down' stops it"
        )
    elif any(line.startswith("restarted ") for line in state.repairs):
        console.print(f"stack repaired in {state.home}:")
    else:
        console.print(f"stack started in {state.home}")
    if not state.already_running:
        for line in state.repairs:
            console.print(f"  {escape(line)}")
    _render_status(embedded.stack_status(state.home))


@app.command()
def up(
    temporal_port: int = typer.Option(7233, min=1, max=65535, help="Temporal gRPC port."),
    ui_port: int = typer.Option(8233, min=1, max=65535, help="Temporal Web UI port."),
    model_port: int = typer.Option(8601, min=1, max=65535, help="Model server port."),
    workers: int = typer.Option(1, min=0, max=16, help="Worker processes (0: none)."),
    pools: str | None = typer.Option(
        None,
        "--pools",
        help="Comma-separated model versions to start pools for (default: the versions the "
        "rollout plan needs, else the catalog's primary).",
    ),
    task_queue: str = typer.Option(DEFAULT_TASK_QUEUE, help="Task queue the workers poll."),
    release: str = typer.Option(CURRENT_RELEASE, help="Workflow release the workers run."),
    versioned: bool = typer.Option(
        False,
        "--versioned",
        help="Run the workers as a Worker Deployment build (build id = the release's code "
        "version), pinned.",
    ),
    build_id: str | None = typer.Option(
        None, "--build-id", help="Build id of the workers (implies --versioned)."
    ),
    namespace: str = typer.Option("default", help="Temporal namespace (created if missing)."),
    models: bool = typer.Option(True, "--models/--no-models", help="Start the model server."),
    ui: bool = typer.Option(True, "--ui/--no-ui", help="Serve the Temporal Web UI."),
    dashboard: bool = typer.Option(
        True, "--dashboard/--no-dashboard", help="Serve the rollout dashboard (baton ui)."
    ),
    dashboard_port: int = typer.Option(8700, min=1, max=65535, help="Rollout dashboard port."),
    ephemeral_ports: bool = typer.Option(
        False, "--ephemeral-ports", help="Let the OS pick free ports instead of the port options."
    ),
    temporal_arg: list[str] = typer.Option(
        [],
        "--temporal-arg",
        help="One more argument for 'temporal server start-dev' (repeat it, e.g. "
        "--temporal-arg=--log-level --temporal-arg=debug).",
    ),
    home: Path | None = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Start the stack and return once every part answers; the processes keep running.

    Workflows survive 'down' and 'up': Temporal keeps them in <home>/temporal.db. Running 'up'
    again repairs: each recorded part that still runs and is healthy is kept, every other one
    is started again on its recorded port; on a healthy stack it changes nothing. A failed 'up'
    stops what it started.
    """
    from modelbaton.stack import embedded

    if build_id is not None:
        from modelbaton.errors import ModelBatonError
        from modelbaton.versioning.builds import check_build_id

        try:
            check_build_id(build_id)
        except ModelBatonError as exc:
            raise fail_error(exc) from None
    options = embedded.StackOptions(
        home=_home(home),
        temporal_port=temporal_port,
        ui_port=ui_port,
        model_port=model_port,
        workers=workers,
        pools=None if pools is None else tuple(v.strip() for v in pools.split(",") if v.strip()),
        task_queue=task_queue,
        release=release,
        build_id=build_id or (_code_version(release) if versioned else None),
        namespace=namespace,
        models=models,
        ui=ui,
        dashboard=dashboard,
        dashboard_port=dashboard_port,
        ephemeral_ports=ephemeral_ports,
        temporal_args=tuple(temporal_arg),
    )
    if not as_json:
        console.print(f"starting the stack in {options.home} (the first start may train models)")
    try:
        state = embedded.start_stack(options)
    except PortInUseError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except StackError as exc:
        raise fail(str(exc), EXIT_FINDING) from None
    except KeyboardInterrupt:
        # start_stack has already stopped what it started.
        raise fail("interrupted; everything started so far was stopped", 130) from None
    data = state.to_dict() | {
        "already_running": state.already_running,
        "repairs": list(state.repairs),
    }
    emit(data, as_json, lambda: _render_up(state))


@app.command()
def status(home: Path | None = HomeOption, as_json: bool = JsonOption) -> None:
    """What runs where: addresses, PIDs (alive or dead), the Web UI, log files, the state dir.

    Exit code 0 when everything recorded runs, 1 when some recorded process is dead, 3 when no
    stack is recorded.
    """
    from modelbaton.stack import embedded

    try:
        report = embedded.stack_status(_home(home))
    except StackError as exc:
        raise fail(str(exc), 1) from None
    emit(report.as_dict(), as_json, lambda: _render_status(report))
    if report.state is None:
        raise typer.Exit(3)
    if not report.running:
        raise typer.Exit(1)


@app.command()
def down(home: Path | None = HomeOption, as_json: bool = JsonOption) -> None:
    """Stop what 'up' started, by PID: workers, then the model server, then Temporal.

    Workflows stay in the state directory for the next 'up'. Nothing running is not an error.
    """
    from modelbaton.stack import embedded

    state_dir = _home(home)
    try:
        stopped = embedded.stop_stack(state_dir)
    except StackError as exc:
        raise fail(str(exc), 1) from None

    def render() -> None:
        if not stopped:
            console.print(f"nothing to stop in {state_dir}")
        for result in stopped:
            console.print(f"stopped {result}")

    emit({"home": str(state_dir), "stopped": [vars(r) for r in stopped]}, as_json, render)


@app.command()
def pool(
    version: str = typer.Argument(..., help="Model version whose pool to start or stop."),
    stop: bool = typer.Option(False, "--stop", help="Stop the pool instead of starting it."),
    home: Path | None = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Start (or --stop) the pool of one model version in the running stack.

    A stopped pool stalls only its own version's documents: they wait in its task queue.
    """
    from modelbaton.errors import ModelBatonError
    from modelbaton.models.catalog import load_catalog
    from modelbaton.stack import embedded

    state_dir = _home(home)
    try:
        load_catalog(Settings.from_env().catalog_path).get(version)  # validate before acting
    except ModelBatonError as exc:
        raise fail_error(exc) from None
    try:
        if stop:
            stopped = embedded.stop_pool(state_dir, version)
            data: dict[str, object] = {"stopped": [vars(r) for r in stopped]}
            message = f"stopped the pool of {version}"
        else:
            state = embedded.start_pool(state_dir, version)
            data = {"pools": {v: p.pid for v, p in state.pools.items()}}
            message = f"pool of {version} polling (pid {state.pools[version].pid})"
    except ModelBatonError as exc:
        raise fail(str(exc), 1) from None
    emit(data, as_json, lambda: console.print(escape(message)))


@app.command()
def env(home: Path | None = HomeOption, as_json: bool = JsonOption) -> None:
    """Print the variables to export so that this shell talks to the running stack:
    eval "$(baton dev env)"."""
    import shlex

    from modelbaton.stack import embedded

    state = embedded.load_state(_home(home))
    if state is None:
        raise fail(f"no stack recorded in {_home(home)}; start one with 'baton dev up'")
    variables = embedded.stack_variables(state)
    if as_json:
        emit(variables, True, lambda: None)
        return
    for name, value in variables.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command("restart-workers")
def restart_workers(
    release: str | None = typer.Option(None, help="Workflow release (default: keep the current)."),
    workers: int | None = typer.Option(None, min=0, max=16, help="How many (default: as now)."),
    home: Path | None = HomeOption,
    as_json: bool = JsonOption,
) -> None:
    """Deploy: stop the stack's workers and start new ones, optionally on another release."""
    from modelbaton.stack import embedded

    try:
        state = embedded.restart_workers(_home(home), release=release, workers=workers)
    except StackError as exc:
        raise fail(str(exc), 1) from None
    emit(
        state.to_dict(),
        as_json,
        lambda: console.print(
            f"{len(state.workers)} worker(s) on release {state.release}, "
            f"task queue {state.task_queue}"
        ),
    )
