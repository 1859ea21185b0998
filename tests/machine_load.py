"""A load floor for the tests that must run on a loaded machine (issue 18's fault tests).

A CPU burner (a child process, stopped by its own PID) runs whenever the load from OUTSIDE the
test (other processes than the test's own process tree) is below ``floor`` cores, and is paused
(SIGSTOP) while the rest of the machine already brings that much: in a full parallel run the
other test workers load the machine, and an unconditional burner only slowed all of them down;
run alone, the burner keeps the load. ``summary()`` says what the test ran under.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from types import TracebackType

import psutil


def should_burn(external_cores: float, floor: float) -> bool:
    """Run the burner when the machine's load from outside the test is under the floor."""
    return external_cores < floor


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class LoadFloor:
    def __init__(self, floor: float = 1.0, every: float = 0.5) -> None:
        self.floor = floor
        self.every = every
        self.external: list[float] = []
        self.burning: list[bool] = []
        self._stop = threading.Event()
        self._burner: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LoadFloor:
        self._burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        self._thread = threading.Thread(target=self._govern, name="load-floor", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._burner is not None:
            self._burner.send_signal(signal.SIGCONT)  # a stopped process must run to die
            self._burner.kill()
            self._burner.wait()

    def _tree_seconds(self, me: psutil.Process, seen: dict[int, float]) -> float:
        """CPU seconds the test's own processes used since the last look (not the burner's)."""
        assert self._burner is not None
        used = 0.0
        try:
            family = [me, *me.children(recursive=True)]
        except psutil.Error:
            family = [me]
        for proc in family:
            if proc.pid == self._burner.pid:
                continue
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total = times.user + times.system
            used += total - seen.get(proc.pid, 0.0)
            seen[proc.pid] = total
        return used

    def _govern(self) -> None:
        assert self._burner is not None
        me = psutil.Process(os.getpid())
        burner = psutil.Process(self._burner.pid)
        seen: dict[int, float] = {}
        self._tree_seconds(me, seen)
        last_busy, last_burn, last_at = _busy_seconds(), 0.0, time.monotonic()
        running = True
        while not self._stop.wait(self.every):
            now, busy = time.monotonic(), _busy_seconds()
            try:
                burn_times = burner.cpu_times()
                burn = burn_times.user + burn_times.system
            except psutil.Error:
                return
            tree = self._tree_seconds(me, seen)
            elapsed = max(now - last_at, 1e-3)
            external = max(0.0, (busy - last_busy) - (burn - last_burn) - tree) / elapsed
            last_busy, last_burn, last_at = busy, burn, now
            self.external.append(external)
            self.burning.append(running)
            wanted = should_burn(external, self.floor)
            if wanted != running:
                self._burner.send_signal(signal.SIGCONT if wanted else signal.SIGSTOP)
                running = wanted

    def summary(self) -> str:
        if not self.external:
            return "load floor: no sample"
        burned = sum(self.burning) / len(self.burning)
        return (
            f"load from outside the test: median {statistics.median(self.external):.1f} cores; "
            f"burner ran {burned:.0%} of the time (floor {self.floor:.1f} cores)"
        )
