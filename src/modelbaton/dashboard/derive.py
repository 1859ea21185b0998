"""The dashboard's pure derivations (no I/O): rollouts cut from the audit trail, their steps and
candidate fraction over time, shadow agreement over time, plan descriptions and Web UI links."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from modelbaton.contracts.rollout import AuditEntry, RolloutPlan, RolloutStage

#: How many of a rollout's document workflows the page lists (most recent first).
from modelbaton.dashboard.model import (
    AgreementPoint,
    FieldAgreementView,
    FractionPoint,
    LatencyView,
    ShadowView,
    StepView,
)
from modelbaton.shadow.report import ShadowReport
from modelbaton.shadow.store import ShadowComparison
from modelbaton.stats.fixed_sample import wilson_interval

#: Points drawn at most on an "over time" chart (evenly spaced, the last one always kept).
MAX_POINTS = 60

START_ACTIONS = ("start", "start-shadow")
END_ACTIONS = ("promote", "abort")


@dataclass(frozen=True)
class Segment:
    rollout_id: str
    entries: list[AuditEntry]


def segments(audit: Sequence[AuditEntry]) -> list[Segment]:
    """The audit trail cut into rollouts: each starts with a start entry, whose detail begins
    with the rollout id."""
    found: list[Segment] = []
    for entry in audit:
        if entry.action in START_ACTIONS:
            found.append(Segment(entry.detail.split(":", 1)[0].strip(), [entry]))
        elif found:
            found[-1].entries.append(entry)
    return found


VERSIONS = re.compile(r"candidate (\S+) (?:against|shadows) baseline (\S+)")
_PERCENT = re.compile(r"(?:->|at) (\d+(?:\.\d+)?)%")
_SAMPLE = re.compile(r"on (\d+(?:\.\d+)?)% of documents")


def _percent(text: str, pattern: re.Pattern[str] = _PERCENT) -> float | None:
    found = pattern.search(text)
    return float(found.group(1)) / 100 if found else None


def fraction_over_time(entries: Sequence[AuditEntry]) -> list[FractionPoint]:
    """The candidate's share of new documents after each change of one rollout: 0 in shadow and
    after an abort, 1 after a promotion (the candidate then serves everything)."""
    points: list[FractionPoint] = []
    for entry in entries:
        value: float | None
        if entry.action == "start-shadow" or entry.action == "abort":
            value = 0.0
        elif entry.action == "promote":
            value = 1.0
        elif entry.action in ("start", "set-fraction"):
            value = _percent(entry.detail)
        else:
            value = None
        if value is not None:
            points.append(FractionPoint(entry.at, value))
    return points


def _step_label(entry: AuditEntry) -> str:
    if entry.action == "start-shadow":
        sample = _percent(entry.detail, _SAMPLE)
        return f"shadow {sample:.0%} of documents" if sample is not None else "shadow"
    if entry.action in ("start", "set-fraction"):
        value = _percent(entry.detail)
        return f"canary {value:.0%}" if value is not None else "canary"
    return {"promote": "promoted", "abort": "aborted"}.get(entry.action, entry.action)


def steps_of(entries: Sequence[AuditEntry], in_progress: bool) -> list[StepView]:
    """The timeline of one rollout: every change done, the last one current while the rollout
    is in progress (a finished rollout has no current step: its last step is done)."""
    steps: list[StepView] = []
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        steps.append(
            StepView(
                label=_step_label(entry),
                state="current" if last and in_progress else "done",
                at=entry.at,
                actor=entry.actor,
                detail=entry.detail,
            )
        )
    return steps


def _spread(n: int, most: int) -> list[int]:
    """At most ``most`` indices of ``range(n)``, evenly spaced, the last one always included."""
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def agreement_over_time(rows: Sequence[ShadowComparison]) -> list[AgreementPoint]:
    """Cumulative agreement (with its Wilson interval) at each comparison, in recording order."""
    compared = sorted((r for r in rows if r.agree is not None), key=lambda r: r.recorded_at)
    points: list[AgreementPoint] = []
    agreed = 0
    cumulative: list[tuple[datetime, int, int]] = []
    for i, row in enumerate(compared, start=1):
        agreed += 1 if row.agree else 0
        cumulative.append((_aware(row.recorded_at), agreed, i))
    for idx in _spread(len(cumulative), MAX_POINTS):
        at, k, n = cumulative[idx]
        low, high = wilson_interval(k, n)
        points.append(AgreementPoint(at=at, n=n, rate=k / n, low=low, high=high))
    return points


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes for what was written in UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def shadow_view(report: ShadowReport, rows: Sequence[ShadowComparison]) -> ShadowView:
    """The page's form of a shadow report."""
    agreement = None
    if report.agreement is not None:
        low, high = report.agreement.interval
        last = max((_aware(r.recorded_at) for r in rows), default=datetime.now(UTC))
        agreement = AgreementPoint(
            at=last, n=report.agreement.n, rate=report.agreement.value, low=low, high=high
        )
    base_labels = sorted(report.confusion)
    cand_labels = sorted({c for row in report.confusion.values() for c in row})
    matrix = [[report.confusion[b].get(c, 0) for c in cand_labels] for b in base_labels]
    baseline = ", ".join(report.baseline_versions) or "?"
    candidate = ", ".join(report.candidate_versions) or "?"
    latency = [
        LatencyView(
            arm=arm,
            version=version,
            n=int(stats["n"]),
            p50_ms=float(stats["p50"]),
            p95_ms=float(stats["p95"]),
        )
        for arm, version in (("baseline", baseline), ("candidate", candidate))
        if (stats := report.latency_ms.get(arm))
    ]
    noise = report.noise["agreement"]["rate"] if report.noise else None
    return ShadowView(
        baseline_version=baseline,
        candidate_version=candidate,
        shadowed=report.shadowed,
        compared=report.agreement.n if report.agreement else 0,
        agreement=agreement,
        over_time=agreement_over_time(rows),
        baseline_labels=base_labels,
        candidate_labels=cand_labels,
        confusion=matrix,
        latency=latency,
        candidate_errors=dict(sorted(report.candidate_errors.items())),
        noise_agreement=noise,
        verdict=report.verdict,
        reasons=list(report.reasons),
        min_agreement=report.gate.min_agreement,
        target_width=report.gate.target_width,
        by_field=[
            FieldAgreementView(name, rate.n, rate.value, *rate.interval)
            for name, rate in report.by_field.items()
        ],
    )


def describe_plan(plan: RolloutPlan) -> str:
    """The plan in one sentence (as ``baton rollout status`` says it)."""
    if plan.candidate is None:
        return f"{plan.baseline.version} serves every document (revision {plan.revision})"
    if plan.stage is RolloutStage.SHADOW:
        return (
            f"baseline {plan.baseline.version} serves every document; candidate "
            f"{plan.candidate.version} shadows {plan.sample:.0%} of them (revision {plan.revision})"
        )
    return (
        f"{plan.fraction:.0%} of new documents to candidate {plan.candidate.version}, the rest "
        f"to baseline {plan.baseline.version} (revision {plan.revision})"
    )


def workflow_url(ui: str | None, namespace: str, workflow_id: str, run_id: str) -> str | None:
    """The Temporal Web UI page of one workflow run."""
    if not ui:
        return None
    return (
        f"{ui.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}/{quote(run_id, safe='')}/history"
    )


def list_url(ui: str | None, namespace: str, query: str) -> str | None:
    """The Temporal Web UI's workflow list filtered by a visibility query."""
    if not ui:
        return None
    return f"{ui.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(query)}"
