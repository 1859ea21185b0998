"""The results store refuses the write of a stale run: one that started before the run whose
record is current (a terminated run's in-flight write arriving after its restart wrote)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelbaton.errors import SupersededRunError
from modelbaton.pipeline.store import ResultsStore

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    opened = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    yield opened
    opened.close()


def row(run: str, started: datetime | None, version: str) -> dict[str, Any]:
    return {
        "document_id": "doc-1",
        "workflow_id": "classify-doc-1",
        "run_id": run,
        "branch": "v2",
        "model_version": version,
        "schema_version": 2,
        "model_label": "invoice",
        "final_label": "invoice",
        "confidence": 0.9,
        "outcome": "auto",
        "reviewer": None,
        "destination": "accounts_payable",
        "scores_by_class": {"invoice": 0.9},
        "run_started_at": started,
    }


def test_a_write_from_a_run_older_than_the_current_record_is_refused(
    store: ResultsStore,
) -> None:
    store.write(row("restarted", T0 + timedelta(seconds=5), "v2"))
    with pytest.raises(SupersededRunError, match="run terminated started before run restarted"):
        store.write(row("terminated", T0, "v3"))
    [current] = store.records()
    assert (current.run_id, current.model_version) == ("restarted", "v2")
    assert store.superseded() == []


def test_a_later_run_still_supersedes_an_earlier_one(store: ResultsStore) -> None:
    store.write(row("first", T0, "v3"))
    store.write(row("second", T0 + timedelta(seconds=5), "v2"))
    [current] = store.records()
    assert (current.run_id, current.model_version) == ("second", "v2")
    [old] = store.superseded()
    assert (old.run_id, old.model_version, old.superseded_by_run_id) == ("first", "v3", "second")


def test_rows_without_a_start_time_keep_the_last_writer(store: ResultsStore) -> None:
    """Rows written before the column existed (or by a writer that cannot tell) compare as
    unknown: the write goes through, as before."""
    store.write(row("restarted", None, "v2"))
    store.write(row("terminated", T0, "v3"))
    assert [r.run_id for r in store.records()] == ["terminated"]
