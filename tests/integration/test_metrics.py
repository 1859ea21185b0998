"""The Prometheus endpoint of a worker runtime: after a batch, the per-version counters agree with
the results store and the shadow table (read here, not through the code under test), and
Temporal's own SDK metrics come out of the same endpoint."""

from __future__ import annotations

import re
import socket
from collections import Counter
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.contracts.rollout import ModelRef, start_canary, start_shadow
from modelbaton.metrics import metrics_runtime
from modelbaton.models.catalog import Catalog
from modelbaton.models.corpus import BASE_CLASSES, generate_corpus
from modelbaton.pipeline.store import ResultsStore
from modelbaton.shadow.store import ShadowStore
from modelbaton.stack.processes import free_port
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text page: (name, labels, value)."""
    samples = []
    for line in httpx.get(url, timeout=10).text.splitlines():
        found = SAMPLE.match(line)
        if found:
            name, labels, value = found.groups()
            samples.append((name, dict(LABEL.findall(labels or "")), float(value)))
    return samples


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **match: str) -> float:
    return sum(
        v
        for n, labels, v in samples
        if n == name and all(labels.get(k) == w for k, w in match.items())
    )


async def test_per_version_counters_match_the_results_store(
    temporal_env: WorkflowEnvironment, reference_catalog: Catalog, task_queue: str, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=temporal_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    store = ResultsStore(f"sqlite:///{tmp_path / 'results.db'}")
    pipeline = Pipeline(client, reference_catalog, store, task_queue)
    texts = [d.text for d in generate_corpus(12, 77, BASE_CLASSES)]
    v3 = ModelRef(
        version="v3", output_schema_version=reference_catalog.get("v3").output_schema_version
    )
    canary = start_canary(pipeline.plan("v2"), v3, 0.5, "metrics-salt")
    shadow = start_shadow(pipeline.plan("v2"), v3, 1.0, "metrics-salt")
    try:
        async with pipeline.worker(pools=["v2", "v3"]):
            handles = [await pipeline.start(pipeline.doc(t), plan=canary) for t in texts]
            # Two go to review and time out: escalated, so the review rate is not zero.
            handles += [
                await pipeline.start(pipeline.doc(t), plan=canary, threshold=1.0, review_timeout=1)
                for t in texts[:2]
            ]
            handles += [await pipeline.start(pipeline.doc(t), plan=shadow) for t in texts[:4]]
            for handle in handles:
                await handle.result()
            shadows = ShadowStore(store.engine)
            await eventually(
                lambda: len(shadows.rows(shadow.rollout_id or "")) == 4, what="comparisons"
            )
            records = store.records()
            assert len(records) == len(handles)
            written = Counter((r.model_version, r.arm or "none", r.outcome) for r in records)
            assert {arm for _, arm, _ in written} == {"baseline", "candidate"}
            assert any(outcome == "escalated" for _, _, outcome in written)
            url = f"http://{address}/metrics"
            ours = {"task_queue": task_queue}

            def counted() -> bool:
                samples = scrape(url)
                for (version, arm, outcome), n in written.items():
                    got = total(
                        samples,
                        "modelbaton_documents_written_total",
                        model_version=version,
                        arm=arm,
                        outcome=outcome,
                        **ours,
                    )
                    assert got == n, (version, arm, outcome, got, n)
                return True

            await eventually(counted, within=20, what="written counters = results store")
            samples = scrape(url)
            by_version = Counter(r.model_version for r in records)
            for version, n in by_version.items():
                pool = {"task_queue": f"{task_queue}-model-{version}"}
                calls = total(
                    samples, "modelbaton_classify_calls_total", model_version=version,
                    call="primary", **pool,
                )  # fmt: skip
                assert calls == n
                latency_count = total(
                    samples, "modelbaton_classify_latency_count", model_version=version,
                    call="primary", **pool,
                )  # fmt: skip
                assert latency_count == n
            bounds = {
                labels.get("le")
                for n, labels, _ in samples
                if n == "modelbaton_classify_latency_bucket"
            }
            assert {"250", "1000", "+Inf"} <= bounds  # milliseconds, the buckets we chose
            assert total(samples, "modelbaton_classify_failures_total") == 0
            rows = shadows.rows(shadow.rollout_id or "")
            agree = sum(1 for r in rows if r.agree)
            compared = dict(baseline_version="v2", candidate_version="v3", **ours)
            assert (
                total(samples, "modelbaton_shadow_comparisons_total", result="agree", **compared)
                == agree
            )
            assert (
                total(samples, "modelbaton_shadow_comparisons_total", result="disagree", **compared)
                == len(rows) - agree
            )
            shadow_calls = total(
                samples,
                "modelbaton_classify_calls_total",
                model_version="v3",
                call="shadow",
                task_queue=f"{task_queue}-model-v3",
            )
            assert shadow_calls == len(rows)
            # Temporal's own SDK metrics, from the same runtime and endpoint.
            sdk = {n for n, labels, _ in samples if labels.get("task_queue") == task_queue}
            assert "temporal_workflow_completed_total" in sdk
            assert any(n.startswith("temporal_activity_execution_latency") for n in sdk)
    finally:
        store.close()


def test_worker_refuses_a_bad_metrics_address() -> None:
    bad = CliRunner().invoke(baton, ["worker", "--metrics", "nowhere"])
    assert bad.exit_code == 2
    assert "--metrics must be HOST:PORT, got 'nowhere'" in bad.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        busy = CliRunner().invoke(baton, ["worker", "--metrics", address])
    assert busy.exit_code == 2
    assert f"cannot serve metrics at {address}" in busy.output
    assert len(busy.output.strip().splitlines()) == 1
