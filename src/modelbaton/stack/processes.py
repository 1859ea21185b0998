"""Child processes of the embedded stack: spawn, wait until ready, check liveness, stop by PID.

Every process is identified by the PID we got when we started it, never by its name, and before
it is signalled we check (with psutil) that the PID still runs the command we started and was
created when we started it: PIDs are recycled, and killing a stranger's process must be
impossible.

Children run in their own session (and so their own process group): a Ctrl-C in the terminal
reaches only the foreground group, so ``baton dev up`` decides what happens to them (it stops what
it started), and ``baton dev down`` can stop a child together with anything it forked.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import random
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from modelbaton import polling
from modelbaton.errors import StackError

#: Seconds between SIGTERM and SIGKILL. Workers drain in-flight activities for up to 10 s on
#: SIGTERM (``WorkerOptions.graceful_shutdown``), so the grace period must be longer than that.
STOP_GRACE_SECONDS = 15.0
#: psutil's create time is clock ticks since boot (10 ms each) plus the boot time, which it reads
#: afresh from /proc/stat's ``btime`` each time: a whole second the kernel derives from the wall
#: clock, so it steps by a second when the clock is adjusted (seen on a loaded VM: a healthy model
#: server judged "exited" at start-up). So the same process may read back a second apart; a PID
#: recycled for the very same command line within that window is the only thing this lets through.
CREATE_TIME_TOLERANCE = 1.5

# Popen objects of the children this process started. Keeping them lets us reap a stopped child
# (otherwise it lingers as a zombie while we live) and stops Python from warning about a running
# subprocess being garbage collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
# Open :func:`tracking` blocks: each gets every record spawned while it is open.
_TRACKERS: list[list[ProcessRecord]] = []


@dataclass(frozen=True)
class ProcessRecord:
    """One process the stack started, as recorded in ``stack.json``."""

    name: str
    pid: int
    command: list[str]
    log: str
    port: int | None = None
    #: Kernel start time of the process (clock ticks since boot, /proc/PID/stat), to tell a
    #: recycled PID apart exactly; None where there is no /proc.
    start_ticks: int | None = None
    #: When the process started (psutil's create time): the identity where ticks are not
    #: recorded, within :data:`CREATE_TIME_TOLERANCE`, and what a person reads.
    create_time: float | None = None

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
            create_time=(
                float(data["create_time"]) if data.get("create_time") is not None else None
            ),
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


#: Where the kernel takes the source ports of outgoing connections (Linux's default when
#: ``/proc/sys/net/ipv4/ip_local_port_range`` cannot be read).
_EPHEMERAL_DEFAULT = (32768, 60999)
#: How many ports below the ephemeral range :func:`free_port` draws from.
_BELOW_EPHEMERAL = 15_000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_DEFAULT


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now for a child process to listen on, drawn at random from just below
    the kernel's ephemeral range.

    A port the OS picks for ``bind(host, 0)`` lies in that range, which is also where every
    outgoing connection takes its source port: a child that binds the port a moment later can find
    it taken (a full test run saw a worker's metrics port go so, with thousands of connections a
    minute on the machine). Below the range only other listeners compete, and a random draw over
    15,000 ports makes two of ours meeting unlikely. Falls back to the OS's pick when no draw is
    free.
    """
    low, _ = ephemeral_range()
    start = max(1024, low - _BELOW_EPHEMERAL)
    draw = random.SystemRandom()
    for _ in range(64):
        port = draw.randrange(start, low)
        if not port_in_use(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
        return chosen


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


def _process(pid: int) -> psutil.Process | None:
    """The live process ``pid``, or None when there is none (exited, or a zombie)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return proc
    except psutil.Error:
        return None


def create_time(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch, as psutil reports it), or None."""
    proc = _process(pid)
    try:
        return proc.create_time() if proc is not None else None
    except psutil.Error:
        return None


def _create_time_even_if_exited(pid: int) -> float | None:
    # A child that failed at once is a zombie until reaped; it still has its create time.
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _start_ticks(pid: int) -> int | None:
    # What /proc/PID/stat calls starttime (proc(5), field 22): how old stack files identified a
    # process. Read as the kernel keeps it, in ticks since boot: converting psutil's create time
    # back would add the wall-clock-derived boot time, which steps by whole seconds.
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(text[text.rfind(")") + 2 :].split()[19])
    except (IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str] | None:
    """The argv of a running process, or None when it has exited (or is a zombie)."""
    proc = _process(pid)
    if proc is None:
        return None
    try:
        return proc.cmdline() or None
    except psutil.Error:
        return None


def describe_pid(pid: int | None) -> str:
    """``pid 123, name`` for a message, or what is known when the process is not ours to see."""
    if pid is None:
        return "a process this user cannot see"
    try:
        return f"pid {pid}, {psutil.Process(pid).name()}"
    except psutil.Error:
        return f"pid {pid}"


@dataclass(frozen=True)
class Listener:
    """A socket listening on a port; ``pid`` is None when its process is not visible to us."""

    port: int
    pid: int | None


def listener(host: str, port: int) -> Listener | None:
    """Who listens on ``host:port`` (or on every address), None when nobody does.

    Unlike :func:`port_in_use` this ignores connections left over from a process that died
    (the servers we start bind with SO_REUSEADDR, so those do not stop them).
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.laddr.ip in (host, "0.0.0.0", "::", "::ffff:" + host):
            return Listener(port=port, pid=conn.pid)
    return None


def port_holder(host: str, port: int) -> int | None:
    """The PID listening on ``host:port``, None when unknown or none."""
    found = listener(host, port)
    return found.pid if found else None


def is_ours(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and still the process we started: the same PID, the same
    create time and the same command line (PIDs are recycled).

    The recorded command must end the live argv: a script started by its path shows up as
    ``[interpreter, script, args...]`` because the kernel runs the shebang's interpreter.
    """
    child = _CHILDREN.get(record.pid)
    if child is not None and child.poll() is None and child.args == record.command:
        # Started by this process and not yet reaped: its PID cannot have been reused, so no
        # clock needs to say so (a loaded CI machine judged a healthy server "exited" once).
        return True
    _reap(record.pid)
    proc = _process(record.pid)
    if proc is None:
        _reap(record.pid)  # it may have turned zombie since the first look
        return False
    try:
        argv = proc.cmdline()
        started = proc.create_time()
    except psutil.Error:
        return False
    # The kernel's start ticks since boot are exact and no clock moves them; where they cannot
    # be read (not Linux), the create time, which moves with the boot time psutil adds.
    ticks = _start_ticks(record.pid) if record.start_ticks is not None else None
    if not argv:
        # A process in the middle of exec shows no argv for an instant (its parent already
        # returned from spawning it; seen on a loaded CI machine): its start ticks decide.
        return record.start_ticks is not None and ticks is not None and ticks == record.start_ticks
    if len(argv) < len(record.command) or argv[len(argv) - len(record.command) :] != record.command:
        return False
    if record.start_ticks is not None and ticks is not None:
        return abs(ticks - record.start_ticks) <= 1
    if record.create_time is not None:
        return abs(started - record.create_time) < CREATE_TIME_TOLERANCE
    return record.start_ticks is None


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
    record = ProcessRecord(
        name=name,
        pid=child.pid,
        command=list(command),
        log=str(log),
        port=port,
        start_ticks=_start_ticks(child.pid),
        create_time=_create_time_even_if_exited(child.pid),
    )
    for tracker in _TRACKERS:
        tracker.append(record)
    return record


@contextlib.contextmanager
def tracking() -> Iterator[list[ProcessRecord]]:
    """Collect every process :func:`spawn` starts inside the block, whatever any file records,
    so that a start that fails part-way can stop exactly what it started."""
    started: list[ProcessRecord] = []
    _TRACKERS.append(started)
    try:
        yield started
    finally:
        _TRACKERS.remove(started)


def wait_until(
    record: ProcessRecord,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> None:
    """Poll ``ready`` until it is true; fail early if the process exits, or after ``timeout``."""

    def check() -> bool:
        if not is_ours(record):
            raise StackError(f"{record.name} exited before {what}; see its log {record.log}")
        return ready()

    polling.wait_until(
        check,
        within=timeout,
        every=interval,
        give_up=lambda: StackError(
            f"{record.name} (pid {record.pid}) did not get {what} within {timeout:.0f} s; "
            f"see its log {record.log}"
        ),
    )


def _family(record: ProcessRecord) -> list[psutil.Process]:
    """The recorded process and everything it forked that still runs (its descendants, and
    anything left in its process group, which we made its own)."""
    try:
        leader = psutil.Process(record.pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []
    seen = {p.pid for p in members}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid not in seen and os.getpgid(proc.pid) == record.pid:
                members.append(proc)
    return members


def _signal(record: ProcessRecord, family: list[psutil.Process], sig: signal.Signals) -> None:
    # We made the child a session leader, so its process group id is its PID: signalling the
    # group reaches anything it forked. Children that left the group get the signal one by one.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _reap_children() -> None:
    # A child we started and that has exited is reaped here, so it does not linger as a zombie
    # (psutil's wait may already have reaped it: poll() then reads ECHILD as exited).
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]


def stop_many(
    records: Sequence[ProcessRecord], grace: float = STOP_GRACE_SECONDS
) -> list[StopResult]:
    """Stop several processes at once: SIGTERM to all, then SIGKILL to those left after ``grace``.

    Each process is stopped together with what it forked, and this returns only once all of
    them are gone (so the ports they held are free). Signalling all before waiting lets them
    shut down in parallel (each worker may spend up to its graceful-shutdown period draining).
    A PID that no longer runs the recorded command is never signalled.
    """
    outcomes: dict[int, str] = {}
    families: dict[int, list[psutil.Process]] = {}
    for record in records:
        if is_ours(record):
            families[record.pid] = _family(record)
            _signal(record, families[record.pid], signal.SIGTERM)
        else:
            outcomes[record.pid] = "not running" if cmdline(record.pid) is None else "not ours"
    everyone = [proc for family in families.values() for proc in family]
    _, alive = psutil.wait_procs(everyone, timeout=grace)
    left = {proc.pid for proc in alive}
    for record in records:
        if record.pid not in families:
            continue
        stubborn = [proc for proc in families[record.pid] if proc.pid in left]
        if not stubborn:
            outcomes[record.pid] = "terminated"
            continue
        _signal(record, stubborn, signal.SIGKILL)
        psutil.wait_procs(stubborn, timeout=5.0)
        outcomes[record.pid] = f"killed (still running {grace:.0f} s after SIGTERM)"
    _reap_children()
    return [StopResult(r.name, r.pid, outcomes[r.pid]) for r in records]


def stop(record: ProcessRecord, grace: float = STOP_GRACE_SECONDS) -> StopResult:
    """SIGTERM the process, SIGKILL it if it is still there after ``grace`` seconds."""
    return stop_many([record], grace)[0]


@atexit.register
def _detach_children() -> None:
    """Let the stack's processes outlive this one without a ``ResourceWarning``.

    ``baton dev up`` starts processes that are meant to keep running after it exits. A
    ``Popen`` that is garbage collected while its process runs warns "subprocess ... is still
    running"; here that is the intent, so the ones still running are marked as handed over (the
    kernel reparents them; whoever runs ``dev down`` stops them by PID). Exited ones are reaped.
    """
    _reap_children()
    for child in _CHILDREN.values():
        child.returncode = 0  # handed over, not ours to wait for any more
    _CHILDREN.clear()


def stop_stray(pid: int, *, group: int) -> bool:
    """Stop ``pid`` if a process we started forked it and died before it (True when stopped).

    We start every process as the leader of its own process group, so a process still in group
    ``group`` after its leader (PID ``group``) is gone descends from that leader: a group id is
    not reused while the group has members. When a process with PID ``group`` exists, the PID
    was recycled and nothing is touched.
    """
    if psutil.pid_exists(group):
        return False
    try:
        if os.getpgid(pid) != group:
            return False
    except OSError:
        return False
    members: list[psutil.Process] = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == group:
                members.append(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=STOP_GRACE_SECONDS)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5.0)
    return True
