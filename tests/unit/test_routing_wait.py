"""The routing wait: the task queues' own routing is proof enough when the server's propagation
state lags (or never completes, temporalio/temporal#11842). One function, a scripted service."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from modelbaton.errors import RolloutError
from modelbaton.versioning.control import DeploymentControl, DeploymentView


def view(current: str, propagated: bool) -> DeploymentView:
    return DeploymentView("pipe", current, None, 0.0, 2, propagated)


class Scripted(DeploymentControl):
    """The deployment says IN_PROGRESS for good; the queue routes to ``queue_current``."""

    def __init__(self, queue_current: str, *, propagated: bool = False) -> None:
        super().__init__(SimpleNamespace(namespace="default"), "pipe")  # type: ignore[arg-type]
        self.queue_current = queue_current
        self.propagated = propagated
        self.queue_reads = 0

    @property
    def _svc(self) -> Any:
        async def describe_task_queue(request: Any) -> Any:
            assert request.task_queue.name == "pipe-q"
            self.queue_reads += 1
            version = SimpleNamespace(build_id=self.queue_current)
            return SimpleNamespace(
                versioning_info=SimpleNamespace(
                    current_deployment_version=version,
                    ramping_deployment_version=SimpleNamespace(build_id=""),
                    ramping_version_percentage=0.0,
                )
            )

        return SimpleNamespace(describe_task_queue=describe_task_queue)

    async def describe(self) -> DeploymentView:  # type: ignore[override]
        return view("green", self.propagated)

    async def describe_version(self, build_id: str) -> Any:  # type: ignore[override]
        return SimpleNamespace(task_queues=("pipe-q",))


async def test_queues_that_route_to_the_new_build_end_the_wait() -> None:
    control = Scripted("green")
    got = await control._await_routing(lambda v: v.current == "green", within=5, every=0.01)
    assert got.current == "green"
    assert control.queue_reads == 1


async def test_a_queue_still_on_the_old_build_keeps_waiting_until_the_deadline() -> None:
    control = Scripted("blue")
    with pytest.raises(RolloutError, match="routing change not propagated within 0 s"):
        await control._await_routing(lambda v: v.current == "green", within=0.2, every=0.01)
    assert control.queue_reads > 1


async def test_the_servers_own_verdict_needs_no_queue_read() -> None:
    control = Scripted("blue", propagated=True)
    await control._await_routing(lambda v: v.current == "green", within=5, every=0.01)
    assert control.queue_reads == 0


class Dropping(DeploymentControl):
    """A server that drops the first ``drops`` override calls with ``code``."""

    def __init__(self, drops: int, code: Any) -> None:
        super().__init__(SimpleNamespace(namespace="default"), "pipe")  # type: ignore[arg-type]
        self.drops = drops
        self.code = code
        self.calls: list[str] = []

    @property
    def _svc(self) -> Any:
        async def update_workflow_execution_options(request: Any) -> Any:
            self.calls.append(request.workflow_execution.workflow_id)
            if len(self.calls) <= self.drops:
                raise RPCError("operation was canceled", self.code, b"")
            return SimpleNamespace()

        return SimpleNamespace(update_workflow_execution_options=update_workflow_execution_options)


async def test_an_override_the_server_dropped_is_sent_again() -> None:
    control = Dropping(2, RPCStatusCode.CANCELLED)
    await control.pin_workflow("doc-1", "A")
    assert control.calls == ["doc-1", "doc-1", "doc-1"]


async def test_an_override_the_server_refused_is_not_retried() -> None:
    control = Dropping(1, RPCStatusCode.FAILED_PRECONDITION)
    with pytest.raises(RPCError):
        await control.pin_workflow("doc-1", "A")
    assert control.calls == ["doc-1"]


async def test_an_override_dropped_every_time_gives_up() -> None:
    control = Dropping(99, RPCStatusCode.UNAVAILABLE)
    with pytest.raises(RPCError):
        await control.auto_upgrade_workflow("doc-1")
    assert 1 < len(control.calls) < 99
