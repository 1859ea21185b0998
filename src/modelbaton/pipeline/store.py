"""The results store: one current row per document, and the rows that later runs superseded.

SQLite by default, PostgreSQL by URL (``MODELBATON_DATABASE_URL``). ``classification_results``
holds exactly one current record per document (a unique ``document_id``). A write from the run that
already wrote (an activity retry after a lost acknowledgement) finds its row and returns it. A write
from another run of the same document (a re-run after a failure or a terminate-and-restart) moves
the current row into ``superseded_results``, with which run replaced it, and stores the new one, in
one transaction: never two current rows, and nothing lost.

Tables evolve by adding nullable columns; opening a database made by an older release adds them.
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
    MetaData,
    String,
    create_engine,
    delete,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from modelbaton.errors import ConfigError, SupersededRunError


class _Base(DeclarativeBase):
    pass


class _RecordColumns:
    """Columns shared by current and superseded records."""

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
    #: Added with rollouts; NULL on rows written before them.
    arm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    rollout_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: When the writing run started; a run that started before the current record's run is
    #: stale (terminated and restarted) and its write is refused. NULL on older rows.
    run_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ClassificationRecord(_RecordColumns, _Base):
    """A document's current classification and where it was routed."""

    __tablename__ = "classification_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)


class SupersededRecord(_RecordColumns, _Base):
    """A record that a later run of the same document replaced."""

    __tablename__ = "superseded_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(128), index=True, nullable=False)
    superseded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    superseded_by_run_id: Mapped[str] = mapped_column(String(64), nullable=False)


_COPIED = [
    c.name
    for c in ClassificationRecord.__table__.columns
    if c.name in SupersededRecord.__table__.columns and c.name != "id"
]


#: Tries of insert-or-lock in one write before giving up (concurrent writers of one document).
_WRITE_ATTEMPTS = 5


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
    if url.startswith(_POSTGRES_SCHEMES):
        return _postgres_engine(url)
    raise ConfigError(
        f"MODELBATON_DATABASE_URL: unsupported database URL {url.split(':', 1)[0]!r}; "
        "use sqlite:///PATH or postgresql+psycopg://..."
    )


_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
_POSTGRES_EXTRA_HINT = "pip install 'modelbaton[postgres]' (or: uv sync --extra postgres)"


def _postgres_engine(url: str) -> Engine:
    """A PostgreSQL engine on psycopg 3, the driver the ``postgres`` extra ships.

    A bare ``postgresql://`` (or ``postgres://``) would make SQLAlchemy pick psycopg2, which the
    extra does not install, so every PostgreSQL URL is pinned to psycopg here.
    """
    scheme, rest = url.split("://", 1)
    try:
        parsed = make_url(f"postgresql+psycopg://{rest}")
    except (ArgumentError, ValueError) as exc:
        # ArgumentError quotes the whole URL, password included; a ValueError names the port.
        why = f" ({exc})" if isinstance(exc, ValueError) else ""
        raise ConfigError(
            f"MODELBATON_DATABASE_URL: cannot parse the {scheme} URL{why}; "
            "expected postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        missing = exc.name or "psycopg"
        raise ConfigError(
            f"MODELBATON_DATABASE_URL: a PostgreSQL URL needs the {missing!r} package, which is "
            f"not installed; install the postgres extra: {_POSTGRES_EXTRA_HINT}"
        ) from None


class ResultsStore:
    """Idempotent writes and summary reads over the results table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        _Base.metadata.create_all(self.engine)
        add_missing_columns(self.engine, _Base.metadata)

    def write(self, row: dict[str, Any]) -> WriteResult:
        """Store ``row`` as its document's current record; see the module docstring."""
        now = datetime.now(UTC)
        values = {**row, "created_at": now}
        dialect = self.engine.dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert_fn(ClassificationRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["document_id"])
            .returning(ClassificationRecord.id)
        )
        with Session(self.engine) as session, session.begin():
            # On PostgreSQL (read committed) a concurrent write of the same document can delete
            # the row between our conflicting insert and our locking read; each statement sees
            # the latest committed state, so trying again finds the row that replaced it.
            for _ in range(_WRITE_ATTEMPTS):
                new_id = session.execute(stmt).scalar_one_or_none()
                if new_id is not None:
                    return WriteResult(new_id, row["destination"], created=True)
                existing = session.execute(
                    select(ClassificationRecord)
                    .where(ClassificationRecord.document_id == row["document_id"])
                    .with_for_update()
                ).scalar_one_or_none()
                if existing is not None:
                    break
            else:
                raise RuntimeError(
                    f"document {row['document_id']}: its current record kept changing under "
                    f"{_WRITE_ATTEMPTS} attempts to write it"
                )
            if (existing.workflow_id, existing.run_id) == (row["workflow_id"], row["run_id"]):
                return WriteResult(existing.id, existing.destination, created=False)
            if _started_before(row.get("run_started_at"), existing.run_started_at):
                raise SupersededRunError(
                    f"document {row['document_id']}: run {row['run_id']} started before run "
                    f"{existing.run_id}, whose record stands; the stale run's write is refused"
                )
            session.add(
                SupersededRecord(
                    **{name: getattr(existing, name) for name in _COPIED},
                    superseded_at=now,
                    superseded_by_run_id=row["run_id"],
                )
            )
            session.execute(
                delete(ClassificationRecord).where(ClassificationRecord.id == existing.id)
            )
            session.flush()
            replaced = session.execute(stmt).scalar_one()
            return WriteResult(replaced, row["destination"], created=True)

    def superseded(self, document_id: str | None = None) -> list[SupersededRecord]:
        """Superseded records, oldest first; of one document when ``document_id`` is given."""
        query = select(SupersededRecord).order_by(SupersededRecord.id)
        if document_id is not None:
            query = query.where(SupersededRecord.document_id == document_id)
        with Session(self.engine) as session:
            return list(session.scalars(query))

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
            "by_arm": dict(Counter(r.arm or "none" for r in recs)),
            "superseded": len(self.superseded()),
        }

    def close(self) -> None:
        self.engine.dispose()


def _started_before(incoming: datetime | None, current: datetime | None) -> bool:
    """Whether the incoming run started before the current record's run (unknown: no)."""
    if incoming is None or current is None:
        return False
    if incoming.tzinfo is None:
        incoming = incoming.replace(tzinfo=UTC)
    if current.tzinfo is None:  # SQLite hands timezone-aware columns back naive
        current = current.replace(tzinfo=UTC)
    return incoming < current


def add_missing_columns(engine: Engine, metadata: MetaData) -> None:
    """Add the nullable columns of ``metadata``'s tables that a database made by an older
    release lacks."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise ConfigError(
                    f"{engine.url.render_as_string(hide_password=True)}: table {table.name} "
                    f"lacks required column {column.name}; it was made by an incompatible release"
                )
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
