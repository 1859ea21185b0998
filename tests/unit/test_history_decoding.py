"""Today's message types decode every committed history; a breaking change to them is caught."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from pydantic import Field
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.controller.workflow import RolloutControllerWorkflow
from modelbaton.ops.project_checks import Failure, Types, check_histories, types_of
from modelbaton.pipeline import activities
from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassifyDocumentInput, ReviewDecision
from modelbaton.pipeline.workflow import DocumentClassificationWorkflow
from modelbaton.rollout.workflow import RolloutWorkflow

TESTS = Path(__file__).resolve().parent.parent
FOLDERS = [TESTS / "histories", TESTS / "lifecycle_histories"]


def todays_types() -> Types:
    """What ``schema check`` reads off the reference project's definitions (and modelbaton's own
    workflows): no table of ours."""
    return types_of(
        [DocumentClassificationWorkflow, RolloutWorkflow, RolloutControllerWorkflow], [activities]
    )


def decode_all(types: Types) -> tuple[int, int, list[Failure]]:
    histories = payloads = 0
    failures: list[Failure] = []
    for folder in FOLDERS:
        report = check_histories(folder, types)
        histories += report.histories
        payloads += report.payloads
        failures += report.failures
    return histories, payloads, failures


def test_todays_types_decode_every_committed_history() -> None:
    types = todays_types()
    # Read off the definitions: the workflow, its activities and updates, the rollout's.
    assert types.workflows[WORKFLOW_TYPE][0] == [ClassifyDocumentInput]
    assert {"classify_document_v1", "classify_document_v2"} <= set(types.activities)
    assert {"submit_review", "start_canary", "promote"} <= set(types.updates)
    histories, payloads, failures = decode_all(types)
    assert histories >= 17
    assert payloads > 100
    assert failures == []


class RequiredPriority(ClassifyDocumentInput):
    """A breaking change: a new required field."""

    priority: int


class RenamedReviewer(ReviewDecision):
    """A breaking change: a required field recorded histories never had."""

    approved_by: str = Field(min_length=1)


def test_a_new_required_field_is_caught() -> None:
    types = todays_types()
    types.workflows[WORKFLOW_TYPE] = ([RequiredPriority], types.workflows[WORKFLOW_TYPE][1])
    histories, _, failures = decode_all(types)
    started = [f for f in failures if f.what == f"{WORKFLOW_TYPE} input"]
    documents = sum(1 for p in FOLDERS for _ in p.rglob("*.json"))
    assert len(started) == documents == histories  # every recorded document input
    assert "priority" in started[0].error


def test_a_breaking_update_type_is_caught() -> None:
    types = todays_types()
    types.updates["submit_review"] = ([RenamedReviewer], types.updates["submit_review"][1])
    _, _, failures = decode_all(types)
    assert failures
    assert {f.what for f in failures} == {"update submit_review"}


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
    (decoded,) = report["histories"].values()
    (failure,) = decoded["failures"]
    assert f"{WORKFLOW_TYPE} input" in failure
    assert "document_id" in failure
    ok = CliRunner().invoke(baton, ["schema", "check", "--histories", str(good.parent)])
    assert ok.exit_code == 0, ok.output
    missing = CliRunner().invoke(baton, ["schema", "check", "--histories", str(tmp_path / "no")])
    assert missing.exit_code == 2
    assert "not a folder" in missing.output
