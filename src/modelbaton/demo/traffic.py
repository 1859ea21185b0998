"""Acts 5 and 6 share this: the controller runs a plan while documents keep arriving, each
assigned by the plan in force when it arrives, and the demo prints each change of step and phase
until the controller's run closes."""

from __future__ import annotations

import asyncio
from typing import Any

from modelbaton.controller import ControllerState, describe_step, parse_plan
from modelbaton.demo.documents import DEMO_QUEUE, Arrivals, Batch, Demo
from modelbaton.pipeline import submit_documents
from modelbaton.rollout import ChangeBy

#: Seconds between two arriving documents: the rate of the simulated traffic. It is not a wait
#: for anything (the controller's steps wait for their own document counts, and the arrivals
#: never run dry), so any rate the machine keeps up with works; this one keeps the demo short.
ARRIVAL_SECONDS = 0.25
#: How often the demo asks the controller for its state to print it.
WATCH_SECONDS = 1.0


async def run_plan(
    demo: Demo, plan: dict[str, Any], by: ChangeBy, batch: Batch, arrivals: Arrivals
) -> ControllerState:
    """Start the controller on ``plan``, feed it ``arrivals`` into ``batch`` until its run closes,
    and return the controller's final state."""
    await demo.controllers.run(parse_plan(plan), by)
    stop = asyncio.Event()
    feeding = asyncio.create_task(_feed(demo, batch, arrivals, stop))
    try:
        return await _follow(demo, stop, feeding)
    finally:
        stop.set()
        await feeding


async def _feed(demo: Demo, batch: Batch, arrivals: Arrivals, stop: asyncio.Event) -> None:
    """Submit documents one by one, each assigned by the plan in force then, until ``stop`` is set
    (as documents arrive in production during a rollout)."""
    for doc, label in arrivals:
        if stop.is_set():
            return
        plan = await demo.rollouts.plan()
        report = await submit_documents(demo.client, [doc], plan, demo.pipeline, DEMO_QUEUE)
        batch.truth[doc.workflow_id] = label
        batch.started(demo.client, doc, report)
        await asyncio.sleep(ARRIVAL_SECONDS)


async def _follow(demo: Demo, stop: asyncio.Event, feeding: asyncio.Task[None]) -> ControllerState:
    """Print each change of the controller's step and phase until its run closes."""
    last = ""
    handle = demo.controllers.handle()
    while True:
        view = await demo.controllers.status()
        if view is not None:
            s = view.state
            at = min(s.step, len(view.plan.steps) - 1)
            line = f"  step {at + 1}/{len(view.plan.steps)} {describe_step(view.plan.steps[at])}: "
            line += s.phase.value
            if s.last_results:
                line += " | " + ", ".join(
                    r.line() if r.gate in ("shadow", "drain") else f"{r.gate} {r.shown}"
                    for r in s.last_results
                )
            if line != last:
                demo.console.print(line, highlight=False)
                last = line
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            stop.set()  # between two documents, so every started one is in its batch
            await feeding
            state: ControllerState = await handle.result()
            return state
        await asyncio.sleep(WATCH_SECONDS)
