"""One measurement of a rollout, for the controller's gates: both arms from visibility (finished,
failed, retrying, stuck, sent to review, start-to-close spans), their comparisons and ground truth
from the database, the shadow report during a shadow step, and the plan's webhook and Prometheus
checks.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client

from modelbaton.contracts.rollout import CHECK_SUFFIX, Arm, RolloutPlan, pool_task_queue
from modelbaton.controller.gates import ArmMetrics, Metrics, ShadowChecks
from modelbaton.controller.messages import MeasureRequest
from modelbaton.controller.prometheus import ask_prometheus
from modelbaton.controller.truth import GroundTruth
from modelbaton.controller.webhook import ask_webhook
from modelbaton.models.resolver import CatalogSource
from modelbaton.ops.problems import retrying_activities, stuck_workflows
from modelbaton.rollout.client import Rollouts, count_workflows_where
from modelbaton.rollout.spec import PipelineSpec
from modelbaton.shadow.report import answer_latencies, build_report, less_accurate
from modelbaton.shadow.store import ShadowComparison, ShadowStore
from modelbaton.stats.sequential import latency_histogram
from modelbaton.versioning.builds import VERSION_ATTRIBUTE


class Meter:
    """Measures rollouts of one pipeline (its client, catalog, spec, shadow rows, ground truth)."""

    def __init__(
        self,
        client: Client,
        catalog: CatalogSource,
        spec: PipelineSpec,
        shadows: ShadowStore,
        truth: GroundTruth | None,
        rollouts: Callable[[str], Rollouts],
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._spec = spec
        self._shadows = shadows
        self._truth = truth
        self._rollouts = rollouts

    async def measure(self, req: MeasureRequest) -> Metrics:
        """Both arms of rollout ``req.rollout_id`` (or both builds), and what the step needs."""
        metrics = Metrics(measured_at=datetime.now(UTC))
        document = f'WorkflowType = "{self._spec.workflow_type}" AND TaskQueue = "{req.task_queue}"'
        if req.builds is not None:
            # The documents pinned to each build; the results store knows no builds, so
            # reviewed accuracy is not judged for a code rollout.
            accuracy: dict[str, tuple[int, int]] = {}
            arms = {
                arm: f'{document} AND {VERSION_ATTRIBUTE} = "{version}"'
                for arm, version in req.builds.items()
            }
        else:
            accuracy = await asyncio.to_thread(self.reviewed, req.rollout_id)
            arms = {
                arm.value: f'{document} AND RolloutId = "{req.rollout_id}" '
                f'AND RolloutArm = "{arm.value}"'
                for arm in Arm
            }
        for arm_name, where in arms.items():
            arm = Arm(arm_name)
            review = self._spec.review
            c = await count_workflows_where(self._client, where, review)
            retrying = await retrying_activities(
                self._client, timedelta(seconds=req.retrying_after_seconds), where=where
            )
            stuck_where = where
            if req.builds is not None and arm is Arm.CANDIDATE and req.since is not None:
                since = req.since.strftime("%Y-%m-%dT%H:%M:%SZ")
                stuck_where = f'{document} AND StartTime >= "{since}"'
            stuck = await stuck_workflows(self._client, where=stuck_where)
            to_review = (
                (await self._client.count_workflows(f"{where} AND {review.sent()}")).count
                if review is not None
                else None
            )
            reviewed, correct = accuracy.get(arm.value, (0, 0))
            spans = await self._spans(where)
            measured = ArmMetrics(
                completed=c.completed,
                failed=c.failed,
                running=c.running,
                retrying=len({r.workflow_id for r in retrying}),
                stuck=len(stuck),
                reviewed_or_waiting=to_review or 0,
                review_measured=to_review is not None,
                p95_latency_ms=_p95(spans),
                latency_histogram=latency_histogram(spans),
                reviewed=reviewed,
                reviewed_correct=correct,
            )
            if arm is Arm.CANDIDATE:
                metrics.candidate = measured
            else:
                metrics.baseline = measured
        plan = await self._rollouts(req.task_queue).plan() if req.builds is None else None
        if plan is not None:
            await self._compared(plan, req, metrics)
        if req.shadow_documents is not None:
            rows = await asyncio.to_thread(self._shadows.rows, req.rollout_id)
            gate = self._catalog.current().shadow_gate
            gate = gate.model_copy(update={"min_documents": req.shadow_documents})
            report = build_report(req.rollout_id, rows, gate)
            metrics.shadow_compared = report.agreement.n if report.agreement else 0
            metrics.shadow_ready = report.ready
            metrics.shadow_summary = report.summary()
            metrics.shadow_agreed = report.agreement.successes if report.agreement else None
            metrics.shadow_min_agreement = gate.min_agreement
            # Whether anything but the agreement's bound holds the report back.
            lax = gate.model_copy(update={"min_agreement": 0.0})
            metrics.shadow_other_checks_ready = report.ready_under(lax)
            latencies = answer_latencies(rows)
            metrics.shadow_checks = ShadowChecks(
                calls=report.shadowed,
                candidate_errors=report.candidate_error_count,
                max_error_rate=gate.max_error_rate,
                schema_errors=report.schema_errors,
                max_schema_errors=gate.max_schema_errors,
                baseline_latency=latency_histogram(latencies["baseline"]),
                candidate_latency=latency_histogram(latencies["candidate"]),
                max_p95_latency_ratio=gate.max_p95_latency_ratio,
                accuracy_worse=less_accurate(report, gate),
            )
        if req.webhook is not None and req.shadow_documents is None:
            payload = {
                "rollout_id": req.rollout_id,
                "task_queue": req.task_queue,
                "metrics": metrics.model_dump(mode="json", exclude={"webhook"}),
            }
            metrics.webhook = await ask_webhook(req.webhook, payload, req.webhook_timeout_seconds)
        if req.prometheus is not None and req.shadow_documents is None:
            metrics.prometheus = await ask_prometheus(req.prometheus, _arms(req, plan))
        return metrics

    async def _compared(self, plan: RolloutPlan, req: MeasureRequest, metrics: Metrics) -> None:
        """Each canary arm's documents the baseline also answered, and how many agreed."""
        candidate = plan.candidate.version if plan.candidate else plan.last_candidate
        if candidate is None:
            return
        check_id = f"{req.rollout_id}{CHECK_SUFFIX}"
        counts = await asyncio.to_thread(self._shadows.check_counts, check_id, candidate)
        for arm in (metrics.candidate, metrics.baseline):
            arm.compared, arm.agreed = counts[
                "candidate" if arm is metrics.candidate else "baseline"
            ]
        if metrics.candidate.compared:
            metrics.candidate.agreed_by_field = await asyncio.to_thread(
                self._fields_agreed, check_id, candidate
            )

    def _fields_agreed(self, check_id: str, candidate: str) -> dict[str, int] | None:
        """Per field, how many of the candidate arm's compared documents agreed on it (None when
        the comparator records no fields, as the reference pipeline's does not)."""
        with Session(self._shadows.engine) as session:
            rows = session.scalars(
                select(ShadowComparison.fields).where(
                    ShadowComparison.rollout_id == check_id,
                    ShadowComparison.baseline_version == candidate,
                    ShadowComparison.agree.is_not(None),
                )
            ).all()
        agreed: Counter[str] = Counter()
        for fields in rows:
            for name, ok in (fields or {}).items():
                agreed[name] += bool(ok)
        return dict(sorted(agreed.items())) if any(rows) else None

    async def _spans(self, where: str, limit: int = 2000) -> list[float]:
        """Start-to-close milliseconds of the arm's completed documents no person held up (where
        the pipeline marks those)."""
        query = f'{where} AND ExecutionStatus = "Completed"'
        if self._spec.review is not None:
            query += f" AND {self._spec.review.not_sent()}"
        return [
            (wf.close_time - wf.start_time).total_seconds() * 1000
            async for wf in self._client.list_workflows(query, limit=limit)
            if wf.close_time and wf.start_time
        ]

    def reviewed(self, rollout_id: str) -> dict[str, tuple[int, int]]:
        """Per arm: (documents judged, of which the model had right), from the pipeline's
        ground truth; nothing without one."""
        if self._truth is None:
            return {}
        return {
            arm: (int(n), int(right)) for arm, (n, right) in self._truth.judged(rollout_id).items()
        }


def _arms(req: MeasureRequest, plan: RolloutPlan | None) -> dict[str, tuple[str, str]]:
    """Per arm, what a Prometheus query's ``$version`` and ``$pool_queue`` stand for: the build
    and the pipeline's queue in a build rollout, else the model version and its pool's queue."""
    if req.builds is not None:
        return {arm: (build, req.task_queue) for arm, build in req.builds.items()}
    assert plan is not None
    candidate = plan.candidate.version if plan.candidate else plan.last_candidate
    versions = {"baseline": plan.baseline.version, "candidate": candidate or ""}
    return {arm: (v, pool_task_queue(req.task_queue, v)) for arm, v in versions.items()}


def _p95(spans: list[float]) -> float | None:
    """The 95th percentile (numpy's linear interpolation), None without spans."""
    if not spans:
        return None
    import numpy as np  # imported here: numpy costs every worker process that imports this

    return float(np.percentile(spans, 95))
