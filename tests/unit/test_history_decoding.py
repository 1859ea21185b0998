"""Today's message types decode every committed history; a breaking change to them is caught."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import Field
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.ops import history_types
from modelbaton.ops.history_types import check_histories
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassifyDocumentInput, ReviewDecision

TESTS = Path(__file__).resolve().parent.parent
FOLDERS = [TESTS / "histories", TESTS / "lifecycle_histories"]


def test_todays_types_decode_every_committed_history() -> None:
    report = check_histories(FOLDERS)
    assert report.histories >= 17
    assert report.payloads > 100
    assert report.failures == []


class RequiredPriority(ClassifyDocumentInput):
    """A breaking change: a new required field."""

    priority: int


class RenamedReviewer(ReviewDecision):
    """A breaking change: a required field recorded histories never had."""

    approved_by: str = Field(min_length=1)


def test_a_new_required_field_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    types = dict(history_types.WORKFLOW_TYPES)
    types[WORKFLOW_TYPE] = (RequiredPriority, types[WORKFLOW_TYPE][1])
    monkeypatch.setattr(history_types, "WORKFLOW_TYPES", types)
    report = check_histories(FOLDERS)
    started = [f for f in report.failures if f.what == f"{WORKFLOW_TYPE} input"]
    assert len(started) == report.histories  # every recorded document input
    assert "priority" in started[0].error


def test_a_breaking_update_type_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    updates = dict(history_types.UPDATE_TYPES)
    updates["submit_review"] = (RenamedReviewer, updates["submit_review"][1])
    monkeypatch.setattr(history_types, "UPDATE_TYPES", updates)
    report = check_histories(FOLDERS)
    assert report.failures
    assert {f.what for f in report.failures} == {"update submit_review argument"}


def test_an_input_with_an_added_field_decodes_with_todays_type() -> None:
    """A newer release adds an optional field; this (older) code must still read the input."""
    path = TESTS / "histories" / "assigned" / "assigned-auto.json"
    events = json.loads(path.read_text())["events"]
    payload = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    data = json.loads(base64.b64decode(payload["data"]))
    data["priority"] = "high"  # unknown here
    data["assignment"]["region"] = "eu-west"
    inp = ClassifyDocumentInput.model_validate(data)
    assert inp.assignment is not None
    assert inp.assignment.model_version == "v2"


def test_schema_check_fails_on_an_unreadable_history(tmp_path: Path) -> None:
    good = TESTS / "histories" / "assigned" / "assigned-auto.json"
    doc = json.loads(good.read_text())
    attrs = doc["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = attrs["input"]["payloads"][0]
    data = json.loads(base64.b64decode(payload["data"]))
    del data["document_id"]
    payload["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    args = ["schema", "check", "--json", "--histories", str(tmp_path)]
    result = CliRunner().invoke(baton, args)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["compatible"] is False
    (failure,) = report["history_payloads"]["failures"]
    assert "does not decode as ClassifyDocumentInput" in failure
    assert "document_id" in failure
    ok = CliRunner().invoke(baton, ["schema", "check", "--histories", str(good.parent)])
    assert ok.exit_code == 0, ok.output
    missing = CliRunner().invoke(baton, ["schema", "check", "--histories", str(tmp_path / "no")])
    assert missing.exit_code == 2
    assert "not a folder" in missing.output
