"""Committed histories replay against today's code; the replay gate's CLI behaves as CI needs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.app.worker import WorkerOptions, build_worker
from modelbaton.contracts import (
    DeploymentStrategy,
    ModelVersionConfig,
)
from modelbaton.ops.replay import HistoryItem, load_histories_from_dir, replay_histories
from modelbaton.pipeline.messages import ClassifyDocumentInput
from modelbaton.pipeline.releases import CURRENT_RELEASE, RELEASES
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
from modelbaton.stack.connect import temporal_binary
from waiting import eventually

# The benchmark's stub activities (bench/_floor.py): they answer at once.
sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
from _floor import FLOOR_ACTIVITIES

TESTS = Path(__file__).resolve().parent.parent
RELEASED = TESTS / "histories"
LIFECYCLE = TESTS / "lifecycle_histories"
FIXTURE = "workflow_variants.renamed_activity:RenamedActivityWorkflow"
RELEASE_PATHS = {
    name: f"{module}:DocumentClassificationWorkflow"
    for name, module in [
        ("initial", "modelbaton.pipeline.releases.r1_initial"),
        ("patched", "modelbaton.pipeline.releases.r2_patched"),
        ("deprecated", "modelbaton.pipeline.releases.r3_deprecated"),
        ("complete", "modelbaton.pipeline.releases.r4_complete"),
        ("assigned", "modelbaton.pipeline.releases.r5_assigned"),
        ("shadow", "modelbaton.pipeline.workflow"),  # the current release: the live code
        ("restored", "modelbaton.pipeline.releases.r7_restored"),
    ]
}
#: Which recorded histories each release can replay (by the release that recorded them), as
#: measured; "patched-reviewed-started-prepatch" is a pre-patch history finished on patched code,
#: "restored-reviewed-started-on-complete" one started on complete and finished on restored.
CAN_REPLAY = {
    "initial": {"initial", "prepatch-resumed"},
    "patched": {"initial", "prepatch-resumed", "patched", "deprecated"},
    "deprecated": {"patched", "deprecated", "complete", "complete-resumed"},
    "complete": {"deprecated", "complete", "complete-resumed"},
    "assigned": {"initial", "prepatch-resumed", "patched", "deprecated", "assigned"},
    "shadow": {"initial", "prepatch-resumed", "patched", "deprecated", "assigned", "shadow"},
    "restored": {"deprecated", "complete", "complete-resumed", "restored"},
}


def origin(item: HistoryItem) -> str:
    if "started-prepatch" in item.workflow_id:
        return "prepatch-resumed"
    if "started-on-complete" in item.workflow_id:
        return "complete-resumed"
    return item.workflow_id.split("-")[0]


RELEASED_FILES = sorted(RELEASED.rglob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_current_release_is_the_pipeline_workflow() -> None:
    assert RELEASES[CURRENT_RELEASE] is DocumentClassificationWorkflow


@pytest.mark.parametrize("path", RELEASED_FILES, ids=[p.stem for p in RELEASED_FILES])
async def test_todays_code_replays_every_released_history(path: Path) -> None:
    history = load(path)
    replayer = Replayer(
        workflows=[DocumentClassificationWorkflow], data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", RELEASED_FILES, ids=[p.stem for p in RELEASED_FILES])
async def test_the_renamed_activity_variant_is_caught(path: Path) -> None:
    from workflow_variants.renamed_activity import RenamedActivityWorkflow

    history = load(path)
    replayer = Replayer(workflows=[RenamedActivityWorkflow], data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)


def test_release_by_history_matrix() -> None:
    items = load_histories_from_dir(RELEASED) + load_histories_from_dir(LIFECYCLE)
    assert {origin(i) for i in items} == {
        "initial",
        "prepatch-resumed",
        "patched",
        "deprecated",
        "complete",
        "assigned",
        "shadow",
        "restored",
        "complete-resumed",
    }
    for release, path in RELEASE_PATHS.items():
        outcomes = replay_histories([path], items, processes=1)
        got = {o.workflow_id: o.ok for o in outcomes}
        want = {i.workflow_id: origin(i) in CAN_REPLAY[release] for i in items}
        assert got == want, release
        for o in outcomes:
            if not o.ok:
                assert o.error_type == "NondeterminismError", o


runner = CliRunner()


def test_replay_check_passes_on_committed_histories_in_parallel() -> None:
    result = runner.invoke(
        baton, ["replay-check", "--histories", str(RELEASED), "--processes", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["replayed"] == len(RELEASED_FILES)
    assert report["failed"] == 0
    assert set(report["by_model_version"]) == {"v1", "v2"}


def test_replay_check_fails_on_histories_todays_code_cannot_replay() -> None:
    result = runner.invoke(
        baton,
        ["replay-check", "--histories", str(LIFECYCLE / "complete"), "--processes", "1", "--json"],
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == report["replayed"] == 3
    assert {f["error_type"] for f in report["failures"]} == {"NondeterminismError"}
    assert all(f["workflow_id"].startswith("complete-") for f in report["failures"])


RESTORED = LIFECYCLE / "restored"


def test_replay_check_passes_restored_on_its_histories() -> None:
    """Scenario C's worked example: restored replays what it recorded (model v1 on the restored
    branch, v2 too) and the workflow it finished after complete started it."""
    result = runner.invoke(
        baton,
        [
            "replay-check",
            "--histories",
            str(RESTORED),
            "--workflows",
            RELEASE_PATHS["restored"],
            "--processes",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["replayed"], report["failed"]) == (5, 0)
    assert set(report["by_model_version"]) == {"v1", "v2"}


def test_complete_cannot_replay_restored_histories() -> None:
    """Code without the restored path (complete) fails on every history restored recorded: the
    model v1 ones, and the v2 one too, as a ``patched()`` marker must be matched. It replays only
    the workflow it started itself. So once restored has run, going back to complete is again a
    scenario C rollback."""
    result = runner.invoke(
        baton,
        [
            "replay-check",
            "--histories",
            str(RESTORED),
            "--workflows",
            RELEASE_PATHS["complete"],
            "--processes",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["replayed"], report["failed"]) == (5, 4)
    assert {f["workflow_id"] for f in report["failures"]} == {
        "restored-auto",
        "restored-reviewed",
        "restored-escalated",
        "restored-auto-v2",
    }
    assert {f["error_type"] for f in report["failures"]} == {"NondeterminismError"}


def test_replay_check_with_another_workflow_class() -> None:
    result = runner.invoke(
        baton,
        ["replay-check", "--histories", str(RELEASED), "--workflows", FIXTURE, "--processes", "1"],
    )
    assert result.exit_code == 1
    assert "NondeterminismError" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--histories", "/nonexistent"], "is not a folder"),
        (["--workflows", "nope.module:X", "--histories", str(RELEASED)], "cannot import"),
        (["--workflows", "nocolon", "--histories", str(RELEASED)], "module:Class"),
    ],
)
def test_replay_check_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(baton, ["replay-check", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_empty_or_bad_folder(tmp_path: Path) -> None:
    assert runner.invoke(baton, ["replay-check", "--histories", str(tmp_path)]).exit_code == 2
    (tmp_path / "x.json").write_text('{"not": "a history"}')
    result = runner.invoke(baton, ["replay-check", "--histories", str(tmp_path)])
    assert result.exit_code == 2
    assert "no 'events'" in result.output


async def test_replay_check_accepts_a_temporal_cli_export_and_a_live_query(
    client: Client, tmp_path: Path
) -> None:
    """Run a live workflow, export it with the real `temporal workflow show -o json`, replay
    the file; then replay the same workflow straight from the server through --query."""
    # A workflow left waiting at review on the current release, with no model needed: the
    # classify activity is answered by a worker-local activity of the same name.

    queue = f"export-{tmp_path.name[-12:]}"
    cfg = ModelVersionConfig(
        model_id="m", version="v2", endpoint="http://127.0.0.1:1/x", output_schema_version=2
    )
    inp = ClassifyDocumentInput(
        document_id="export-doc",
        text="x",
        deployment=DeploymentStrategy(primary_version=cfg),
        review_threshold=1.0,
    )
    wid = f"export-{queue}"
    async with build_worker(client, WorkerOptions(queue), FLOOR_ACTIVITIES):
        handle = await client.start_workflow(
            "DocumentClassificationWorkflow", inp, id=wid, task_queue=queue
        )

        async def at_review() -> bool:
            return (await handle.query("status"))["state"] == "awaiting_review"

        await eventually(at_review, what="the review checkpoint")
    folder = tmp_path / "export"
    folder.mkdir()
    exported = await asyncio.to_thread(
        subprocess.run,
        [
            str(temporal_binary()),
            "workflow",
            "show",
            "-w",
            wid,
            "-o",
            "json",
            "--address",
            client.service_client.config.target_host,
            "--namespace",
            client.namespace,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (folder / f"{wid}.json").write_text(exported.stdout)
    result = await asyncio.to_thread(
        runner.invoke, baton, ["replay-check", "--histories", str(folder), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["replayed"] == 1

    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
    }
    live = await asyncio.to_thread(
        runner.invoke,
        baton,
        ["replay-check", "--query", f"WorkflowId = '{wid}'", "--processes", "1", "--json"],
        env=env,
    )
    assert live.exit_code == 0, live.output
    assert json.loads(live.stdout)["replayed"] == 1
    await handle.terminate("test cleanup")


def test_same_file_name_in_two_folders_gets_its_own_verdict(tmp_path: Path) -> None:
    good = RELEASED / "patched" / "patched-auto.json"
    bad = LIFECYCLE / "complete" / "complete-auto.json"  # today's code cannot replay it
    for folder, source in (("a", good), ("b", bad)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.json").write_text(source.read_text())
    result = runner.invoke(
        baton, ["replay-check", "--histories", str(tmp_path), "--processes", "1", "--json"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["replayed"], report["failed"]) == (2, 1)
    (failure,) = report["failures"]
    assert failure["source"].endswith("b/same.json")


def test_json_stays_parseable_when_replays_fail_in_a_real_process() -> None:
    import subprocess
    import sys

    baton_bin = Path(sys.executable).parent / "baton"
    args = ["replay-check", "--histories", str(LIFECYCLE / "complete"), "--processes", "2"]
    done = subprocess.run(
        [str(baton_bin), *args, "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(done.stdout)  # nothing but the report on stdout
    assert report["failed"] == report["replayed"] > 0


async def test_an_empty_selection_is_refused_unless_allowed(
    isolated_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside any project config (the repository's would replay its committed histories), the
    # default is the running workflows of the reference pipeline: none on this namespace.
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELBATON_PROJECT", raising=False)
    env = {
        "TEMPORAL_ADDRESS": isolated_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": isolated_client.namespace,
    }
    refused = await asyncio.to_thread(runner.invoke, baton, ["replay-check", "--json"], env=env)
    assert refused.exit_code == 2
    assert "nothing to replay" in refused.output
    allowed = await asyncio.to_thread(
        runner.invoke, baton, ["replay-check", "--json", "--allow-empty"], env=env
    )
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["replayed"] == 0
