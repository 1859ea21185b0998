"""Checks over any project the config names: its contracts registry (FULL_TRANSITIVE over the
raw schema versions, covered when every normalizer maps to the one canonical type) and its
committed histories (every payload decodes with today's types, read off the project's own
workflow and activity definitions rather than a table of ours)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from temporalio import activity, workflow
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton.compat import (
    PairReport,
    TransitiveReport,
    check_transitive,
    compare_schemas,
    diff_schemas,
    model_schema,
)
from modelbaton.contracts.schemas import ContractRegistry, OutputSchema


def contracts_report(registry: ContractRegistry[Any]) -> TransitiveReport:
    """FULL_TRANSITIVE over the registry's raw schemas; a break is covered when both versions'
    normalizers produce the registry's canonical type (of one canonical version)."""

    def pair(a: OutputSchema, b: OutputSchema) -> PairReport:
        report = PairReport(
            f"schema:{a.version}",
            f"schema:{b.version}",
            diff_schemas(model_schema(a.raw_model), model_schema(b.raw_model)),
        )
        if not (report.backward_ok and report.forward_ok):
            if a.canonical_version == b.canonical_version:
                report.covered_by_normalizers = True
                report.coverage = (
                    f"covered: {a.normalizer_name} and {b.normalizer_name} both produce "
                    f"{registry.canonical.__name__}, which is all workflows read"
                )
            else:
                report.coverage = (
                    f"normalizers map to different canonical versions "
                    f"(v{a.canonical_version} and v{b.canonical_version})"
                )
        return report

    schemas = [registry.schemas[v] for v in registry.versions]
    return check_transitive(f"contracts {registry.name!r}: raw output schemas", schemas, pair)


def canonical_report(registry: ContractRegistry[Any]) -> TransitiveReport:
    """FULL_TRANSITIVE over every version the registry's canonical type has had: histories
    store it, so no normalizer can excuse a break there."""
    versions = [
        (f"canonical:v{v}", model_schema(m)) for v, m in sorted(registry.canonical_versions.items())
    ]
    return check_transitive(
        f"contracts {registry.name!r}: canonical contract", versions, compare_schemas
    )


@dataclass(frozen=True)
class Types:
    """Payload types by workflow type, activity type and update name."""

    workflows: dict[str, tuple[list[type], type | None]] = field(default_factory=dict)
    activities: dict[str, tuple[list[type], type | None]] = field(default_factory=dict)
    updates: dict[str, tuple[list[type], type | None]] = field(default_factory=dict)


def _activity_defns(module: ModuleType) -> Iterable[activity._Definition]:
    for value in vars(module).values():
        candidates = (
            [v for v in vars(value).values() if callable(v)] if inspect.isclass(value) else [value]
        )
        for fn in candidates:
            defn = activity._Definition.from_callable(fn) if callable(fn) else None
            if defn is not None and defn.name:
                yield defn


def types_of(workflows: Iterable[type], activity_modules: Iterable[ModuleType]) -> Types:
    """The argument and result types the project's own definitions declare."""
    types = Types()
    for cls in workflows:
        defn = workflow._Definition.must_from_class(cls)
        if defn.name:
            types.workflows[defn.name] = (list(defn.arg_types or []), defn.ret_type)
        for name, update in defn.updates.items():
            if name:
                types.updates[name] = (list(update.arg_types or []), update.ret_type)
    for module in activity_modules:
        for adefn in _activity_defns(module):
            assert adefn.name is not None
            types.activities[adefn.name] = (list(adefn.arg_types or []), adefn.ret_type)
    return types


@dataclass(frozen=True)
class Failure:
    source: str
    event_id: int
    what: str
    error: str

    def __str__(self) -> str:
        return f"{self.source} event {self.event_id}: {self.what}: {self.error}"


@dataclass
class HistoriesReport:
    histories: int = 0
    payloads: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "histories": self.histories,
            "payloads": self.payloads,
            "ok": self.ok,
            "failures": [str(f) for f in self.failures],
        }


def _decode(payloads: Payloads, hints: list[type]) -> int:
    items = list(payloads.payloads)
    if not items:
        return 0
    pydantic_data_converter.payload_converter.from_payloads(items, hints or None)
    return len(items)


def check_histories(folder: Path, types: Types) -> HistoriesReport:
    """Decode every payload of every ``*.json`` history under ``folder`` whose type is known."""
    report = HistoriesReport()
    for path in sorted(folder.rglob("*.json")):
        report.histories += 1
        try:
            history = WorkflowHistory.from_json(path.stem, path.read_text())
        except (OSError, ValueError) as exc:
            report.failures.append(Failure(str(path), 0, "history file", str(exc)))
            continue
        scheduled: dict[int, str] = {}
        updates: dict[str, str] = {}
        wf = ""

        def attempt(event_id: int, what: str, payloads: Payloads, hints: list[type]) -> None:
            try:
                report.payloads += _decode(payloads, hints)
            except Exception as exc:  # any decode error is the finding
                line = " ".join(str(exc).splitlines()[:3])
                report.failures.append(Failure(str(path), event_id, what, line))  # noqa: B023

        for e in history.events:
            t = e.event_type
            if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                a = e.workflow_execution_started_event_attributes
                wf = a.workflow_type.name
                if wf in types.workflows:
                    attempt(e.event_id, f"{wf} input", a.input, types.workflows[wf][0])
            elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                ret = types.workflows.get(wf, ([], None))[1]
                if ret is not None:
                    r = e.workflow_execution_completed_event_attributes.result
                    attempt(e.event_id, f"{wf} result", r, [ret])
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                s = e.activity_task_scheduled_event_attributes
                scheduled[e.event_id] = s.activity_type.name
                if s.activity_type.name in types.activities:
                    hints = types.activities[s.activity_type.name][0]
                    attempt(e.event_id, f"{s.activity_type.name} input", s.input, hints)
            elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                c = e.activity_task_completed_event_attributes
                name = scheduled.get(c.scheduled_event_id, "")
                ret = types.activities.get(name, ([], None))[1]
                if ret is not None:
                    attempt(e.event_id, f"{name} result", c.result, [ret])
            elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                req = e.workflow_execution_update_accepted_event_attributes.accepted_request
                updates[req.meta.update_id] = req.input.name
                if req.input.name in types.updates:
                    hints = types.updates[req.input.name][0]
                    attempt(e.event_id, f"update {req.input.name}", req.input.args, hints)
            elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                done = e.workflow_execution_update_completed_event_attributes
                name = updates.get(done.meta.update_id, "")
                ret = types.updates.get(name, ([], None))[1]
                if ret is not None and done.outcome.HasField("success"):
                    attempt(e.event_id, f"update {name} result", done.outcome.success, [ret])
    return report
