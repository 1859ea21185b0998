"""The embedded stack against a real Temporal dev server in a temporary state directory.

Only the Temporal part is started (``models=False, workers=0``) to keep the box free for others'
tests. Every test stops what it started by PID in a fixture, also when it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.operatorservice.v1 import (
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from typer.testing import CliRunner

from modelbaton.cli.dev import app as dev_app
from modelbaton.errors import StackError
from modelbaton.pipeline import search_attributes
from modelbaton.stack import embedded, processes
from modelbaton.stack.embedded import StackOptions, StackState
from modelbaton.stack.processes import ProcessRecord
from waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "stack"
    yield home
    # Whatever happened, stop the recorded PIDs (stop_stack checks they are still ours).
    embedded.stop_stack(home)


def options(home: Path, **overrides: Any) -> StackOptions:
    fields: dict[str, Any] = {"models": False, "workers": 0, "ephemeral_ports": True, "pools": ()}
    return StackOptions(home=home, **(fields | overrides))


def temporal_record(state: StackState) -> ProcessRecord:
    record = state.process(embedded.TEMPORAL)
    assert record is not None
    return record


async def custom_attributes(state: StackState) -> dict[str, int]:
    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=state.namespace)
    )
    return dict(listed.custom_attributes)


async def test_restart_keeps_workflows_and_registers_search_attributes(home: Path) -> None:
    state = embedded.start_stack(options(home))
    first = temporal_record(state)
    status = embedded.stack_status(home)
    assert status.running
    assert [(p.record.pid, p.alive) for p in status.processes] == [(first.pid, True)]
    assert json.loads((home / "stack.json").read_text())["temporal_address"] == (
        state.temporal_address
    )
    assert state.ui_url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(state.ui_url)).status_code == 200

    registered = await custom_attributes(state)
    assert {key.name for key in search_attributes.ALL} <= registered.keys()

    client = await Client.connect(state.temporal_address, namespace=state.namespace)
    # A database made before ReviewState existed: start-dev ignores --search-attribute for an
    # existing database, so only the stack's own registration can bring it back.
    await client.operator_service.remove_search_attributes(
        RemoveSearchAttributesRequest(
            search_attributes=[search_attributes.REVIEW_STATE.name], namespace=state.namespace
        )
    )
    assert search_attributes.REVIEW_STATE.name not in await custom_attributes(state)
    # No worker polls this queue, so the workflow stays Running across the restart.
    workflow_id = f"stack-restart-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        "StackRestartProbe", id=workflow_id, task_queue=f"tq-none-{workflow_id}"
    )

    again = embedded.start_stack(options(home))
    assert again.already_running
    assert temporal_record(again) == first

    stopped = embedded.stop_stack(home)
    assert [(s.name, s.pid, s.outcome) for s in stopped] == [
        (embedded.TEMPORAL, first.pid, "terminated")
    ]
    assert not processes.is_ours(first)
    assert embedded.stack_status(home).state is None
    assert embedded.stop_stack(home) == []

    restarted = embedded.start_stack(options(home, ui=False))
    assert not restarted.already_running
    assert restarted.ui_url is None
    client = await Client.connect(restarted.temporal_address, namespace=restarted.namespace)
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert search_attributes.REVIEW_STATE.name in await custom_attributes(restarted)

    # A crashed server leaves stale state: 'up' notices, cleans it and starts again, and the
    # SQLite file survives even SIGKILL.
    crashed = temporal_record(restarted)
    os.kill(crashed.pid, signal.SIGKILL)
    await eventually(lambda: not processes.is_ours(crashed), within=10, what="the server gone")
    assert not embedded.stack_status(home).running
    recovered = embedded.start_stack(options(home, ui=False))
    assert not recovered.already_running
    assert temporal_record(recovered).pid != crashed.pid
    client = await Client.connect(recovered.temporal_address, namespace=recovered.namespace)
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING

    result = CliRunner().invoke(dev_app, ["status", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["running"] is True
    assert [p["alive"] for p in report["processes"]] == [True]

    result = CliRunner().invoke(dev_app, ["down", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert f"pid {temporal_record(recovered).pid}" in result.output
    assert not processes.is_ours(temporal_record(recovered))
    result = CliRunner().invoke(dev_app, ["status", "--home", str(home)])
    assert result.exit_code == 3


def test_busy_port_names_the_flag(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} .*--temporal-port"):
            embedded.start_stack(options(home, ephemeral_ports=False, temporal_port=port, ui=False))
    assert embedded.stack_status(home).state is None


def test_failed_component_stops_what_was_started(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ProcessRecord] = []
    spawn = processes.spawn

    def recording_spawn(*args: Any, **kwargs: Any) -> ProcessRecord:
        record = spawn(*args, **kwargs)
        started.append(record)
        return record

    monkeypatch.setattr(processes, "spawn", recording_spawn)
    # The worker refuses an unknown release and exits, after Temporal is already up.
    with pytest.raises(StackError, match=r"worker-1 exited .*worker-1\.log"):
        embedded.start_stack(options(home, ui=False, workers=1, release="no-such-release"))
    assert [r.name for r in started] == [embedded.TEMPORAL, "worker-1"]
    assert not any(processes.is_ours(r) for r in started)
    assert embedded.stack_status(home).state is None


@pytest.mark.slow(seconds=25)
def test_dev_pool_starts_and_stops_one_model_pool(home: Path) -> None:
    state = embedded.start_stack(options(home))
    try:
        env = {"MODELBATON_HOME": str(home)}
        unknown = CliRunner().invoke(dev_app, ["pool", "v9", "--home", str(home)], env=env)
        assert unknown.exit_code == 2
        assert "no model version 'v9'" in unknown.output
        started = CliRunner().invoke(dev_app, ["pool", "v3", "--home", str(home), "--json"])
        assert started.exit_code == 0, started.output
        pid = json.loads(started.stdout)["pools"]["v3"]
        record = embedded.stack_status(home).state
        assert record is not None
        assert record.pools["v3"].pid == pid
        assert processes.is_ours(record.pools["v3"])
        stopped = CliRunner().invoke(dev_app, ["pool", "v3", "--stop", "--home", str(home)])
        assert stopped.exit_code == 0, stopped.output
        assert not processes.is_ours(record.pools["v3"])
        again = CliRunner().invoke(dev_app, ["pool", "v3", "--stop", "--home", str(home)])
        assert again.exit_code == 1
        assert "no pool of v3" in again.output
        exported = CliRunner().invoke(dev_app, ["env", "--home", str(home)])
        assert exported.exit_code == 0, exported.output
        assert f"export TEMPORAL_ADDRESS={state.temporal_address}" in exported.output
        assert f"export MODELBATON_HOME={state.home}" in exported.output
        as_json = json.loads(
            CliRunner().invoke(dev_app, ["env", "--json", "--home", str(home)]).stdout
        )
        assert as_json["TEMPORAL_NAMESPACE"] == state.namespace
    finally:
        embedded.stop_stack(state.home)


def test_dev_env_without_a_stack_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(dev_app, ["env", "--home", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no stack recorded" in result.output


def test_versioned_workers_show_their_build_and_become_current(home: Path) -> None:
    """``dev up --build-id``: the workers run as that build of the pipeline's deployment, the
    first build is made current (else new workflows would wait for unversioned workers), and
    ``dev status`` and ``deploy status`` show it."""
    up = CliRunner().invoke(
        dev_app,
        [
            "up", "--home", str(home), "--no-models", "--no-ui", "--ephemeral-ports",
            "--workers", "1", "--pools", "", "--build-id", "blue", "--json",
        ],
    )  # fmt: skip
    assert up.exit_code == 0, up.output
    state = embedded.stack_status(home).state
    assert state is not None
    assert state.build_id == "blue"
    assert state.worker_version == f"{state.task_queue}:blue"
    worker = state.workers[0]
    at = worker.command.index("--build-id")
    assert worker.command[at : at + 4] == ["--build-id", "blue", "--deployment", state.task_queue]
    status = CliRunner().invoke(dev_app, ["status", "--home", str(home), "--json"])
    assert json.loads(status.stdout)["worker_deployment_version"] == f"{state.task_queue}:blue"
    human = CliRunner().invoke(dev_app, ["status", "--home", str(home)])
    assert f"build      {state.task_queue}:blue (pinned" in human.output
    from modelbaton.app.main import baton

    deployed = CliRunner().invoke(
        baton, ["deploy", "status", "--json"], env={"MODELBATON_HOME": str(home)}
    )
    assert deployed.exit_code == 0, deployed.output
    data = json.loads(deployed.stdout)
    assert (data["deployment"], data["current"]) == (state.task_queue, "blue")
    # Other code under the same build id would break its pinned workflows: refused, untouched.
    refused = CliRunner().invoke(
        baton, ["dev", "restart-workers", "--release", "initial", "--home", str(home)]
    )
    assert refused.exit_code == 2, refused.output
    assert "release initial is another code version" in " ".join(refused.output.split())
    assert processes.is_ours(worker)


def processes_mentioning(home: Path) -> list[str]:
    """Every live process whose command line names ``home`` (read with psutil, not the stack)."""
    import psutil

    found: list[str] = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(home) in part for part in proc.info["cmdline"] or []):
            found.append(f"{proc.info['pid']} {' '.join(proc.info['cmdline'])}")
    return found


def test_failed_temporal_start_leaves_no_process_behind(home: Path) -> None:
    """Temporal's start fails (a bad dynamic-config value): one line, exit 1, no stack file, and
    no process of this stack left running (issue 18: the failed start orphaned Temporal)."""
    up = CliRunner().invoke(
        dev_app,
        [
            "up", "--home", str(home), "--no-models", "--no-ui", "--no-dashboard",
            "--ephemeral-ports", "--workers", "0", "--pools", "",
            "--temporal-arg=--dynamic-config-value", "--temporal-arg=bogus",
        ],
    )  # fmt: skip
    assert up.exit_code == 1, up.output
    assert "Traceback" not in up.output
    error = [line for line in up.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "temporal exited during start-up" in error[0]
    assert "temporal.log" in error[0]
    assert not (home / "stack.json").exists()
    assert processes_mentioning(home) == []
    assert "invalid dynamic config values" in (home / "logs" / "temporal.log").read_text()


def test_dev_up_repairs_and_names_a_foreign_process_on_a_recorded_port(home: Path) -> None:
    args = [
        "up", "--home", str(home), "--no-models", "--no-ui", "--no-dashboard",
        "--ephemeral-ports", "--workers", "0", "--pools", "",
    ]  # fmt: skip
    first = CliRunner().invoke(dev_app, args)
    assert first.exit_code == 0, first.output
    state = embedded.load_state(home)
    assert state is not None
    temporal = temporal_record(state)

    again = CliRunner().invoke(dev_app, [*args, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["already_running"] is True
    said = " ".join(CliRunner().invoke(dev_app, args).output.split())
    assert "already running and healthy" in said
    assert "nothing changed" in said
    assert temporal_record(embedded.load_state(home) or state) == temporal

    # Temporal dies, and a foreign process takes its port before 'dev up' runs.
    os.kill(temporal.pid, signal.SIGKILL)
    assert temporal.port is not None
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {temporal.port})); s.listen(); print('up'); sys.stdout.flush()\n"
        "time.sleep(120)"
    )

    def bound(squatter: subprocess.Popen[bytes]) -> bool:
        assert squatter.stdout is not None
        return squatter.stdout.readline().strip() == b"up"

    squatter: subprocess.Popen[bytes] | None = None

    def take_port() -> subprocess.Popen[bytes] | None:
        """A squatter holding the port, or None while Temporal is not yet gone or the kernel
        still refuses the bind after the SIGKILL."""
        if processes.is_ours(temporal):
            return None
        candidate = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        if bound(candidate):
            return candidate
        candidate.wait()
        assert candidate.stdout is not None
        candidate.stdout.close()
        return None

    try:
        squatter = asyncio.run(eventually(take_port, within=10, every=0.1, what="the port taken"))
        refused = CliRunner().invoke(dev_app, args)
        assert refused.exit_code == 2, refused.output
        lines = [line for line in refused.output.splitlines() if line.strip()]
        message = " ".join(lines[-1].split())
        assert message.startswith("error: port")
        assert f"port {temporal.port}" in message
        assert f"pid {squatter.pid}, python" in message
        assert squatter.poll() is None, "the foreign process must be left alone"
    finally:
        if squatter is not None:
            squatter.kill()
            squatter.wait()
            assert squatter.stdout is not None
            squatter.stdout.close()

    # With the port free again, 'dev up' restarts Temporal on it.
    repaired = CliRunner().invoke(dev_app, [*args, "--json"])
    assert repaired.exit_code == 0, repaired.output
    report = json.loads(repaired.stdout)
    assert report["already_running"] is False
    assert report["repairs"] == [
        f"restarted temporal (pid {report['processes'][0]['pid']}, port {temporal.port})"
    ]
    assert report["temporal_address"] == state.temporal_address
