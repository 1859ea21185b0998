"""Decode every payload of recorded histories with today's message types.

A change to ``pipeline/messages.py`` (or the rollout's messages) that makes a recorded input,
result or update unreadable would fail replay of every workflow that holds it; this finds it
before deploy, from committed histories, without a server. Each payload is decoded with the type
today's code would use for it: workflow inputs and results by workflow type, activity inputs and
results by activity type, update arguments and results by update name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.contracts.rollout import RolloutPlan
from modelbaton.pipeline import messages as m
from modelbaton.rollout import messages as rm

#: Workflow type -> (input type, result type or None).
WORKFLOW_TYPES: Mapping[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    m.WORKFLOW_TYPE: (m.ClassifyDocumentInput, m.ClassificationOutcome),
    rm.ROLLOUT_WORKFLOW_TYPE: (rm.RolloutInput, None),
}
#: Activity type -> (input type, result type or None).
ACTIVITY_TYPES: Mapping[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    m.CLASSIFY_V1: (m.ClassifyActivityInput, NormalizedClassificationResult),
    m.CLASSIFY_V2: (m.ClassifyActivityInput, NormalizedClassificationResult),
    m.PROCESS_RESULT: (m.ProcessInput, m.ProcessOutput),
    m.SHADOW_CLASSIFY: (m.ClassifyActivityInput, m.ArmAnswer),
    m.RECORD_SHADOW: (m.ShadowRecordInput, None),
}
#: Update name -> (argument type, result type).
UPDATE_TYPES: Mapping[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "submit_review": (m.ReviewDecision, m.ReviewReceipt),
    "start_canary": (rm.StartCanaryRequest, RolloutPlan),
    "set_fraction": (rm.SetFractionRequest, RolloutPlan),
    "promote": (rm.ChangeBy, RolloutPlan),
    "abort": (rm.ChangeBy, RolloutPlan),
    "note": (rm.NoteRequest, RolloutPlan),
}


@dataclass(frozen=True)
class DecodeFailure:
    """One payload today's types cannot read."""

    source: str
    event_id: int
    what: str
    type_name: str
    error: str

    def __str__(self) -> str:
        return (
            f"{self.source} event {self.event_id}: {self.what} does not decode as "
            f"{self.type_name}: {self.error}"
        )


@dataclass(frozen=True)
class DecodeReport:
    """Histories and payloads checked, and what failed."""

    histories: int
    payloads: int
    failures: list[DecodeFailure]

    @property
    def ok(self) -> bool:
        return not self.failures


def _decode(payloads: Payloads, kind: type[BaseModel]) -> None:
    if not payloads.payloads:
        return
    pydantic_data_converter.payload_converter.from_payloads(list(payloads.payloads), [kind])


def check_history(history: WorkflowHistory, source: str) -> tuple[int, list[DecodeFailure]]:
    """Decode every known payload of one history; return (payloads decoded, failures)."""
    failures: list[DecodeFailure] = []
    count = 0
    workflow_type = ""
    scheduled: dict[int, str] = {}
    updates: dict[str, str] = {}

    def attempt(event_id: int, what: str, payloads: Payloads, kind: type[BaseModel]) -> None:
        nonlocal count
        count += 1
        try:
            _decode(payloads, kind)
        except (ValidationError, ValueError, TypeError) as exc:
            first = str(exc).splitlines()
            failures.append(
                DecodeFailure(source, event_id, what, kind.__name__, " ".join(first[:3]))
            )

    for e in history.events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            a = e.workflow_execution_started_event_attributes
            workflow_type = a.workflow_type.name
            if workflow_type in WORKFLOW_TYPES:
                attempt(
                    e.event_id, f"{workflow_type} input", a.input, WORKFLOW_TYPES[workflow_type][0]
                )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result_type = WORKFLOW_TYPES.get(workflow_type, (None, None))[1]
            if result_type is not None:
                a2 = e.workflow_execution_completed_event_attributes
                attempt(e.event_id, f"{workflow_type} result", a2.result, result_type)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            s = e.activity_task_scheduled_event_attributes
            scheduled[e.event_id] = s.activity_type.name
            if s.activity_type.name in ACTIVITY_TYPES:
                kind = ACTIVITY_TYPES[s.activity_type.name][0]
                attempt(e.event_id, f"{s.activity_type.name} input", s.input, kind)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            c = e.activity_task_completed_event_attributes
            name = scheduled.get(c.scheduled_event_id, "")
            activity_result = ACTIVITY_TYPES.get(name, (None, None))[1]
            if activity_result is not None:
                attempt(e.event_id, f"{name} result", c.result, activity_result)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            u = e.workflow_execution_update_accepted_event_attributes
            req = u.accepted_request
            name = req.input.name
            updates[req.meta.update_id] = name
            if name in UPDATE_TYPES:
                attempt(
                    e.event_id, f"update {name} argument", req.input.args, UPDATE_TYPES[name][0]
                )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            done = e.workflow_execution_update_completed_event_attributes
            name = updates.get(done.meta.update_id, "")
            if name in UPDATE_TYPES and done.outcome.HasField("success"):
                attempt(
                    e.event_id, f"update {name} result", done.outcome.success, UPDATE_TYPES[name][1]
                )
    return count, failures


def history_files(folders: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` history under ``folders``, in a stable order."""
    return sorted(p for folder in folders for p in Path(folder).rglob("*.json"))


def check_histories(folders: Iterable[Path]) -> DecodeReport:
    """Decode every payload of every history file under ``folders``."""
    files = history_files(folders)
    payloads = 0
    failures: list[DecodeFailure] = []
    for path in files:
        try:
            history = WorkflowHistory.from_json(path.stem, path.read_text())
        except (OSError, ValueError) as exc:
            failures.append(DecodeFailure(str(path), 0, "history file", "JSON history", str(exc)))
            continue
        n, bad = check_history(history, str(path))
        payloads += n
        failures += bad
    return DecodeReport(histories=len(files), payloads=payloads, failures=failures)


def describe(report: DecodeReport) -> dict[str, Any]:
    """A JSON-ready summary."""
    return {
        "histories": report.histories,
        "payloads": report.payloads,
        "ok": report.ok,
        "failures": [str(f) for f in report.failures],
    }
