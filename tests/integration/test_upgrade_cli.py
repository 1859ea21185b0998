"""`baton rollback` (scenarios A, B, C with their dry runs), `baton preflight`, and the
controller's commands, on the real dev server and model server."""

from __future__ import annotations

import asyncio
import json
import traceback
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline.messages import ClassificationOutcome
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="upgrade cli test")
TEXTS = [f"INVOICE {i} amount due $12.00 payment terms net 30 bill to Fabrikam" for i in range(5)]


def environment(
    pipeline: Pipeline, catalog: Catalog, tmp_path: Path, **extra: str
) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": catalog.base_url,
        "MODELBATON_DATABASE_URL": pipeline.store.url,
    } | extra


async def cli(env: dict[str, str], *args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, baton, list(args), env=env)


def crash_of(result: Any) -> str:
    """What a CLI run printed, and the traceback of what it raised, if anything."""
    raised = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    return f"exit {result.exit_code}, printed {result.output!r}; {raised}"


def one_line_error(result: Any, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert text in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


async def test_rollback_scenarios_a_and_b_with_dry_runs(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = environment(pipeline, reference_catalog, tmp_path)
    rollouts = Rollouts(pipeline.client, reference_catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2"]):  # v3's pool is down: its documents wait
        one_line_error(await cli(env, "rollback", "--dry-run"), 2, "no rollout of doc-classifier")
        one_line_error(
            await cli(env, "rollback", "--let-finish", "--restart-on-baseline"),
            2,
            "choose one of --let-finish and --restart-on-baseline",
        )
        one_line_error(await cli(env, "rollback", "--release", "nope"), 2, "--release 'nope'")

        # Scenario A: a rollout at 0 % ran nothing on the candidate.
        await rollouts.start("v3", 0.0, BY, require_pool=False)
        for text in TEXTS:
            await (await pipeline.start(pipeline.doc(text), plan=await rollouts.plan())).result()
        dry = await cli(env, "rollback", "--dry-run", "--json")
        assert dry.exit_code == 0, dry.output
        a = json.loads(dry.stdout)
        assert (a["scenario"], a["candidate_workflows"], a["dry_run"]) == ("A", 0, True)
        assert a["actions"] == [
            f"abort rollout {a['rollout_id']}: every new document goes to baseline v2"
        ]
        assert (await rollouts.plan()).candidate is not None  # a dry run changes nothing
        done = await cli(env, "rollback")
        assert done.exit_code == 0, done.output
        assert "scenario A" in done.output
        assert (await rollouts.plan()).ended == "aborted"

        # Scenario B: every document on the candidate, whose pool is down.
        plan = await rollouts.start("v3", 1.0, BY, require_pool=False)
        handles = [await pipeline.start(pipeline.doc(t), plan=plan) for t in TEXTS]
        ids = sorted(h.id for h in handles)
        must_choose = await cli(env, "rollback")
        one_line_error(must_choose, 2, "choose --let-finish or --restart-on-baseline")
        finish = json.loads(
            (await cli(env, "rollback", "--dry-run", "--let-finish", "--json")).stdout
        )
        assert finish["scenario"] == "B"
        assert sorted(a["workflow_id"] for a in finish["affected"]) == ids
        assert finish["actions"][1:] == [f"let {i} (running) finish on the candidate" for i in ids]
        dry = await cli(env, "rollback", "--dry-run", "--restart-on-baseline")
        assert dry.exit_code == 0, dry.output
        for wid in ids:
            assert (
                f"would: terminate {wid} (running) and start it again on baseline v2"
                in " ".join(dry.output.split())
            )
        assert (await rollouts.plan()).fraction == 1.0  # still nothing changed
        done = await cli(env, "rollback", "--restart-on-baseline", "--json", "--reason", "v3 down")
        assert done.exit_code == 0, done.output
        assert sorted(json.loads(done.stdout)["restarted"]) == ids
        outcomes = [
            await pipeline.client.get_workflow_handle(w, result_type=ClassificationOutcome).result()
            for w in ids
        ]
        audit = await rollouts.audit()
    assert {o.result.model_version for o in outcomes} == {"v2"}
    records = pipeline.store.records()
    assert sorted(f"classify-{r.document_id}" for r in records if r.rollout_id is None) == ids
    assert all(pipeline.store.count_for(o.document_id) == 1 for o in outcomes)
    assert [a.action for a in audit][-1] == "abort"
    for wid in ids:
        runs = [wf.status async for wf in pipeline.client.list_workflows(f'WorkflowId = "{wid}"')]
        assert sorted(s.name for s in runs if s) == ["COMPLETED", "TERMINATED"]


async def test_rollback_scenario_c_when_the_code_lost_the_baselines_path(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    # The baseline is the schema-1 model v1; the workers would run 'complete' (v2 path only).
    v1_primary = tmp_path / "catalog.toml"
    v1_primary.write_text(
        reference_catalog.path.read_text().replace('primary = "v2"', 'primary = "v1"')
    )
    env = environment(pipeline, reference_catalog, tmp_path, MODELBATON_CATALOG=str(v1_primary))
    started = await cli(env, "rollout", "start", "--candidate", "v2", "--fraction", "0.5")
    assert started.exit_code == 2  # no worker polls v2's pool yet: refused before anything
    async with pipeline.worker(pools=["v1", "v2"]):
        rollouts = Rollouts(pipeline.client, reference_catalog, pipeline.task_queue)
        await eventually(lambda: rollouts.pool_pollers("v2"), what="v2 pool polling")
        started = await cli(env, "rollout", "start", "--candidate", "v2", "--fraction", "0.5")
        assert started.exit_code == 0, started.output
        ok = json.loads((await cli(env, "rollback", "--dry-run", "--json")).stdout)
        c = await cli(env, "rollback", "--dry-run", "--release", "complete", "--json")
    assert ok["scenario"] == "A"  # today's code still serves schema 1
    assert c.exit_code == 1
    found = json.loads(c.stdout)
    assert found["scenario"] == "C"
    assert (
        "serving output schemas v2) has no model call for output schema v1"
        in (found["explanation"])
    )
    assert "r7_restored.py" in found["explanation"]


async def test_preflight_passes_healthy_and_fails_with_the_reason(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = environment(pipeline, reference_catalog, tmp_path)
    rollouts = Rollouts(pipeline.client, reference_catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v1", "v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        waiting = await pipeline.start(pipeline.doc(), threshold=1.0)  # stays at review
        healthy = await cli(env, "preflight", "--candidate", "v3", "--json")
        assert healthy.exit_code == 0, healthy.output
        checks = {c["check"]: c for c in json.loads(healthy.stdout)["checks"]}
        assert checks["replay of live histories"]["reason"] == (
            "1 running workflows replay on today's code"
        )
        assert checks["shadow verdict"]["status"] == "n/a"
        assert checks["model pools polling"]["status"] == "pass"
        assert checks["workflow workers polling"]["status"] == "pass"
        assert checks["compatibility"]["status"] == "pass"
        human = await cli(env, "preflight", "--candidate", "v3")
        assert "ready to upgrade" in human.output

        # A candidate the code about to run cannot read.
        old_code = await cli(
            env, "preflight", "--candidate", "v1", "--release", "complete", "--json"
        )
        assert old_code.exit_code == 1
        failed = {c["check"]: c for c in json.loads(old_code.stdout)["checks"]}
        schemas = failed["output schemas and normalizers"]
        assert schemas["status"] == "fail"
        assert "DocumentClassificationWorkflow has no model call for v1" in schemas["reason"]

        # A stuck workflow: a type no worker of this queue knows fails its task forever.
        stuck = await pipeline.client.start_workflow(
            "NoSuchWorkflow", id=f"stuck-{pipeline.task_queue}", task_queue=pipeline.task_queue
        )

        async def flagged() -> Any:
            result = await cli(env, "preflight", "--candidate", "v3", "--json")
            # Exit 1 is a failed check only with the report on stdout; anything else is kept
            # (with its traceback) as the reason the wait ends in, should it go on failing.
            assert result.exit_code != 1 or result.stdout.strip(), crash_of(result)
            return result if result.exit_code == 1 else None

        result = await eventually(flagged, within=60, every=1.0, what="the stuck check")
        found = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
        assert found["stuck workflows"]["status"] == "fail"
        assert stuck.id in found["stuck workflows"]["reason"]
        await stuck.terminate("test cleanup")
        await waiting.terminate("test cleanup")
        unknown = await cli(env, "preflight", "--candidate", "v9")
        one_line_error(unknown, 2, "no model version 'v9'")
        await eventually(lambda: _closed(pipeline, waiting.id), what="cleanup visible")


async def _closed(pipeline: Pipeline, wid: str) -> bool:
    d = await pipeline.client.get_workflow_handle(wid).describe()
    return d.status is not WorkflowExecutionStatus.RUNNING


PLAN = """
candidate = "v3"
poll = 1

[[steps]]
kind = "canary"
fraction = 0.5
bake = "10m"
min_documents = 1

[[steps]]
kind = "promote"
"""


async def test_controller_commands_and_their_refusals(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    env = environment(pipeline, reference_catalog, tmp_path)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(PLAN)
    bad = tmp_path / "bad.toml"
    bad.write_text(PLAN.replace("fraction = 0.5", "fraction = 2"))
    one_line_error(
        await cli(env, "rollout", "run", str(tmp_path / "nope.toml")), 2, "cannot read rollout plan"
    )
    one_line_error(await cli(env, "rollout", "run", str(bad)), 2, "steps[1] (canary).fraction")
    rollouts = Rollouts(pipeline.client, reference_catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        one_line_error(await cli(env, "rollout", "pause"), 2, "no controller runs")
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        run = await cli(env, "rollout", "run", str(plan_file), "--reason", "ship v3")
        assert run.exit_code == 0, run.output

        async def started() -> bool:
            return (await rollouts.plan()).candidate is not None

        # With the rollout already started, a second run meets both a running controller and a
        # rollout in progress: the refusal must name the controller, whichever it met first.
        await eventually(started, what="the controller starting its rollout")
        again = await cli(env, "rollout", "run", str(plan_file))
        one_line_error(again, 2, "a controller already runs")
        rollback = await cli(env, "rollback", "--dry-run")
        one_line_error(rollback, 2, "a controller drives this rollout")

        async def baking() -> Any:
            status = json.loads((await cli(env, "rollout", "status", "--json")).stdout)
            controller = status["controller"]
            return controller if controller and controller["state"]["phase"] == "baking" else None

        await eventually(baking, what="the controller baking its first step")
        paused = await cli(env, "rollout", "pause", "--reason", "look first")
        assert paused.exit_code == 0, paused.output
        assert "paused" in paused.output
        one_line_error(await cli(env, "rollout", "pause"), 2, "refused")
        watch = await cli(env, "rollout", "status")
        assert "controller" in watch.output
        assert "canary 50%" in watch.output
        assert (await cli(env, "rollout", "resume")).exit_code == 0
        skipped = await cli(env, "rollout", "skip", "--reason", "bake is long, data is fine")
        assert skipped.exit_code == 0, skipped.output

        async def promoted() -> bool:
            return (await rollouts.plan()).baseline.version == "v3"

        await eventually(promoted, what="promotion after the skip")
        audit = [a.action for a in await rollouts.audit()]

        # The plan is promoted a moment before the controller's run closes: until then a resume
        # is refused as "promoted, not paused"; wait for the state the refusal is about.
        async def closed() -> bool:
            result = await cli(env, "rollout", "resume")
            return "no controller runs" in result.output

        await eventually(closed, what="the controller's run closed")
        one_line_error(await cli(env, "rollout", "resume"), 2, "no controller runs")
    assert audit[:3] == ["start", "controller-step", "controller-pause"]
    assert "controller-resume" in audit
    assert "controller-skip" in audit
