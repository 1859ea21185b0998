"""``baton drain`` on the real dev server: builds (Worker Versioning) and model pools.

Documents wait at review (threshold 1.0), so each stays in flight until the test reviews it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.pipeline.messages import ReviewDecision, WorkflowState
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow as Current
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.versioning import drain as drain_module
from modelbaton.versioning.control import DeploymentControl
from pipeline_fixtures import Pipeline
from versioning_helpers import await_pollers, ran_on
from waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def env(pipeline: Pipeline, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
    }


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(baton, list(args), env=env)


async def invoke_async(env: dict[str, str], *args: str) -> Any:
    """The CLI runs its own event loop, so async tests run it in a thread."""
    return await asyncio.to_thread(invoke, env, *args)


async def at_review(pipeline: Pipeline, version: str = "v2") -> WorkflowHandle[Any, Any]:
    handle = await pipeline.start(pipeline.doc(), version, threshold=1.0)

    async def waiting() -> bool:
        return (await handle.query(Current.status)).state is WorkflowState.AWAITING_REVIEW

    await eventually(waiting, what=f"{handle.id} at review")
    return handle


async def review(handle: WorkflowHandle[Any, Any]) -> float:
    """Review the document, wait for it to finish; return when it closed (server time)."""
    status = await handle.query(Current.status)
    assert status.result is not None
    await handle.execute_update(
        Current.submit_review, ReviewDecision(label=status.result.label, reviewer="qa")
    )
    await handle.result()
    closed = (await handle.describe()).close_time
    assert closed is not None
    return closed.timestamp()


def assert_refused(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def tallies(monkeypatch: pytest.MonkeyPatch) -> list[drain_module.Tally]:
    """Every count the drain (run in-process by the CLI) takes, as it takes it: the state the
    tests wait for. The count itself is the real one."""
    seen: list[drain_module.Tally] = []
    real = drain_module.tally

    async def counted(*args: Any, **kwargs: Any) -> drain_module.Tally:
        result = await real(*args, **kwargs)
        seen.append(result)
        return result

    monkeypatch.setattr(drain_module, "tally", counted)
    return seen


async def test_drain_reports_drained_after_the_last_old_workflow_closes(
    pipeline: Pipeline, env: dict[str, str], tallies: list[drain_module.Tally]
) -> None:
    control = DeploymentControl(pipeline.client, pipeline.deployment)
    async with pipeline.worker(build=pipeline.build("A")):
        await await_pollers(control, "A")
        await control.set_current("A")
        # The rollout workflow lives as long as the pipeline: it starts on A but is auto-upgrade,
        # so it must not keep A from draining.
        rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
        await rollouts.start("v3", 0.2, ChangeBy(actor="test", reason="drain test"))
        assert await ran_on(pipeline.client, rollouts.workflow_id) == "A"
        old = [await at_review(pipeline) for _ in range(3)]
        assert_refused(await invoke_async(env, "drain", "--from", "A"), "build 'A' is current")
        async with pipeline.worker(build=pipeline.build("B"), pools=()):
            await await_pollers(control, "B")
            await control.set_current("B")
            new = await at_review(pipeline)
            assert await ran_on(pipeline.client, new.id) == "B"

            drain = asyncio.create_task(
                asyncio.to_thread(invoke, env, "drain", "--from", "A", "--json")
            )
            # The drain has counted the three A workflows before any of them closes.
            first = await eventually(lambda: tallies[:1], what="the drain's first count")
            assert first[0].running == 3
            assert not drain.done()
            closes = [await review(h) for h in old]
            result = await drain
            reported = time.time()
            assert result.exit_code == 0, result.output
            data = json.loads(result.stdout)
            assert (data["drained"], data["initial"], data["strategy"]) == (True, 3, "build")
            assert "its workers can be stopped" in data["next"]["workers"]
            assert {p["patch_id"] for p in data["next"]["patches"]} >= {"PATCH_MODEL_ASSIGNMENT"}
            lag = reported - max(closes)
            assert lag <= 5.0, f"drain reported {lag:.1f} s after the last A workflow closed"
            # The B workflow was never counted and still waits; the rollout workflow runs on.
            assert (await new.describe()).status is WorkflowExecutionStatus.RUNNING
            rollout = await pipeline.client.get_workflow_handle(rollouts.workflow_id).describe()
            assert rollout.status is WorkflowExecutionStatus.RUNNING
            await review(new)

        async def server_drained() -> bool:
            view = await control.describe()
            a = view.version("A")
            return a is not None and a.drainage == "drained"

        # The shortened dynamic config makes the server agree within seconds, not 180 s.
        await eventually(server_drained, within=30, what="server reports A drained")


async def test_drain_at_the_deadline_reports_then_terminates_exactly_the_old_workflows(
    pipeline: Pipeline, env: dict[str, str]
) -> None:
    control = DeploymentControl(pipeline.client, pipeline.deployment)
    async with (
        pipeline.worker(build=pipeline.build("A")),
        pipeline.worker(build=pipeline.build("B"), pools=()),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        await control.set_current("A")
        old = {(await at_review(pipeline)).id for _ in range(2)}
        await control.set_current("B")
        new = await at_review(pipeline)

        reported = await asyncio.to_thread(
            invoke,
            env,
            "drain",
            "--from",
            "A",
            "--deadline",
            "1s",
            "--on-deadline",
            "report",
            "--json",
        )
        assert reported.exit_code == 1, reported.output
        data = json.loads(reported.stdout)
        assert (data["drained"], data["action"]) == (False, "report")
        assert set(data["remaining"]) == old
        assert data["terminated"] == []

        terminated = await asyncio.to_thread(
            invoke,
            env,
            "drain",
            "--from",
            "A",
            "--deadline",
            "1s",
            "--on-deadline",
            "terminate",
            "--json",
        )
        assert terminated.exit_code == 0, terminated.output
        data = json.loads(terminated.stdout)
        assert (data["drained"], data["action"]) == (True, "terminate")
        assert set(data["terminated"]) == old
        for wid in old:
            handle = pipeline.client.get_workflow_handle(wid)
            assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
            last = (await handle.fetch_history()).events[-1]
            reason = last.workflow_execution_terminated_event_attributes.reason
            assert reason.startswith("baton drain: "), reason
            assert "did not drain within 1 s" in reason
        assert (await new.describe()).status is WorkflowExecutionStatus.RUNNING
        # For people: a bar while counting, then the verdict and what can go.
        human = await invoke_async(env, "drain", "--from", "A")
        assert human.exit_code == 0, human.output
        assert "drained" in human.output
        assert "patch PATCH_MODEL_ASSIGNMENT:" in human.output
        await review(new)


async def test_drain_of_a_model_pool(
    pipeline: Pipeline, env: dict[str, str], tallies: list[drain_module.Tally]
) -> None:
    async with pipeline.worker():
        old = await at_review(pipeline, "v1")
        current = await at_review(pipeline, "v2")
        assert_refused(await invoke_async(env, "drain", "--pool", "--from", "v2"), "still assigned")
        assert_refused(await invoke_async(env, "drain", "--pool", "--from", "v9"), "v9")
        drain = asyncio.create_task(
            asyncio.to_thread(
                invoke,
                env,
                "drain",
                "--pool",
                "--from",
                "v1",
                "--json",
                "--deadline",
                "1s",
                "--on-deadline",
                "wait",
            )
        )
        # Two counts past the 1 s deadline: the drain passed it and, told to wait, counts on.
        await eventually(
            lambda: len([t for t in tallies if t.elapsed >= 1.0]) >= 2,
            what="two counts past the deadline",
        )
        assert not drain.done()
        closed = await review(old)
        result = await drain
        reported = time.time()
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert (data["drained"], data["initial"], data["strategy"]) == (True, 1, "pool")
        assert (data["deadline_passed"], data["action"], data["terminated"]) == (True, "wait", [])
        assert "pool can be stopped" in data["next"]["workers"]
        assert reported - closed <= 5.0
        assert (await current.describe()).status is WorkflowExecutionStatus.RUNNING
        await review(current)


def test_drain_refuses_bad_options(env: dict[str, str]) -> None:
    assert_refused(invoke(env, "drain", "--from", "A", "--on-deadline", "later"), "--on-deadline")
    assert_refused(invoke(env, "drain", "--from", "A", "--deadline", "soon"), "--deadline")
    assert_refused(invoke(env, "drain", "--from", "A"), "no worker deployment")
