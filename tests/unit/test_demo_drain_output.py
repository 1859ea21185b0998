"""The demo reads ``baton drain``'s live progress bar from a pipe: each count as it is drawn, and
the lines a terminal would be left with when the demo's own output is not a terminal.

The bar is drawn by the real rich Progress, in a child process with the variables the demo sets,
with the same columns as the drain's; only the counts are made up.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys

from rich.console import Console

from modelbaton.demo.blue_green import _LIVE_OUTPUT, DrainOutput

# Each count is held until the parent says "next", so the test sees every frame it waits for.
CHILD = r"""
import sys
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
console.print("draining dep:blue (green is current)", emoji=False)
with Progress(
    TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
    TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console,
) as bar:
    task = bar.add_task("closed", total=None, detail="counting")
    for running in (12, 11, 10, 0):
        sys.stdin.readline()
        bar.update(task, total=12, completed=12 - running,
                   detail=f"in flight {running} (running 0, at review {running})")
console.print("[green]drained[/] dep:blue in 3.0 s (12 in flight at the start)", emoji=False)
"""


async def test_counts_are_seen_as_drawn_and_lines_are_left_as_on_a_terminal() -> None:
    env = os.environ | _LIVE_OUTPUT | {"COLUMNS": "100"}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    shown = io.StringIO()
    output = DrainOutput(Console(file=shown, width=100))
    reading = asyncio.create_task(output.read(child.stdout))
    try:
        for expected in (12, 11, 10):
            child.stdin.write(b"next\n")
            await child.stdin.drain()
            await output.counted(expected, within=30)
            assert output.in_flight == expected
            assert not output.closed
        child.stdin.write(b"next\n")
        await child.stdin.drain()
        await output.counted(0, within=30)
        assert await child.wait() == 0
        await asyncio.wait_for(reading, 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert output.closed
    assert output.in_flight == 0
    lines = shown.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0] == "draining dep:blue (green is current)"
    assert lines[1].startswith("closed ")
    assert "12/12 in flight 0 (running 0, at review 0)" in lines[1]
    assert lines[2] == "drained dep:blue in 3.0 s (12 in flight at the start)"
    assert "\x1b" not in shown.getvalue()


async def test_waiting_ends_when_the_output_ends_without_a_count() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"error: no Temporal address\n")
    reader.feed_eof()
    shown = io.StringIO()
    output = DrainOutput(Console(file=shown, width=100))
    await output.read(reader)
    await output.counted(None, within=5)
    assert output.closed
    assert output.in_flight is None
    assert shown.getvalue() == "error: no Temporal address\n"


async def test_on_a_terminal_the_bytes_go_on_unchanged_and_are_still_counted() -> None:
    drawn = (
        "draining dep:blue (green is current)\n\x1b[?25l\r\x1b[2Kclosed 0/? counting 0:00:00"
        "\r\x1b[2Kclosed 0/2 in flight 2 (running 0, at review 2) 0:00:01"
        "\r\x1b[2Kclosed 2/2 in flight 0 (running 0, at review 0) 0:00:02\n\x1b[?25h"
        "drained dep:blue in 2.0 s (2 in flight at the start)\n"
    )
    reader = asyncio.StreamReader()
    encoded = drawn.encode()
    for start in range(0, len(encoded), 7):  # in pieces, as a pipe delivers them
        reader.feed_data(encoded[start : start + 7])
    reader.feed_eof()
    shown = io.StringIO()
    output = DrainOutput(Console(file=shown, width=100, force_terminal=True))
    await output.read(reader)
    assert shown.getvalue() == drawn
    assert output.in_flight == 0
