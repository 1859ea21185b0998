"""Order the collection so that pytest-xdist's workers finish together.

``--dist worksteal`` first splits the collection into one contiguous slice per worker, then lets an
idle worker take the back half of the longest queue. A slice that happens to hold the slow files
(faults, the demo, the controller) then decides the run's length. So the files are dealt out here,
longest first, each to the slice with the least work so far (longest processing time first), and
each slice runs its slow files first: what is left to steal at the end is short.

A test's cost is its measured seconds in ``durations.json`` beside this file (refresh it with
``python tests/scheduling.py < report.txt``, a ``pytest --durations=0`` report); a test that is not
listed costs the median. Slow tests are dealt one by one (a file of slow tests, such as the
faults, would otherwise keep one worker busy alone); the cheap ones stay together by file. The
order changes only when tests run, never what they test.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")


def test_costs() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except FileNotFoundError:
        return {}


#: Tests that cost less than this are spread by their number, not by their seconds.
CHEAP_SECONDS = 5.0


def deal(files: dict[str, tuple[float, int]], workers: int) -> list[list[str]]:
    """Each worker's units (seconds, tests), the slow ones first.

    worksteal cuts the collection by counts of tests, so the slices must hold equal counts as
    well as equal seconds: the slow files are dealt by seconds (each to the slice with the least
    so far), then the cheap ones by tests (each to the slice with the fewest), which brings the
    counts level while adding little time."""
    slices: list[list[str]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    tests = [0] * workers
    slow = sorted((f for f in files if files[f][0] >= CHEAP_SECONDS), key=lambda f: -files[f][0])
    cheap = sorted((f for f in files if files[f][0] < CHEAP_SECONDS), key=lambda f: -files[f][1])
    for name in slow:
        i = min(range(workers), key=lambda w: (load[w], w))
        slices[i].append(name)
        load[i] += files[name][0]
        tests[i] += files[name][1]
    for name in cheap:
        i = min(range(workers), key=lambda w: (tests[w], load[w], w))
        slices[i].append(name)
        load[i] += files[name][0]
        tests[i] += files[name][1]
    return slices


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers < 2:
        return
    known = test_costs()
    median = statistics.median(known.values()) if known else 1.0
    units: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        cost = known.get(item.nodeid, median)
        # A slow test is a unit of its own; cheap ones go together with their file, and so do
        # the fault tests, which load the machine on purpose and must not overlap.
        alone = cost >= CHEAP_SECONDS and item.get_closest_marker("faults") is None
        unit = item.nodeid if alone else item.nodeid.split("::", 1)[0]
        units[unit].append(item)
    sizes = {
        unit: (sum(known.get(i.nodeid, median) for i in members), len(members))
        for unit, members in units.items()
    }
    ordered = [item for chunk in deal(sizes, workers) for unit in chunk for item in units[unit]]
    items[:] = ordered


def from_report(text: str) -> dict[str, float]:
    """Seconds per test (setup, call and teardown) from the lines of a ``--durations`` report."""
    seconds: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        match = re.match(r"\s*([\d.]+)s (?:call|setup|teardown)\s+(\S+)$", line)
        if match:
            seconds[match.group(2)] += float(match.group(1))
    return {k: round(v, 2) for k, v in sorted(seconds.items())}


if __name__ == "__main__":
    DURATIONS.write_text(json.dumps(from_report(sys.stdin.read()), indent=1) + "\n")
