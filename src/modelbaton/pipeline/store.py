"""The results store: one row per document, written idempotently.

SQLite by default, PostgreSQL by URL (``MODELBATON_DATABASE_URL``). Idempotency rests on a unique
``document_id``: an activity retry after a lost acknowledgement, or a document resubmitted under a
new workflow run, finds the row already there and returns it instead of writing a second one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from modelbaton.errors import ConfigError


class _Base(DeclarativeBase):
    pass


class ClassificationRecord(_Base):
    """A document's final classification and where it was routed."""

    __tablename__ = "classification_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    workflow_id: Mapped[str] = mapped_column(String(256), nullable=False)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    branch: Mapped[str] = mapped_column(String(16), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    schema_version: Mapped[int] = mapped_column(Integer, nullable=False)
    model_label: Mapped[str] = mapped_column(String(128), nullable=False)
    final_label: Mapped[str] = mapped_column(String(128), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    reviewer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    destination: Mapped[str] = mapped_column(String(128), nullable=False)
    scores_by_class: Mapped[dict[str, float]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


@dataclass(frozen=True)
class WriteResult:
    record_id: int
    destination: str
    created: bool


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so a worker and the CLI can share it."""
    if url.startswith("sqlite:///"):
        db_path = Path(url.removeprefix("sqlite:///"))
        if str(db_path) not in ("", ":memory:"):
            db_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return create_engine(url.replace("postgres://", "postgresql://", 1), pool_pre_ping=True)
    raise ConfigError(
        f"MODELBATON_DATABASE_URL: unsupported database URL {url.split(':', 1)[0]!r}; "
        "use sqlite:///PATH or postgresql+psycopg://..."
    )


class ResultsStore:
    """Idempotent writes and summary reads over the results table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        _Base.metadata.create_all(self.engine)

    def write(self, row: dict[str, Any]) -> WriteResult:
        """Insert ``row`` unless its document_id exists; either way return the stored row's id."""
        values = {**row, "created_at": datetime.now(UTC)}
        dialect = self.engine.dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert_fn(ClassificationRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["document_id"])
            .returning(ClassificationRecord.id)
        )
        with Session(self.engine) as session, session.begin():
            new_id = session.execute(stmt).scalar_one_or_none()
            if new_id is not None:
                return WriteResult(new_id, row["destination"], created=True)
            existing = session.execute(
                select(ClassificationRecord.id, ClassificationRecord.destination).where(
                    ClassificationRecord.document_id == row["document_id"]
                )
            ).one()
            return WriteResult(existing.id, existing.destination, created=False)

    def records(self) -> list[ClassificationRecord]:
        with Session(self.engine) as session:
            rows = session.scalars(select(ClassificationRecord).order_by(ClassificationRecord.id))
            return list(rows)

    def count_for(self, document_id: str) -> int:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ClassificationRecord.id).where(
                    ClassificationRecord.document_id == document_id
                )
            )
            return len(list(rows))

    def summary(self) -> dict[str, Any]:
        """Counts per final label, per model version, per branch and per outcome."""
        recs = self.records()
        return {
            "total": len(recs),
            "by_class": dict(Counter(r.final_label for r in recs)),
            "by_model_version": dict(Counter(r.model_version for r in recs)),
            "by_branch": dict(Counter(r.branch for r in recs)),
            "by_outcome": dict(Counter(r.outcome for r in recs)),
            "by_destination": dict(Counter(r.destination for r in recs)),
        }

    def close(self) -> None:
        self.engine.dispose()
