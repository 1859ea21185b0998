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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from modelbaton.contracts.rollout import Arm, AuditEntry, RolloutPlan, RolloutStage
from modelbaton.dashboard.derive import (
    END_ACTIONS,
    VERSIONS,
    Segment,
    describe_plan,
    fraction_over_time,
    list_url,
    segments,
    shadow_view,
    steps_of,
    workflow_url,
)
from modelbaton.dashboard.model import (
    ArmView,
    DashboardView,
    Panel,
    RolloutSummary,
    RolloutView,
    WorkflowRow,
)
from modelbaton.errors import ModelBatonError
from modelbaton.models.catalog import Catalog
from modelbaton.pipeline import search_attributes
from modelbaton.pipeline.messages import WORKFLOW_TYPE
from modelbaton.rollout.client import ArmCounts, Rollouts
from modelbaton.rollout.spec import PipelineSpec, reference_spec
from modelbaton.shadow.report import build_report
from modelbaton.shadow.store import ShadowStore

#: How many of a rollout's document workflows the page lists (most recent first).
LISTED_WORKFLOWS = 12
#: Seconds the audit trail's query may take: it needs a workflow worker, and without one the
#: server holds the query until its deadline, which must not stall the page.
AUDIT_TIMEOUT = 5.0


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
    spec: PipelineSpec = field(default_factory=reference_spec)

    @property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.client, self.catalog, self.task_queue, spec=self.spec)


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
    review = source.spec.review
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
                    and review is not None
                    and review.is_waiting(wf.search_attributes)
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


def _summary(segment: Segment, plan: RolloutPlan) -> RolloutSummary:
    start = segment.entries[0]
    found = VERSIONS.search(start.detail)
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
    cut: list[Segment],
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
