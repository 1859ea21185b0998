"""The rollout controller on the real dev server with the real model server: a good candidate
promoted through every step, a bad one stopped and rolled back, and a worker killed mid-bake."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.converter import DataConverter

from modelbaton.controller.activities import MEASURE
from modelbaton.controller.client import Controllers
from modelbaton.controller.gates import Metrics
from modelbaton.controller.messages import Phase
from modelbaton.controller.plan import WAIVABLE, parse_plan
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.errors import RolloutError
from modelbaton.models.client import make_http_client
from modelbaton.models.reference import load_or_train
from modelbaton.models.server import serve_in_thread
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from pipeline_fixtures import Pipeline
from prometheus_fixtures import Prometheus
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="test", reason="controller test")
#: A test's handful of documents cannot show non-inferiority, so its good-candidate plans waive
#: the statistical gates: they then only watch for harm (they still fail on evidence).
WATCH_ONLY = {"waive": list(WAIVABLE)}


def lenient(pipeline: Pipeline) -> None:
    """A shadow gate a short test can meet (the thresholds are the team's choice)."""
    gate = pipeline.catalog.shadow_gate.model_copy(
        update={"min_agreement": 0.3, "max_p95_latency_ratio": 10.0}
    )
    pipeline.catalog = dataclasses.replace(pipeline.catalog, shadow_gate=gate)
    pipeline.source = type(pipeline.source).fixed(pipeline.catalog)


async def all_closed(pipeline: Pipeline, ids: list[str]) -> None:
    async def closed() -> bool:
        for wid in ids:
            d = await pipeline.client.get_workflow_handle(wid).describe()
            if d.status is WorkflowExecutionStatus.RUNNING:
                return False
        return True

    await eventually(closed, within=120, every=0.5, what="every document closed")


async def measurements(handle: WorkflowHandle[Any, Any], converter: DataConverter) -> list[Metrics]:
    """What every measure activity of the controller's run returned, from its history."""
    history = await handle.fetch_history()
    scheduled = set()
    out: list[Metrics] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if e.activity_task_scheduled_event_attributes.activity_type.name == MEASURE:
                scheduled.add(e.event_id)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = e.activity_task_completed_event_attributes
            if done.scheduled_event_id in scheduled:
                payloads = done.result.payloads
                out += await converter.decode(payloads, [Metrics])
    return out


GOOD_PLAN = {
    "candidate": "v3",
    "poll": 1,
    "gates": WATCH_ONLY,
    "steps": [
        {"kind": "shadow", "sample": 1.0, "documents": 8, "noise_sample": 0.0, "budget": 20},
        {"kind": "canary", "fraction": 0.25, "bake": 3, "min_documents": 4},
        {"kind": "canary", "fraction": 0.5, "bake": 3, "min_documents": 4},
        {"kind": "promote"},
        {"kind": "drain", "deadline": 60, "on_deadline": "report"},
    ],
}


async def test_good_candidate_is_promoted_through_every_step(pipeline: Pipeline) -> None:
    lenient(pipeline)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        async with pipeline.feed() as started:
            await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
            await controllers.run(parse_plan(GOOD_PLAN), BY)
            result = await controllers.handle().result()
        await all_closed(pipeline, [h.id for h in started])
        audit = await rollouts.audit()
    assert result.phase is Phase.PROMOTED
    plan = await rollouts.plan()
    assert (plan.baseline.version, plan.candidate, plan.ended) == ("v3", None, "promoted")
    actions = [a.action for a in audit]
    assert actions.count("controller-gate-pass") == 4
    assert actions[-1] == "controller-done"
    drained = [a.detail for a in audit if a.action == "controller-gate-pass"][-1]
    assert "drain pass (0 documents still on v2)" in drained
    fractions = [a.detail for a in audit if a.action == "set-fraction"]
    assert fractions == ["shadow -> canary at 25.00%", "fraction 25.00% -> 50.00%"]
    shadow_pass = next(a for a in audit if a.action == "controller-gate-pass")
    assert "shadow verdict READY" in shadow_pass.detail
    # The shadow step's measures record the report's other checks as numbers for the gate.
    measured = await measurements(controllers.handle(), pipeline.client.data_converter)
    checks = [m.shadow_checks for m in measured]
    shadowed = [c for c in checks if c is not None and c.calls >= 8]
    assert shadowed, checks
    last = shadowed[-1]
    assert last.baseline_latency
    assert last.candidate_latency
    assert last.max_p95_latency_ratio == pipeline.catalog.shadow_gate.max_p95_latency_ratio
    versions = {r.model_version for r in pipeline.store.records()}
    assert versions == {"v2", "v3"}


def switchable_v3(model_cache: Path) -> FastAPI:
    """The real v3 model behind an endpoint that starts answering 500 when told to."""
    model = load_or_train("v3", model_cache)
    app = FastAPI()
    app.state.broken = False

    @app.post("/classify")
    async def classify(body: dict[str, Any]) -> JSONResponse:
        if app.state.broken:
            return JSONResponse({"detail": "model crashed"}, status_code=500)
        return JSONResponse(model.render(str(body["text"])))

    return app


BAD_PLAN = {
    "candidate": "bad",
    "poll": 1,
    "gates": {**WATCH_ONLY, "retrying_after": 3, "max_p95_latency_ratio": 10},
    "steps": [
        {"kind": "canary", "fraction": 0.1, "bake": 2, "min_documents": 3},
        {"kind": "canary", "fraction": 0.25, "bake": 120, "min_documents": 40},
        {"kind": "promote"},
    ],
}


@pytest.mark.slow(seconds=25)
@pytest.mark.timeout(300)
async def test_bad_candidate_is_stopped_at_the_25_percent_step_and_rolled_back(
    pipeline: Pipeline, model_cache: Path
) -> None:
    app = switchable_v3(model_cache)
    with serve_in_thread(app) as url:
        pipeline.add_endpoint("bad", url)
        controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
        rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
        async with pipeline.worker(pools=["v2", "bad"]):
            async with pipeline.feed() as started:
                await eventually(lambda: rollouts.pool_pollers("bad"), what="pool polling")
                await controllers.run(parse_plan(BAD_PLAN), BY)

                async def at_25() -> bool:
                    view = await controllers.status()
                    return view is not None and view.state.step == 1

                await eventually(at_25, within=60, what="the 25 % step")
                app.state.broken = True
                result = await controllers.handle().result()
            await all_closed(pipeline, [h.id for h in started])
            audit = await rollouts.audit()
            candidate_runs = await pipeline.client.count_workflows(
                f'TaskQueue = "{pipeline.task_queue}" AND RolloutArm = "candidate"'
            )
        ids = [h.id for h in started]
    assert result.phase is Phase.ABORTED
    assert result.step == 1
    assert "failure rate fail" in result.abort_reason
    plan = await rollouts.plan()
    assert (plan.baseline.version, plan.candidate, plan.ended) == ("v2", None, "aborted")
    actions = [a.action for a in audit]
    assert "controller-gate-fail" in actions
    rollback = next(a for a in audit if a.action == "controller-rollback")
    assert rollback.detail.startswith("scenario B (restart-on-baseline)")
    assert result.rolled_back  # documents stuck on the broken candidate were restarted
    # Every document ends with exactly one current record, from a model that answered.
    records = {r.document_id: r for r in pipeline.store.records()}
    assert len(records) == len(ids)
    for wid in ids:
        described = await pipeline.client.get_workflow_handle(wid).describe()
        assert described.status is WorkflowExecutionStatus.COMPLETED, wid
    for wid in result.rolled_back:
        doc_id = wid.removeprefix("classify-")
        assert records[doc_id].model_version == "v2"
    assert {r.model_version for r in records.values()} <= {"v2", "bad"}
    assert result.breach_at is not None
    assert result.fraction_zero_at is not None
    lag = (result.fraction_zero_at - result.breach_at).total_seconds()
    print(
        f"breach -> fraction 0: {lag:.2f} s; candidate-arm workflows: {candidate_runs.count}; "
        f"restarted on baseline: {len(result.rolled_back)}; documents: {len(ids)}"
    )
    assert 0 <= lag < 30


@contextlib.contextmanager
def worker_process(pipeline: Pipeline, home: Path) -> Any:
    """``baton worker`` (the workflow worker: document, rollout and controller workflows) as a
    child process of this test, so it can be killed for real."""
    env = os.environ | {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(home),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": pipeline.catalog.base_url,
        "MODELBATON_DATABASE_URL": pipeline.store.url,
    }
    baton = Path(sys.executable).parent / "baton"
    log = (home / f"worker-{time.monotonic_ns()}.log").open("w")
    proc = subprocess.Popen(
        [str(baton), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


KILL_PLAN = {
    "candidate": "v3",
    "poll": 1,
    "gates": WATCH_ONLY,
    "steps": [
        {"kind": "canary", "fraction": 0.5, "bake": 15, "min_documents": 3},
        {"kind": "promote"},
    ],
}


@pytest.mark.slow(seconds=25)
@pytest.mark.timeout(300)
async def test_killing_the_workflow_worker_mid_bake_loses_no_place(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    home = tmp_path / "home"
    home.mkdir()
    async with contextlib.AsyncExitStack() as pools:
        http = await pools.enter_async_context(make_http_client())
        for version in ("v2", "v3"):
            await pools.enter_async_context(pipeline.pool(version, http))
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        with worker_process(pipeline, home) as first:
            await controllers.run(parse_plan(KILL_PLAN), BY)

            async def baking() -> bool:
                # A query needs the worker to answer it; on a loaded machine a first query can
                # time out while the worker starts, which is "not yet", not a failure.
                try:
                    view = await controllers.status()
                except RolloutError:
                    return False
                return view is not None and view.state.phase is Phase.BAKING

            await eventually(baking, within=60, what="the controller baking")
            first.kill()  # SIGKILL: no graceful shutdown
            first.wait()
        with worker_process(pipeline, home):
            async with pipeline.feed() as started:
                result = await controllers.handle().result()
            await all_closed(pipeline, [h.id for h in started])
            audit = await rollouts.audit()
    assert result.phase is Phase.PROMOTED
    actions = [a.action for a in audit]
    # The step was applied once: the new worker resumed the bake, it did not start over.
    assert actions.count("controller-step") == 2
    assert actions.count("start") == 1
    assert actions[-1] == "controller-done"


async def test_a_long_bake_continues_as_new_and_keeps_its_place(pipeline: Pipeline) -> None:
    from modelbaton.controller.messages import ControllerInput

    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 0.2,
            "gates": WATCH_ONLY,
            "steps": [
                # A bake longer than max_wait: every gate passes, so the step must not pause.
                {"kind": "canary", "fraction": 0.5, "bake": 8, "min_documents": 2, "max_wait": 3},
                {"kind": "promote"},
            ],
        }
    )
    async with pipeline.worker(pools=["v2", "v3"]):
        async with pipeline.feed(0.3) as started:
            await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
            handle = await pipeline.client.start_workflow(
                RolloutControllerWorkflow.run,
                ControllerInput(
                    plan=plan,
                    task_queue=pipeline.task_queue,
                    model_id="doc-classifier",
                    started_by=BY,
                    max_history_events=40,
                ),
                id=controllers.workflow_id,
                task_queue=pipeline.task_queue,
            )
            result = await handle.result()  # follows the continued runs
        await all_closed(pipeline, [h.id for h in started])
        audit = [a.action for a in await rollouts.audit()]
    runs = [wf async for wf in pipeline.client.list_workflows(f'WorkflowId = "{handle.id}"')]
    assert len(runs) >= 2  # continued as new, mid-bake
    assert result.phase is Phase.PROMOTED
    assert audit.count("start") == 1  # no run applied the canary step again
    assert audit.count("controller-step") == 2
    assert "controller-pause" not in audit  # passing gates bake past max_wait


async def test_an_inconclusive_step_pauses_at_max_wait_and_a_resume_waits_max_wait_again(
    pipeline: Pipeline,
) -> None:
    """No document comes, so the gates stay inconclusive: the step pauses after max_wait, and
    once resumed it pauses again only after another max_wait, not at the next poll."""
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 0.5,
            "steps": [
                {"kind": "canary", "fraction": 0.5, "bake": 1, "min_documents": 5, "max_wait": 4},
                {"kind": "promote"},
            ],
        }
    )

    async def pauses() -> list[Any]:
        return [a for a in await rollouts.audit() if a.action == "controller-pause"]

    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
        await controllers.run(plan, BY)
        await eventually(pauses, within=60, what="the first pause")
        await controllers.resume(BY)
        await eventually(
            lambda: pauses_at_least(pauses, 2), within=60, what="the pause after the resume"
        )
        await controllers.abort(BY)
        result = await controllers.handle().result()
        audit = await rollouts.audit()
    assert result.phase is Phase.ABORTED
    step = next(a for a in audit if a.action == "controller-step")
    resumed = next(a for a in audit if a.action == "controller-resume")
    first, second = [a for a in audit if a.action == "controller-pause"][:2]
    assert (first.at - step.at).total_seconds() >= 3.5
    assert (second.at - resumed.at).total_seconds() >= 3.5  # not at the next poll (0.5 s)
    assert "still inconclusive after 4 s" in second.detail
    assert "documents inconclusive (0 candidate documents, 5 needed)" in second.detail


async def pauses_at_least(pauses: Callable[[], Awaitable[list[Any]]], n: int) -> bool:
    return len(await pauses()) >= n


def webhook_app() -> FastAPI:
    """A team's approval endpoint: it says no to this rollout, and keeps what it was sent."""
    app = FastAPI()
    app.state.seen = []

    @app.post("/gate")
    async def gate(body: dict[str, Any]) -> JSONResponse:
        app.state.seen.append(body)
        return JSONResponse({"verdict": "fail", "reason": "change freeze until Monday"})

    return app


WEBHOOK_PLAN = {
    "candidate": "v3",
    "poll": 1,
    "gates": WATCH_ONLY,
    "steps": [
        {"kind": "canary", "fraction": 0.5, "bake": 1, "min_documents": 2},
        {"kind": "promote"},
    ],
}


async def run_to_the_end(
    pipeline: Pipeline, plan: dict[str, Any]
) -> tuple[Any, Rollouts, list[str]]:
    """Run ``plan`` (v3 against v2) with documents arriving until the controller ends: its final
    state once every document it saw has closed, and the audit trail's actions (read while the
    worker that answers the query still runs)."""
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        async with pipeline.feed() as started:
            await eventually(lambda: rollouts.pool_pollers("v3"), what="v3 pool polling")
            await controllers.run(parse_plan(plan), BY)
            result = await controllers.handle().result()
        await all_closed(pipeline, [h.id for h in started])
        actions = [a.action for a in await rollouts.audit()]
    return result, rollouts, actions


async def test_a_webhook_that_says_no_stops_the_rollout(pipeline: Pipeline) -> None:
    app = webhook_app()
    with serve_in_thread(app) as url:
        gates = {**WATCH_ONLY, "webhook": f"{url}/gate", "webhook_timeout": "5s"}
        result, rollouts, actions = await run_to_the_end(pipeline, {**WEBHOOK_PLAN, "gates": gates})
    assert result.phase is Phase.ABORTED
    assert "webhook fail (change freeze until Monday)" in result.abort_reason
    plan_now = await rollouts.plan()
    assert (plan_now.baseline.version, plan_now.ended) == ("v2", "aborted")
    assert "controller-gate-fail" in actions
    # The webhook was sent the measurement it judged: this rollout, both arms.
    sent = app.state.seen[-1]
    assert sent["rollout_id"] == plan_now.rollout_id
    assert sent["task_queue"] == pipeline.task_queue
    assert set(sent["metrics"]) >= {"baseline", "candidate"}


async def test_a_prometheus_check_over_its_limit_stops_the_rollout(
    pipeline: Pipeline, prometheus: Prometheus
) -> None:
    """The controller asks the plan's PromQL once per arm, ``$version`` standing for the arm's
    model version: the candidate's error figure is over the limit, and the rollout aborts."""
    figures = {'extract_errors{model_version="v2"}': 0.0, 'extract_errors{model_version="v3"}': 0.5}
    prometheus.exporter.figures.update(figures)
    for series in figures:
        await prometheus.sees(series)
    check = {
        "name": "candidate errors",
        "query": 'sum(extract_errors{model_version="$version"})',
        "max_increase": 0.1,
    }
    gates = {**WATCH_ONLY, "prometheus": {"url": prometheus.url, "checks": [check]}}
    result, rollouts, _ = await run_to_the_end(pipeline, {**WEBHOOK_PLAN, "gates": gates})
    assert result.phase is Phase.ABORTED
    assert (
        "prometheus candidate errors fail (candidate 0.5, baseline 0: increase +0.5, limit +0.1)"
        in result.abort_reason
    ), result.abort_reason
    assert (await rollouts.plan()).baseline.version == "v2"
