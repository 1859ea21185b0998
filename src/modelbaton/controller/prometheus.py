"""The Prometheus gate's queries: each check of the plan asked once per arm through Prometheus's
HTTP API (``GET /api/v1/query``), the two values compared with the check's limit.

``$version`` in a query becomes the arm's model version (or its build, in a build rollout) and
``$pool_queue`` its pool's task queue, so one query serves both arms, e.g.
``sum(rate(temporal_activity_execution_failed{task_queue="$pool_queue"}[5m]))`` from the SDK's
own worker metrics. A query must come to one number (a scalar, or a vector of one series).

Anything but two numbers (an unreachable server, a timeout, a PromQL error, no series, several
series, NaN) is an inconclusive answer that says why: a check that cannot be read holds the
step, it never passes it. Flagger's and Argo Rollouts' Prometheus metric providers play the same
part; like theirs, this is a threshold on what Prometheus computes, not a sequential test.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any

import httpx

from modelbaton.controller.gates import PrometheusAnswer, Verdict
from modelbaton.controller.plan import PrometheusCheck, PrometheusGate

#: Longest error text kept from Prometheus (shown in the audit trail and the dashboard).
MAX_ERROR = 200


class _NoValue(Exception):
    """Why a query gave no single number."""


def query_for(check: PrometheusCheck, version: str, pool_queue: str) -> str:
    """The check's query for one arm."""
    return Template(check.query).safe_substitute(version=version, pool_queue=pool_queue)


async def _value(http: httpx.AsyncClient, url: str, query: str) -> float:
    try:
        response = await http.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query})
    except httpx.TimeoutException:
        raise _NoValue(f"{url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise _NoValue(f"{url} unreachable ({type(exc).__name__})") from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise _NoValue(f"{url} answered HTTP {response.status_code}, not JSON") from None
    if body.get("status") != "success":
        error = str(body.get("error") or f"HTTP {response.status_code}")[:MAX_ERROR]
        raise _NoValue(f"Prometheus refused {query!r}: {error}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise _NoValue(f"no data for {query!r}")
        if len(result) > 1:
            raise _NoValue(f"{len(result)} series for {query!r}; it must come to one (sum it)")
        sample = result[0].get("value")
    else:
        raise _NoValue(f"{query!r} gave a {kind}, not one number")
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        raise _NoValue(f"{query!r} gave no number") from None
    if not math.isfinite(value):
        raise _NoValue(f"{query!r} gave {value}")
    return value


def _judge(check: PrometheusCheck, baseline: float, candidate: float) -> tuple[Verdict, str]:
    values = f"candidate {candidate:.6g}, baseline {baseline:.6g}"
    if check.max_increase is not None:
        over = candidate - baseline > check.max_increase
        return (
            Verdict.FAIL if over else Verdict.PASS,
            f"{values}: increase {candidate - baseline:+.6g}, limit +{check.max_increase:g}",
        )
    limit = check.max_ratio
    assert limit is not None
    if baseline == 0:
        over = candidate > 0
        shown = "infinite" if over else "none (both 0)"
        return Verdict.FAIL if over else Verdict.PASS, f"{values}: ratio {shown}, limit {limit:g}x"
    ratio = candidate / baseline
    verdict = Verdict.FAIL if ratio > limit else Verdict.PASS
    return verdict, f"{values}: ratio {ratio:.3g}x, limit {limit:g}x"


async def ask_prometheus(
    gate: PrometheusGate, arms: dict[str, tuple[str, str]]
) -> list[PrometheusAnswer]:
    """Every check of ``gate`` on both arms (``{"baseline": (version, pool queue), "candidate":
    ...}``): one answer per check, inconclusive with the reason where a value is missing."""
    answers: list[PrometheusAnswer] = []
    async with httpx.AsyncClient(timeout=gate.timeout) as http:
        for check in gate.checks:
            # One arm after the other: the baseline's missing value is the one named, every time.
            try:
                baseline = await _value(http, gate.url, query_for(check, *arms["baseline"]))
                candidate = await _value(http, gate.url, query_for(check, *arms["candidate"]))
            except _NoValue as why:
                answers.append(
                    PrometheusAnswer(
                        name=check.name, verdict=Verdict.INCONCLUSIVE, reason=f"no verdict: {why}"
                    )
                )
                continue
            verdict, reason = _judge(check, baseline, candidate)
            answers.append(
                PrometheusAnswer(
                    name=check.name,
                    verdict=verdict,
                    reason=reason,
                    baseline=baseline,
                    candidate=candidate,
                )
            )
    return answers
