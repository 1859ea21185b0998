"""Process identity and stopping with psutil, on real child processes (``sleep``, ``sh``)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from modelbaton.stack import processes
from modelbaton.stack.processes import ProcessRecord


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[ProcessRecord]:
    record = processes.spawn("sleeper", ["sleep", "60"], tmp_path / "sleeper.log", dict(os.environ))
    try:
        yield record
    finally:
        processes.stop(record, grace=2)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate: object, what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def proc_stat_start_ticks(pid: int) -> int:
    # Read independently of the code under test: field 22 of /proc/PID/stat (proc(5)).
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 2 :].split()[19])


@pytest.fixture
def stranger(tmp_path: Path) -> Iterator[ProcessRecord]:
    """A process this module did not spawn (as a stack file written by another ``baton``
    describes it), recorded with what the kernel and psutil say; stopped by its own PID."""
    proc = subprocess.Popen(["sleep", "60"])
    # Its argv shows once its exec is through (for an instant after Popen returns it is empty).
    wait_for(lambda: psutil.Process(proc.pid).cmdline() == ["sleep", "60"], "the exec done")
    try:
        yield ProcessRecord(
            name="stranger",
            pid=proc.pid,
            command=["sleep", "60"],
            log=str(tmp_path / "stranger.log"),
            start_ticks=proc_stat_start_ticks(proc.pid),
            create_time=psutil.Process(proc.pid).create_time(),
        )
    finally:
        proc.kill()
        proc.wait()


def test_spawn_records_the_kernels_start_ticks_and_the_create_time(sleeper: ProcessRecord) -> None:
    assert sleeper.start_ticks == proc_stat_start_ticks(sleeper.pid)
    assert sleeper.create_time is not None
    assert abs(sleeper.create_time - psutil.Process(sleeper.pid).create_time()) < 1.5
    assert processes.is_ours(sleeper)
    assert processes.describe_pid(sleeper.pid) == f"pid {sleeper.pid}, sleep"


def test_an_unreaped_child_of_ours_needs_no_clock(sleeper: ProcessRecord) -> None:
    # Its PID cannot be reused before we reap it, whatever the clocks say.
    assert processes.is_ours(dataclasses.replace(sleeper, start_ticks=0, create_time=0.0))
    assert not processes.is_ours(dataclasses.replace(sleeper, command=["sleep", "61"]))


def test_identity_of_a_process_we_did_not_start(stranger: ProcessRecord) -> None:
    assert stranger.start_ticks is not None
    assert stranger.create_time is not None
    assert processes.is_ours(stranger)
    # The same PID with other start ticks is a recycled PID, not ours, whatever the create time.
    assert not processes.is_ours(
        dataclasses.replace(stranger, start_ticks=stranger.start_ticks + 500)
    )
    # Exact ticks: a create time off by the boot time's whole-second steps does not matter.
    assert processes.is_ours(dataclasses.replace(stranger, create_time=stranger.create_time - 3))
    assert not processes.is_ours(dataclasses.replace(stranger, command=["sleep", "61"]))


def test_without_ticks_the_create_time_identifies(stranger: ProcessRecord) -> None:
    assert stranger.create_time is not None
    no_ticks = dataclasses.replace(stranger, start_ticks=None)
    assert processes.is_ours(no_ticks)
    # The boot time psutil adds steps by whole seconds when the wall clock is adjusted.
    assert processes.is_ours(dataclasses.replace(no_ticks, create_time=stranger.create_time + 1))
    assert processes.is_ours(dataclasses.replace(no_ticks, create_time=stranger.create_time - 1))
    assert not processes.is_ours(
        dataclasses.replace(no_ticks, create_time=stranger.create_time - 5)
    )


def test_old_stack_file_with_start_ticks_only_still_identifies(stranger: ProcessRecord) -> None:
    old = stranger.to_dict() | {"extra": 1}
    del old["create_time"]
    record = ProcessRecord.from_dict(old)
    assert record.create_time is None
    assert processes.is_ours(record)
    assert record.start_ticks is not None
    assert not processes.is_ours(dataclasses.replace(record, start_ticks=record.start_ticks + 500))


def test_stop_takes_what_the_process_forked(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    record = processes.spawn(
        "family",
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"],
        tmp_path / "family.log",
        dict(os.environ),
    )
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the grandchild started")
    grandchild = int(pid_file.read_text())
    assert psutil.pid_exists(grandchild)
    (result,) = processes.stop_many([record], grace=5)
    assert result.outcome == "terminated"
    assert gone(record.pid)
    assert gone(grandchild)
    assert record.pid not in processes._CHILDREN  # reaped, so no ResourceWarning later
    assert processes.stop(record).outcome == "not running"


def test_stray_of_a_dead_leader_is_stopped_a_stranger_never(tmp_path: Path) -> None:
    pid_file = tmp_path / "stray.pid"
    # The leader forks a sleeper and exits at once: the sleeper stays in the leader's group.
    leader = processes.spawn(
        "leader",
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}"],
        tmp_path / "leader.log",
        dict(os.environ),
    )
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the stray started")
    stray = int(pid_file.read_text())
    wait_for(lambda: not processes.is_ours(leader), "the leader exited")
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert not processes.stop_stray(stranger.pid, group=leader.pid)
        assert stranger.poll() is None
        assert processes.stop_stray(stray, group=leader.pid)
        assert gone(stray)
    finally:
        stranger.kill()
        stranger.wait()


def test_listener_names_the_process_holding_a_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import socket, sys, time\n"
            f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); print('up')\n"
            "sys.stdout.flush(); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"up"
        found = processes.listener("127.0.0.1", port)
        assert found is not None
        assert found.pid == holder.pid
        assert processes.port_in_use("127.0.0.1", port)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert processes.listener("127.0.0.1", port) is None


def test_a_killed_child_is_reaped_when_looked_at(tmp_path: Path) -> None:
    """The end-of-run ``ResourceWarning: subprocess N is still running`` came from children
    SIGKILLed by tests and never reaped: a dead child is reaped as soon as it is looked at."""
    record = processes.spawn("victim", ["sleep", "60"], tmp_path / "victim.log", dict(os.environ))
    assert record.pid in processes._CHILDREN
    os.kill(record.pid, 9)
    wait_for(lambda: gone(record.pid), "the child a zombie")  # psutil's view, not the code's
    assert not processes.is_ours(record)
    assert record.pid not in processes._CHILDREN
    assert not psutil.pid_exists(record.pid) or gone(record.pid)


def test_a_process_in_the_middle_of_exec_is_judged_by_its_start_ticks(
    stranger: ProcessRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    # For an instant during exec /proc/PID/cmdline is empty; psutil then answers [].
    monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [])
    assert processes.is_ours(stranger)
    assert stranger.start_ticks is not None
    assert not processes.is_ours(
        dataclasses.replace(stranger, start_ticks=stranger.start_ticks + 1)
    )
    assert not processes.is_ours(dataclasses.replace(stranger, start_ticks=None))


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    """Outgoing connections take their source ports from the ephemeral range; a port we hand to a
    child process to listen on is drawn below it, and is free when handed out."""
    low, high = processes.ephemeral_range()
    assert 1024 <= low < high
    ports = {processes.free_port() for _ in range(20)}
    assert all(max(1024, low - 15_000) <= p < low for p in ports), ports
    assert len(ports) > 1  # drawn at random, not one fixed port
    for port in ports:
        # Bound as the servers we start bind (SO_REUSEADDR, as Go's and uvicorn's listeners do):
        # a port some earlier connection left in TIME_WAIT is free for them, and so counted.
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def test_free_port_falls_back_to_the_os_when_every_draw_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "port_in_use", lambda host, port: True)
    port = processes.free_port()
    low, _ = processes.ephemeral_range()
    assert port >= low  # the OS's own pick, from its ephemeral range
