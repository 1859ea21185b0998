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


def test_write_is_idempotent_per_document(tmp_path: Path) -> None:
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    first = store.write(row("d1"))
    again = store.write(row("d1", run_id="r2", destination="elsewhere"))
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
