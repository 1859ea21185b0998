"""Act 8: the blue-green cutover on Worker Versioning.

On a queue of its own, two builds of the pipeline run side by side as versioned workers (pinned
workflows): documents started on ``blue`` wait at review, ``green`` becomes current and takes new
documents, and the real ``baton drain --from blue`` follows blue's in-flight workflows from
visibility with a progress bar while the reviewers finish them, then says blue's workers can go.

The reviewers wait for the drain, not for the clock: the first review waits until the drain has
taken its first count, and each next one until the drain has counted the previous one closed, so
the bar moves one document at a time on any machine.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import sys
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

from rich.console import Console

from modelbaton.demo.documents import Batch, Demo, make_batch, poll_until
from modelbaton.demo.reviews import review
from modelbaton.models import CatalogSource, make_http_client
from modelbaton.pipeline import (
    DocumentClassificationWorkflow,
    ResultsStore,
    WorkflowState,
    submit_documents,
)
from modelbaton.rollout import steady_plan
from modelbaton.stack import stack_variables
from modelbaton.versioning import (
    Build,
    DeploymentControl,
    DrainTarget,
    deployment_name_for,
    workflow_build,
)

BLUE_GREEN_QUEUE = "modelbaton-demo-bluegreen"
#: Bounds a failure of the drain to count (it counts every second); never a pause.
DRAIN_COUNT_WITHIN = 120.0
#: Makes the drain's console write its live progress bar into a pipe, as on a terminal: the bar's
#: frames are the only place its counts show.
_LIVE_OUTPUT = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}


async def blue_green(demo: Demo) -> tuple[Batch, int]:
    """Run the cutover; return its documents and the drain's exit code."""
    demo.console.rule(
        "[bold]8. blue-green cutover: Worker Versioning builds, drained from visibility"
    )
    batch = make_batch("blue-green", max(demo.per_batch // 2, 2) * 2, seed=505)
    code, builds = await _cutover(demo, batch)
    demo.console.print(
        f"documents per build: {dict(Counter(builds.values()))}; baton drain exit code {code}"
    )
    return batch, code


async def _cutover(demo: Demo, batch: Batch) -> tuple[int, dict[str, str]]:
    """The cutover itself; return the drain's exit code and each document's build."""
    console, client = demo.console, demo.client
    deployment = deployment_name_for(BLUE_GREEN_QUEUE)
    control = DeploymentControl(client, deployment)
    source = CatalogSource.fixed(demo.catalog)
    blue, green = Build(deployment, "blue"), Build(deployment, "green")
    plan = steady_plan(demo.catalog)
    half = len(batch.docs) // 2
    on_blue = [d.workflow_id for d in batch.docs[:half]]
    reviewing = demo.pipeline.model_copy(update={"review_threshold": 1.0})  # blue's docs all wait
    automatic = demo.pipeline.model_copy(update={"review_threshold": 0.0})  # green's finish at once
    builds: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(make_http_client())
        store = ResultsStore(f"sqlite:///{demo.stack.home / 'bluegreen.db'}")
        stack.callback(store.close)
        workers = demo.workers
        await stack.enter_async_context(
            workers.pool(client, BLUE_GREEN_QUEUE, plan.baseline.version, source, http)
        )
        async with workers.build(client, BLUE_GREEN_QUEUE, blue, store, source, http):
            await control.await_pollers("blue", within=60)
            await control.set_current("blue")
            console.print(f"build {blue.version} is current; workflows are pinned to their build")
            await submit_documents(client, batch.docs[:half], plan, reviewing, BLUE_GREEN_QUEUE)
            async with workers.build(client, BLUE_GREEN_QUEUE, green, store, source, http):
                await control.await_pollers("green", within=60)
                change = await control.set_current("green")
                console.print(
                    f"promoted {green.version} (routing propagated in "
                    f"{change.seconds_to_propagate:.1f} s); {half} documents stay pinned to blue"
                )
                await submit_documents(client, batch.docs[half:], plan, automatic, BLUE_GREEN_QUEUE)
                for doc in batch.docs:
                    batch.started(client, doc)
                await _at_review(batch, on_blue)
                await _visible(demo, DrainTarget.build(blue.version), half)
                code = await _drain_while_reviewing(demo, batch, on_blue)
                for wid, handle in batch.handles.items():
                    await handle.result()
                    builds[wid] = workflow_build(await handle.describe())[0] or "?"
        # Blue's workers stopped here: nothing is pinned to blue any more.
    return code, builds


async def _drain_while_reviewing(demo: Demo, batch: Batch, on_blue: list[str]) -> int:
    """Run ``baton drain --from blue`` and review blue's documents one at a time, each once the
    drain has counted the one before closed; return the drain's exit code."""
    console = demo.console
    env = (
        os.environ
        | stack_variables(demo.stack)
        | {"MODELBATON_TASK_QUEUE": BLUE_GREEN_QUEUE}
        | _LIVE_OUTPUT
        | {"COLUMNS": str(console.width)}
    )
    baton = str(Path(sys.executable).parent / "baton")
    console.print(f"$ baton drain --from blue --deadline 5m  (queue {BLUE_GREEN_QUEUE})")
    drain = await asyncio.create_subprocess_exec(
        baton,
        "drain",
        "--from",
        "blue",
        "--deadline",
        "5m",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert drain.stdout is not None
    output = DrainOutput(console)
    reading = asyncio.create_task(output.read(drain.stdout))
    try:
        await output.counted(None, DRAIN_COUNT_WITHIN)  # its first count
        for reviewed, wid in enumerate(on_blue, start=1):
            await review(batch, wid)
            await batch.handles[wid].result()
            await output.counted(len(on_blue) - reviewed, DRAIN_COUNT_WITHIN)
        code = await drain.wait()
    finally:
        if drain.returncode is None:  # the demo failed first: stop the drain it started
            drain.kill()
            await drain.wait()
        await reading
    return code


class DrainOutput:
    """The drain's output: passed on to the demo's console, and its latest count kept.

    On a terminal the bytes go on unchanged (the live bar). Elsewhere each line goes on as a
    terminal would leave it: the last frame written over it, without control codes.
    """

    _COUNT = re.compile(r"in flight (\d+)")
    _CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

    def __init__(self, console: Console) -> None:
        self._console = console
        self._changed = asyncio.Condition()
        self.in_flight: int | None = None
        self.closed = False

    async def read(self, stream: asyncio.StreamReader) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        live = self._console.is_terminal
        pending, shown = "", ""
        try:
            while chunk := await stream.read(4096):
                text = decoder.decode(chunk)
                if live:
                    self._console.file.write(text)
                    self._console.file.flush()
                *done, pending = re.split(r"(\r|\n)", pending + text)
                # done alternates segment, separator, segment, separator, ...
                for segment, separator in zip(done[::2], done[1::2], strict=True):
                    plain = self._CONTROL.sub("", segment)
                    shown = plain or shown
                    await self._count(plain)
                    if separator == "\n":
                        if not live:
                            self._console.file.write(shown + "\n")
                        shown = ""
            rest = self._CONTROL.sub("", pending + decoder.decode(b"", final=True))
            await self._count(rest)
            if not live and (rest or shown):
                self._console.file.write((rest or shown) + "\n")
        finally:
            async with self._changed:
                self.closed = True
                self._changed.notify_all()

    async def _count(self, plain: str) -> None:
        found = self._COUNT.search(plain)
        if found:
            async with self._changed:
                self.in_flight = int(found.group(1))
                self._changed.notify_all()

    async def counted(self, at_most: int | None, within: float) -> None:
        """Wait until the drain has counted (at most ``at_most`` in flight, when given), or its
        output ended."""

        def reached() -> bool:
            if self.closed:
                return True
            return self.in_flight is not None and (at_most is None or self.in_flight <= at_most)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(reached), within)


async def _at_review(batch: Batch, ids: list[str], within: float = 120.0) -> None:
    async def all_waiting() -> bool | None:
        for wid in ids:
            view = await batch.handles[wid].query(DocumentClassificationWorkflow.status)
            if view.state is not WorkflowState.AWAITING_REVIEW:
                return None
        return True

    await poll_until(all_waiting, "review checkpoint reached by every blue document", within)


async def _visible(demo: Demo, target: DrainTarget, expected: int, within: float = 60.0) -> None:
    """Wait until visibility, where the drain counts, shows ``expected`` of ``target`` running."""

    async def counted() -> bool | None:
        found = (await demo.client.count_workflows(target.running)).count
        return True if found == expected else None

    await poll_until(counted, f"visibility count of {expected} blue documents", within)
