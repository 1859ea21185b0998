"""Child processes of the embedded stack: spawn, wait until ready, check liveness, stop by PID.

Every process is identified by the PID we got when we started it, never by its name, and before
it is signalled we check that the PID still runs the command we started (and started when we
started it): PIDs are recycled, and killing a stranger's process must be impossible.

Children run in their own session (and so their own process group): a Ctrl-C in the terminal
reaches only the foreground group, so ``baton dev up`` decides what happens to them (it stops what
it started), and ``baton dev down`` can stop a child together with anything it forked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelbaton.errors import StackError

#: Seconds between SIGTERM and SIGKILL. Workers drain in-flight activities for up to 10 s on
#: SIGTERM (``WorkerOptions.graceful_shutdown``), so the grace period must be longer than that.
STOP_GRACE_SECONDS = 15.0

# Popen objects of the children this process started. Keeping them lets us reap a stopped child
# (otherwise it lingers as a zombie while we live) and stops Python from warning about a running
# subprocess being garbage collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    """One process the stack started, as recorded in ``stack.json``."""

    name: str
    pid: int
    command: list[str]
    log: str
    port: int | None = None
    #: Kernel start time of the process (clock ticks since boot), to tell a recycled PID apart.
    start_ticks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so the file format can grow."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            command=[str(part) for part in data["command"]],
            log=str(data["log"]),
            port=int(data["port"]) if data.get("port") is not None else None,
            start_ticks=int(data["start_ticks"]) if data.get("start_ticks") is not None else None,
        )


@dataclass(frozen=True)
class StopResult:
    """What stopping one process did; ``str()`` is a one-line report."""

    name: str
    pid: int
    #: ``terminated`` (exited after SIGTERM), ``killed`` (needed SIGKILL), ``not running`` (was
    #: already gone) or ``not ours`` (the PID now runs something else, so it was left alone).
    outcome: str

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid}): {self.outcome}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (bind to port 0 and read back what it chose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on, or holds, ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The servers we start set SO_REUSEADDR too, so a port only in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
        return False


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    raw = _read_proc(pid, "stat")
    if raw is None:
        return None
    # The command name (field 2) is in parentheses and may hold spaces; split after it.
    text = raw.decode(errors="replace")
    return text[text.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when there is no such PID."""
    fields = _stat_fields(pid)
    # After the command name: state is field 3, starttime is field 22 (proc(5)).
    return int(fields[19]) if fields and len(fields) > 19 else None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a running process, or None when it has exited (or is a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    raw = _read_proc(pid, "cmdline")
    if not raw:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def is_ours(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and still the process we started.

    The recorded command must end the live argv: a script started by its path shows up as
    ``[interpreter, script, args...]`` because the kernel runs the shebang's interpreter.
    """
    _reap(record.pid)
    argv = cmdline(record.pid)
    if argv is None or len(argv) < len(record.command):
        return False
    if argv[len(argv) - len(record.command) :] != record.command:
        return False
    if record.start_ticks is not None:
        return process_start_ticks(record.pid) == record.start_ticks
    return True


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def spawn(
    name: str,
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str],
    *,
    port: int | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``command`` in its own session with stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"\n=== {stamp} modelbaton starts: {' '.join(command)}\n".encode())
        out.flush()
        try:
            child = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start {name} ({command[0]}): {exc}") from None
    _CHILDREN[child.pid] = child
    return ProcessRecord(
        name=name,
        pid=child.pid,
        command=list(command),
        log=str(log),
        port=port,
        start_ticks=process_start_ticks(child.pid),
    )


def wait_until(
    record: ProcessRecord,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> None:
    """Poll ``ready`` until it is true; fail early if the process exits, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if not is_ours(record):
            raise StackError(f"{record.name} exited before {what}; see its log {record.log}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"{record.name} (pid {record.pid}) did not get {what} within {timeout:.0f} s; "
                f"see its log {record.log}"
            )
        time.sleep(interval)


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    # We made the child a session leader, so its process group id is its PID: signalling the
    # group also reaches anything it forked. Fall back to the PID alone if that ever differs.
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)


def _wait_gone(record: ProcessRecord, deadline: float) -> bool:
    child = _CHILDREN.get(record.pid)
    if child is not None:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        del _CHILDREN[record.pid]
        return True
    while is_ours(record):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop_many(
    records: Sequence[ProcessRecord], grace: float = STOP_GRACE_SECONDS
) -> list[StopResult]:
    """Stop several processes at once: SIGTERM to all, then SIGKILL to those left after ``grace``.

    Signalling all before waiting lets them shut down in parallel (each worker may spend up to
    its graceful-shutdown period draining). A PID that no longer runs the recorded command is
    never signalled.
    """
    outcomes: dict[int, str] = {}
    signalled: list[ProcessRecord] = []
    for record in records:
        if is_ours(record):
            _signal(record, signal.SIGTERM)
            signalled.append(record)
        else:
            outcomes[record.pid] = "not running" if cmdline(record.pid) is None else "not ours"
    deadline = time.monotonic() + grace
    for record in signalled:
        if _wait_gone(record, deadline):
            outcomes[record.pid] = "terminated"
            continue
        if is_ours(record):
            _signal(record, signal.SIGKILL)
            _wait_gone(record, time.monotonic() + 5.0)
        outcomes[record.pid] = f"killed (still running {grace:.0f} s after SIGTERM)"
    return [StopResult(r.name, r.pid, outcomes[r.pid]) for r in records]


def stop(record: ProcessRecord, grace: float = STOP_GRACE_SECONDS) -> StopResult:
    """SIGTERM the process, SIGKILL it if it is still there after ``grace`` seconds."""
    return stop_many([record], grace)[0]
