"""``baton deploy status|ramp|promote|rollback`` against real versioned workers, and their
refusals: one line, exit code 2, nothing changed."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.versioning.builds import Behavior, Build, deployment_name_for
from modelbaton.versioning.control import DeploymentControl
from versioning_helpers import await_pollers, probe_worker, ran_on, start_probe
from waiting import eventually
from workflow_variants.version_probe import VersionProbe

pytestmark = pytest.mark.integration


def assert_refused(result: Any, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


async def test_deploy_commands_route_and_refuse(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": task_queue,
    }

    async def baton_cli(*args: str) -> Any:
        return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)

    async def baton_json(*args: str) -> Any:
        result = await baton_cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    assert_refused(await baton_cli("deploy", "status"), "no worker deployment", deployment)
    assert_refused(
        await baton_cli("deploy", "status", "--deployment", "has.dot"), "must not contain a dot"
    )
    async with (
        probe_worker(client, task_queue, Build(deployment, "A")),
        probe_worker(client, task_queue, Build(deployment, "B")),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        assert_refused(await baton_cli("deploy", "promote", "Z"), "unknown build 'Z'")
        assert_refused(await baton_cli("deploy", "rollback"), "no current build")
        promoted = await baton_json("deploy", "promote", "A")
        assert (promoted["current"], promoted["previous_current"]) == ("A", None)
        assert_refused(await baton_cli("deploy", "ramp", "B", "--percent", "150"), "--percent")
        assert_refused(await baton_cli("deploy", "ramp", "A", "--percent", "10"), "already current")
        ramped = await baton_json("deploy", "ramp", "B", "--percent", "30")
        assert (ramped["current"], ramped["ramping"], ramped["ramp_percent"]) == ("A", "B", 30.0)
        cleared = await baton_json("deploy", "ramp", "B", "--percent", "0")
        assert (cleared["current"], cleared["ramping"]) == ("A", None)
        await baton_json("deploy", "ramp", "B", "--percent", "30")
        status = await baton_json("deploy", "status")
        assert (status["current"], status["ramping"], status["ramp_percent"]) == ("A", "B", 30.0)
        assert {v["build_id"]: v["status"] for v in status["versions"]} == {
            "A": "current",
            "B": "ramping",
        }
        promoted = await baton_json("deploy", "promote", "B")
        assert (promoted["current"], promoted["ramping"], promoted["previous_current"]) == (
            "B",
            None,
            "A",
        )

        held = await start_probe(client, task_queue, f"held-{uuid.uuid4().hex[:8]}", hold=True)
        assert await eventually(lambda: ran_on(client, held.id), what="held started") == "B"

        async def counted() -> bool:
            data = await baton_json("deploy", "status")
            return {v["build_id"]: v["running"] for v in data["versions"]} == {"A": 0, "B": 1}

        await eventually(counted, what="status counts the held workflow on B")
        rolled = await baton_json("deploy", "rollback")
        assert (rolled["current"], rolled["rolled_back_from"]) == ("A", "B")
        assert rolled["pinned_workflow_ids"] == [held.id]
        assert "stay pinned to B" in rolled["advice"]
        fresh = await start_probe(client, task_queue, f"new-{uuid.uuid4().hex[:8]}", hold=False)
        await fresh.result()
        assert await ran_on(client, fresh.id) == "A"
        human = await baton_cli("deploy", "status")
        assert human.exit_code == 0, human.output
        assert f"deployment {deployment}: current A" in human.output
        await held.signal(VersionProbe.release)
        await held.result()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["worker", "--versioned", "--behavior", "sideways"], "--behavior 'sideways'"),
        (["worker", "--deployment", "has.dot"], "must not contain a dot"),
        (["worker", "--build-id", "a:b"], "build id 'a:b'"),
        (["dev", "up", "--build-id", " "], "build id: must not be empty"),
        (["deploy", "ramp", "B", "--percent", "-1"], "--percent -1"),
    ],
)
def test_versioning_options_refuse_bad_values(args: list[str], needle: str, tmp_path: Path) -> None:
    """Refused before anything connects or starts: one line, exit code 2."""
    result = CliRunner().invoke(
        baton, [*args, "--home", str(tmp_path)] if args[0] == "dev" else args
    )
    assert_refused(result, needle)


async def test_rollback_warns_about_auto_upgrade_workflows_moving_back(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    """Auto-upgrade workflows follow a rollback at their next task: the rollback says how many."""
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": task_queue,
    }
    deployment = deployment_name_for(task_queue)
    control = DeploymentControl(client, deployment)
    auto = Behavior.AUTO_UPGRADE
    async with (
        probe_worker(client, task_queue, Build(deployment, "A"), auto),
        probe_worker(client, task_queue, Build(deployment, "B"), auto),
    ):
        await await_pollers(control, "A")
        await await_pollers(control, "B")
        await control.set_current("A")
        await control.set_current("B")
        held = await start_probe(client, task_queue, f"auto-{uuid.uuid4().hex[:8]}", hold=True)
        assert await eventually(lambda: ran_on(client, held.id), what="held started") == "B"

        async def rolled_back() -> Any:
            result = await asyncio.to_thread(
                CliRunner().invoke, baton, ["deploy", "rollback", "--json"], env=env
            )
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        data = await rolled_back()
        assert (data["current"], data["pinned_to_rolled_back"]) == ("A", 0)
        assert data["auto_upgrade_moving_back"] == 1
        assert "fail non-determinism" in data["warning"]
        await held.signal(VersionProbe.release)
        await held.result()
        assert await ran_on(client, held.id) == "A", "an auto-upgrade workflow follows the rollback"
