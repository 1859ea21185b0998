"""Rollouts on the real dev server with the real model server: pools, canary, durable plan.

Each test has its own task queue, so its own pool queues and its own rollout workflow.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from test_pipeline import scheduled_classify
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.contracts.rollout import Arm, start_canary, takes_candidate
from modelbaton.models.catalog import Catalog, load_catalog
from modelbaton.models.client import make_http_client
from modelbaton.models.resolver import CatalogSource
from modelbaton.models.server import create_app, serve_in_thread
from modelbaton.pipeline.intake import Document
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassificationOutcome
from modelbaton.pipeline.starter import submit_documents
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.settings import Settings
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="rollout test")


def batch(pipeline: Pipeline, n: int) -> list[Document]:
    return [pipeline.doc(f"INVOICE {i} amount due $12.00 payment terms net 30") for i in range(n)]


async def results(client: Client, ids: list[str]) -> list[ClassificationOutcome]:
    return [
        await client.get_workflow_handle(wid, result_type=ClassificationOutcome).result()
        for wid in ids
    ]


async def test_two_pools_canary_every_document_on_its_assigned_pool(pipeline: Pipeline) -> None:
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    docs = batch(pipeline, 60)
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3's pool polling")
        plan = await rollouts.start("v3", 0.2, BY, salt="fixed-salt")
        assert (plan.baseline.version, plan.candidate and plan.candidate.version) == ("v2", "v3")
        report = await submit_documents(
            pipeline.client, docs, plan, pipeline.catalog.pipeline, pipeline.task_queue
        )
        outs = await results(pipeline.client, report.launched)
        queues = {
            wid: await scheduled_classify(pipeline.client.get_workflow_handle(wid))
            for wid in report.launched
        }
    assert len(outs) == 60
    arms = Counter(o.assignment.arm for o in outs if o.assignment)
    assert 0 < arms[Arm.CANDIDATE] < 30  # about 12 of 60 at 0.2
    for out in outs:
        a = out.assignment
        assert a is not None
        assert out.result.model_version == a.model_version
        assert a.model_version == ("v3" if a.arm is Arm.CANDIDATE else "v2")
        assert queues[f"classify-{out.document_id}"] == [
            ("classify_document_v2", f"{pipeline.task_queue}-model-{a.model_version}")
        ]
    # Visibility splits the rollout by arm exactly as the assignments did.
    expected = {arm.value: n for arm, n in arms.items()}

    async def counted() -> bool:
        got = await rollouts.arm_counts(plan.rollout_id or "")
        return {k: v.completed for k, v in got.items() if v.completed} == expected

    await eventually(counted, what="visibility arm counts")


async def test_stopping_the_candidate_pool_stalls_only_candidate_documents(
    pipeline: Pipeline,
) -> None:
    plan = start_canary(pipeline.plan("v2"), pipeline.plan("v3").baseline, 0.5, "salt")
    docs = batch(pipeline, 16)
    async with make_http_client() as http, pipeline.worker(pools=["v2"]):
        report = await submit_documents(
            pipeline.client, docs, plan, pipeline.catalog.pipeline, pipeline.task_queue
        )
        by_arm = {wid: a.arm for wid, a in report.assignments.items()}
        candidates = [w for w, arm in by_arm.items() if arm is Arm.CANDIDATE]
        baseline = [w for w, arm in by_arm.items() if arm is Arm.BASELINE]
        assert candidates
        assert baseline
        await results(pipeline.client, baseline)  # the baseline arm completes without v3's pool

        async def status(wid: str) -> WorkflowExecutionStatus | None:
            return (await pipeline.client.get_workflow_handle(wid).describe()).status

        # The candidate documents wait in v3's queue: running, not failed, no classify attempt.
        assert {await status(w) for w in candidates} == {WorkflowExecutionStatus.RUNNING}
        async with pipeline.pool("v3", http):
            outs = await results(pipeline.client, candidates)
    assert {o.result.model_version for o in outs} == {"v3"}
    assert pipeline.store.summary()["by_arm"] == {
        "candidate": len(candidates),
        "baseline": len(baseline),
    }


async def test_model_server_moving_to_another_port_strands_nothing(
    pipeline: Pipeline, model_cache: Path, tmp_path: Path
) -> None:
    """Histories record which model, not where: an edited endpoint applies at the next attempt."""
    default = Settings.from_env().catalog_path
    catalog_file = tmp_path / "catalog.toml"

    def point_at(url: str) -> None:
        text = default.read_text().replace(
            'base_url = "http://127.0.0.1:8601"', f'base_url = "{url}"'
        )
        catalog_file.write_text(text)

    docs = batch(pipeline, 20)
    with ExitStack() as servers:
        first = servers.enter_context(
            serve_in_thread(create_app(load_catalog(default), model_cache))
        )
        point_at(first)
        pipeline.source = CatalogSource(catalog_file)
        report = await submit_documents(
            pipeline.client,
            docs,
            pipeline.plan("v2"),
            pipeline.catalog.pipeline,
            pipeline.task_queue,
        )
        async with pipeline.worker(pools=["v2"]):

            async def some_done() -> bool:
                return len(pipeline.store.records()) >= 3

            await eventually(some_done, what="a few documents on the first server")
            servers.close()  # the model server goes away mid-batch
            with serve_in_thread(create_app(load_catalog(default), model_cache)) as second:
                assert second != first
                point_at(second)
                outs = await results(pipeline.client, report.launched)
    assert len(outs) == 20
    assert pipeline.store.summary()["total"] == 20


async def test_an_input_with_an_unknown_field_runs_on_todays_worker(pipeline: Pipeline) -> None:
    """A newer starter adds an optional field; the running worker ignores it and completes."""
    doc = pipeline.doc()
    assignment = pipeline.plan("v2").assign(doc.document_id, pipeline.task_queue)
    raw: dict[str, Any] = {
        "document_id": doc.document_id,
        "text": doc.text,
        "assignment": assignment.model_dump(mode="json") | {"region": "eu-west"},
        "priority": "high",
    }
    async with pipeline.worker(pools=["v2"]):
        handle = await pipeline.client.start_workflow(
            WORKFLOW_TYPE, raw, id=doc.workflow_id, task_queue=pipeline.task_queue
        )
        out = await handle.result()
    assert out["result"]["model_version"] == "v2"


def cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(baton, list(args), env=env)


async def test_rollout_cli_start_set_promote_abort_status_and_refusals(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": reference_catalog.base_url,
    }

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(cli, env, *args)

    async with pipeline.worker(pools=["v2"]):
        # Refused before anything exists: bad fraction, unknown version, no pool for v3.
        bad = await run("rollout", "start", "--candidate", "v3", "--fraction", "1.5")
        assert bad.exit_code == 2
        assert "within [0, 1]" in bad.output
        unknown = await run("rollout", "start", "--candidate", "v9")
        assert unknown.exit_code == 2
        assert "no model version 'v9'" in unknown.output
        no_pool = await run("rollout", "start", "--candidate", "v3")
        assert no_pool.exit_code == 2
        assert "no worker polls" in no_pool.output
        same = await run("rollout", "start", "--candidate", "v2")
        assert same.exit_code == 2
        assert "already the baseline" in same.output
        nothing = await run("rollout", "promote")
        assert nothing.exit_code == 2
        assert "no rollout" in nothing.output
        async with make_http_client() as http, pipeline.pool("v3", http):
            rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
            await eventually(lambda: rollouts.pool_pollers("v3"), what="v3's pool polling")
            started = await run(
                "rollout", "start", "--candidate", "v3", "--fraction", "0.05",
                "--by", "ana", "--reason", "new class", "--json",
            )  # fmt: skip
            assert started.exit_code == 0, started.output
            assert json.loads(started.stdout)["fraction"] == 0.05
            again = await run("rollout", "start", "--candidate", "v3")
            assert again.exit_code == 2
            assert "in progress" in again.output
            raised = await run("rollout", "set", "--fraction", "0.25", "--by", "ana")
            assert raised.exit_code == 0, raised.output
            status = await run("rollout", "status", "--json")
            assert status.exit_code == 0, status.output
            report = json.loads(status.stdout)
            assert report["plan"]["fraction"] == 0.25
            assert [a["action"] for a in report["audit"]] == ["start", "set-fraction"]
            assert report["audit"][0]["actor"] == "ana"
            assert report["audit"][0]["reason"] == "new class"
            assert set(report["arms"]) == {"baseline", "candidate"}
            human = await run("rollout", "status")
            assert human.exit_code == 0
            assert "audit trail" in human.output
            watched = await run(
                "rollout", "status", "--watch", "--interval", "0.2", "--max-refreshes", "2",
                "--json",
            )  # fmt: skip
            assert watched.exit_code == 0, watched.output
            assert watched.stdout.count('"plan"') == 2  # refreshed twice, then stopped
            # One business key keeps every document of a customer in one arm.
            salt = report["plan"]["salt"]
            submitted = await run("submit", "--generate", "6", "--key", "customer-7", "--json")
            assert submitted.exit_code == 0, submitted.output
            split = json.loads(submitted.stdout)["by_arm"]
            arm = "candidate (v3)" if takes_candidate("customer-7", salt, 0.25) else "baseline (v2)"
            assert split == {arm: 6}
            promoted = await run("rollout", "promote", "--reason", "healthy")
            assert promoted.exit_code == 0, promoted.output
            assert "v3 serves every document" in promoted.output
            second = await run("rollout", "start", "--candidate", "v2", "--fraction", "0.1")
            assert second.exit_code == 0, second.output
            aborted = await run("rollout", "abort", "--json")
            assert aborted.exit_code == 0, aborted.output
            plan = json.loads(aborted.stdout)
            assert (plan["baseline"]["version"], plan["candidate"]) == ("v3", None)
            assert plan["rollout_id"].endswith("-2")
            bad_set = await run("rollout", "set", "--fraction", "0.3")
            assert bad_set.exit_code == 2
            assert "start one first" in bad_set.output


def test_worker_pool_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        baton, ["worker", "--pool", "v9"], env={"MODELBATON_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "no model version 'v9'" in result.output


async def test_an_update_a_retried_activity_sends_again_is_applied_once(
    pipeline: Pipeline,
) -> None:
    """The controller writes to the rollout workflow from its activities; an attempt killed
    after it sent an update but before it reported back is retried, and sends it again. The
    update's id is the activity's (the same on every attempt), so the server applies it once; a
    person's command, or another activity, is a new update."""
    from dataclasses import replace

    from temporalio.testing import ActivityEnvironment

    from modelbaton.rollout.messages import NoteRequest

    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    note = NoteRequest(actor="controller", action="controller-step", detail="step 1/2")
    env = ActivityEnvironment()
    env.info = replace(
        env.info, workflow_id="controller-x", workflow_run_id="run-1", activity_id="7"
    )
    async with pipeline.worker():
        await env.run(rollouts.note, note)
        await env.run(rollouts.note, note)  # the retried attempt
        env.info = replace(env.info, activity_id="8")  # the controller's next note
        await env.run(rollouts.note, note)
        await rollouts.note(note)  # not from an activity
        audit = [a.action for a in await rollouts.audit()]
    assert audit.count("controller-step") == 3, audit
