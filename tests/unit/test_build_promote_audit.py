"""The promote step of a build rollout names, in the audit trail, the build current before it,
also when a retried attempt finds its first attempt's change already made (seen in a CI run:
'build B current (was B)')."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modelbaton.controller.activities import ControllerActivities
from modelbaton.controller.messages import ApplyStepRequest
from modelbaton.controller.plan import WAIVABLE, parse_plan
from modelbaton.rollout.messages import ChangeBy
from modelbaton.versioning.control import DeploymentView, VersionView

PLAN = parse_plan(
    {
        "candidate": "B",
        "strategy": "builds",
        "gates": {"waive": list(WAIVABLE)},
        "steps": [{"kind": "promote"}],
    }
)


class Deployment:
    """A deployment whose current build is ``current``; A was current before B."""

    deployment = "pipe"

    def __init__(self, current: str) -> None:
        self.current = current
        self.set_calls: list[str] = []

    async def describe(self) -> DeploymentView:
        versions = (
            VersionView("A", "inactive", None, None, last_current=datetime(2026, 1, 1, tzinfo=UTC)),
            VersionView("B", "current", None, None, last_current=datetime(2026, 1, 2, tzinfo=UTC)),
        )
        return DeploymentView("pipe", self.current, None, 0.0, 3, True, versions)

    async def set_current(self, build_id: str) -> Any:
        self.set_calls.append(build_id)
        self.current = build_id
        return None


class Activities(ControllerActivities):
    def __init__(self, deployment: Deployment, engine: sa.Engine) -> None:
        super().__init__(None, None, engine=engine)  # type: ignore[arg-type]
        self.deployment = deployment

    def _deployment(self, task_queue: str, deployment: str | None) -> Any:
        return self.deployment


async def promote(deployment: Deployment, tmp_path: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        request = ApplyStepRequest(task_queue="pipe", plan=PLAN, index=0, by=ChangeBy(actor="t"))
        result = await Activities(deployment, engine)._apply_build_step(request)
    finally:
        engine.dispose()
    return result.detail


async def test_a_promote_names_the_build_it_replaced(tmp_path: Path) -> None:
    deployment = Deployment("A")
    assert await promote(deployment, tmp_path) == "build B current (was A)"
    assert deployment.set_calls == ["B"]


async def test_a_retried_promote_still_names_the_build_before_it(tmp_path: Path) -> None:
    deployment = Deployment("B")  # the first attempt's call reached the server
    detail = await promote(deployment, tmp_path)
    assert detail.startswith("build B current (was A)")
    assert "already in force" in detail
    assert deployment.set_calls == []
