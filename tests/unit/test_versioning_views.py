"""Pure parts of the versioning package: drain queries, the previous build, deadline actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelbaton.versioning.control import DeploymentView, VersionView
from modelbaton.versioning.drain import DrainResult, DrainTarget, OnDeadline, Tally


def version(build: str, status: str, last_current: datetime | None) -> VersionView:
    return VersionView(build, status, None, None, last_current=last_current)


def test_previous_is_the_most_recently_current_other_build() -> None:
    t = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    view = DeploymentView(
        "pipe",
        current="C",
        ramping=None,
        ramp_percent=0.0,
        revision=3,
        propagated=True,
        versions=(
            version("A", "inactive", t[0]),
            version("B", "draining", t[1]),
            version("C", "current", t[2]),
            version("D", "created", None),
        ),
    )
    assert view.previous() == "B"
    assert view.version("D") is not None
    assert view.version("Z") is None
    first = DeploymentView("pipe", "A", None, 0.0, 1, True, (version("A", "current", t[0]),))
    assert first.previous() is None


def test_drain_queries() -> None:
    build = DrainTarget.build("pipe:A")
    assert build.running == (
        "TemporalWorkerDeploymentVersion = 'pipe:A' AND TemporalWorkflowVersioningBehavior = "
        "'Pinned' AND ExecutionStatus = 'Running'"
    )
    assert build.at_review is None  # a pipeline that marks no wait for a person counts none
    waiting = DrainTarget.build("pipe:A", "ReviewState = 'pending'").at_review
    assert waiting is not None
    assert waiting.endswith("AND ReviewState = 'pending'")
    pool = DrainTarget.pool("v1", "classify", "DocumentClassificationWorkflow")
    assert pool.query == (
        "WorkflowType = 'DocumentClassificationWorkflow' AND TaskQueue = 'classify' "
        "AND ModelVersion = 'v1'"
    )
    assert pool.label == "model v1 on classify"


def test_tally_and_result_shapes() -> None:
    assert Tally(running=5, at_review=3, elapsed=1.0).working == 2
    result = DrainResult("pipe:A", True, 1.23456, 4, drained_at=100.0)
    assert result.as_dict()["seconds"] == 1.235
    assert result.as_dict()["drained_at"] == 100.0
    assert [a.value for a in OnDeadline] == ["wait", "report", "terminate"]
    with pytest.raises(ValueError, match="later"):
        OnDeadline("later")


async def test_an_idempotent_call_the_server_dropped_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CANCELLED (the server dropped the call under load) is sent again, a few times; a refusal
    (NOT_FOUND) is not."""
    from temporalio.service import RPCError, RPCStatusCode

    from modelbaton.versioning import control

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(control.asyncio, "sleep", no_wait)
    calls: list[str] = []

    def failing(statuses: list[RPCStatusCode]) -> Any:
        async def call(request: str) -> str:
            calls.append(request)
            if statuses:
                raise RPCError("dropped", statuses.pop(0), b"")
            return f"answer to {request}"

        return call

    dropped = [RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE]
    assert await control._idempotent(failing(dropped), "describe") == "answer to describe"
    assert calls == ["describe"] * 3
    calls.clear()
    with pytest.raises(RPCError) as refused:
        await control._idempotent(failing([RPCStatusCode.NOT_FOUND]), "describe")
    assert refused.value.status is RPCStatusCode.NOT_FOUND
    assert calls == ["describe"]
    calls.clear()
    with pytest.raises(RPCError):
        await control._idempotent(failing([RPCStatusCode.CANCELLED] * 9), "describe")
    assert len(calls) == control._TRANSIENT_ATTEMPTS
