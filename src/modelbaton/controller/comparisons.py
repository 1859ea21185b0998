"""Recording a user pipeline's comparisons where the controller's gates and the shadow report
read them (the ``shadow_comparisons`` table), whatever the comparator.

The workflow compares the two answers itself (a :class:`~modelbaton.contracts.comparison.
Comparison` from its comparator: per-field agreement for an extraction) and hands the result to
:meth:`ComparisonActivities.record`, scheduled by typed reference::

    await workflow.execute_activity_method(
        ComparisonActivities.record,
        ComparisonRecord.of(inp.shadow, inp.assignment, doc_id, answer, comparison),
        start_to_close_timeout=timedelta(seconds=30),
    )

Rows are keyed by (``shadow.rollout_id``, document): the shadow stage's under the rollout id, a
canary's check under the rollout id plus ``:canary``. ``baseline_*`` columns hold the primary's
answer and ``candidate_*`` the other call's, as the reference pipeline records them.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from temporalio import activity

from modelbaton.contracts.comparison import Comparison
from modelbaton.contracts.rollout import ModelAssignment, ShadowAssignment
from modelbaton.shadow.store import ShadowStore

RECORD_COMPARISON = "modelbaton_record_comparison"


class ComparisonRecord(BaseModel):
    """One document's comparison, as a workflow records it (in history: optional fields only)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rollout_id: str = Field(min_length=1)
    document_id: str = Field(min_length=1)
    primary_version: str = Field(min_length=1)
    other_version: str = Field(min_length=1)
    #: None when the other call gave no answer (``other_error_type`` says why).
    comparison: Comparison | None = None
    other_error_type: str | None = None
    other_error: str | None = None
    #: The noise baseline (the baseline called twice), when the document was sampled for it.
    noise: Comparison | None = None
    noise_error_type: str | None = None
    #: Each call's latency as the workflow measured it (``ModelCall.latency_ms``,
    #: ``ShadowAnswer.latency_ms``): the shadow report's latency per arm.
    primary_latency_ms: float | None = None
    other_latency_ms: float | None = None

    @classmethod
    def of(
        cls,
        shadow: ShadowAssignment,
        primary: ModelAssignment,
        document_id: str,
        comparison: Comparison | None,
        *,
        error_type: str | None = None,
        error: str | None = None,
        noise: Comparison | None = None,
        noise_error_type: str | None = None,
        primary_latency_ms: float | None = None,
        other_latency_ms: float | None = None,
    ) -> ComparisonRecord:
        return cls(
            rollout_id=shadow.rollout_id,
            document_id=document_id,
            primary_version=primary.model_version,
            other_version=shadow.candidate.model_version,
            comparison=comparison,
            other_error_type=error_type,
            other_error=error,
            noise=noise,
            noise_error_type=noise_error_type,
            primary_latency_ms=primary_latency_ms,
            other_latency_ms=other_latency_ms,
        )


class ComparisonActivities:
    """The ``modelbaton_record_comparison`` activity on ``engine`` (register it on the
    pipeline's workflow worker; the controller reads the same database)."""

    def __init__(self, engine: Engine) -> None:
        self._store = ShadowStore(engine)

    @activity.defn(name=RECORD_COMPARISON)
    async def record(self, rec: ComparisonRecord) -> None:
        """Upsert the row of (rollout, document)."""
        info = activity.info()
        c = rec.comparison
        row: dict[str, object] = {
            "rollout_id": rec.rollout_id,
            "document_id": rec.document_id,
            "workflow_id": info.workflow_id or "",
            "run_id": info.workflow_run_id or "",
            "baseline_version": rec.primary_version,
            "candidate_version": rec.other_version,
            "agree": c.agree if c is not None else None,
            "js_distance": c.distance if c is not None else None,
            "fields": dict(c.fields) if c is not None and c.fields else None,
            "only_baseline_classes": [],
            "only_candidate_classes": [],
            "candidate_error_type": rec.other_error_type,
            "candidate_error": (rec.other_error or "")[:1000] or None,
            "noise_agree": rec.noise.agree if rec.noise is not None else None,
            "noise_js_distance": rec.noise.distance if rec.noise is not None else None,
            "noise_error_type": rec.noise_error_type,
            "baseline_latency_ms": rec.primary_latency_ms,
            "candidate_latency_ms": rec.other_latency_ms,
            "reviewed_label": None,
        }
        await asyncio.to_thread(self._store.record, row)

    def all(self) -> list[object]:
        return [self.record]
