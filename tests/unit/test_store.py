"""The results store on SQLite and, marked ``integration``, on a real PostgreSQL server."""

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelbaton.errors import ConfigError
from modelbaton.pipeline.store import ClassificationRecord, ResultsStore, make_engine


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh results database: a SQLite file, or a new database on the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'r.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[ResultsStore]:
    """A store on ``store_url``, closed even when the test fails (no connection outlives it)."""
    opened = ResultsStore(store_url)
    yield opened
    opened.close()


def row(doc: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "document_id": doc,
        "workflow_id": f"classify-{doc}",
        "run_id": "r1",
        "branch": "v2",
        "model_version": "v2",
        "schema_version": 2,
        "model_label": "invoice",
        "final_label": "invoice",
        "confidence": 0.9,
        "outcome": "auto",
        "reviewer": None,
        "destination": "accounts_payable",
        "scores_by_class": {"invoice": 0.9, "receipt": 0.1},
    }
    return base | kw


def test_write_is_idempotent_per_run(store: ResultsStore) -> None:
    first = store.write(row("d1"))
    again = store.write(row("d1", destination="elsewhere"))
    assert first.created
    assert not again.created
    assert again.record_id == first.record_id
    assert again.destination == "accounts_payable"  # the stored row wins, nothing overwritten
    assert store.count_for("d1") == 1


def test_summary_counts(store: ResultsStore) -> None:
    store.write(row("d1"))
    store.write(row("d2", final_label="receipt", branch="v1", model_version="v1"))
    store.write(row("d3", outcome="reviewed"))
    s = store.summary()
    assert s["total"] == 3
    assert s["by_class"] == {"invoice": 2, "receipt": 1}
    assert s["by_branch"] == {"v2": 2, "v1": 1}
    assert s["by_outcome"] == {"auto": 2, "reviewed": 1}


def test_survives_reopen(store_url: str) -> None:
    first = ResultsStore(store_url)
    first.write(row("d1"))
    first.close()
    again = ResultsStore(store_url)
    assert again.count_for("d1") == 1
    again.close()


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unsupported database URL 'mysql'"):
        ResultsStore("mysql://x/y")


def test_rerun_supersedes_and_keeps_one_current_record(store: ResultsStore) -> None:
    first = store.write(row("d1", arm="candidate", model_version="v3"))
    retry = store.write(row("d1", arm="candidate", model_version="v3", destination="elsewhere"))
    assert first.created
    assert (retry.created, retry.record_id, retry.destination) == (
        False,
        first.record_id,
        "accounts_payable",
    )
    rerun = store.write(row("d1", run_id="r2", arm="baseline", model_version="v2"))
    assert rerun.created
    current = [r for r in store.records() if r.document_id == "d1"]
    assert [(r.run_id, r.model_version, r.arm) for r in current] == [("r2", "v2", "baseline")]
    old = store.superseded("d1")
    assert [(o.run_id, o.model_version, o.superseded_by_run_id) for o in old] == [
        ("r1", "v3", "r2")
    ]
    assert store.summary()["superseded"] == 1


def test_database_of_an_older_release_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE classification_results (id INTEGER PRIMARY KEY, document_id VARCHAR(128)"
            " UNIQUE NOT NULL, workflow_id VARCHAR(256) NOT NULL, run_id VARCHAR(64) NOT NULL,"
            " branch VARCHAR(16) NOT NULL, model_version VARCHAR(64) NOT NULL, schema_version"
            " INTEGER NOT NULL, model_label VARCHAR(128) NOT NULL, final_label VARCHAR(128) NOT"
            " NULL, confidence FLOAT NOT NULL, outcome VARCHAR(16) NOT NULL, reviewer"
            " VARCHAR(128), destination VARCHAR(128) NOT NULL, scores_by_class JSON NOT NULL,"
            " created_at DATETIME NOT NULL)"
        )
        conn.execute(
            "INSERT INTO classification_results VALUES (1, 'd0', 'w', 'r', 'v2', 'v2', 2, 'a',"
            " 'a', 0.9, 'auto', NULL, 'x', '{}', '2026-01-01 00:00:00')"
        )
    store = ResultsStore(f"sqlite:///{path}")
    store.write(row("d1", arm="baseline"))
    by_doc = {r.document_id: r.arm for r in store.records()}
    assert by_doc == {"d0": None, "d1": "baseline"}
    store.close()


def current_rows(store: ResultsStore, document_id: str) -> int:
    """Current rows of ``document_id`` counted by the database itself."""
    with Session(store.engine) as session:
        query = select(func.count()).where(ClassificationRecord.document_id == document_id)
        return session.execute(query).scalar_one()


@pytest.mark.parametrize("existing", [False, True], ids=["first-write", "over-a-record"])
def test_concurrent_writes_of_one_document_leave_one_current_record(
    store: ResultsStore, existing: bool
) -> None:
    """Two runs of a document write at once (a re-run racing a stale attempt): both writes
    succeed, one current row remains, and every replaced row is kept as superseded."""
    if existing:
        store.write(row("d1", run_id="r0"))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(run_id: str) -> None:
        try:
            start.wait(timeout=10)
            store.write(row("d1", run_id=run_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(run,)) for run in ("r1", "r2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert current_rows(store, "d1") == 1
    [current] = [r for r in store.records() if r.document_id == "d1"]
    assert current.run_id in ("r1", "r2")
    superseded = store.superseded("d1")
    # Every run but the current one was written once and then replaced.
    assert sorted(s.run_id for s in superseded) == sorted(
        {"r0", "r1", "r2"} - {current.run_id} - (set() if existing else {"r0"})
    )


def test_postgres_url_without_the_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    with pytest.raises(ConfigError, match=r"'psycopg' package.*modelbaton\[postgres\]") as info:
        make_engine("postgresql+psycopg://u@localhost:5432/db")
    assert "uv sync --extra postgres" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_bare_postgres_urls_use_the_extras_driver(url: str) -> None:
    """SQLAlchemy's default PostgreSQL driver is psycopg2, which the extra does not ship."""
    engine = make_engine(url)
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_malformed_postgres_url_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot parse the postgresql\\+psycopg URL") as info:
        make_engine("postgresql+psycopg://:bad")
    assert "\n" not in str(info.value)


def test_malformed_url_does_not_echo_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        make_engine("postgresql+psycopg://u:s3cret@h:port/db")
    assert "s3cret" not in str(info.value)


@pytest.mark.integration
def test_postgres_database_of_an_older_release_gains_the_new_columns(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE classification_results (id SERIAL PRIMARY KEY, document_id VARCHAR(128)"
            " UNIQUE NOT NULL, workflow_id VARCHAR(256) NOT NULL, run_id VARCHAR(64) NOT NULL,"
            " branch VARCHAR(16) NOT NULL, model_version VARCHAR(64) NOT NULL, schema_version"
            " INTEGER NOT NULL, model_label VARCHAR(128) NOT NULL, final_label VARCHAR(128) NOT"
            " NULL, confidence FLOAT NOT NULL, outcome VARCHAR(16) NOT NULL, reviewer"
            " VARCHAR(128), destination VARCHAR(128) NOT NULL, scores_by_class JSON NOT NULL,"
            " created_at TIMESTAMPTZ NOT NULL)"
        )
        conn.execute(
            "INSERT INTO classification_results (document_id, workflow_id, run_id, branch,"
            " model_version, schema_version, model_label, final_label, confidence, outcome,"
            " destination, scores_by_class, created_at) VALUES ('d0', 'w', 'r', 'v2', 'v2', 2,"
            " 'a', 'a', 0.9, 'auto', 'x', '{}', now())"
        )
    store = ResultsStore(postgres_url)
    store.write(row("d1", arm="baseline"))
    assert {r.document_id: r.arm for r in store.records()} == {"d0": None, "d1": "baseline"}
    store.close()


@pytest.mark.integration
def test_results_command_reads_postgres_without_printing_the_password(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from modelbaton.app.main import baton as app

    store = ResultsStore(postgres_url)
    store.write(row("d1"))
    store.close()
    with_password = postgres_url.replace("baton@", "baton:s3cret@")  # trust auth ignores it
    monkeypatch.setenv("MODELBATON_DATABASE_URL", with_password)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["results"])
    assert result.exit_code == 0, result.output
    assert "1 results in" in result.output
    assert "baton:***@" in result.output
    assert "s3cret" not in result.output


def test_results_command_refuses_a_malformed_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from modelbaton.app.main import baton as app

    monkeypatch.setenv("MODELBATON_DATABASE_URL", "postgresql+psycopg://:bad")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["results"])
    assert result.exit_code == 2
    assert "cannot parse the postgresql+psycopg URL" in result.output
    assert "Traceback" not in result.output
