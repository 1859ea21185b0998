"""Bad input to any command: one line naming what was wrong, the documented exit code, no
traceback (exit codes: 1 finding, 2 usage or configuration, 3 unreachable)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelbaton.app.main import baton
from pipeline_fixtures import Pipeline

pytestmark = pytest.mark.integration


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(baton, list(args), env=env)


def assert_one_line_error(result: Any, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def env(pipeline: Pipeline, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
    }


async def test_review_of_unknown_and_completed_workflows(
    pipeline: Pipeline, env: dict[str, str]
) -> None:
    unknown = await asyncio.to_thread(
        invoke, env, "review", "classify-nope", "--label", "invoice", "--reviewer", "r"
    )
    assert_one_line_error(unknown, 2, "classify-nope")
    async with pipeline.worker(pools=["v2"]):
        handle = await pipeline.start(pipeline.doc())
        await handle.result()
    done = await asyncio.to_thread(
        invoke, env, "review", handle.id, "--label", "invoice", "--reviewer", "r"
    )
    assert_one_line_error(done, 2, "completed")


async def test_replay_check_with_an_invalid_query_is_a_usage_error(env: dict[str, str]) -> None:
    result = await asyncio.to_thread(invoke, env, "replay-check", "--query", "WorkflowType = (((")
    assert_one_line_error(result, 2)


def test_unreachable_temporal_exits_3(tmp_path: Path) -> None:
    env = {"TEMPORAL_ADDRESS": "127.0.0.1:1", "MODELBATON_HOME": str(tmp_path)}
    for args in (("rollout", "status"), ("status",), ("patches",)):
        assert_one_line_error(invoke(env, *args), 3, "cannot connect")


def test_unsupported_database_url(tmp_path: Path) -> None:
    env = {"MODELBATON_DATABASE_URL": "mysql://x/y", "MODELBATON_HOME": str(tmp_path)}
    assert_one_line_error(invoke(env, "results"), 2, "MODELBATON_DATABASE_URL", "mysql")


def test_markup_in_paths_is_printed_verbatim(tmp_path: Path) -> None:
    folder = tmp_path / "x["
    folder.mkdir()
    odd = folder / "b] memo[draft].txt"  # the path reads "x[/b] memo[draft].txt"
    odd.write_text("")
    result = invoke({"MODELBATON_HOME": str(tmp_path)}, "submit", str(odd))
    assert result.exit_code == 1, result.output
    assert "x[/b] memo[draft].txt" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_restart_workers_with_an_unknown_release_changes_nothing(tmp_path: Path) -> None:
    result = invoke(
        {}, "dev", "restart-workers", "--release", "bogus", "--home", str(tmp_path / "h")
    )
    assert_one_line_error(result, 2, "unknown workflow release 'bogus'")
    assert not (tmp_path / "h" / "stack.json").exists()


def _leaf_commands() -> list[list[str]]:
    from typer.main import get_command

    leaves: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            leaves.append(path)

    walk(get_command(baton), [])
    return leaves


@pytest.mark.parametrize("path", _leaf_commands(), ids=lambda p: " ".join(p))
def test_every_command_refuses_an_unknown_option_in_one_line(path: list[str]) -> None:
    result = CliRunner().invoke(baton, [*path, "--no-such-option"])
    assert result.exit_code == 2, result.output
    assert "No such option" in result.output
    assert "Traceback" not in result.output
