"""Shadow deployment on the real dev server and model server: the primary path never waits for
the shadow, a misbehaving candidate never touches it, and every comparison is recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from scipy.stats import binomtest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from test_pipeline import GOOD_V2, control_app
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, start_shadow
from modelbaton.models.catalog import Catalog
from modelbaton.models.corpus import BASE_CLASSES, generate_corpus, split_corpus
from modelbaton.models.reference import CORPUS_SEED, EVAL_CORPUS_SIZE, load_or_train
from modelbaton.models.server import serve_in_thread
from modelbaton.pipeline.intake import validate_text
from modelbaton.pipeline.messages import ReviewDecision
from modelbaton.pipeline.store import ResultsStore
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowStore
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
INVOICES = [
    f"INVOICE {i} amount due $12.00 payment terms net 30 bill to Fabrikam" for i in range(6)
]


def shadow_plan(
    pipeline: Pipeline,
    candidate: str = "v3",
    *,
    baseline: str = "v2",
    sample: float = 1.0,
    noise: float = 0.0,
    budget: float = 20.0,
) -> RolloutPlan:
    config = pipeline.catalog.get(candidate)
    return start_shadow(
        pipeline.plan(baseline),
        ModelRef(version=candidate, output_schema_version=config.output_schema_version),
        sample,
        "shadow-test",
        noise_sample=noise,
        budget_seconds=budget,
    )


def v2_labels(model_cache: Path, texts: list[str]) -> list[str]:
    """What the baseline model says of ``texts``, asked directly (no pipeline)."""
    model = load_or_train("v2", model_cache)
    return [model.classes[int(row.argmax())] for row in model.predict_proba(texts)]


async def test_stopped_candidate_pool_never_delays_the_primary(
    pipeline: Pipeline, model_cache: Path
) -> None:
    plan = shadow_plan(pipeline, budget=15.0)
    shadows = ShadowStore(pipeline.store.engine)
    docs = [pipeline.doc(t) for t in INVOICES]
    async with pipeline.worker(pools=["v2"]):  # the candidate's pool (v3) is not running
        handles = await asyncio.gather(*(pipeline.start(d, plan=plan) for d in docs))
        await eventually(
            lambda: len(pipeline.store.records()) == len(docs), within=10, what="writes"
        )
        # Written downstream while every shadow call still waits in the stopped pool's queue.
        assert shadows.rows(plan.rollout_id or "") == []
        statuses = [(await h.describe()).status for h in handles]
        assert statuses == [WorkflowExecutionStatus.RUNNING] * len(docs)
        outcomes = [await h.result() for h in handles]
    expected = v2_labels(model_cache, [d.text for d in docs])
    assert [o.result.label for o in outcomes] == expected
    assert {o.result.model_version for o in outcomes} == {"v2"}
    rows = shadows.rows(plan.rollout_id or "")
    assert sorted(r.document_id for r in rows) == sorted(d.document_id for d in docs)
    assert {r.candidate_error_type for r in rows} == {"Timeout"}
    by_doc = {d.document_id: label for d, label in zip(docs, expected, strict=True)}
    assert {r.document_id: r.baseline_label for r in rows} == by_doc
    report = build_report(plan.rollout_id or "", rows, pipeline.catalog.shadow_gate)
    assert report.candidate_errors == {"Timeout": len(docs)}
    assert report.agreement is None
    assert not report.ready


BAD_OUTPUT = {"label": "a", "confidence": 0.9, "raw_scores": [0.9, 0.1], "class_order": ["a"]}


@pytest.mark.parametrize(
    ("responses", "error_type", "budget"),
    [
        # Retried within the budget; then the last failure is the answer.
        ([(500, {"detail": "boom"})], "ModelEndpointError", 4.0),
        ([(200, BAD_OUTPUT)], "ModelOutputError", 20.0),
    ],
    ids=["server-errors", "malformed-output"],
)
async def test_failing_candidate_leaves_primary_results_unchanged(
    pipeline: Pipeline,
    model_cache: Path,
    responses: list[tuple[int, dict[str, object]]],
    error_type: str,
    budget: float,
) -> None:
    app = control_app(responses)
    docs = [pipeline.doc(t) for t in INVOICES]
    with serve_in_thread(app) as url:
        pipeline.add_endpoint("bad", url)
        plan = shadow_plan(pipeline, "bad", budget=budget)
        async with pipeline.worker(pools=["v2", "bad"]):
            handles = await asyncio.gather(*(pipeline.start(d, plan=plan) for d in docs))
            outcomes = [await h.result() for h in handles]
    assert [o.result.label for o in outcomes] == v2_labels(model_cache, [d.text for d in docs])
    assert len(pipeline.store.records()) == len(docs)
    assert app.state.served  # the candidate was called
    rows = ShadowStore(pipeline.store.engine).rows(plan.rollout_id or "")
    assert len(rows) == len(docs)
    report = build_report(plan.rollout_id or "", rows, pipeline.catalog.shadow_gate)
    assert report.candidate_errors == {error_type: len(docs)}
    assert report.schema_errors == (len(docs) if error_type == "ModelOutputError" else 0)
    if error_type == "ModelEndpointError":
        assert all("HTTP 500" in (r.candidate_error or "") for r in rows)
        assert len(app.state.served) > len(docs)  # retried
    assert not report.ready


def slow_app(seconds: float) -> FastAPI:
    """A model endpoint that answers well, but only after ``seconds``."""
    app = FastAPI()

    @app.post("/classify")
    async def classify() -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return GOOD_V2

    return app


async def test_workflow_done_before_its_shadow_still_records_the_comparison(
    pipeline: Pipeline,
) -> None:
    with serve_in_thread(slow_app(4.0)) as url:
        pipeline.add_endpoint("slow", url, timeout_seconds=10.0)
        plan = shadow_plan(pipeline, "slow", budget=30.0)
        shadows = ShadowStore(pipeline.store.engine)
        doc = pipeline.doc()
        async with pipeline.worker(pools=["v2", "slow"]):
            handle = await pipeline.start(doc, plan=plan)
            await eventually(lambda: pipeline.store.records(), within=10, what="downstream write")
            # The primary is written; its shadow is still out.
            assert shadows.rows(plan.rollout_id or "") == []
            assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
            outcome = await handle.result()
    assert outcome.result.model_version == "v2"
    (row,) = shadows.rows(plan.rollout_id or "")
    assert row.candidate_label == "a"
    assert (row.candidate_latency_ms or 0) >= 4000
    assert (row.baseline_latency_ms or 4000) < 4000


@pytest.fixture
def isolated_pipeline(
    isolated_client: Client, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> Iterator[Pipeline]:
    """A pipeline in its own namespace, so the test split's documents keep their own ids."""
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    yield Pipeline(isolated_client, reference_catalog, store, task_queue)
    store.close()


@pytest.mark.slow(seconds=40)
@pytest.mark.timeout(420)
async def test_v1_shadowing_v2_over_the_test_split_reports_their_real_disagreement(
    isolated_pipeline: Pipeline, model_cache: Path
) -> None:
    pipeline = isolated_pipeline
    # Every third document of the held-out split (about 320, every class): enough for a real
    # disagreement and reviews on both arms, at a third of the whole split's cost.
    split = split_corpus(generate_corpus(EVAL_CORPUS_SIZE, CORPUS_SEED, BASE_CLASSES))[1][::3]
    texts = [d.text for d in split]
    truth = {validate_text(d.text, "split").workflow_id: d.label for d in split}
    # Measured directly: both reference models over the same documents.
    v1 = load_or_train("v1", model_cache)
    v1_labels = [v1.classes[int(r.argmax())] for r in v1.predict_proba(texts)]
    base_labels = v2_labels(model_cache, texts)
    direct_agreement = sum(a == b for a, b in zip(v1_labels, base_labels, strict=True)) / len(split)

    plan = shadow_plan(pipeline, "v1", sample=1.0, noise=0.1, budget=60.0)
    async with pipeline.worker(pools=["v1", "v2"]):
        handles = [
            await pipeline.start(validate_text(d.text, "split"), plan=plan, threshold=0.5)
            for d in split
        ]
        client = pipeline.client
        pending = f'TaskQueue = "{pipeline.task_queue}" AND ReviewState = "pending"'

        async def reviews_sent() -> bool:
            async for wf in client.list_workflows(pending):
                # Visibility lags: a document reviewed a moment ago may still be listed.
                with contextlib.suppress(WorkflowUpdateFailedError):
                    await client.get_workflow_handle(wf.id).execute_update(
                        DocumentClassificationWorkflow.submit_review,
                        ReviewDecision(label=truth[wf.id], reviewer="oracle"),
                    )
            open_ = await client.count_workflows(
                f'TaskQueue = "{pipeline.task_queue}" AND ExecutionStatus = "Running"'
            )
            return open_.count == 0

        await eventually(reviews_sent, within=400, every=2.0, what="every document done")
        outcomes = [await h.result() for h in handles]

    rows = ShadowStore(pipeline.store.engine).rows(plan.rollout_id or "")
    report = build_report(plan.rollout_id or "", rows, pipeline.catalog.shadow_gate)
    assert report.agreement is not None
    assert report.agreement.n == len(split)
    low, high = report.agreement.interval
    assert low <= direct_agreement <= high
    assert report.agreement.value == pytest.approx(direct_agreement)
    assert 0.5 < direct_agreement < 1.0  # a real disagreement, not a copy
    # Reviewed documents: each arm's accuracy and McNemar's test, recomputed from the corpus.
    reviewed = [o for o in outcomes if o.outcome.value == "reviewed"]
    assert reviewed
    assert report.reviewed is not None
    assert report.reviewed["n"] == len(reviewed)
    by_id = {validate_text(t, "split").document_id: i for i, t in enumerate(texts)}
    idx = [by_id[o.document_id] for o in reviewed]
    labels = [split[i].label for i in idx]
    base_right = [base_labels[i] == y for i, y in zip(idx, labels, strict=True)]
    cand_right = [v1_labels[i] == y for i, y in zip(idx, labels, strict=True)]
    assert report.reviewed["baseline_accuracy"]["successes"] == sum(base_right)
    assert report.reviewed["candidate_accuracy"]["successes"] == sum(cand_right)
    b = sum(1 for x, y in zip(base_right, cand_right, strict=True) if x and not y)
    c = sum(1 for x, y in zip(base_right, cand_right, strict=True) if y and not x)
    expected_p = binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    assert report.reviewed["mcnemar_p"] == pytest.approx(expected_p)
    # The reference models are deterministic: the baseline agrees with itself every time.
    assert report.noise is not None
    assert report.noise["agreement"]["n"] > 0
    assert report.noise["agreement"]["rate"] == 1.0


def cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(baton, list(args), env=env)


LENIENT_GATE = """
[shadow_gate]
min_documents = 3
min_agreement = 0.0
max_p95_latency_ratio = 100.0
"""


async def test_shadow_cli_start_report_and_the_verdict_gating_promotion(
    pipeline: Pipeline, reference_catalog: Catalog, tmp_path: Path
) -> None:
    from modelbaton.rollout.client import Rollouts

    default_catalog = reference_catalog.path.read_text()
    assert "[shadow_gate]" in default_catalog
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(default_catalog.split("[shadow_gate]")[0] + LENIENT_GATE)
    env = {
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": pipeline.client.namespace,
        "MODELBATON_HOME": str(tmp_path / "home"),
        "MODELBATON_TASK_QUEUE": pipeline.task_queue,
        "MODELBATON_MODEL_BASE_URL": reference_catalog.base_url,
        "MODELBATON_DATABASE_URL": pipeline.store.url,
    }
    easy = env | {"MODELBATON_CATALOG": str(lenient)}

    async def run(environment: dict[str, str], *args: str) -> Any:
        return await asyncio.to_thread(cli, environment, *args)

    async def submit_batch() -> None:
        plan = await Rollouts(pipeline.client, reference_catalog, pipeline.task_queue).plan()
        docs = [pipeline.doc(t) for t in INVOICES]
        handles = [await pipeline.start(d, plan=plan) for d in docs]
        for h in handles:
            await h.result()

    async with pipeline.worker(pools=["v2", "v3"]):
        for args, message in [
            (["--sample", "0"], "--sample must be within (0, 1], got 0.0"),
            (["--noise-sample", "1.5"], "--noise-sample must be within [0, 1], got 1.5"),
            (["--shadow-budget", "0"], "--shadow-budget must be positive"),
        ]:
            bad = await run(env, "rollout", "start", "--candidate", "v3", "--shadow", *args)
            assert bad.exit_code == 2, bad.output
            assert message in bad.output
            assert len(bad.output.strip().splitlines()) == 1
        none_yet = await run(env, "shadow", "report")
        assert none_yet.exit_code == 2
        assert "no shadow comparisons recorded yet" in none_yet.output

        started = await run(
            env, "rollout", "start", "--candidate", "v3", "--shadow", "--sample", "1",
            "--noise-sample", "0", "--json",
        )  # fmt: skip
        assert started.exit_code == 0, started.output
        plan = json.loads(started.stdout)
        assert (plan["stage"], plan["sample"]) == ("shadow", 1.0)
        rollout_id = plan["rollout_id"]
        await submit_batch()

        unknown = await run(env, "shadow", "report", "--rollout", "nope")
        assert unknown.exit_code == 2
        assert f"known: {rollout_id}" in unknown.output
        width = await run(env, "shadow", "report", "--target-width", "2")
        assert width.exit_code == 2
        assert "--target-width must be within (0, 1)" in width.output

        strict = await run(env, "shadow", "report", "--json")
        assert strict.exit_code == 1, strict.output
        judged = json.loads(strict.stdout)
        assert judged["verdict"] == "NOT READY"
        assert judged["agreement"]["n"] == len(INVOICES)
        assert any("the gate needs 200" in r for r in judged["reasons"])
        human = await run(env, "shadow", "report")
        assert "NOT READY" in human.output
        assert "agreement (95 % Wilson)" in human.output

        refused = await run(env, "rollout", "set", "--fraction", "0.2")
        assert refused.exit_code == 1
        assert "refused: shadow verdict NOT READY" in refused.output
        still = await run(env, "rollout", "status", "--json")
        assert json.loads(still.stdout)["plan"]["stage"] == "shadow"
        forced = await run(env, "rollout", "set", "--fraction", "0.2", "--force", "--json")
        assert forced.exit_code == 0, forced.output
        assert json.loads(forced.stdout)["stage"] == "canary"

        ready = await run(easy, "shadow", "report", "--rollout", rollout_id)
        assert ready.exit_code == 0, ready.output
        assert "READY" in ready.output

        # A second shadow: promotion needs comparisons, then records the READY verdict.
        assert (await run(env, "rollout", "abort")).exit_code == 0
        again = await run(easy, "rollout", "start", "--candidate", "v3", "--shadow", "--json")
        assert again.exit_code == 0, again.output
        early = await run(easy, "rollout", "promote")
        assert early.exit_code == 2
        assert "has no shadow comparisons yet" in early.output
        await submit_batch()
        promoted = await run(easy, "rollout", "promote", "--reason", "shadow agrees")
        assert promoted.exit_code == 0, promoted.output
        status = json.loads((await run(env, "rollout", "status", "--json")).stdout)
    actions = [(a["action"], a["detail"]) for a in status["audit"]]
    assert actions[0][0] == "start-shadow"
    assert "forced past shadow verdict NOT READY" in actions[1][1]
    assert actions[-1][0] == "promote"
    assert "shadow verdict READY" in actions[-1][1]
    assert status["plan"]["baseline"]["version"] == "v3"
