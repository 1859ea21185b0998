"""The controller on the rollout dashboard: its panel, its planned steps on the timeline, and
the pause / resume / abort actions (through the same updates as the CLI)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.service import RPCError

from modelbaton.controller.client import Controllers
from modelbaton.controller.plan import describe_step
from modelbaton.dashboard.model import Panel, RolloutView, StepView
from modelbaton.dashboard.view import DashboardSource
from modelbaton.errors import ModelBatonError
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy

#: Seconds the page waits for the controller's query (it needs a workflow worker).
QUERY_TIMEOUT = 5.0


def _controllers(rollouts: Rollouts) -> Controllers:
    return Controllers(rollouts.client, rollouts.catalog, rollouts.task_queue)


async def controller_panel(source: DashboardSource, rollout: RolloutView) -> Panel | None:
    """The controller driving (or that drove) ``rollout``: phase, step, last gates; its steps
    still to come go on the timeline as planned."""
    controllers = _controllers(source.rollouts)
    try:
        view = await asyncio.wait_for(controllers.status(), QUERY_TIMEOUT)
    except (TimeoutError, ModelBatonError, RPCError):
        return None
    if view is None or view.rollout_id != rollout.rollout_id:
        return None
    state, steps = view.state, view.plan.steps
    at = min(state.step, len(steps) - 1)
    data: list[tuple[str, str]] = [
        ("phase", state.phase.value),
        ("step", f"{at + 1} of {len(steps)}: {describe_step(steps[at])}"),
        ("candidate", view.plan.candidate),
        ("on failure", view.plan.on_failure),
    ]
    data += [(f"gate: {r.gate}", f"{r.shown} ({r.measured})") for r in state.last_results]
    if state.abort_reason:
        data.append(("stopped because", state.abort_reason))
    if state.breach_at and state.fraction_zero_at:
        lag = (state.fraction_zero_at - state.breach_at).total_seconds()
        data.append(("gate breach to fraction 0", f"{lag:.1f} s"))
    if state.rolled_back:
        data.append(("restarted on the baseline", f"{len(state.rolled_back)} documents"))
    if rollout.in_progress:
        for step in steps[state.step + 1 :]:
            rollout.steps.append(StepView(label=describe_step(step), state="planned"))
    return Panel(
        key="controller", title="Rollout controller", template="panels/facts.html", data=data
    )


async def pause(rollouts: Rollouts, by: ChangeBy) -> Any:
    """Pause the controller (there is nothing to pause without one)."""
    return await _controllers(rollouts).pause(by)


async def resume(rollouts: Rollouts, by: ChangeBy) -> Any:
    return await _controllers(rollouts).resume(by)


async def abort(rollouts: Rollouts, by: ChangeBy) -> Any:
    """Abort through the controller when one runs (it rolls back), else the rollout itself."""
    controllers = _controllers(rollouts)
    if await controllers.running():
        return await controllers.abort(by)
    return await rollouts.abort(by)
