"""The dashboard's data layer: one call, :func:`build_view`, returns everything the page shows as a
typed view model. Templates only lay it out; every figure is computed here, where tests reach it.

Sources, each read the way the CLI reads it:

- the plan: the rollout workflow's memo (:meth:`Rollouts.plan`);
- the audit trail: the rollout workflow's ``view`` query (needs a workflow worker); the steps of a
  rollout, its candidate fraction over time and the list of past rollouts are derived from it;
- per-arm counts: visibility (:meth:`Rollouts.arm_counts`), the same numbers as
  ``baton rollout status``;
- the shadow report: the ``shadow_comparisons`` rows and the catalog's gate
  (:func:`~modelbaton.shadow.report.build_report`, as ``baton shadow report``), plus agreement over
  time from the rows' ``recorded_at``;
- the listed workflows: the rollout's most recent document workflows from visibility, each with a
  link into the Temporal Web UI.

Extension points for features that land later (the rollout controller, drains, Worker
Versioning): :data:`PANEL_PROVIDERS` (a provider returns a :class:`Panel`, drawn by its own
template under ``templates/panels/``), :attr:`RolloutView.steps` (a controller appends its
``planned`` steps) and :attr:`ArmView.builds` (counts per build).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from modelbaton.contracts.rollout import Arm, AuditEntry, RolloutPlan, RolloutStage
from modelbaton.contracts.statistics import wilson_interval
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.messages import WORKFLOW_TYPE
from modelbaton.rollout.client import ArmCounts, Rollouts
from modelbaton.shadow.report import ShadowReport, build_report
from modelbaton.shadow.store import ShadowComparison, ShadowStore

#: How many of a rollout's document workflows the page lists (most recent first).
LISTED_WORKFLOWS = 12
#: Seconds the audit trail's query may take: it needs a workflow worker, and without one the
#: server holds the query until its deadline, which must not stall the page.
AUDIT_TIMEOUT = 5.0
#: Points drawn at most on an "over time" chart (evenly spaced, the last one always kept).
MAX_POINTS = 60

START_ACTIONS = ("start", "start-shadow")
END_ACTIONS = ("promote", "abort")


# --------------------------------------------------------------------------------------------
# the view model


@dataclass(frozen=True)
class StepView:
    """One step of a rollout on its timeline: done, the current one, or planned (a controller's
    steps still to come)."""

    label: str
    state: str  # "done" | "current" | "planned"
    at: datetime | None = None
    actor: str = ""
    detail: str = ""


@dataclass(frozen=True)
class FractionPoint:
    """The share of new documents the candidate serves from ``at`` on."""

    at: datetime
    fraction: float


@dataclass(frozen=True)
class BuildCounts:
    """One worker build's share of an arm (filled once Worker Versioning lands)."""

    build_id: str
    running: int = 0
    completed: int = 0
    failed: int = 0
    waiting_for_review: int = 0


@dataclass(frozen=True)
class ArmView:
    """One arm of a rollout: its model version and its workflows as visibility counts them."""

    arm: str
    version: str
    running: int
    waiting_for_review: int
    completed: int
    failed: int
    builds: list[BuildCounts] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.running + self.completed + self.failed


@dataclass(frozen=True)
class AgreementPoint:
    """Agreement of the arms over the comparisons recorded up to ``at``, with its Wilson 95 %
    interval."""

    at: datetime
    n: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class LatencyView:
    arm: str
    version: str
    n: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class ShadowView:
    """The shadow report of one rollout, laid out for the page."""

    baseline_version: str
    candidate_version: str
    shadowed: int
    compared: int
    agreement: AgreementPoint | None
    over_time: list[AgreementPoint]
    #: Labels of the confusion matrix: rows are the baseline's, columns the candidate's.
    baseline_labels: list[str]
    candidate_labels: list[str]
    confusion: list[list[int]]
    latency: list[LatencyView]
    candidate_errors: dict[str, int]
    noise_agreement: float | None
    verdict: str
    reasons: list[str]
    min_agreement: float
    target_width: float


@dataclass(frozen=True)
class WorkflowRow:
    """A listed document workflow, with its link into the Temporal Web UI."""

    workflow_id: str
    run_id: str
    arm: str
    version: str
    status: str
    started_at: datetime | None
    review: str
    url: str | None


@dataclass(frozen=True)
class Panel:
    """A section another feature adds to a rollout's page: ``template`` is the name of a Jinja
    template under ``templates/`` that draws ``data``; it sees ``panel``, ``r`` (the
    :class:`RolloutView`) and ``view`` (the :class:`DashboardView`). ``panels/facts.html`` draws
    any ``data`` given as a list of (label, value) pairs, values already with their units."""

    key: str
    title: str
    template: str
    data: Any


@dataclass
class RolloutView:
    """Everything the page shows of one rollout."""

    rollout_id: str
    model_id: str
    baseline_version: str
    candidate_version: str
    #: "shadow", "canary" (in progress), "promoted" or "aborted".
    state: str
    in_progress: bool
    fraction: float
    sample: float
    revision: int
    steps: list[StepView]
    fraction_over_time: list[FractionPoint]
    arms: list[ArmView]
    shadow: ShadowView | None
    audit: list[AuditEntry]
    workflows: list[WorkflowRow]
    workflows_url: str | None
    rollout_workflow_url: str | None
    panels: list[Panel] = field(default_factory=list)

    @property
    def current_step(self) -> StepView | None:
        return next((s for s in self.steps if s.state == "current"), None)


@dataclass(frozen=True)
class RolloutSummary:
    """A line of the rollout history."""

    rollout_id: str
    candidate_version: str
    baseline_version: str
    state: str
    started_at: datetime | None


@dataclass
class DashboardView:
    """The whole page: the pipeline, its rollouts, and the one shown in full."""

    generated_at: datetime
    namespace: str
    task_queue: str
    model_id: str
    plan: RolloutPlan
    plan_text: str
    rollouts: list[RolloutSummary]
    selected: RolloutView | None
    temporal_ui_url: str | None
    #: Things that could not be read this time (shown on the page, never raised).
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# pure derivations (no I/O)


@dataclass(frozen=True)
class _Segment:
    rollout_id: str
    entries: list[AuditEntry]


def segments(audit: Sequence[AuditEntry]) -> list[_Segment]:
    """The audit trail cut into rollouts: each starts with a start entry, whose detail begins
    with the rollout id."""
    found: list[_Segment] = []
    for entry in audit:
        if entry.action in START_ACTIONS:
            found.append(_Segment(entry.detail.split(":", 1)[0].strip(), [entry]))
        elif found:
            found[-1].entries.append(entry)
    return found


_VERSIONS = re.compile(r"candidate (\S+) (?:against|shadows) baseline (\S+)")
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


# --------------------------------------------------------------------------------------------
# gathering


@dataclass(frozen=True)
class DashboardSource:
    """Where the page's figures come from: one pipeline (its task queue) on one namespace."""

    client: Client
    catalog: Catalog
    task_queue: str
    engine: Engine
    temporal_ui_url: str | None = None
    #: The pipeline's workflow types (the project's), whose documents the page lists.
    workflow_types: tuple[str, ...] = (WORKFLOW_TYPE,)

    @property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.client, self.catalog, self.task_queue)


#: Providers of extra panels: called for the rollout shown in full, in order; a provider returns
#: None when it has nothing to show. Append to it (at import time of the feature's module, or in
#: ``create_app(panel_providers=...)``) to add a section to the page.
PanelProvider = Callable[[DashboardSource, RolloutView], Awaitable[Panel | None]]
PANEL_PROVIDERS: list[PanelProvider] = []


def _documents_query(source: DashboardSource, rollout_id: str) -> str:
    names = source.workflow_types
    types = (
        f'WorkflowType = "{names[0]}"'
        if len(names) == 1
        else "WorkflowType IN (" + ", ".join(f'"{t}"' for t in names) + ")"
    )
    return f'{types} AND TaskQueue = "{source.task_queue}" AND RolloutId = "{rollout_id}"'


async def _listed(source: DashboardSource, rollout_id: str) -> list[WorkflowRow]:
    rows: list[WorkflowRow] = []
    query = _documents_query(source, rollout_id)
    async for wf in source.client.list_workflows(query, limit=LISTED_WORKFLOWS):
        attrs = wf.typed_search_attributes
        status = wf.status.name.lower().replace("_", " ") if wf.status else "unknown"
        rows.append(
            WorkflowRow(
                workflow_id=wf.id,
                run_id=wf.run_id,
                arm=attrs.get(search_attributes.ROLLOUT_ARM) or "",
                version=attrs.get(search_attributes.MODEL_VERSION) or "",
                status=status,
                started_at=wf.start_time,
                review=(
                    "waiting for review"
                    if wf.status is WorkflowExecutionStatus.RUNNING
                    and attrs.get(search_attributes.REVIEW_STATE) == "pending"
                    else ""
                ),
                url=workflow_url(source.temporal_ui_url, source.client.namespace, wf.id, wf.run_id),
            )
        )
    return rows


def _arms(counts: dict[str, ArmCounts], versions: dict[str, str]) -> list[ArmView]:
    return [
        ArmView(
            arm=arm.value,
            version=versions.get(arm.value, "?"),
            running=counts.get(arm.value, ArmCounts()).running,
            waiting_for_review=counts.get(arm.value, ArmCounts()).waiting_for_review,
            completed=counts.get(arm.value, ArmCounts()).completed,
            failed=counts.get(arm.value, ArmCounts()).failed,
        )
        for arm in Arm
    ]


def _summary(segment: _Segment, plan: RolloutPlan) -> RolloutSummary:
    start = segment.entries[0]
    found = _VERSIONS.search(start.detail)
    candidate, baseline = found.groups() if found else ("?", "?")
    last = segment.entries[-1].action
    if last in END_ACTIONS:
        state = "promoted" if last == "promote" else "aborted"
    elif plan.rollout_id == segment.rollout_id and plan.stage is not RolloutStage.STEADY:
        state = plan.stage.value
    else:
        state = "unknown"
    return RolloutSummary(segment.rollout_id, candidate, baseline, state, start.at)


async def build_view(
    source: DashboardSource,
    rollout_id: str | None = None,
    panel_providers: Sequence[PanelProvider] = (),
) -> DashboardView:
    """Everything the page shows: the plan, the rollout history, and ``rollout_id`` (default: the
    current or last rollout) in full. What cannot be read is listed in ``problems``; a Temporal
    that does not answer at all raises (the page then says so)."""
    problems: list[str] = []
    rollouts = source.rollouts
    plan = await rollouts.plan()
    audit: list[AuditEntry] = []
    if plan.revision:
        try:
            audit = await asyncio.wait_for(rollouts.audit(), AUDIT_TIMEOUT)
        except TimeoutError:
            problems.append(
                f"audit trail unavailable: no workflow worker answered its query within "
                f"{AUDIT_TIMEOUT:.0f} s (steps and history need one)"
            )
        except (ModelBatonError, RPCError) as exc:
            problems.append(f"audit trail unavailable (is a workflow worker running?): {exc}")
    cut = segments(audit)
    summaries = [_summary(s, plan) for s in cut]
    chosen = rollout_id or plan.rollout_id or (cut[-1].rollout_id if cut else None)
    selected = None
    if chosen is not None:
        selected = await _rollout(source, plan, chosen, cut, summaries, problems)
        for provider in [*PANEL_PROVIDERS, *panel_providers]:
            try:
                panel = await provider(source, selected)
            except Exception as exc:  # one broken section must not take the page down
                problems.append(f"{getattr(provider, '__name__', 'panel')} failed: {exc}")
                continue
            if panel is not None:
                selected.panels.append(panel)
    return DashboardView(
        generated_at=datetime.now(UTC),
        namespace=source.client.namespace,
        task_queue=source.task_queue,
        model_id=plan.model_id,
        plan=plan,
        plan_text=describe_plan(plan),
        rollouts=list(reversed(summaries)),
        selected=selected,
        temporal_ui_url=source.temporal_ui_url,
        problems=problems,
    )


async def _rollout(
    source: DashboardSource,
    plan: RolloutPlan,
    rollout_id: str,
    cut: list[_Segment],
    summaries: list[RolloutSummary],
    problems: list[str],
) -> RolloutView:
    segment = next((s for s in cut if s.rollout_id == rollout_id), None)
    summary = next((s for s in summaries if s.rollout_id == rollout_id), None)
    current = plan.rollout_id == rollout_id and plan.stage is not RolloutStage.STEADY
    if current and plan.candidate is not None:
        candidate, baseline = plan.candidate.version, plan.baseline.version
    elif summary is not None:
        candidate, baseline = summary.candidate_version, summary.baseline_version
    else:
        candidate, baseline = "?", "?"
    state = plan.stage.value if current else (summary.state if summary else "unknown")
    entries = segment.entries if segment else []
    counts = await source.rollouts.arm_counts(rollout_id)
    shadow = None
    try:
        # SQLAlchemy is synchronous: keep the server's event loop free for other requests.
        rows = await asyncio.to_thread(ShadowStore(source.engine).rows, rollout_id)
    except Exception as exc:  # the page stays up when the results database does not answer
        problems.append(f"shadow comparisons unavailable: {exc}")
        rows = []
    if rows:
        report = build_report(rollout_id, rows, source.catalog.shadow_gate)
        shadow = shadow_view(report, rows)
    query = _documents_query(source, rollout_id)
    return RolloutView(
        rollout_id=rollout_id,
        model_id=plan.model_id,
        baseline_version=baseline,
        candidate_version=candidate,
        state=state,
        in_progress=current,
        fraction=plan.fraction if current else 0.0,
        sample=plan.sample if current else 0.0,
        revision=plan.revision,
        steps=steps_of(entries, current),
        fraction_over_time=fraction_over_time(entries),
        arms=_arms(counts, {"baseline": baseline, "candidate": candidate}),
        shadow=shadow,
        audit=entries,
        workflows=await _listed(source, rollout_id),
        workflows_url=list_url(source.temporal_ui_url, source.client.namespace, query),
        rollout_workflow_url=(
            f"{source.temporal_ui_url.rstrip('/')}/namespaces/"
            f"{quote(source.client.namespace, safe='')}/workflows/"
            f"{quote(source.rollouts.workflow_id, safe='')}"
            if source.temporal_ui_url
            else None
        ),
    )
