from pathlib import Path
from typing import Any

import pytest

from modelbaton.errors import ConfigError
from modelbaton.pipeline.store import ResultsStore


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


def test_write_is_idempotent_per_run(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    first = store.write(row("d1"))
    again = store.write(row("d1", destination="elsewhere"))
    assert first.created
    assert not again.created
    assert again.record_id == first.record_id
    assert again.destination == "accounts_payable"  # the stored row wins, nothing overwritten
    assert store.count_for("d1") == 1
    store.close()


def test_summary_counts(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.write(row("d1"))
    store.write(row("d2", final_label="receipt", branch="v1", model_version="v1"))
    store.write(row("d3", outcome="reviewed"))
    s = store.summary()
    assert s["total"] == 3
    assert s["by_class"] == {"invoice": 2, "receipt": 1}
    assert s["by_branch"] == {"v2": 2, "v1": 1}
    assert s["by_outcome"] == {"auto": 2, "reviewed": 1}
    store.close()


def test_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    ResultsStore(url).write(row("d1"))
    assert ResultsStore(url).count_for("d1") == 1


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unsupported database URL 'mysql'"):
        ResultsStore("mysql://x/y")


def test_rerun_supersedes_and_keeps_one_current_record(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
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
    store.close()


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
