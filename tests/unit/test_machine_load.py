"""The load floor the fault tests run under: the burner runs exactly when the load from outside
the test is under the floor, and it measures a real outside load."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from machine_load import LoadFloor, should_burn
from waiting import eventually


def test_the_burner_runs_only_below_the_floor() -> None:
    assert should_burn(0.0, 1.0)
    assert should_burn(0.9, 1.0)
    assert not should_burn(1.0, 1.0)
    assert not should_burn(1.7, 1.0)


async def test_an_outside_hog_is_measured_and_pauses_the_burner() -> None:
    # A hog outside the test's process tree: started through a shell that exits at once, so
    # that the hog is reparented away from this process.
    launcher = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await launcher.communicate()
    hog = int(out.decode().strip())
    try:
        with LoadFloor(floor=0.5, every=0.2) as floor:
            await eventually(lambda: len(floor.external) >= 10, what="ten samples")
            assert max(floor.external[3:]) >= 0.5, floor.external
            assert not all(floor.burning[3:]), floor.burning
    finally:
        os.kill(hog, signal.SIGKILL)  # by its own PID
