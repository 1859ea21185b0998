"""The Prometheus gate against a real Prometheus server scraping figures the test sets: each
check asked per arm (``$version``, ``$pool_queue``), judged against its limit, and every way of
not getting two numbers is inconclusive with the reason, never a pass."""

from __future__ import annotations

import pytest

from modelbaton.controller.gates import ArmMetrics, Metrics, Verdict, canary_gates, overall
from modelbaton.controller.plan import Gates, PrometheusGate
from modelbaton.controller.prometheus import ask_prometheus
from modelbaton.stack.processes import free_port
from prometheus_fixtures import Prometheus

pytestmark = pytest.mark.integration

ARMS = {
    "baseline": ("v1", "invoices-model-v1"),
    "candidate": ("v2", "invoices-model-v2"),
}
ERRORS = 'sum(extract_error_ratio{model_version="$version"})'
P95 = 'sum(extract_p95_ms{task_queue="$pool_queue"})'
CHECKS = [
    {"name": "errors", "query": ERRORS, "max_increase": 0.05},
    {"name": "errors strict", "query": ERRORS, "max_increase": 0.005},
    {"name": "latency", "query": P95, "max_ratio": 1.5},
    {"name": "latency loose", "query": P95, "max_ratio": 2},
    {"name": "missing", "query": 'sum(no_such_metric{model_version="$version"})', "max_ratio": 2},
    {"name": "several", "query": "extract_error_ratio", "max_increase": 1},
    {"name": "bad promql", "query": "sum(rate(", "max_increase": 1},
]


async def test_each_check_compares_the_arms_and_no_value_is_never_a_pass(
    prometheus: Prometheus,
) -> None:
    figures = {
        'extract_error_ratio{model_version="v1"}': 0.01,
        'extract_error_ratio{model_version="v2"}': 0.02,
        'extract_p95_ms{task_queue="invoices-model-v1"}': 100.0,
        'extract_p95_ms{task_queue="invoices-model-v2"}': 180.0,
    }
    prometheus.exporter.figures.update(figures)
    for series in figures:
        await prometheus.sees(series)
    gate = PrometheusGate.model_validate({"url": prometheus.url, "checks": CHECKS})
    answers = {a.name: a for a in await ask_prometheus(gate, ARMS)}

    errors = answers["errors"]
    assert (errors.verdict, errors.baseline, errors.candidate) == (Verdict.PASS, 0.01, 0.02)
    strict = answers["errors strict"]
    assert strict.verdict is Verdict.FAIL
    assert strict.reason == "candidate 0.02, baseline 0.01: increase +0.01, limit +0.005"
    assert answers["latency"].verdict is Verdict.FAIL
    assert answers["latency"].reason.endswith("ratio 1.8x, limit 1.5x")
    assert answers["latency loose"].verdict is Verdict.PASS
    for name, why in [
        ("missing", "no data for 'sum(no_such_metric{model_version=\"v1\"})'"),
        ("several", "2 series for 'extract_error_ratio'; it must come to one (sum it)"),
        ("bad promql", "Prometheus refused 'sum(rate('"),
    ]:
        answer = answers[name]
        assert answer.verdict is Verdict.INCONCLUSIVE, answer
        assert answer.reason.startswith(f"no verdict: {why}"), answer.reason
        assert (answer.baseline, answer.candidate) == (None, None)

    # As canary gates: one per check, named for it; the strict errors check fails the step.
    metrics = Metrics(
        baseline=ArmMetrics(completed=100),
        candidate=ArmMetrics(completed=100),
        prometheus=list(answers.values()),
    )
    gates = Gates(
        max_failure_rate_increase=None,
        max_p95_latency_ratio=None,
        max_review_share_increase=None,
        max_accuracy_drop=None,
        prometheus=gate,
    )
    results = {r.gate: r for r in canary_gates(metrics, gates, min_documents=10)}
    assert results["prometheus errors strict"].verdict is Verdict.FAIL
    assert results["prometheus missing"].verdict is Verdict.INCONCLUSIVE
    assert overall(list(results.values())) is Verdict.FAIL

    # The candidate's errors come down: the strict check passes on the next scrape.
    prometheus.exporter.figures['extract_error_ratio{model_version="v2"}'] = 0.012
    await prometheus.sees('extract_error_ratio{model_version="v2"}')
    (again,) = await ask_prometheus(
        PrometheusGate(url=prometheus.url, checks=[gate.checks[1]]), ARMS
    )
    assert again.verdict is Verdict.PASS, again


async def test_an_unreachable_prometheus_is_inconclusive() -> None:
    gate = PrometheusGate.model_validate(
        {"url": f"http://127.0.0.1:{free_port()}", "timeout": "2s", "checks": CHECKS[:1]}
    )
    (answer,) = await ask_prometheus(gate, ARMS)
    assert answer.verdict is Verdict.INCONCLUSIVE
    assert "unreachable" in answer.reason
    # A measure without answers yet (older history, or not asked): inconclusive, not a pass.
    gates = Gates(prometheus=gate)
    (result,) = [r for r in canary_gates(Metrics(), gates, 0) if r.gate.startswith("prometheus")]
    assert (result.verdict, result.measured) == (Verdict.INCONCLUSIVE, "no answer yet")
