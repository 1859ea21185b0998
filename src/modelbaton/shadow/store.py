"""The ``shadow_comparisons`` table: one row per document and rollout, never in the downstream
results table. Writes are upserts, so a retried or repeated record (the reviewed label arriving
later, a re-run of the document) leaves one row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from modelbaton.pipeline.store import add_missing_columns


class _Base(DeclarativeBase):
    pass


class ShadowComparison(_Base):
    """One shadowed document's comparison between the baseline and the candidate."""

    __tablename__ = "shadow_comparisons"
    __table_args__ = (UniqueConstraint("rollout_id", "document_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(String(128), index=True, nullable=False)
    document_id: Mapped[str] = mapped_column(String(128), nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(256), nullable=False)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    baseline_version: Mapped[str] = mapped_column(String(64), nullable=False)
    candidate_version: Mapped[str] = mapped_column(String(64), nullable=False)
    baseline_label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    candidate_label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    baseline_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    candidate_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    agree: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    js_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    only_baseline_classes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    only_candidate_classes: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    baseline_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    candidate_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    baseline_error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate_error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    noise_label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    noise_agree: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    noise_js_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    noise_error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: Per-field agreement, for comparators that record fields (an extraction's ``FieldMatch``).
    fields: Mapped[dict[str, bool] | None] = mapped_column(JSON, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ShadowStore:
    """Upserts and reads of ``shadow_comparisons`` on the results database's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _Base.metadata.create_all(engine)
        add_missing_columns(engine, _Base.metadata)

    def record(self, row: dict[str, Any]) -> None:
        """Insert the row of (rollout, document), or replace the one already there.

        A row that knows the reviewed label is never overwritten by one that does not (a late
        retry of the first record after the review was recorded).
        """
        values = {**row, "recorded_at": datetime.now(UTC)}
        insert_fn = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert_fn(ShadowComparison).values(**values)
        updates = {k: v for k, v in values.items() if k not in ("rollout_id", "document_id")}
        if row.get("reviewed_label") is None:
            del updates["reviewed_label"]
        stmt = stmt.on_conflict_do_update(
            index_elements=["rollout_id", "document_id"], set_=updates
        )
        with Session(self.engine) as session, session.begin():
            session.execute(stmt)

    def rows(self, rollout_id: str) -> list[ShadowComparison]:
        with Session(self.engine) as session:
            query = (
                select(ShadowComparison)
                .where(ShadowComparison.rollout_id == rollout_id)
                .order_by(ShadowComparison.id)
            )
            return list(session.scalars(query))

    def check_counts(self, check_id: str, candidate_version: str) -> dict[str, tuple[int, int]]:
        """The canary's comparisons (recorded under ``check_id``, the rollout id plus
        ``CHECK_SUFFIX``) per arm of the primary: ``{"candidate": (compared, agreed), "baseline":
        ...}``. A row's ``baseline_*`` columns hold the primary's answer, so the candidate arm's
        rows are those whose primary is ``candidate_version``; a row counts as compared once both
        answered."""
        counts = {"candidate": (0, 0), "baseline": (0, 0)}
        with Session(self.engine) as session:
            query = (
                select(
                    ShadowComparison.baseline_version == candidate_version,
                    func.count(),
                    func.count().filter(ShadowComparison.agree.is_(True)),
                )
                .where(ShadowComparison.rollout_id == check_id)
                .where(ShadowComparison.agree.is_not(None))
                .group_by(ShadowComparison.baseline_version == candidate_version)
            )
            for on_candidate, compared, agreed in session.execute(query):
                counts["candidate" if on_candidate else "baseline"] = (compared, agreed)
        return counts

    def rollouts(self) -> list[str]:
        """Rollout ids with at least one comparison, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(ShadowComparison.rollout_id)
                .group_by(ShadowComparison.rollout_id)
                .order_by(func.min(ShadowComparison.id))
            )
            return list(session.scalars(query))
