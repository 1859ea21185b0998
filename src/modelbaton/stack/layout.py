"""What the embedded stack contains: its components, options, ports and the state file.

``<home>/stack.json`` records what runs where (addresses and the processes, by PID, create time
and command); it is rewritten atomically after every change, so even an interrupted start leaves
a file that ``baton dev down`` and ``baton dev up`` can act on. Everything here is data and files;
starting, checking and repairing processes is ``modelbaton.stack.embedded`` (with
``modelbaton.stack.health`` and ``modelbaton.stack.processes``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelbaton.errors import PortInUseError, StackError
from modelbaton.files import write_whole
from modelbaton.settings import DEFAULT_TASK_QUEUE
from modelbaton.stack import processes
from modelbaton.stack.connect import STACK_FILE, read_stack_state
from modelbaton.stack.processes import ProcessRecord

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
    #: The catalog and the trained-model cache the stack's processes read (recorded, so a
    #: repair and every shell pointed at the stack read the same); None: what this process's
    #: environment says (``MODELBATON_CATALOG``, ``MODELBATON_CACHE_DIR``, else the defaults).
    catalog: Path | None = None
    cache_dir: Path | None = None


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
    #: The catalog and model cache given in :class:`StackOptions`, if any.
    catalog: str | None = None
    cache_dir: str | None = None

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
            "catalog": self.catalog,
            "cache_dir": self.cache_dir,
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
            catalog=data.get("catalog") or None,
            cache_dir=data.get("cache_dir") or None,
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


def write_state(state: StackState) -> None:
    write_whole(state.home / STACK_FILE, json.dumps(state.to_dict(), indent=2))


def remove_state(home: Path) -> None:
    (home / STACK_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
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


def venv_bin() -> Path:
    # The same interpreter directory as temporal_binary(): the project's venv.
    return Path(sys.executable).parent


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def choose_ports(options: StackOptions) -> dict[str, int]:
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


def write_client_config(home: Path, address: str, namespace: str) -> Path:
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
    if state.catalog:
        env["MODELBATON_CATALOG"] = state.catalog
    if state.cache_dir:
        env["MODELBATON_CACHE_DIR"] = state.cache_dir
    return env


def child_env(state: StackState) -> dict[str, str]:
    # Drop inherited TEMPORAL_* (a profile, API key or TLS for another cluster) so children
    # reach this stack and nothing else.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= stack_variables(state)
    # Log lines should reach the log file as they happen, not when a buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    return env
