"""A versioned stack makes its first build current only once the deployment shows that build's
pollers: the workers are seen polling their queue a moment before the deployment registers them
(a full run met "no worker polling" there). The deployment is a ``DeploymentControl`` whose
server answers are stood in for (``describe``, ``pollers``, ``set_current`` record the calls);
the waiting is ``DeploymentControl.await_pollers``, the one the demo and the tests use too."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from modelbaton.errors import RolloutError, StackError
from modelbaton.stack import components
from modelbaton.versioning.control import DeploymentControl

STATE = SimpleNamespace(
    temporal_address="127.0.0.1:1",
    namespace="default",
    deployment="modelbaton-classify",
    build_id="blue",
    task_queue="classify",
)


def deployment(answers: list[Any], calls: list[str], current: str | None = None) -> type:
    """A DeploymentControl whose ``pollers`` gives ``answers`` in turn (an exception is raised),
    then the last one for ever."""

    class Control(DeploymentControl):
        def __init__(self, client: Any, name: str) -> None:
            assert name == STATE.deployment
            super().__init__(client, name)

        async def describe(self) -> Any:
            return SimpleNamespace(current=current)

        async def pollers(self, build: str) -> list[str]:
            calls.append(f"pollers {build}")
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if isinstance(answer, Exception):
                raise answer
            return list(answer)

        async def set_current(self, build: str, *, require_pollers: bool = True) -> Any:
            calls.append(f"current {build}")

    return Control


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async def connect(*args: object, **kwargs: object) -> object:
        return object()

    monkeypatch.setattr(components.Client, "connect", connect)


async def test_the_first_build_is_made_current_once_its_pollers_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    unregistered = RolloutError("build 'blue' of deployment 'modelbaton-classify' not found")
    control = deployment([unregistered, [], ["123@host"]], calls)
    monkeypatch.setattr("modelbaton.versioning.control.DeploymentControl", control)
    await components._bootstrap_current(STATE, within=10)  # type: ignore[arg-type]
    assert calls == ["pollers blue", "pollers blue", "pollers blue", "current blue"]


async def test_a_build_never_seen_polling_is_not_made_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr("modelbaton.versioning.control.DeploymentControl", deployment([[]], calls))
    with pytest.raises(StackError, match=r"build 'blue' of deployment .* showed no poller"):
        await components._bootstrap_current(STATE, within=0.6)  # type: ignore[arg-type]
    assert "current blue" not in calls


async def test_a_deployment_with_a_current_build_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    control = deployment([["123@host"]], calls, current="green")
    monkeypatch.setattr("modelbaton.versioning.control.DeploymentControl", control)
    await components._bootstrap_current(STATE, within=10)  # type: ignore[arg-type]
    assert calls == []
