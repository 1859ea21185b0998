"""Ground truth for the accuracy gate: where a pipeline learns, per rollout arm, how many of its
documents someone judged and how many of those the model had right.

The accuracy gate (``reviewed_accuracy``) reads whatever :class:`GroundTruth` the controller's
activities were given. The reference pipeline's provider is its human review step
(:class:`ReviewedLabels`: the reviewer's label against the model's, in the results store); an
extraction pipeline may count audited invoices, a fraud scorer chargebacks, a ranker clicks.
A provider is called from an activity (in a thread), so it may do I/O; it must count only the
documents of the rollout it is asked about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelbaton.pipeline.store import ClassificationRecord, ResultsStore

#: Per arm (``baseline`` / ``candidate``): (documents judged, of which the model had right).
Judged = Mapping[str, tuple[int, int]]


@runtime_checkable
class GroundTruth(Protocol):
    """A source of truth for the accuracy gate."""

    def judged(self, rollout_id: str) -> Judged:
        """Per arm, (documents judged, of which right), for the documents of ``rollout_id``;
        an arm with no judged document may be left out (its gate is then not judged)."""
        ...


class ReviewedLabels:
    """The reference pipeline's truth: documents a person reviewed, the reviewer's final label
    against the model's."""

    def __init__(self, store: ResultsStore) -> None:
        self._store = store

    def judged(self, rollout_id: str) -> Judged:
        with Session(self._store.engine) as session:
            rows = session.execute(
                select(
                    ClassificationRecord.arm,
                    ClassificationRecord.model_label,
                    ClassificationRecord.final_label,
                ).where(
                    ClassificationRecord.rollout_id == rollout_id,
                    ClassificationRecord.outcome == "reviewed",
                )
            ).all()
        total: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for arm, model_label, final_label in rows:
            total[arm or "none"] += 1
            right[arm or "none"] += model_label == final_label
        return {arm: (total[arm], right[arm]) for arm in total}
