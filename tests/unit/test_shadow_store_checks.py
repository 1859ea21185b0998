"""The canary's comparison counts per arm, read back from a real SQLite results database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from modelbaton.shadow.store import ShadowStore


def row(rollout: str, doc: str, primary: str, other: str, agree: bool | None) -> dict[str, Any]:
    return {
        "rollout_id": rollout,
        "document_id": doc,
        "workflow_id": f"wf-{doc}",
        "run_id": "r",
        "baseline_version": primary,
        "candidate_version": other,
        "baseline_label": "invoice",
        "candidate_label": None if agree is None else ("invoice" if agree else "receipt"),
        "agree": agree,
        "only_baseline_classes": [],
        "only_candidate_classes": [],
        "reviewed_label": None,
    }


def test_check_counts_split_by_the_primary_arm(tmp_path: Path) -> None:
    store = ShadowStore(create_engine(f"sqlite:///{tmp_path / 'r.db'}"))
    check = "doc-classifier-1:canary"
    rows = [
        row(check, "c1", "v3", "v2", True),
        row(check, "c2", "v3", "v2", False),
        row(check, "c3", "v3", "v2", False),
        row(check, "c4", "v3", "v2", None),  # the baseline did not answer: not compared
        row(check, "b1", "v2", "v2", True),
        row(check, "b2", "v2", "v2", True),
        row("doc-classifier-1", "s1", "v2", "v3", False),  # the shadow stage: not the canary's
    ]
    for r in rows:
        store.record(r)
    assert store.check_counts(check, "v3") == {"candidate": (2 + 1, 1), "baseline": (2, 2)}
    assert store.check_counts("doc-classifier-2:canary", "v3") == {
        "candidate": (0, 0),
        "baseline": (0, 0),
    }
