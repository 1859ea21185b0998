"""Metrics per model version and arm, exported with Temporal's own SDK metrics.

A worker started with ``baton worker --metrics HOST:PORT`` (``baton dev up`` gives each worker
and pool one) runs on a Temporal :class:`~temporalio.runtime.Runtime` whose telemetry serves
Prometheus text at ``http://HOST:PORT/metrics``: the SDK's own metrics (``temporal_*``: task
latencies, slots, polls, failures) and ours, recorded through ``activity.metric_meter()``, which
adds ``namespace``, ``task_queue`` and ``activity_type`` to every point. One endpoint per worker
process; nothing is recorded in workflow code.

Ours (counters get the ``_total`` suffix on the endpoint):

``modelbaton_classify_calls{model_version, call}``
    model calls that returned a canonical result; ``call`` is ``primary`` or ``shadow``.
``modelbaton_classify_failures{model_version, call, error_type}``
    model calls that failed, by error class (``ModelEndpointError``, ``ModelOutputError``, ...).
``modelbaton_classify_latency{model_version, call}`` (histogram, milliseconds)
    time of one model call with its normalization, in the pool.
``modelbaton_documents_written{model_version, arm, outcome}``
    documents written downstream (one per record created in the results store); ``arm`` is
    ``baseline``/``candidate`` during a rollout, ``none`` between rollouts; ``outcome`` is
    ``auto``, ``reviewed`` or ``escalated``: the review rate is the share not ``auto``.
``modelbaton_shadow_comparisons{baseline_version, candidate_version, result}``
    shadowed documents compared (counted at their first record); ``result`` is ``agree``,
    ``disagree`` or ``unanswered`` (an arm answered with an error): the agreement is
    ``agree / (agree + disagree)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

CLASSIFY_CALLS = "modelbaton_classify_calls"
CLASSIFY_FAILURES = "modelbaton_classify_failures"
CLASSIFY_LATENCY = "modelbaton_classify_latency"
DOCUMENTS_WRITTEN = "modelbaton_documents_written"
SHADOW_COMPARISONS = "modelbaton_shadow_comparisons"

#: Bucket bounds of the classify latency, in milliseconds (model calls take ms to tens of s).
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics at ``http://<bind_address>/metrics``."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                histogram_bucket_overrides={
                    CLASSIFY_LATENCY: [float(b) for b in LATENCY_BUCKETS_MS]
                },
            )
        )
    )


def _meter() -> MetricMeter:
    # Outside a worker-run activity (a direct call in a unit test) there is nothing to record to.
    try:
        return activity.metric_meter()
    except RuntimeError:
        return MetricMeter.noop


def _count(name: str, description: str, attributes: Mapping[str, str]) -> None:
    _meter().create_counter(name, description).add(1, dict(attributes))


def classify_done(version: str, call: str, milliseconds: float, error_type: str | None) -> None:
    """One model call of ``version`` ended: its latency, and whether it failed and how."""
    attributes = {"model_version": version, "call": call}
    meter = _meter()
    meter.create_histogram_float(
        CLASSIFY_LATENCY, "Model call with normalization, in the pool", "ms"
    ).record(milliseconds, attributes)
    if error_type is None:
        meter.create_counter(CLASSIFY_CALLS, "Model calls that returned a result").add(
            1, attributes
        )
    else:
        meter.create_counter(CLASSIFY_FAILURES, "Model calls that failed, by error type").add(
            1, attributes | {"error_type": error_type}
        )


def document_written(version: str, arm: str | None, outcome: str) -> None:
    """A document's record was created in the results store."""
    _count(
        DOCUMENTS_WRITTEN,
        "Documents written downstream, by model version, arm and outcome",
        {"model_version": version, "arm": arm or "none", "outcome": outcome},
    )


def shadow_compared(baseline: str, candidate: str, agree: bool | None) -> None:
    """A shadowed document's comparison was recorded for the first time."""
    result = "unanswered" if agree is None else "agree" if agree else "disagree"
    _count(
        SHADOW_COMPARISONS,
        "Shadowed documents compared, by result",
        {"baseline_version": baseline, "candidate_version": candidate, "result": result},
    )
